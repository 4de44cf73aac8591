"""Mislabeled photos and outliers on made embeddings: found leave-one-out, the likely person named,
and not fooled by the wrong photos in a folder or by copies vouching for each other."""

from __future__ import annotations

import numpy as np

from facebank.audit.base import AuditConfig, FaceFacts, PhotoFacts
from facebank.audit.identity import IdentityCheck
from facebank.audit.run import prepare
from facebank.types import Box


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _people(n_people=4, per_person=30, seed=0):
    """Faces of made people: unit centres far apart, each face ~0.35 from its centre (like real
    photos of one person with a face embedder)."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.normal(size=(n_people, 128)))
    out = []
    for p in range(n_people):
        for _ in range(per_person):
            out.append((f"p{p}", _unit(centres[p] + 0.035 * rng.normal(size=128))))
    return out


def _photo(i: int, person: str, emb: np.ndarray, ph: int | None = None) -> PhotoFacts:
    """A photo with its own hash and thumbnail, or (``ph`` given) a copy of the picture with that hash."""
    face = FaceFacts(Box(0, 0, 100, 100), None, 0.99, emb.astype(np.float32))
    rng = np.random.default_rng(i if ph is None else ph)
    thumb = rng.integers(0, 256, 32 * 32, dtype=np.uint8).tobytes()
    ph = int(rng.integers(0, 2**63)) if ph is None else ph
    return PhotoFacts(f"{person}/{i}.jpg", person, f"sha{i}", 200, 200, ph, (face,), thumb=thumb)


def test_moved_photos_are_mislabeled_with_the_right_person_and_nothing_else_is():
    faces = _people()
    rng = np.random.default_rng(1)
    moved = set(rng.choice(len(faces), size=12, replace=False).tolist())  # 10 % of the photos
    photos, truth = [], {}
    for i, (person, e) in enumerate(faces):
        label = person
        if i in moved:
            label = f"p{(int(person[1]) + 1) % 4}"
            truth[f"{label}/{i}.jpg"] = person
        photos.append(_photo(i, label, e))
    found = list(IdentityCheck().run(prepare("/", photos, AuditConfig())))
    mislabeled = {f.path: f.suggestion for f in found if f.kind == "mislabeled"}
    assert mislabeled == truth
    assert not [f for f in found if f.kind == "outlier"]


def test_a_stranger_is_an_outlier_not_mislabeled():
    faces = _people()
    stranger = _unit(np.random.default_rng(9).normal(size=128))
    photos = [_photo(i, p, e) for i, (p, e) in enumerate(faces)] + [_photo(999, "p0", stranger)]
    found = [(f.path, f.kind) for f in IdentityCheck().run(prepare("/", photos, AuditConfig()))]
    assert found == [("p0/999.jpg", "outlier")]


def test_copies_of_a_wrong_photo_do_not_vouch_for_each_other():
    faces = _people(per_person=20)
    wrong = faces[0][1]  # a p0 face, filed five times (as copies) under p1: 4 of 7 neighbours if
    # copies could vote
    photos = [_photo(i, p, e) for i, (p, e) in enumerate(faces[1:], 1)]
    photos += [_photo(100 + k, "p1", wrong, ph=12345) for k in range(5)]
    folder = prepare("/", photos, AuditConfig())
    assert len(folder.copies[len(photos) - 1]) == 4
    found = {f.path for f in IdentityCheck().run(folder) if f.kind == "mislabeled"}
    assert found == {f"p1/{100 + k}.jpg" for k in range(5)}


def test_small_and_odd_folders_do_not_break_the_checks():
    faces = _people(n_people=2, per_person=6)
    lonely = _photo(500, "solo", faces[0][1] * -1)  # a person with one photo, like nobody else
    one_person = [_photo(i, "p0", e) for i, (_, e) in enumerate(faces[:6])]
    everyone = [_photo(i, p, e) for i, (p, e) in enumerate(faces)] + [lonely]
    for photos in ([], [_photo(0, "p0", faces[0][1])], one_person, everyone):
        found = list(IdentityCheck().run(prepare("/", photos, AuditConfig())))
        assert found == []  # one photo of a person is nobody's outlier; no one else is wrong


def test_block_by_block_comparisons_give_the_same_answers_as_one_block():
    from facebank.audit.run import _copies
    from facebank.audit.vectors import neighbours

    faces = _people(n_people=3, per_person=10)
    photos = [_photo(i, p, e) for i, (p, e) in enumerate(faces)]
    rng = np.random.default_rng(5)  # three copies, each a little off (no exact ties to order)
    photos += [_photo(100 + k, "p1", _unit(faces[0][1] + 0.01 * rng.normal(size=128)), ph=777)
               for k in range(3)]
    folder = prepare("/", photos, AuditConfig())
    assert _copies(folder, block=5) == _copies(folder, block=1000) == folder.copies and folder.copies
    (idx_a, dist_a), (idx_b, dist_b) = neighbours(folder, 7, block=4), neighbours(folder, 7, block=1000)
    np.testing.assert_array_equal(idx_a, idx_b)
    np.testing.assert_allclose(dist_a, dist_b, atol=1e-5)  # float32 sums in another order
