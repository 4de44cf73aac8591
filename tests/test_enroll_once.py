"""Each photo is read and hashed once per enrollment or scan (issue 21), and two enrollments of one
folder at once report counts that add up: a photo counts as enrolled only by the process that
stored it (issue 17)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import facebank
from facebank import images
from facebank.images import iter_image_files

SRC = Path(facebank.__file__).resolve().parents[1]


def copy_people(faces_dir: Path, dest: Path, people: list[str], per_person: int = 100) -> int:
    n = 0
    for person in people:
        (dest / person).mkdir(parents=True, exist_ok=True)
        for src in list(iter_image_files(faces_dir / "5celeb" / "train" / person))[:per_person]:
            shutil.copy(src, dest / person / src.name)
            n += 1
    return n


@pytest.fixture
def counted(monkeypatch):
    """Counts the files opened by ``images.read_bytes`` and the sha256 digests computed, in this
    process (the unit view: workers=1, the photos are processed here)."""
    reads: Counter[str] = Counter()
    hashes: list[int] = []
    real_read = images.read_bytes
    real_sha = hashlib.sha256

    def read_bytes(source, *args, **kwargs):
        if not isinstance(source, bytes | bytearray | memoryview):
            reads[Path(source).name] += 1
        return real_read(source, *args, **kwargs)

    def sha256(data=b"", *args, **kwargs):
        hashes.append(len(data))
        return real_sha(data, *args, **kwargs)

    monkeypatch.setattr(images, "read_bytes", read_bytes)
    monkeypatch.setattr(images.hashlib, "sha256", sha256)
    monkeypatch.setattr("facebank.api.hashlib.sha256", sha256)
    return reads, hashes


@pytest.fixture(scope="module")
def pipeline():
    from facebank.pipeline import FacePipeline
    from facebank.settings import Settings

    return FacePipeline(Settings(workers=1))


@pytest.mark.shared
def test_enrollment_reads_and_hashes_each_photo_once(tmp_path, faces_dir, pipeline, counted):
    from facebank import FaceBank

    reads, hashes = counted
    n = copy_people(faces_dir, tmp_path / "photos", ["madonna"], per_person=4)
    with FaceBank(tmp_path / "g.db", pipeline=pipeline, workers=1) as fb:
        report = fb.enroll_folder(tmp_path / "photos")
    assert report.photos_processed == n
    assert len(reads) == n and set(reads.values()) == {1}, reads
    assert len([h for h in hashes if h > 1000]) == n, hashes  # one digest per photo (not of small keys)


@pytest.mark.shared
def test_a_scan_reads_and_hashes_each_photo_once(tmp_path, faces_dir, pipeline, counted):
    from facebank import FaceBank
    from facebank.cluster.scan import scan_library

    reads, hashes = counted
    n = copy_people(faces_dir, tmp_path / "library", ["elton_john"], per_person=3)
    with FaceBank(tmp_path / "g.db", pipeline=pipeline, workers=1) as fb:
        report = scan_library(fb, tmp_path / "library")
    assert report.photos_processed == n
    assert len(reads) == n and set(reads.values()) == {1}, reads
    assert len([h for h in hashes if h > 1000]) == n, hashes


@pytest.mark.shared
def test_worker_processes_get_the_bytes_and_never_open_the_photo_again(tmp_path, faces_dir):
    """A real run with worker processes: every photo file is made unreadable to the worker by
    replacing it, once the parent has read it, with a folder: had a worker opened it again, it
    would report 'is a folder'."""
    from facebank import FaceBank

    n = copy_people(faces_dir, tmp_path / "photos", ["jerry_seinfeld"], per_person=4)
    real_read = images.read_bytes

    def read_then_hide(source, *args, **kwargs):
        data = real_read(source, *args, **kwargs)
        if not isinstance(source, bytes | bytearray | memoryview):
            p = Path(source)
            p.unlink()
            p.mkdir()  # the worker can no longer read it from the disk
        return data

    import facebank.api as api

    original = api.images.read_bytes
    api.images.read_bytes = read_then_hide  # the parent's reader (workers import their own)
    try:
        with FaceBank(tmp_path / "g.db", workers=2) as fb:
            report = fb.enroll_folder(tmp_path / "photos")
    finally:
        api.images.read_bytes = original
    assert report.problems == () and report.photos_enrolled == n, report.problems


@pytest.mark.shared
def test_two_enrollments_of_one_folder_at_once_report_counts_that_add_up(tmp_path, faces_dir):
    n = copy_people(faces_dir, tmp_path / "photos", ["madonna", "elton_john", "ben_afflek"])
    gallery = tmp_path / "g.db"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    cmd = [sys.executable, "-m", "facebank", "enroll", str(tmp_path / "photos"), "-g", str(gallery),
           "-j", "1"]
    # the gallery exists before both start (both would otherwise race to create it)
    init = subprocess.run([sys.executable, "-c", "from facebank.gallery import open_gallery; "
                           f"open_gallery({str(gallery)!r}).close()"], env=env, timeout=120)
    assert init.returncode == 0
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    outs = [p.communicate(timeout=1200) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    counts = []
    for out, err in outs:
        m = re.search(r"enrolled (\d+) photos .*?; (\d+) already known(?:, (\d+) copies[^,]*)?, "
                      r"(\d+) problems", out + err)
        assert m, (out, err)
        enrolled, known, copies, problems = (int(g or 0) for g in m.groups())
        counts.append((enrolled, known + copies, problems))
    with sqlite3.connect(gallery) as db:
        stored_ok = db.execute("SELECT count(*) FROM photos WHERE status='ok'").fetchone()[0]
        stored = db.execute("SELECT count(*) FROM photos").fetchone()[0]
    (a_enrolled, a_known, a_problems), (b_enrolled, b_known, b_problems) = counts
    assert a_enrolled + b_enrolled == stored_ok, (counts, stored_ok)
    # each process accounts for every photo once: enrolled by it, known (stored by the other or
    # before), or a problem
    for enrolled, known, problems in counts:
        assert enrolled + known + problems == n, (counts, n, stored)
