"""Unknown people grouped across shots ("unknown #k") by the group module's evidence: all the faces
of each track, thinned to independent ones, the median of their nearest distances to an unknown
person, a bound that relaxes with the evidence when strangers calibrate it; two tracks on screen at
once are never one person. Made-up embeddings in a small "world" where strangers are ~0.7 apart
(as dlib's are) and a look-alike's centre is 0.3 from a person's."""

from __future__ import annotations

import numpy as np

from facebank.embed.points import DLIB_POINTS as POINTS
from facebank.types import Box, Match
from facebank.video.analyze import group_unknown
from facebank.video.track import Track

DIM = 128
COMMON = np.random.default_rng(0).normal(size=DIM)


def nrm(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def centre(seed: int) -> np.ndarray:
    """A person's typical face: random people are ~0.7 apart."""
    return nrm(nrm(COMMON) + 0.55 * nrm(np.random.default_rng(seed).normal(size=DIM)))


def near(c: np.ndarray, seed: int, d: float) -> np.ndarray:
    """A look-alike's typical face, about ``d`` from ``c``."""
    r = np.random.default_rng(seed).normal(size=DIM)
    r -= (r @ c) * c
    return nrm(c + d * nrm(r))


def faces(c: np.ndarray, seed: int, n: int, noise: float) -> list[np.ndarray]:
    g = np.random.default_rng(seed)
    return [nrm(c + noise * nrm(g.normal(size=DIM))) for _ in range(n)]


def track(tid: int, start: float, embs: list[np.ndarray], step: float = 0.5) -> Track:
    times = start + step * np.arange(len(embs))
    boxes = np.tile(np.asarray([[10, 10, 60, 60]], np.float32), (len(times), 1))
    return Track(id=tid, start_s=start, end_s=float(times[-1]), frames=len(times), box=Box(10, 10, 60, 60),
                 times_s=times, boxes=boxes, embeddings=np.stack(embs), match=Match(None, 0.6, 0.9))


def mean_distance(a: Track, b: Track) -> float:
    return float(np.linalg.norm(nrm(a.embeddings.mean(0)) - nrm(b.embeddings.mean(0))))


STRANGERS = [np.stack(faces(centre(s), 77 + s, 5, 0.22)) for s in range(10, 20)]  # e.g. enrolled people


def test_a_look_alike_whose_mean_face_is_near_stays_another_unknown_person():
    a, b = centre(1), None
    b = near(a, 2, 0.30)
    t1, t2, t3 = (track(0, 0.0, faces(a, 3, 12, 0.25)), track(1, 8.0, faces(b, 4, 12, 0.25)),
                  track(2, 20.0, faces(a, 5, 12, 0.25)))
    # the means of two different people's tracks are closer than the single-face link distance:
    # comparing means (the rule this replaced) made them one unknown person
    assert mean_distance(t1, t2) < POINTS.cluster_l2
    assert group_unknown([t1, t2, t3], POINTS) == {0: 1, 1: 2, 2: 1}
    assert group_unknown([t1, t2, t3], POINTS, strangers=STRANGERS) == {0: 1, 1: 2, 2: 1}


def test_an_unknown_track_with_a_stretch_of_far_off_faces_still_joins_its_person():
    a = centre(1)
    turned = nrm(np.random.default_rng(9).normal(size=DIM))  # turned or blurred: placed far from anyone
    t1 = track(0, 0.0, faces(a, 3, 6, 0.1))
    t2 = track(1, 5.0, faces(a, 4, 6, 0.1) + faces(turned, 5, 4, 0.1))
    assert mean_distance(t1, t2) > POINTS.cluster_l2  # the mean is pulled away by 4 faces of 10
    assert group_unknown([t1, t2], POINTS) == {0: 1, 1: 1}


def test_many_independent_faces_relax_the_bound_once_strangers_calibrate_it():
    a = centre(1)
    b = near(a, 2, 0.30)
    t1, t2, t3 = (track(0, 0.0, faces(a, 3, 12, 0.3)), track(1, 8.0, faces(b, 4, 12, 0.3)),
                  track(2, 20.0, faces(a, 5, 12, 0.3)))
    e1, e3 = t1.embeddings, t3.embeddings
    nearest = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * e3 @ e1.T)).min(axis=1)
    assert np.median(nearest) > POINTS.cluster_l2  # each face alone is too far to link
    assert group_unknown([t1, t2, t3], POINTS) == {0: 1, 1: 2, 2: 3}  # no strangers: single-face bound
    # 12 independent faces, and strangers telling how far other people's faces are: one person,
    # while the look-alike stays apart
    assert group_unknown([t1, t2, t3], POINTS, strangers=STRANGERS) == {0: 1, 1: 2, 2: 1}


def test_an_unknown_person_on_screen_at_the_same_time_is_barred_however_alike():
    a = centre(1)
    t1, t2 = track(0, 0.0, faces(a, 3, 5, 0.1)), track(1, 5.0, faces(a, 4, 5, 0.1))
    t3 = track(2, 6.0, faces(a, 5, 5, 0.1))  # on screen with t2: another person, not unknown #1
    t4 = track(3, 10.0, faces(a, 6, 5, 0.1))  # after both: the nearest person it may be
    groups = group_unknown([t1, t2, t3, t4], POINTS)
    assert groups[0] == groups[1] == 1 and groups[2] == 2 and groups[3] in (1, 2)


def test_named_and_too_short_tracks_are_left_out():
    a = centre(1)
    named = track(0, 0.0, faces(a, 3, 5, 0.1))
    named = Track(**{**named.__dict__, "match": Match("anna", 0.2, 0.9, candidate="anna")})
    short = track(1, 4.0, faces(a, 4, 1, 0.1))
    assert group_unknown([named, short], POINTS) == {}
