"""Places a SQLite gallery cannot live (network file systems), a full disk, a read-only folder, and
backups: one clear error line, nothing half-written, the gallery as it was."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from facebank.cli import app
from facebank.gallery import sqlite as gallery_sqlite
from facebank.gallery.base import FaceRecord, GalleryError, GalleryStorageError, PhotoRecord
from facebank.gallery.sqlite import SqliteGallery, backup_gallery, check_local_filesystem, filesystem_type
from facebank.server.auth import ApiKeyStore

REPO_SRC = str(Path(__file__).resolve().parents[1] / "src")
EXT4 = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw"
NFS = "36 27 0:45 / /mnt/photos rw,relatime shared:30 - nfs4 nas:/export rw,vers=4.2"
CIFS = r"37 27 0:46 / /mnt/my\040share rw,relatime - cifs //nas/share rw,vers=3.0"


def run_cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": REPO_SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "facebank", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def snapshot(gallery: Path) -> tuple[str, list, list[str], int]:
    with closing(sqlite3.connect(f"file:{gallery}?mode=ro", uri=True)) as db:
        return (db.execute("PRAGMA integrity_check").fetchone()[0],
                db.execute("PRAGMA foreign_key_check").fetchall(),
                sorted(r[0] for r in db.execute("SELECT name FROM people")),
                db.execute("SELECT count(*) FROM api_keys").fetchone()[0])


# -- network file systems ------------------------------------------------------------------------
def test_a_gallery_folder_on_nfs_or_smb_is_refused_with_a_clear_message():
    mountinfo = "\n".join([EXT4, NFS, CIFS])
    assert filesystem_type("/mnt/photos/faces", mountinfo) == "nfs4"
    assert filesystem_type("/mnt/my share", mountinfo) == "cifs"  # an escaped space in the mount point
    for folder in ("/mnt/photos/faces", "/mnt/my share/galleries"):
        with pytest.raises(GalleryError, match="network file system .*local disk.*PostgreSQL"):
            check_local_filesystem(folder, mountinfo)
    check_local_filesystem("/srv/galleries", mountinfo)  # ext4: fine


def test_the_real_gallery_folder_on_the_local_disk_is_accepted(tmp_path):
    fstype = filesystem_type(tmp_path)
    assert fstype is not None and fstype not in gallery_sqlite.NETWORK_FS_TYPES
    with SqliteGallery(tmp_path / "g.db") as g:
        g.add_person("Ada")


def test_opening_a_gallery_on_a_network_file_system_fails_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(gallery_sqlite, "filesystem_type", lambda folder, mountinfo=None: "nfs4")
    with pytest.raises(GalleryError, match="network file system"):
        SqliteGallery(tmp_path / "g.db")
    assert not (tmp_path / "g.db").exists()
    result = CliRunner().invoke(app, ["keys", "create", "--gallery", str(tmp_path / "g.db")])
    assert result.exit_code == 2 and "network file system (nfs4)" in result.output, result.output
    assert not (tmp_path / "g.db").exists()


# -- a full disk ------------------------------------------------------------------------------------
def photos_with_faces(n: int, faces: int = 3, dim: int = 128):
    rng = np.random.default_rng(0)
    for i in range(n):
        vecs = rng.normal(size=(faces, dim)).astype(np.float32)
        recs = [FaceRecord((0.0, 0.0, 1.0, 1.0), v / np.linalg.norm(v), "test", 1.0) for v in vecs]
        sha = f"{i:064d}"
        yield PhotoRecord("Ada", f"p/{sha}.jpg", sha, 1, 1, 1, "ok"), recs


def test_a_full_database_rolls_back_the_whole_write_and_the_connection_goes_on(tmp_path):
    with SqliteGallery(tmp_path / "g.db") as g:
        g.add_person("Ada")
        with g.connection() as db:  # SQLITE_FULL without filling a disk: the file may not grow
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            db.execute(f"PRAGMA max_page_count={pages}")
        with pytest.raises(GalleryStorageError, match="is full: nothing was changed"):
            g.add_photos(list(photos_with_faces(300)), "m")
        assert g.photos("Ada") == [] and g.integrity() == []
        with g.connection() as db:
            db.execute("PRAGMA max_page_count=1073741823")
        g.rename_person("Ada", "Grace")  # not left inside a transaction
        assert [p.name for p in g.people()] == ["Grace"]


def mount_tmpfs(folder: Path, size: str = "1m") -> bool:
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


@pytest.fixture
def tiny_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if not mount_tmpfs(disk):
        pytest.skip("mounting a tmpfs needs root (the full-disk case is also tested with max_page_count)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:  # ENOSPC: the disk is full
        pass
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_is_one_error_line_from_the_cli_and_the_gallery_keeps_what_it_held(tiny_disk):
    gallery = tiny_disk / "g.db"
    with SqliteGallery(gallery) as g:
        g.add_person("Ada")
    with ApiKeyStore(gallery) as keys:
        keys.create("first")
    before = snapshot(gallery)
    filler = fill(tiny_disk)
    try:
        for args in (("keys", "create", "--name", "second"), ("people", "rename", "Ada", "Grace")):
            result = run_cli(*args, "--gallery", str(gallery))
            assert result.returncode == 1, (args, result.stdout, result.stderr)
            line = one_error_line(result)
            assert "full" in line or "disk" in line, line
    finally:
        filler.unlink()
    assert snapshot(gallery) == before == ("ok", [], ["Ada"], 1)


# -- a read-only folder ------------------------------------------------------------------------------
@pytest.fixture
def ro_folder(tmp_path):
    """A folder that can be made read-only: a tmpfs (as root), else a plain folder (chmod)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = mount_tmpfs(folder)
    if not mounted and os.geteuid() == 0:
        pytest.skip("as root a chmod does not stop writes, and a tmpfs could not be mounted")
    yield folder, mounted
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_read_only_gallery_folder_is_one_error_line_and_nothing_changes(ro_folder):
    folder, mounted = ro_folder
    gallery = folder / "g.db"
    with SqliteGallery(gallery) as g:
        g.add_person("Ada")
    before = snapshot(gallery)
    if mounted:
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    else:
        gallery.chmod(0o444)
        folder.chmod(0o555)
    try:
        for args in (("people", "rename", "Ada", "Grace"), ("keys", "create")):
            result = run_cli(*args, "--gallery", str(gallery))
            assert result.returncode == 1, (args, result.stdout, result.stderr)
            line = one_error_line(result)
            assert "read-only" in line or "cannot open" in line, line
            assert str(folder) not in line.replace(str(gallery), "")  # names the gallery, nothing else
    finally:
        if mounted:
            subprocess.run(["mount", "-o", "remount,rw", str(folder)], check=True)
        else:
            folder.chmod(0o755)
            gallery.chmod(0o644)
    assert snapshot(gallery) == before


# -- backups --------------------------------------------------------------------------------------------
def test_backup_while_another_process_writes_has_every_write_acknowledged_before_it(tmp_path):
    gallery, out = tmp_path / "g.db", tmp_path / "backup.db"
    SqliteGallery(gallery).close()
    acked = tmp_path / "acked.log"
    writer = subprocess.Popen([sys.executable, "-c", (
        "import os, sys\n"
        "from facebank.gallery.sqlite import SqliteGallery\n"
        "g = SqliteGallery(sys.argv[1])\n"
        "fd = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND | os.O_CREAT)\n"
        "for i in range(3000):\n"
        "    g.add_person(f'P{i}')\n"
        "    os.write(fd, f'P{i}\\n'.encode()); os.fsync(fd)\n"
    ), str(gallery), str(acked)], env={**os.environ, "PYTHONPATH": REPO_SRC})
    try:
        deadline = time.monotonic() + 60
        while (not acked.exists() or acked.stat().st_size < 500) and time.monotonic() < deadline:
            time.sleep(0.05)
        before = set(acked.read_text().split())
        result = run_cli("backup", str(gallery), str(out))
        assert result.returncode == 0, result.stderr
        assert "backed up" in result.stdout and " people" in result.stdout
    finally:
        writer.kill()
        writer.wait()
    assert not out.with_name("backup.db-wal").exists()  # one self-contained file
    with closing(sqlite3.connect(out)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        names = {r[0] for r in db.execute("SELECT name FROM people")}
    assert before and before <= names
    with SqliteGallery(out) as copy:  # a backup is a gallery
        assert copy.integrity() == []


def test_backup_refuses_the_gallery_itself_or_an_existing_file_without_force(tmp_path):
    gallery = tmp_path / "g.db"
    with SqliteGallery(gallery) as g:
        g.add_person("Ada")
    runner = CliRunner()
    for out in (gallery, tmp_path / "." / "g.db", tmp_path / "g.db-wal"):
        result = runner.invoke(app, ["backup", str(gallery), str(out)])
        assert result.exit_code == 2 and "is the gallery itself" in result.output, result.output
    link = tmp_path / "link.db"
    link.symlink_to(gallery)
    result = runner.invoke(app, ["backup", str(gallery), str(link), "--force"])
    assert "is the gallery itself" in result.output
    existing = tmp_path / "old.db"
    existing.write_bytes(b"keep me")
    result = runner.invoke(app, ["backup", str(gallery), str(existing)])
    assert result.exit_code == 2 and "exists" in result.output and "--force" in result.output
    assert existing.read_bytes() == b"keep me"
    result = runner.invoke(app, ["backup", str(gallery), str(existing), "--force"])
    assert result.exit_code == 0, result.output
    with SqliteGallery(existing) as copy:
        assert [p.name for p in copy.people()] == ["Ada"]
    result = runner.invoke(app, ["backup", "postgresql://u@localhost/db", str(tmp_path / "x.db")])
    assert result.exit_code == 2 and "pg_dump" in result.output
    with pytest.raises(GalleryError, match="no gallery"):
        backup_gallery(tmp_path / "missing.db", tmp_path / "y.db")


def test_a_server_thread_and_a_backup_share_the_gallery_without_harm(tmp_path):
    gallery = tmp_path / "g.db"
    g = SqliteGallery(gallery)
    stop = threading.Event()
    done: list[str] = []

    def write() -> None:
        i = 0
        while not stop.is_set() and i < 5000:
            g.add_person(f"T{i}")
            done.append(f"T{i}")
            i += 1

    t = threading.Thread(target=write)
    t.start()
    try:
        time.sleep(0.3)
        before = set(done)
        report = backup_gallery(gallery, tmp_path / "b.db")
    finally:
        stop.set()
        t.join()
    assert report.people >= len(before)
    assert gallery.with_name("g.db-wal").exists()  # the writer's journal is still there
    g.close()


def test_a_full_gallery_answers_503_over_the_api_and_names_no_server_path(tmp_path):
    from fastapi.testclient import TestClient

    from facebank.server import ServerConfig, create_app
    from facebank.settings import Settings

    gallery = tmp_path / "g.db"
    with ApiKeyStore(gallery) as keys:
        _, key = keys.create("writer", "write")
    app_ = create_app(ServerConfig(settings=Settings(gallery=str(gallery))))
    with TestClient(app_) as client:
        with app_.state.ctx.gallery.inner.connection() as db:  # the file may not grow any more
            db.execute(f"PRAGMA max_page_count={db.execute('PRAGMA page_count').fetchone()[0]}")
        answers = []
        for i in range(400):
            r = client.post("/v1/people", json={"name": f"{i:03d}" + "x" * 190}, headers={"X-API-Key": key})
            answers.append(r.status_code)
            if r.status_code != 201:
                break
        assert r.status_code == 503, answers[-3:]
        body = r.json()["error"]
        assert body["code"] == "storage_unavailable" and "full" in body["message"]
        assert str(tmp_path) not in r.text
        created = answers.count(201)
    with SqliteGallery(gallery) as g:  # the refused write left nothing behind
        assert len(g.people()) == created and g.integrity() == []
