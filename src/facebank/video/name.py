"""A name per track, from all its embeddings at once (not frame by frame: no flicker).

Each embedding of a track is scored against every person of the gallery by the gallery's decision
rule (``facebank.decide``, as for a photo); a person's score for the track is the median over the
track's embeddings, so a few blurred or turned frames do not decide. The best person names the
track when that median is within the rule's threshold. Two
tracks on screen at the same time never get the same person: the farther one becomes unknown
(with the person as its candidate), like two faces of one photo.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from facebank.api import FaceBank
from facebank.identify import cosine_from_l2
from facebank.types import Match
from facebank.video.track import Track


def name_embeddings(bank: FaceBank, embeddings: np.ndarray, threshold: float | None = None) -> Match:
    """The person of a set of embeddings of one face. The gallery's decision rule
    (``bank.decision()``, see ``facebank.decide``) scores every embedding against every person; a
    person's score for the set is the median over its embeddings, and the best person names it when
    that is within the rule's threshold (``threshold``, in the rule's unit, overrides).
    ``Match.distance`` is the median L2 distance to that person, ``decision_score`` the median score."""
    from facebank.decide import _reorder

    e = np.asarray(embeddings, np.float32).reshape(len(embeddings), -1)
    dist = bank.index().person_distances(e)
    if not dist.people or len(e) == 0:
        return Match(None, float("inf"), -1.0, reason="empty_gallery")
    decision = bank.decision()
    if dist.people != decision.people:
        dist = _reorder(dist, decision.people)
    thr = decision.point.threshold if threshold is None else threshold
    scores = np.asarray(decision.rule.scores(dist), np.float64)
    per_person = np.median(np.where(np.isfinite(scores), scores, 1e6), axis=0)
    k = int(np.argmin(per_person))
    combine = getattr(decision.rule, "combine", bank.settings.rule)
    table = dist.mean if combine == "mean" else dist.nearest
    d = float(np.median(table[:, k]))
    named = bool(per_person[k] <= thr)
    return Match(
        name=dist.people[k] if named else None, distance=d, score=cosine_from_l2(d),
        candidate=dist.people[k], nearest_face_distance=float(np.median(dist.nearest[:, k])),
        mean_distance=float(np.median(dist.mean[:, k])), decision_score=float(per_person[k]),
        reason=None if named else "no_match",
    )


def name_track(bank: FaceBank, track: Track, threshold: float | None = None) -> Track:
    return dataclasses.replace(track, match=name_embeddings(bank, track.embeddings, threshold))


def name_tracks(bank: FaceBank, tracks: Sequence[Track], threshold: float | None = None) -> tuple[Track, ...]:
    """Name every track; of two tracks overlapping in time with one name, the farther is unknown."""
    named = [t if t.match is not None else name_track(bank, t, threshold) for t in tracks]
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
