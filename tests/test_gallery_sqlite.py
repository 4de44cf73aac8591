"""The SQLite gallery: migrations, one model per gallery, all-or-nothing writes, persistence."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from facebank.gallery.base import FaceRecord, GalleryError, ModelMismatch, PersonNotFound, PhotoRecord
from facebank.gallery.sqlite import SCHEMA_VERSION, SqliteGallery


def unit(seed: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def item(person: str, sha: str, seed: int, status: str = "ok"):
    photo = PhotoRecord(person, f"/photos/{sha}.jpg", sha, 100, 10, 10, status)
    faces = [FaceRecord((1, 2, 3, 4), unit(seed), "hog", 1.0)] if status == "ok" else []
    return photo, faces


def test_new_gallery_is_at_the_latest_schema_version(tmp_path):
    g = SqliteGallery(tmp_path / "g.db")
    assert g._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert g._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_gallery_newer_than_the_code_is_refused(tmp_path):
    path = tmp_path / "g.db"
    SqliteGallery(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(GalleryError, match="newer"):
        SqliteGallery(path)


def test_photos_and_faces_persist_across_reopen(tmp_path):
    path = tmp_path / "g.db"
    with SqliteGallery(path) as g:
        added = g.add_photos([item("Ann", "a1", 1), item("Ann", "a2", 2), item("Bob", "b1", 3)], "m1")
    assert added == 3
    with SqliteGallery(path) as g:
        assert [(p.name, p.photos, p.faces) for p in g.people()] == [("Ann", 2, 2), ("Bob", 1, 1)]
        emb = g.embeddings()
        assert emb.vectors.shape == (3, 8)
        np.testing.assert_array_equal(emb.vectors[0], unit(1))
        assert g.model_id == "m1" and g.integrity() == []


def test_a_photo_already_stored_is_not_stored_twice(tmp_path):
    g = SqliteGallery(tmp_path / "g.db")
    assert g.add_photos([item("Ann", "a1", 1)], "m1") == 1
    assert g.add_photos([item("Ann", "a1", 1)], "m1") == 0
    assert g.has_photo("a1", "m1") and not g.has_photo("a1", "m2")
    assert g.people()[0].faces == 1


def test_embeddings_of_another_model_are_refused(tmp_path):
    g = SqliteGallery(tmp_path / "g.db")
    g.add_photos([item("Ann", "a1", 1)], "dlib-resnet-v1")
    with pytest.raises(ModelMismatch, match="refusing to mix"):
        g.add_photos([item("Bob", "b1", 2)], "onnx:other")
    assert [p.name for p in g.people()] == ["Ann"]


def test_a_failing_batch_leaves_the_gallery_untouched(tmp_path):
    g = SqliteGallery(tmp_path / "g.db")
    g.add_photos([item("Ann", "a1", 1)], "m1")
    bad = (PhotoRecord("../etc", "/x", "x1", 1, 1, 1, "ok"), [])  # invalid name fails mid-batch
    with pytest.raises(GalleryError):
        g.add_photos([item("Bob", "b1", 2), bad], "m1")
    assert [p.name for p in g.people()] == ["Ann"]
    assert not g.has_photo("b1", "m1")
    assert g.integrity() == []


def test_problem_photos_are_recorded_with_their_reason(tmp_path):
    g = SqliteGallery(tmp_path / "g.db")
    photo = PhotoRecord("Ann", "/p/cat.jpg", "c1", 10, 5, 5, "no_face", "no face found")
    g.add_photos([(photo, [])], "m1")
    assert g.problems() == [{"person": "Ann", "path": "/p/cat.jpg", "status": "no_face",
                             "reason": "no face found"}]
    assert g.has_photo("c1", "m1")  # a rerun does not try it again


def test_people_can_be_renamed_and_removed_with_their_faces(tmp_path):
    g = SqliteGallery(tmp_path / "g.db")
    g.add_photos([item("Ann", "a1", 1), item("Bob", "b1", 2)], "m1")
    g.rename_person("Ann", "지수")
    assert [p.name for p in g.people()] == ["Bob", "지수"]
    assert g.remove_person("Bob") == 1
    assert [p.name for p in g.people()] == ["지수"]
    assert len(g.embeddings().names) == 1 and g.integrity() == []
    with pytest.raises(PersonNotFound):
        g.remove_person("Bob")


@pytest.mark.parametrize("name", ["", "  ", "a/b", "..", "x\\y", "tab\there"])
def test_names_with_path_tricks_are_refused(tmp_path, name):
    g = SqliteGallery(tmp_path / "g.db")
    with pytest.raises(GalleryError):
        g.add_person(name)


def test_version_changes_on_every_write(tmp_path):
    g = SqliteGallery(tmp_path / "g.db")
    v0 = g.version()
    g.add_photos([item("Ann", "a1", 1)], "m1")
    v1 = g.version()
    g.rename_person("Ann", "Anna")
    v2 = g.version()
    assert len({v0, v1, v2}) == 3


def test_interrupted_runs_are_marked_when_a_new_run_starts(tmp_path):
    g = SqliteGallery(tmp_path / "g.db")
    r1 = g.start_run("/photos", "m1", "")
    r2 = g.start_run("/photos", "m1", "")
    runs = {r["id"]: r["status"] for r in g.runs()}
    assert runs[r1] == "interrupted" and runs[r2] == "running"


def test_a_version_2_gallery_keeps_its_people_photos_and_faces_when_migrated(tmp_path):
    """Schema 3 rebuilds photos and faces (nullable person): nothing may be lost or cascaded away."""
    from facebank.gallery.sqlite import _statements, migrations

    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA foreign_keys=ON")
    for number, sql in migrations()[:2]:
        for statement in _statements(sql):
            db.execute(statement)
        db.execute(f"PRAGMA user_version={number}")
    db.execute("INSERT INTO meta(key, value) VALUES ('model_id', 'm1')")
    db.execute("INSERT INTO people(id, name) VALUES (1, 'Ann'), (2, 'Bob')")
    db.execute("INSERT INTO runs(id, source, model_id) VALUES (1, 'folder', 'm1')")
    for i, (pid, status) in enumerate([(1, "ok"), (1, "ok"), (2, "ok"), (2, "no_face")], start=1):
        db.execute("INSERT INTO photos(id, person_id, path, sha256, size_bytes, model_id, status, run_id)"
                   " VALUES (?,?,?,?,?,?,?,1)", (i, pid, f"/p/{i}.jpg", f"sha{i}", 10, "m1", status))
        if status == "ok":
            db.execute("INSERT INTO faces(photo_id, person_id, x1, y1, x2, y2, detector, detector_score,"
                       " model_id, dim, embedding) VALUES (?,?,1,2,3,4,'hog',1.0,'m1',8,?)",
                       (i, pid, unit(i).astype("<f4").tobytes()))
    db.close()
    with SqliteGallery(path) as g:
        assert g._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert g._db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert [(p.name, p.photos, p.faces) for p in g.people()] == [("Ann", 2, 2), ("Bob", 1, 1)]
        np.testing.assert_array_equal(g.embeddings().vectors[2], unit(3))
        assert g.problems() == [{"person": "Bob", "path": "/p/4.jpg", "status": "no_face", "reason": None}]
        assert g.integrity() == []
        assert g.remove_person("Ann") == 2  # the rebuilt tables still cascade
        assert [p.name for p in g.people()] == ["Bob"] and len(g.embeddings().names) == 1
