"""A name per track, from all its faces at once (not frame by frame: no flicker).

A track is a group of faces of one person, named by ``facebank.groups``: its faces are thinned to
independent evidence (at least 0.5 s apart and visibly different: a still that is panned or zoomed
counts once), a person's group score is the median of the gallery's decision scores over those
faces, and the threshold relaxes with the number of independent faces so that strangers' tracks
are named no more often than strangers' photos (calibrated on the gallery's own people and on the
other tracks of the same video). A track is never less certain than its frames: when the
single-photo rule names one person for most of its frames, the track is that person. Two tracks on
screen at the same time never get the same person: the farther one becomes unknown (with the
person as its candidate), like two faces of one photo.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from facebank.api import FaceBank
from facebank.groups import GroupCalibration, GroupContext, GroupDecision
from facebank.identify import cosine_from_l2
from facebank.types import Match
from facebank.video.track import Track


def _match(g: GroupDecision) -> Match:
    if g.candidate is None:
        return Match(None, float("inf"), -1.0, reason=g.reason or "empty_gallery", faces_used=g.faces)
    return Match(name=g.person, distance=g.distance, score=cosine_from_l2(g.distance), candidate=g.candidate,
                 decision_score=g.score, reason=g.reason, faces_used=g.faces)


def name_embeddings(bank: FaceBank, embeddings: np.ndarray, threshold: float | None = None,
                    times_s: Sequence[float] | np.ndarray | None = None,
                    calibration: GroupCalibration | None = None) -> Match:
    """The person of a set of embeddings of one face (``facebank.groups``): ``Match.decision_score``
    is the group score (median decision score over the independent faces, the rule's unit),
    ``distance`` the median L2 distance to that person, ``faces_used`` the independent faces.
    ``threshold`` (the rule's unit) overrides the single-photo threshold the group bound relaxes from."""
    e = np.asarray(embeddings, np.float32).reshape(len(embeddings), -1)
    if len(e) == 0 or not bank.decision().people:
        return Match(None, float("inf"), -1.0, reason="empty_gallery")
    ctx = GroupContext.of(bank)
    return _match(ctx.decide(e, times_s, calibration, threshold=threshold))


def embedding_times(track: Track) -> np.ndarray | None:
    """The video time (s) of each kept embedding of ``track`` (one every ``stride`` sightings, the
    stride a power of two), or None when they cannot be told."""
    n, k = len(track.times_s), len(track.embeddings)
    stride = 1
    while stride <= max(n, 1):
        if -(-n // stride) == k:
            return np.asarray(track.times_s, np.float64)[::stride][:k]
        stride *= 2
    return None


def name_track(bank: FaceBank, track: Track, threshold: float | None = None,
               calibration: GroupCalibration | None = None) -> Track:
    m = name_embeddings(bank, track.embeddings, threshold, embedding_times(track), calibration)
    return dataclasses.replace(track, match=m)


def name_tracks(bank: FaceBank, tracks: Sequence[Track], threshold: float | None = None) -> tuple[Track, ...]:
    """Name every track, the other tracks of the video being the cohort of strangers each track is
    calibrated with; of two tracks overlapping in time with one name, the farther is unknown."""
    named = list(tracks)
    if len(named) > 1 and bank.decision().people:  # named again: a name given alone had no cohort
        ctx = GroupContext.of(bank)
        cohort = ctx.cohort_scores([t.embeddings for t in named])
        for i in range(len(named)):
            cal = ctx.calibration([c for j, c in enumerate(cohort) if j != i])
            named[i] = name_track(bank, named[i], threshold, cal)
    else:
        named = [t if t.match is not None else name_track(bank, t, threshold) for t in named]
    order = sorted(range(len(named)), key=lambda i: _score(named[i]))
    kept: list[Track] = []
    out: dict[int, Track] = {}
    for i in order:
        t = named[i]
        if t.name is not None and any(k.name == t.name and _overlap(k, t) for k in kept):
            m = t.match
            assert m is not None
            t = dataclasses.replace(t, match=dataclasses.replace(m, name=None, reason="taken"))
        else:
            kept.append(t)
        out[i] = t
    return tuple(out[i] for i in range(len(named)))


def _score(t: Track) -> float:
    m = t.match
    assert m is not None
    return m.decision_score if m.decision_score is not None else m.distance


def _overlap(a: Track, b: Track) -> bool:
    return a.start_s <= b.end_s and b.start_s <= a.end_s
