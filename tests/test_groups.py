"""A group of faces (a track, a cluster, a loose face) is named from all its evidence (issue 19).

The geometry: unit embeddings of the dlib model's id (so its operating points apply) where two faces
of one person are ~0.3 apart and two people ~0.6-0.8 (as dlib's are), stored in a real SQLite
gallery and decided by the gallery's real decision rule.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from facebank import FaceBank
from facebank.embed.points import DLIB_POINTS
from facebank.gallery.base import FaceRecord, PhotoRecord
from facebank.gallery.sqlite import SqliteGallery
from facebank.groups import GroupCalibration, GroupContext, distinct_l2, thin
from facebank.video.name import name_embeddings

DIM = 128
MODEL = DLIB_POINTS.model_id


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


class World:
    """People as directions around a common mean; faces of a person scattered around it."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.mean = unit(self.rng.normal(size=DIM))

    def person(self) -> np.ndarray:
        return unit(self.mean + 0.55 * unit(self.rng.normal(size=DIM)))

    def faces(self, centre: np.ndarray, n: int, spread: float = 0.22) -> np.ndarray:
        return unit(centre + spread * self.rng.normal(size=(n, DIM)) / np.sqrt(DIM)).astype(np.float32)


def photo(i: int, person: str | None, vectors: np.ndarray) -> tuple[PhotoRecord, list[FaceRecord]]:
    return (PhotoRecord(person, f"p{i}.jpg", f"{i:064x}", 1, 100, 100, "ok", None),
            [FaceRecord(box=(0, 0, 10, 10), embedding=v, detector="test", detector_score=1.0)
             for v in vectors])


@pytest.fixture
def world() -> World:
    return World(0)


@pytest.fixture
def bank(tmp_path, world):
    """40 enrolled people with 4 photos each; ``bank.centres`` their directions."""
    g = SqliteGallery(tmp_path / "g.db")
    centres = [world.person() for _ in range(40)]
    items, k = [], 0
    for j, c in enumerate(centres):
        for v in world.faces(c, 4):
            items.append(photo(k, f"person{j:02d}", v[None]))
            k += 1
    g.add_photos(items, MODEL)
    fb = FaceBank(g)
    fb.centres = centres  # type: ignore[attr-defined]
    yield fb
    fb.close()


def single_names(fb: FaceBank, vectors: np.ndarray) -> list[str | None]:
    return [name_embeddings(fb, v[None]).name for v in vectors]


# ---- thinning and the threshold's shape -------------------------------------------------------------
def test_frames_of_one_still_count_once_and_time_spacing_is_kept(world):
    c = world.person()
    still = world.faces(c, 60, spread=0.01)  # a still panned: embeddings ~0.01 apart
    times = np.arange(60) * 0.1
    assert len(thin(still, times, distinct_l2(DLIB_POINTS))) == 1
    varied = world.faces(c, 60, spread=0.3)
    kept = thin(varied, times, distinct_l2(DLIB_POINTS))
    assert 1 < len(kept) <= 12  # 6 s of video at least 0.5 s apart
    assert np.all(np.diff(times[kept]) >= 0.5 - 1e-9)
    assert len(thin(world.faces(c, 200, spread=0.4), None, 0.0)) == 64


def test_the_bound_relaxes_with_evidence_and_never_below_the_single_photo_threshold():
    cal = GroupCalibration("distance:nearest", "L2", 0.33, 0.6, 0.4, 500, 50, "test")
    thr = [cal.threshold(n) for n in (1, 2, 3, 8, 64)]
    assert thr[0] == pytest.approx(0.33)
    assert all(b >= a for a, b in zip(thr, thr[1:], strict=False))
    assert thr[-1] < 0.6  # never reaches the strangers' typical score
    none = GroupCalibration("distance:nearest", "L2", 0.33, math.nan, 1.0, 0, 0, "none")
    assert none.threshold(64) == pytest.approx(0.33)


def test_bad_embeddings_are_refused_clearly(bank):
    with pytest.raises(ValueError, match="NaN"):
        GroupContext.of(bank).decide(np.full((3, DIM), np.nan, np.float32))
    with pytest.raises(ValueError, match="zeros"):
        GroupContext.of(bank).decide(np.zeros((2, DIM), np.float32))
    with pytest.raises(ValueError, match="one finite time"):
        thin(np.eye(3, DIM, dtype=np.float32), [0.0, 1.0])


# ---- Done means (1): a long track of a known person is named, a stranger's still is not -------------
def test_long_track_at_moderate_distances_is_named_and_a_strangers_panned_still_is_not(bank, world):
    ctx = GroupContext.of(bank)
    cal = ctx.calibration()
    t1, t64 = cal.threshold_1, cal.threshold(64)
    assert t64 > t1, cal.summary()  # the gallery's own people calibrate a relaxed bound
    # a known person's track: 80 frames over 40 s, each farther than the single-photo rule accepts
    known = world.faces(bank.centres[3], 80, spread=0.65)
    frames = single_names(bank, known)
    assert frames.count("person03") < len(known) / 2, "the frames must be moderate, not easy"
    assert not {f for f in frames} - {"person03", None}
    times = np.arange(80) * 0.5
    m = name_embeddings(bank, known, times_s=times)
    assert m.name == "person03"
    assert t1 < m.decision_score <= t64 and m.faces_used > 10
    # a stranger's track, equally long, maximally correlated: one still panned and zoomed, as near
    # to person03 as the known track's most typical frame
    typical = known[int(np.argsort([name_embeddings(bank, v[None]).decision_score for v in known])[40])]
    still = unit(typical + 0.01 * world.rng.normal(size=(80, DIM)) / np.sqrt(DIM)).astype(np.float32)
    assert name_embeddings(bank, typical[None]).name is None
    s = name_embeddings(bank, still, times_s=times)
    assert s.name is None and s.faces_used == 1
    assert s.decision_score > t1


def test_a_group_is_never_less_certain_than_most_of_its_faces(bank, world):
    easy = world.faces(bank.centres[5], 9, spread=0.15)
    assert single_names(bank, easy).count("person05") >= 5
    bad = unit(world.rng.normal(size=(8, DIM))).astype(np.float32)  # eight junk frames
    group = np.concatenate([easy, bad])
    assert name_embeddings(bank, group).name == "person05"


def test_strangers_groups_are_named_no_more_often_than_strangers_photos(bank):
    world = World(7)
    fa_groups = fa_photos = photos = 0
    for _ in range(60):
        faces = world.faces(world.person(), 12, spread=0.3)
        fa_groups += name_embeddings(bank, faces, times_s=np.arange(12) * 1.0).name is not None
        names = single_names(bank, faces)
        fa_photos += sum(n is not None for n in names)
        photos += len(names)
    assert fa_groups / 60 <= max(fa_photos / photos, 1 / 60)


# ---- the same on real photos: a stranger's still panned and zoomed is one face ---------------------------
def panned(rgb: np.ndarray, n: int) -> list[np.ndarray]:
    """``n`` frames of a still slowly panned and zoomed (640x360, the still shrunk into the middle)."""
    import cv2

    h, w = rgb.shape[:2]
    out = []
    for i in range(n):
        u = i / max(n - 1, 1)
        scale = min(560 / w, 320 / h) * (0.85 + 0.15 * u)
        m = np.array([[scale, 0, 320 - scale * w / 2 + 60 * (u - 0.5)], [0, scale, 180 - scale * h / 2]])
        out.append(cv2.warpAffine(rgb, m, (640, 360), borderValue=(90, 90, 90)))
    return out


@pytest.mark.shared
def test_real_strangers_panned_still_is_one_face_and_not_named(celeb_gallery, faces_dir):
    from facebank.images import load_image

    stranger = sorted((faces_dir / "lfw" / "images" / "Aaron_Eckhart").glob("*.jpg"))[0]
    with FaceBank(celeb_gallery) as fb:
        embs, times = [], []
        for i, frame in enumerate(panned(load_image(stranger).rgb, 16)):
            found = fb.pipeline.faces(frame)
            if found:
                embs.append(max(found, key=lambda f: f.box.area).embedding)
                times.append(i * 0.5)
        assert len(embs) >= 12
        m = name_embeddings(fb, np.stack(embs), times_s=np.asarray(times))
        assert m.name is None and m.faces_used is not None and m.faces_used <= 3
        # a known person's photos from the held-out val set, each panned: named from all of them
        person = faces_dir / "5celeb" / "val" / "madonna"
        embs, times = [], []
        for k, photo in enumerate(sorted(person.iterdir())[:3]):
            for i, frame in enumerate(panned(load_image(photo).rgb, 4)):
                found = fb.pipeline.faces(frame)
                if found:
                    embs.append(max(found, key=lambda f: f.box.area).embedding)
                    times.append(k * 2.0 + i * 0.5)
        m = name_embeddings(fb, np.stack(embs), times_s=np.asarray(times))
        assert m.name == "madonna" and m.faces_used >= 2
