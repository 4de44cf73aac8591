"""One SQLite gallery, many processes: a server and CLI commands share the file without losing a write.

SQLite's POSIX locks belong to the process and the file: closing ANY descriptor of the database file
drops every lock the process holds on it. A plain open()/close() of the gallery file in a process
that holds a connection (a header check, a hash, a copy) makes the next process that disconnects
believe it is the last user, and it deletes the WAL the first process still writes to.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from facebank.gallery.sqlite import SqliteGallery
from facebank.server.context import ServerConfig, ServerContext
from facebank.settings import Settings

REPO_SRC = str(Path(__file__).resolve().parents[1] / "src")


def run_cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """``facebank ARGS`` in a child process (this interpreter, this checkout's sources)."""
    env = {**os.environ, "PYTHONPATH": REPO_SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "facebank", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def deleted_descriptors(name: str) -> list[str]:
    """Files named ``name...`` this process still holds open although they were deleted."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if name in target and target.endswith("(deleted)"):
            found.append(target)
    return found


def server_context(gallery: Path) -> ServerContext:
    return ServerContext(ServerConfig(settings=Settings(gallery=str(gallery))))


def test_a_cli_process_connecting_while_the_server_runs_leaves_its_wal_in_place(tmp_path):
    gallery = tmp_path / "g.db"
    SqliteGallery(gallery).close()
    ctx = server_context(gallery)
    try:
        ctx.gallery.add_person("Ada")  # the server's connection writes to the WAL
        listed = run_cli("people", "list", "--gallery", str(gallery))
        assert listed.returncode == 0, listed.stderr
        assert "Ada" in listed.stdout
        wal = gallery.with_name("g.db-wal")
        assert wal.exists(), "a CLI process that disconnected deleted the server's WAL"
        assert deleted_descriptors("g.db") == []
        # both sides still share one journal: a CLI write is seen by the server, and vice versa
        renamed = run_cli("people", "rename", "Ada", "Ada Lovelace", "--gallery", str(gallery))
        assert renamed.returncode == 0, renamed.stderr
        assert [p.name for p in ctx.gallery.people()] == ["Ada Lovelace"]
        ctx.gallery.add_person("Grace")
        assert "Grace" in run_cli("people", "list", "--gallery", str(gallery)).stdout
        assert wal.exists() and deleted_descriptors("g.db") == []
    finally:
        ctx.close()
    with closing(sqlite3.connect(gallery)) as db:  # after the server stopped, nothing was undone
        names = sorted(r[0] for r in db.execute("SELECT name FROM people"))
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert names == ["Ada Lovelace", "Grace"]


def test_a_plain_sqlite_child_that_disconnects_does_not_remove_the_wal_of_a_server(tmp_path):
    gallery = tmp_path / "g.db"
    SqliteGallery(gallery).close()
    ctx = server_context(gallery)
    try:
        ctx.gallery.add_person("Ada")
        code = ("import sqlite3, sys\n"
                "db = sqlite3.connect(sys.argv[1])\n"
                "print(db.execute('SELECT count(*) FROM people').fetchone()[0])\n"
                "db.close()\n")
        out = subprocess.run([sys.executable, "-c", code, str(gallery)], capture_output=True, text=True,
                             timeout=60, check=True).stdout
        assert out.strip() == "1"
        assert gallery.with_name("g.db-wal").exists()
        assert deleted_descriptors("g.db") == []
    finally:
        ctx.close()


def server_deleted_descriptors(pid: int, name: str) -> list[str]:
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if name in target and target.endswith("(deleted)"):
            found.append(target)
    return found


def gallery_checks(gallery: Path) -> tuple[str, list]:
    with closing(sqlite3.connect(gallery)) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        dangling = db.execute("PRAGMA foreign_key_check").fetchall()
    return integrity, dangling


def test_a_running_server_and_cli_commands_interleave_writes_and_every_acknowledged_one_stays(
        tmp_path, faces_dir):
    import threading

    import httpx

    from facebank.server.testing import ServerProcess

    gallery = tmp_path / "g.db"
    made = run_cli("keys", "create", "--scope", "admin", "--name", "server writer", "--gallery", str(gallery))
    assert made.returncode == 0, made.stderr
    admin = made.stdout.strip().splitlines()[0]
    env = {"PYTHONPATH": REPO_SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    acked_server: list[str] = []  # names the server answered 2xx for, in order
    server = ServerProcess(["--gallery", str(gallery)], env=env).start(ready=False)
    try:
        stop = threading.Event()

        errors: list[str] = []

        def server_writer() -> None:
            try:
                write_over_http()
            except Exception as exc:  # reported by the test thread
                errors.append(repr(exc))

        def write_over_http() -> None:
            with httpx.Client(base_url=server.url, headers={"X-API-Key": admin}, timeout=60) as client:
                for i in range(400):
                    if stop.is_set():
                        break
                    r = client.post("/v1/people", json={"name": f"S{i}"})
                    assert r.status_code == 201, r.text
                    if i % 2 == 0:  # the server renames its even people, the CLI its odd ones
                        r = client.patch(f"/v1/people/S{i}", json={"name": f"T{i}"})
                        assert r.status_code == 200, r.text
                        acked_server.append(f"T{i}")
                    else:
                        acked_server.append(f"S{i}")

        writer = threading.Thread(target=server_writer)
        writer.start()
        try:
            # a key made by the CLI works on the running server at once (no restart)
            key = run_cli("keys", "create", "--scope", "read", "--gallery", str(gallery))
            assert key.returncode == 0, key.stderr
            read_key = key.stdout.strip().splitlines()[0]
            r = httpx.get(server.url + "/v1/people", headers={"X-API-Key": read_key}, timeout=30)
            assert r.status_code == 200, r.text
            renamed_by_cli = []
            for _ in range(3):
                odd = [n for n in list(acked_server) if n.startswith("S") and n not in renamed_by_cli]
                if odd:
                    new = "C" + odd[0][1:]
                    out = run_cli("people", "rename", odd[0], new, "--gallery", str(gallery))
                    assert out.returncode == 0, out.stderr
                    renamed_by_cli.append(odd[0])
                listed = run_cli("people", "list", "--gallery", str(gallery))
                assert listed.returncode == 0, listed.stderr
                assert (gallery.with_name("g.db-wal")).exists()
                assert server_deleted_descriptors(server.proc.pid, "g.db") == []
            library = faces_dir / "kpop15" / "unlabeled_raw"
            scanned = run_cli("scan", str(library), "--gallery", str(gallery), "--workers", "1")
            assert scanned.returncode == 0, scanned.stderr
            clustered = run_cli("cluster", "--json", "--gallery", str(gallery))
            assert clustered.returncode == 0, clustered.stderr
            clusters = sorted({json.loads(line)["cluster"] for line in clustered.stdout.splitlines()
                               if line.strip() and json.loads(line)["cluster"] is not None})
            named = []
            if clusters:
                out = run_cli("people", "name", str(clusters[0]), "Cluster Person", "--gallery", str(gallery))
                assert out.returncode == 0, out.stderr
                named.append("Cluster Person")
            assert gallery.with_name("g.db-wal").exists()
            assert server_deleted_descriptors(server.proc.pid, "g.db") == []
            # what the CLI did is what the server sees
            seen = {p["name"] for p in httpx.get(server.url + "/v1/people", headers={"X-API-Key": admin},
                                                 timeout=30).json()["people"]}
            assert {"C" + n[1:] for n in renamed_by_cli} <= seen and set(named) <= seen
        finally:
            stop.set()
            writer.join(120)
        assert not writer.is_alive() and errors == []
    finally:
        server.stop()
        assert len(acked_server) >= 20
    # the server stopped: every acknowledged change of both sides is there
    expected = {("C" + n[1:]) if n in renamed_by_cli else n for n in acked_server} | set(named)
    with closing(sqlite3.connect(gallery)) as db:
        names = {r[0] for r in db.execute("SELECT name FROM people")}
        keys = db.execute("SELECT count(*) FROM api_keys").fetchone()[0]
        scanned_faces = db.execute("SELECT count(*) FROM faces").fetchone()[0]
    assert expected <= names and len(names) == len(expected), sorted(names ^ expected)
    assert keys == 2 and scanned_faces > 0
    assert gallery_checks(gallery) == ("ok", [])


def test_a_photo_that_links_to_the_open_gallery_is_refused_without_opening_the_file(tmp_path):
    import pytest

    from facebank import images

    gallery = tmp_path / "g.db"
    g = SqliteGallery(gallery)
    try:
        g.add_person("Ada")
        folder = tmp_path / "photos"
        folder.mkdir()
        (folder / "x.jpg").symlink_to(gallery)
        with pytest.raises(images.ImageError, match="database in use"):
            images.read_bytes(folder / "x.jpg")
        code = ("import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); db.execute('SELECT 1 FROM people');"
                " db.close()")
        subprocess.run([sys.executable, "-c", code, str(gallery)], check=True, timeout=60)
        assert gallery.with_name("g.db-wal").exists() and deleted_descriptors("g.db") == []
    finally:
        g.close()
    assert images.read_bytes(folder / "x.jpg")[:6] == b"SQLite"  # once closed it is just a file
