"""Stored photos behave the same on a SQLite and a PostgreSQL gallery: the server's face thumbnail
of a person's photo is the face crop (not the whole photo), and `people remove`, run from any
folder, deletes the person's uploads from the folder the server keeps them in."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from facebank.cli import app
from facebank.gallery import open_gallery
from facebank.gallery.base import FaceRecord, PhotoRecord
from facebank.gallery.uploads import default_uploads_dir, postgres_folder_name
from facebank.server import ServerConfig
from facebank.server.auth import ApiKeyStore
from facebank.server.testing import LiveServer
from facebank.settings import Settings
from tests.pg_fixtures import new_database_url

BOX = (600.0, 100.0, 700.0, 200.0)  # a face in the right third of a 900 x 300 photo


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def gallery_at(request, tmp_path, monkeypatch) -> str:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))  # the user's data folder
    if request.param == "sqlite":
        return str(tmp_path / "gallery.db")
    return new_database_url()


def face(seed: int) -> FaceRecord:
    v = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return FaceRecord(BOX, v / np.linalg.norm(v), "test", 1.0)


def wide_photo(path: Path) -> str:
    rgb = np.random.default_rng(0).integers(0, 255, (300, 900, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, format="JPEG", quality=80)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def store(location: str, person: str, path: Path, sha256: str, seed: int = 0) -> None:
    g = open_gallery(location)
    try:
        g.add_photos([(PhotoRecord(person, str(path), sha256, path.stat().st_size, 900, 300, "ok"),
                       [face(seed)])], "m1")
    finally:
        g.close()


@pytest.mark.slow
def test_the_face_thumbnail_of_a_stored_photo_is_the_face_crop(gallery_at, tmp_path):
    photo = tmp_path / "photos" / "ann.jpg"
    sha = wide_photo(photo)
    store(gallery_at, "Ann", photo, sha)
    keys_db = tmp_path / "keys.db"
    with ApiKeyStore(keys_db) as keys:
        _, key = keys.create("reader", "read")
    config = ServerConfig(settings=Settings(gallery=gallery_at), keys_db=keys_db)
    with LiveServer(config) as live:
        r = httpx.get(f"{live.url}/v1/people/Ann/photos/{sha}/face", params={"size": 160},
                      headers={"X-API-Key": key}, timeout=60)
        assert r.status_code == 200, r.text
        whole = httpx.get(f"{live.url}/v1/people/Ann/photos/{sha}/image", headers={"X-API-Key": key},
                          timeout=60)
        assert whole.status_code == 200
    with Image.open(io.BytesIO(r.content)) as im:
        w, h = im.size
    assert r.headers["content-type"] == "image/jpeg"
    assert max(w, h) <= 160 and 0.8 <= w / h <= 1.25, (w, h)  # the square around the face, not 160 x 53


def test_people_remove_finds_the_uploads_where_the_server_keeps_them(gallery_at, tmp_path, monkeypatch):
    server_cwd, cli_cwd = tmp_path / "server-ran-here", tmp_path / "cli-runs-here"
    server_cwd.mkdir()
    cli_cwd.mkdir()
    monkeypatch.chdir(server_cwd)
    uploads = ServerConfig(settings=Settings(gallery=gallery_at)).resolved_photos_dir().resolve()
    upload = uploads / "ann-upload.jpg"
    sha = wide_photo(upload)
    upload = upload.rename(uploads / f"{sha}.jpg")  # uploads are named by their sha256
    own = tmp_path / "my_photos" / "ann.jpg"  # enrolled from a folder: the user's own file
    own_sha = wide_photo(own)
    store(gallery_at, "Ann", upload, sha, seed=1)
    store(gallery_at, "Ann", own, own_sha, seed=2)
    monkeypatch.chdir(cli_cwd)
    res = CliRunner().invoke(app, ["people", "remove", "Ann", "-g", gallery_at])
    assert res.exit_code == 0, res.output
    assert not upload.exists(), f"people remove left the upload in {uploads}"
    assert own.exists()
    assert not (cli_cwd / "facebank-photos").exists()


def test_each_postgres_database_has_its_own_uploads_folder_and_no_password_in_its_name():
    a = postgres_folder_name("postgresql://fb:secret@db-host:5432/faces")
    assert a.startswith("faces-") and "secret" not in a
    assert a == postgres_folder_name("postgresql://fb:other-password@db-host:5432/faces")
    assert a != postgres_folder_name("postgresql://fb:secret@db-host:5432/faces2")
    assert a != postgres_folder_name("postgresql://fb:secret@other-host:5432/faces")
    sock = postgres_folder_name("postgresql://postgres:@/fb_1?host=/tmp/x")
    assert sock.startswith("fb_1-") and "/" not in sock
    assert default_uploads_dir("postgresql://fb@h/faces").is_absolute()
    assert default_uploads_dir("/data/g.db") == Path("/data/g.db.photos")
