"""Enrollment counts that do not lie: copies, one photo labelled as two people, resumed runs,
problems reported again on a rerun, and Ctrl-C saying what was saved."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facebank import FaceBank
from facebank.images import iter_image_files

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def pipeline():
    from facebank.pipeline import FacePipeline
    from facebank.settings import Settings

    return FacePipeline(Settings(workers=1))


def bank(path: Path, pipeline) -> FaceBank:
    return FaceBank(path, pipeline=pipeline, workers=1)


def train_photos(faces_dir: Path, person: str, n: int) -> list[Path]:
    return list(iter_image_files(faces_dir / "5celeb" / "train" / person))[:n]


class Bar:
    """A progress 'bar' that remembers its total, as tqdm has one."""

    def __init__(self, it, total=None, **_):
        self.it, self.total, self.n = it, total, 0

    def __iter__(self):
        for x in self.it:
            self.n += 1
            yield x


@pytest.fixture(params=[16, 1], ids=["batched", "each-photo-written-at-once"])
def batch(request, monkeypatch):
    """Photos are written in batches; with batches of one, a copy meets its original in the
    gallery already (the order of the checks must not matter)."""
    from facebank.api import EnrollRun

    monkeypatch.setattr(EnrollRun, "BATCH_PHOTOS", request.param)
    return request.param


def test_copies_of_one_photo_are_enrolled_once_and_counted_as_copies(tmp_path, faces_dir, pipeline, batch):
    one, other = train_photos(faces_dir, "madonna", 2)
    for rel in ("madonna/a.jpg", "madonna/b.jpg", "madonna/sub/c.jpg"):
        (tmp_path / "photos" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(one, tmp_path / "photos" / rel)
    shutil.copy(other, tmp_path / "photos" / "madonna" / "d.jpg")
    report = bank(tmp_path / "g.db", pipeline).enroll_folder(tmp_path / "photos")
    assert (report.photos_enrolled, report.faces_added, report.photos_processed) == (2, 2, 2)
    copies = [(Path(p).name, Path(f).name) for p, f in report.duplicates]
    assert copies == [("b.jpg", "a.jpg"), ("c.jpg", "a.jpg")]
    assert report.problems == () and report.photos_seen == 4


def test_one_photo_labelled_as_two_people_is_reported_and_creates_nobody(tmp_path, faces_dir, pipeline,
                                                                         batch):
    photo, = train_photos(faces_dir, "elton_john", 1)
    for person in ("alice", "bob"):
        (tmp_path / "photos" / person).mkdir(parents=True)
        shutil.copy(photo, tmp_path / "photos" / person / "x.jpg")
    fb = bank(tmp_path / "g.db", pipeline)
    report = fb.enroll_folder(tmp_path / "photos")
    assert [p.name for p in fb.people()] == ["alice"] and report.people == 1
    (path, reason), = report.problems
    assert "bob" in path and "labelled as two people" in reason and "alice" in reason
    # a later run with the photo under a third name: said again, against the gallery this time
    (tmp_path / "more" / "carol").mkdir(parents=True)
    shutil.copy(photo, tmp_path / "more" / "carol" / "y.jpg")
    again = fb.enroll_folder(tmp_path / "more")
    assert [p.name for p in fb.people()] == ["alice"]
    assert "labelled as 'alice'" in again.problems[0][1] and again.photos_skipped_known == 0


def test_a_resumed_run_counts_speed_and_progress_on_new_photos_only(tmp_path, faces_dir, pipeline):
    photos = train_photos(faces_dir, "jerry_seinfeld", 6)
    folder = tmp_path / "photos" / "jerry"
    folder.mkdir(parents=True)
    for p in photos[:4]:
        shutil.copy(p, folder / p.name)
    fb = bank(tmp_path / "g.db", pipeline)
    first = fb.enroll_folder(tmp_path / "photos")
    assert first.photos_processed == 4
    for p in photos[4:]:
        shutil.copy(p, folder / p.name)
    bars: list[Bar] = []

    def progress(it, **kw):
        bars.append(Bar(it, **kw))
        return bars[-1]

    again = fb.enroll_folder(tmp_path / "photos", progress=progress)
    assert again.photos_skipped_known == 4 and again.photos_processed == 2
    assert again.photos_per_second == pytest.approx(2 / again.seconds)
    assert bars[0].total == bars[0].n == 2  # the bar ends at 100 %, not at 2 of 6


def test_problems_are_reported_again_on_a_rerun_not_counted_as_known(tmp_path, faces_dir, pipeline):
    folder = tmp_path / "photos" / "mindy"
    folder.mkdir(parents=True)
    good, = train_photos(faces_dir, "mindy_kaling", 1)
    shutil.copy(good, folder / "good.jpg")
    (folder / "text.jpg").write_text("not a photo")
    shutil.copy(next(iter_image_files(faces_dir / "detection_edge" / "no_face")), folder / "stone.jpg")
    fb = bank(tmp_path / "g.db", pipeline)
    first = fb.enroll_folder(tmp_path / "photos")
    assert sorted(Path(p).name for p, _ in first.problems) == ["stone.jpg", "text.jpg"]
    again = fb.enroll_folder(tmp_path / "photos")
    assert again.photos_skipped_known == 1 and again.photos_processed == 0
    assert sorted(Path(p).name for p, _ in again.problems) == ["stone.jpg", "text.jpg"]
    reasons = dict((Path(p).name, r) for p, r in again.problems)
    assert "no face" in reasons["stone.jpg"] and "not an image" in reasons["text.jpg"]


def faces_in(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT count(*) FROM faces").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="sends SIGINT to a process group")
def test_ctrl_c_mid_enroll_says_what_was_saved_and_a_rerun_finishes_and_reports_again(tmp_path, faces_dir):
    photos = tmp_path / "photos"
    shutil.copytree(faces_dir / "5celeb" / "train", photos)
    (photos / "ben_afflek" / "0000-text.jpg").write_text("not a photo")  # a problem found early
    db = tmp_path / "g.db"
    cmd = [sys.executable, "-m", "facebank", "enroll", str(photos), "-g", str(db), "-j", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while faces_in(db) < 1:
        assert proc.poll() is None, f"enroll ended before Ctrl-C: {proc.communicate()}"
        assert time.monotonic() < deadline, "enroll made no progress"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "interrupted: the " in err and "run the same command again to finish" in err
    saved = int(err.split("interrupted: the ", 1)[1].split()[0])
    assert saved >= 1 and "0000-text.jpg" in err
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*) FROM photos WHERE status='ok'").fetchone()[0] == saved
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr
    assert "0000-text.jpg" in rerun.stderr and "not an image" in rerun.stderr
    assert f"{saved} already known" in rerun.stdout


def test_folders_whose_names_differ_only_by_case_are_one_person_and_the_merge_is_said(
        tmp_path, faces_dir, pipeline):
    one, two = train_photos(faces_dir, "ben_afflek", 2)
    for folder, photo in (("Ben", one), ("ben", two)):
        (tmp_path / "photos" / folder).mkdir(parents=True)
        shutil.copy(photo, tmp_path / "photos" / folder / photo.name)
    fb = bank(tmp_path / "g.db", pipeline)
    report = fb.enroll_folder(tmp_path / "photos")
    assert [(p.name, p.photos) for p in fb.people()] == [("Ben", 2)]
    assert report.merged_names == (("ben", "Ben"),) and report.people == 1
