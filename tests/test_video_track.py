"""Linking faces into tracks and naming tracks (unit tests on made-up embeddings and boxes; the
end-to-end run on generated videos of real photos is tests/test_video_e2e.py)."""

from __future__ import annotations

import numpy as np

from facebank.embed.points import DLIB_POINTS as POINTS
from facebank.types import Box, Face
from facebank.video.track import MAX_EMBEDDINGS, Tracker

RGB = np.zeros((200, 400, 3), np.uint8)


def unit(seed: int, noise: float = 0.0, base: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = np.random.default_rng(base if base is not None else seed).normal(size=128)
    v = v / np.linalg.norm(v) + noise * rng.normal(size=128) / np.sqrt(128)
    return (v / np.linalg.norm(v)).astype(np.float32)


def face(x: float, emb: np.ndarray, y: float = 50, side: float = 60) -> Face:
    return Face(box=Box(x, y, x + side, y + side), landmarks=None, detector_score=0.99, embedding=emb)


def test_two_people_side_by_side_keep_their_own_tracks():
    tr = Tracker(0.5, points=POINTS)
    ended = []
    for k in range(6):
        a, b = unit(100 + k, 0.2, base=1), unit(200 + k, 0.2, base=2)
        faces = [face(40 + 5 * k, a), face(250 - 5 * k, b)]
        if k % 2:
            faces.reverse()  # the detector's order must not matter
        ended += tr.update(0.5 * k, faces, RGB).ended
    ended += tr.finish()
    assert len(ended) == 2
    left = min(ended, key=lambda t: t.boxes[0, 0])
    assert left.frames == 6 and np.all(np.diff(left.boxes[:, 0]) > 0)  # always the left face


def test_a_cut_ends_every_track_even_for_the_same_face_in_place():
    tr = Tracker(0.5, points=POINTS)
    e = unit(1)
    assert len(tr.update(0.0, [face(10, e)], RGB).started) == 1
    assert tr.update(0.5, [face(10, e)], RGB).started == ()
    upd = tr.update(1.0, [face(10, e)], RGB, cut=True)
    assert [t.frames for t in upd.ended] == [2] and len(upd.started) == 1


def test_a_track_unseen_too_long_ends_and_a_short_gap_does_not():
    tr = Tracker(0.5, points=POINTS)  # max gap: 1.25 s at 2 samples per second, return within 3 s
    e = unit(1)
    tr.update(0.0, [face(10, e)], RGB)
    tr.update(0.5, [], RGB)
    assert tr.update(1.0, [face(12, e)], RGB).started == ()  # gap of 1 s: same track
    assert tr.update(2.5, [], RGB).ended == ()  # unseen 1.5 s: may still come back
    assert tr.update(4.5, [], RGB).ended[0].frames == 2  # unseen 3.5 s: ended


def test_a_person_who_leaves_and_comes_back_elsewhere_within_3_s_keeps_the_track():
    tr = Tracker(0.5, points=POINTS)
    tr.update(0.0, [face(10, unit(1, 0.1, base=1))], RGB)
    tr.update(0.5, [face(12, unit(2, 0.1, base=1))], RGB)
    for t in (1.0, 1.5, 2.0):
        tr.update(t, [], RGB)
    upd = tr.update(2.5, [face(300, unit(3, 0.1, base=1))], RGB)  # 2 s later, across the frame
    assert upd.started == () and upd.ended == ()
    (track,) = tr.finish()
    assert track.frames == 3


def test_someone_else_in_the_place_of_a_person_who_left_starts_a_new_track():
    tr = Tracker(0.5, points=POINTS)
    tr.update(0.0, [face(10, unit(1))], RGB)
    tr.update(2.0, [], RGB)
    assert len(tr.update(2.5, [face(10, unit(2))], RGB).started) == 1


def test_a_slow_drift_from_one_person_to_another_is_stopped_by_the_anchor():
    """Each step moves the face a little (every step within the gate of the recent faces), but the
    last faces are another person: far from the track's first faces."""
    a, b = unit(1), unit(2)
    tr = Tracker(0.5, points=POINTS)
    starts = 0
    for k in range(12):
        w = k / 11
        e = (1 - w) * a + w * b
        e = (e / np.linalg.norm(e)).astype(np.float32)
        starts += len(tr.update(0.5 * k, [face(10, e)], RGB).started)
    tracks = tr.finish()
    assert starts >= 2 and len(tracks) >= 2
    assert float(np.linalg.norm(a - b)) > 1.2
    for t in tracks:  # every face of a track is within the gate of the median of its first faces
        m = np.median(t.embeddings[:5], axis=0)
        m /= np.linalg.norm(m)
        assert np.linalg.norm(t.embeddings - m, axis=1).max() <= POINTS.link_l2 + 1e-5
        assert not (np.linalg.norm(t.embeddings - a, axis=1).min() < 0.3
                    and np.linalg.norm(t.embeddings - b, axis=1).min() < 0.3)


def test_the_gate_is_the_model_s_own():
    from dataclasses import replace

    strict = replace(POINTS, link_l2=0.1, verify_l2=0.1)
    e1, e2 = unit(1), unit(5, 0.5, base=1)  # the same person, a little apart
    d = float(np.linalg.norm(e1 - e2))
    assert 0.1 < d < POINTS.link_l2
    for points, tracks in ((POINTS, 1), (strict, 2)):
        tr = Tracker(0.5, points=points)
        tr.update(0.0, [face(10, e1)], RGB)
        tr.update(0.5, [face(10, e2)], RGB)
        assert len(tr.finish()) == tracks


def test_a_different_person_in_the_same_place_starts_a_new_track():
    tr = Tracker(0.5, points=POINTS)
    tr.update(0.0, [face(10, unit(1))], RGB)
    upd = tr.update(0.5, [face(10, unit(2))], RGB)
    assert len(upd.started) == 1
    assert len(tr.finish()) == 2


def test_a_face_that_jumps_across_the_frame_is_not_linked():
    tr = Tracker(0.5, points=POINTS)
    e = unit(1)
    tr.update(0.0, [face(0, e, side=30)], RGB)
    assert len(tr.update(0.5, [face(350, e, side=30)], RGB).started) == 1


def test_embeddings_kept_per_track_are_bounded_and_spread_over_its_life():
    tr = Tracker(0.04, points=POINTS)
    e = unit(1)
    for k in range(1000):
        tr.update(0.04 * k, [face(10, e)], RGB)
    (track,) = tr.finish()
    assert track.frames == 1000 and len(track.times_s) == 1000
    assert 0 < len(track.embeddings) <= MAX_EMBEDDINGS
    assert track.thumbnail is not None and track.thumbnail.ndim == 3


def test_json_has_exactly_the_documented_keys():
    tr = Tracker(0.5, points=POINTS)
    tr.update(1.0, [face(10, unit(1))], RGB)
    (t,) = tr.finish()
    d = t.to_json()
    assert list(d) == ["track", "name", "distance", "start", "end", "frames", "box", "score", "faces_used"]
    assert d["name"] is None and d["distance"] is None and d["start"] == 1.0 and d["box"] == [10, 50, 70, 110]


def test_overlapping_tracks_never_share_a_name(tmp_path):
    from facebank import FaceBank
    from facebank.gallery.base import FaceRecord, PhotoRecord
    from facebank.gallery.sqlite import SqliteGallery
    from facebank.video.name import name_tracks

    g = SqliteGallery(tmp_path / "g.db")
    anna = unit(1)
    g.add_photos([(PhotoRecord("anna", "a.jpg", "a" * 64, 1, 10, 10, "ok", None),
                   [FaceRecord(box=(0, 0, 1, 1), embedding=anna, detector="x", detector_score=1.0,
                               fallback=False, landmarks=None)])], "test-model", None)
    fb = FaceBank(g)
    tr = Tracker(0.5, points=POINTS)
    tr.update(0.0, [face(10, unit(11, 0.15, base=1)), face(250, unit(12, 0.25, base=1))], RGB)
    tr.update(0.5, [face(10, unit(13, 0.15, base=1)), face(250, unit(14, 0.25, base=1))], RGB)
    tracks = tr.finish()
    tr.update(5.0, [face(10, unit(15, 0.25, base=1))], RGB)
    later = tr.finish()
    named = name_tracks(fb, tracks + later, threshold=0.6)
    assert [t.name for t in named] == ["anna", None, "anna"]
    assert named[1].match.candidate == "anna"
    assert named[0].match.distance < named[1].match.distance


def test_a_face_of_half_the_size_in_the_same_place_is_someone_else():
    """Street footage: a woman walking past in front of a man farther away; the detector's next box
    in that place was his, half her size, and dlib put the two faces 0.46 apart (within its gate)."""
    tr = Tracker(0.2, points=POINTS)
    e = unit(1)
    tr.update(0.0, [face(100, e, side=130)], RGB)
    tr.update(0.2, [face(102, e, side=128)], RGB)
    other = unit(2, 0.55, base=1)
    assert 0.4 < float(np.linalg.norm(other - e)) < POINTS.link_l2
    assert len(tr.update(0.4, [face(130, other, side=64)], RGB).started) == 1
