"""A name per track, from all its embeddings at once (not frame by frame: no flicker).

Each embedding of a track gets its L2 distance to every person of the gallery (the identify
rule: nearest enrolled face or mean embedding); a person's distance to the track is the median
over the track's embeddings, so a few blurred or turned frames do not decide. The nearest person
names the track when that median is within the identification threshold, as for a photo. Two
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
    """The person of a set of embeddings of one face (L2 distances; None = unknown)."""
    thr = bank.settings.threshold if threshold is None else threshold
    e = np.asarray(embeddings, np.float32).reshape(len(embeddings), -1)
    dist = bank.index().person_distances(e)
    if not dist.people or len(e) == 0:
        return Match(None, float("inf"), -1.0)
    table = dist.nearest if bank.settings.rule == "nearest" else dist.mean
    per_person = np.median(table, axis=0)
    k = int(np.argmin(per_person))
    d = float(per_person[k])
    return Match(
        name=dist.people[k] if d <= thr else None, distance=d, score=cosine_from_l2(d),
        candidate=dist.people[k], nearest_face_distance=float(np.median(dist.nearest[:, k])),
        mean_distance=float(np.median(dist.mean[:, k])),
    )


def name_track(bank: FaceBank, track: Track, threshold: float | None = None) -> Track:
    return dataclasses.replace(track, match=name_embeddings(bank, track.embeddings, threshold))


def name_tracks(bank: FaceBank, tracks: Sequence[Track], threshold: float | None = None) -> tuple[Track, ...]:
    """Name every track; of two tracks overlapping in time with one name, the farther is unknown."""
    named = [t if t.match is not None else name_track(bank, t, threshold) for t in tracks]
    order = sorted(range(len(named)), key=lambda i: named[i].match.distance)  # type: ignore[union-attr]
    kept: list[Track] = []
    out: dict[int, Track] = {}
    for i in order:
        t = named[i]
        if t.name is not None and any(k.name == t.name and _overlap(k, t) for k in kept):
            m = t.match
            assert m is not None
            t = dataclasses.replace(t, match=dataclasses.replace(m, name=None))
        else:
            kept.append(t)
        out[i] = t
    return tuple(out[i] for i in range(len(named)))


def _overlap(a: Track, b: Track) -> bool:
    return a.start_s <= b.end_s and b.start_s <= a.end_s
