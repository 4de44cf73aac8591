"""kill -9 during `facebank enroll pins10`, then rerun: the same gallery as an uninterrupted run."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facebank.gallery.sqlite import SqliteGallery

pytestmark = pytest.mark.slow


def facebank_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "facebank", *args]


def face_count(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT count(*) FROM faces").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def people_faces(db: Path) -> dict[str, tuple[int, int]]:
    with SqliteGallery(db) as g:
        assert g.integrity() == []
        return {p.name: (p.photos, p.faces) for p in g.people()}


def test_kill_9_mid_enroll_then_rerun_matches_an_uninterrupted_run(tmp_path, faces_dir):
    pins = faces_dir / "pins10"
    env = {**os.environ, "FACEBANK_WORKERS": "2"}
    interrupted = tmp_path / "interrupted.db"
    proc = subprocess.Popen(facebank_cmd("enroll", str(pins), "--gallery", str(interrupted)), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 600
    while face_count(interrupted) < 300:
        assert proc.poll() is None, f"enroll ended before it could be killed: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "enroll made no progress"
        time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)  # the enrolling process, mid-transaction or not
    proc.wait()
    time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # its orphaned workers
    partial = face_count(interrupted)
    assert 300 <= partial < 1700, "the kill should land mid-run"
    with SqliteGallery(interrupted) as g:
        assert g.integrity() == []  # what was committed is whole

    rerun = subprocess.run(facebank_cmd("enroll", str(pins), "--gallery", str(interrupted)), env=env,
                           capture_output=True, text=True, timeout=1800)
    assert rerun.returncode == 0, rerun.stderr
    assert "already known" in rerun.stdout

    straight = tmp_path / "straight.db"
    once = subprocess.run(facebank_cmd("enroll", str(pins), "--gallery", str(straight)), env=env,
                          capture_output=True, text=True, timeout=1800)
    assert once.returncode == 0, once.stderr

    assert people_faces(interrupted) == people_faces(straight)
    assert len(people_faces(straight)) == 10
    with SqliteGallery(interrupted) as g:
        statuses = [r["status"] for r in g.runs()]
    assert statuses == ["interrupted", "finished"]
