"""One SQLite gallery, many processes: a server and CLI commands share the file without losing a write.

SQLite's POSIX locks belong to the process and the file: closing ANY descriptor of the database file
drops every lock the process holds on it. A plain open()/close() of the gallery file in a process
that holds a connection (a header check, a hash, a copy) makes the next process that disconnects
believe it is the last user, and it deletes the WAL the first process still writes to.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
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
    with sqlite3.connect(gallery) as db:  # after the server stopped, nothing was undone
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
