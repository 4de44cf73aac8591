"""End to end on real photos: scan 5celeb train+val without labels, cluster, name the clusters,
identify the val photos by the new names; a library with bad files loses nothing."""

from __future__ import annotations

import collections
import os
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facebank import FaceBank
from facebank.cli import app
from facebank.cluster.engine import cluster_report, method_from_settings, recluster
from facebank.cluster.scan import scan_library


@pytest.fixture(scope="module")
def scanned(tmp_path_factory, faces_dir):
    """5celeb (train and val sub-folders, one sub-folder per person below: labels unused) scanned."""
    path = tmp_path_factory.mktemp("scan") / "gallery.db"
    with FaceBank(path) as fb:
        report = scan_library(fb, faces_dir / "5celeb")
    return path, report


def _person(path: str) -> str:
    return Path(path).parent.name


def test_scan_takes_every_face_of_every_photo_and_a_rerun_adds_nothing(scanned, faces_dir):
    path, report = scanned
    photos = [p for p in (faces_dir / "5celeb").rglob("*") if p.is_file() and p.suffix.lower() != ".md"]
    assert report.photos_seen == len(photos) == 118
    assert report.photos_enrolled + len(report.problems) == report.photos_seen  # none lost
    assert report.faces_added > report.photos_enrolled  # group photos: every face, not one per photo
    with FaceBank(path) as fb:
        assert fb.people() == []  # nobody is named by a scan
        assert len(fb.gallery.faces(unassigned=True)) == report.faces_added  # flagged ones too
        assert len(fb.gallery.unassigned_faces()) == report.faces_added - len(fb.gallery.flagged_faces())
        again = scan_library(fb, faces_dir / "5celeb")
    assert again.faces_added == 0
    # every photo is known; what the first scan found (no face included) is not reported again
    assert again.photos_skipped_known + len(again.problems) == report.photos_seen
    assert not any("no face" in reason for _, reason in again.problems)


def test_clusters_named_from_train_photos_identify_the_val_photos(scanned, tmp_path):
    path, _ = scanned
    work = tmp_path / "g.db"
    shutil.copy(path, work)
    with FaceBank(work) as fb:
        summary = recluster(fb.gallery, method_from_settings(fb.settings), fb.settings.threshold)
        assert summary.clusters >= 5
        faces = fb.gallery.faces(unassigned=True)
        clusters = collections.defaultdict(list)
        for f in faces:
            if f.cluster is not None:
                clusters[f.cluster].append(f)
        page = cluster_report(fb.gallery, tmp_path / "clusters.html").read_text()
        sizes = [int(m) for m in re.findall(r"<h3>cluster \d+: (\d+) faces", page)]
        assert len(sizes) == summary.clusters and sizes == sorted(sizes, reverse=True)  # largest first
        flagged = len(fb.gallery.flagged_faces())  # low quality / not a face: a row of their own
        shown = sum(min(24, n) for n in sizes) + min(24, summary.alone) + min(24, flagged)  # <= 24 a row
        assert page.count('<figure class="thumb">') == shown  # thumbnails inlined, none missing
        # a person looking at the clusters names each after who its train photos show
        named = {}
        for c, members in clusters.items():
            votes = collections.Counter(_person(f.path) for f in members if "/train/" in f.path)
            if votes and votes.most_common(1)[0][1] >= 3:
                named[c] = votes.most_common(1)[0][0]
        assert set(named.values()) == {p.name for p in (Path(faces[0].path).parents[2] / "train").iterdir()}
        # one cluster per person is the goal; a person split in two gets both clusters merged by name
        for c, name in named.items():
            fb.gallery.name_cluster(c, name)
        val = sorted({f.path for f in faces if "/val/" in f.path})
        right = 0
        for result in fb.identify_many(val):
            names = {x.match.name for x in result.faces}
            right += _person(result.path) in names
        assert right / len(val) >= 0.9, (right, len(val))
        # named faces of the val photos: each photo's main person is who the folder says
        assert fb.gallery.integrity() == []


def test_scanning_a_library_with_bad_files_names_each_problem_and_loses_nothing(tmp_path, faces_dir):
    lib = tmp_path / "lib"
    (lib / "a" / "b").mkdir(parents=True)
    good = sorted((faces_dir / "5celeb" / "val").rglob("*.jpg"))[:2]
    shutil.copy(good[0], lib / "a" / "b" / "deep.jpg")
    shutil.copy(good[1], lib / "top.jpg")
    (lib / "empty.jpg").write_bytes(b"")
    (lib / "text.jpg").write_text("not a photo")
    (lib / "cut.jpg").write_bytes(good[0].read_bytes()[:300])
    shutil.copy(faces_dir / "detection_edge" / "no_face" / "skimage_coffee.png", lib / "coffee.png")
    os.symlink(lib, lib / "a" / "loop")
    res = CliRunner().invoke(app, ["scan", str(lib), "-g", str(tmp_path / "g.db")])
    assert res.exit_code == 0, res.output
    problems = {line.split(": ", 1)[0].replace("  skipped ", ""): line for line in res.output.splitlines()
                if line.startswith("  skipped ")}
    for bad in ("empty.jpg", "text.jpg", "cut.jpg", "coffee.png"):
        assert str(lib / bad) in problems, res.output
    assert any("loop" in p for p in problems), res.output
    assert "scanned 6 photos" in res.output
    with FaceBank(tmp_path / "g.db") as fb:
        paths = {f.path for f in fb.gallery.faces(unassigned=True)}
    assert paths == {str(lib / "a" / "b" / "deep.jpg"), str(lib / "top.jpg")}


def test_copies_in_a_library_are_scanned_once_and_counted_as_copies_even_after_a_write(
        tmp_path, faces_dir, monkeypatch):
    from facebank.api import EnrollRun

    monkeypatch.setattr(EnrollRun, "BATCH_SECONDS", 0.0)  # every photo written at once: timing-proof
    one, other = sorted((faces_dir / "5celeb" / "val" / "madonna").iterdir())[:2]
    for rel in ("a.jpg", "b.jpg", "sub/c.jpg"):
        (tmp_path / "lib" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(one, tmp_path / "lib" / rel)
    shutil.copy(other, tmp_path / "lib" / "d.jpg")  # processed (and written) between b and sub/c
    with FaceBank(tmp_path / "g.db", workers=1) as fb:
        report = scan_library(fb, tmp_path / "lib")
    assert sorted((Path(p).name, Path(f).name) for p, f in report.duplicates) == [("b.jpg", "a.jpg"),
                                                                                 ("c.jpg", "a.jpg")]
    assert (report.photos_enrolled, report.photos_skipped_known, report.problems) == (2, 0, ())
