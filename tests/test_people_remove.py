"""Removing a person removes their uploaded photo files, from the CLI as from the API."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from facebank.cli import app
from facebank.gallery.base import FaceRecord, PhotoRecord
from facebank.gallery.sqlite import SqliteGallery


def face(seed: int) -> FaceRecord:
    v = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return FaceRecord((0, 0, 10, 10), v / np.linalg.norm(v), "test", 1.0)


def test_people_remove_deletes_the_uploaded_photo_files_and_keeps_folder_photos(tmp_path):
    db = tmp_path / "g.db"
    uploads = tmp_path / "g.db.photos"  # where the server keeps uploads by default
    uploads.mkdir()
    mine = tmp_path / "my_photos" / "ann.jpg"  # enrolled from a folder: the user's own file
    mine.parent.mkdir()
    files = {"up1": uploads / ("a" * 64 + ".jpg"), "up2": uploads / ("b" * 64 + ".png"), "mine": mine,
             "ben": uploads / ("c" * 64 + ".jpg")}
    for f in files.values():
        f.write_bytes(b"photo")
    with SqliteGallery(db) as g:
        rows = [("Ann", files["up1"], "a"), ("Ann", files["up2"], "b"), ("Ann", mine, "d"),
                ("Ben", files["ben"], "c")]
        g.add_photos([(PhotoRecord(who, str(p), sha * 64, 5, 10, 10, "ok"), [face(i)])
                      for i, (who, p, sha) in enumerate(rows)], "m1")
    res = CliRunner().invoke(app, ["people", "remove", "Ann", "-g", str(db)])
    assert res.exit_code == 0, res.output
    assert not files["up1"].exists() and not files["up2"].exists()
    assert mine.exists() and files["ben"].exists()
    with SqliteGallery(db) as g:
        assert [p.name for p in g.people()] == ["Ben"]


def test_people_remove_with_another_photos_dir(tmp_path):
    db, uploads = tmp_path / "g.db", tmp_path / "elsewhere"
    uploads.mkdir()
    up = uploads / ("e" * 64 + ".jpg")
    up.write_bytes(b"photo")
    with SqliteGallery(db) as g:
        g.add_photos([(PhotoRecord("Ann", str(up), "e" * 64, 5, 10, 10, "ok"), [face(0)])], "m1")
    res = CliRunner().invoke(app, ["people", "remove", "Ann", "-g", str(db), "--photos-dir", str(uploads)])
    assert res.exit_code == 0, res.output
    assert not up.exists()
