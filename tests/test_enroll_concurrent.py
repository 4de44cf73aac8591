"""Two enrollments of one folder at once (two processes on one gallery) report counts that add up
(issue 17, item 8: "enrolled 119" and "enrolled 38, 81 known" for the same 120 photos). Each photo
is counted as enrolled by the run that stored it, and as known by the other."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from facebank import FaceBank
from facebank.api import EnrollRun
from facebank.images import iter_image_files

pytestmark = pytest.mark.shared


@pytest.mark.parametrize("order", ["b-first", "interleaved"])
def test_two_enrolls_of_one_folder_at_once_report_counts_that_add_up(tmp_path, faces_dir, order):
    from facebank.pipeline import FacePipeline
    from facebank.settings import Settings

    pipeline = FacePipeline(Settings(workers=1))
    photos = list(iter_image_files(faces_dir / "5celeb" / "train" / "madonna"))[:6]
    results = [pipeline.photo(p) for p in photos]
    digests = [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in photos]
    sizes = [Path(p).stat().st_size for p in photos]
    gallery = tmp_path / "g.db"
    # two banks, two connections to one file: as two processes
    with FaceBank(gallery, pipeline=pipeline, workers=1) as fa, \
            FaceBank(gallery, pipeline=pipeline, workers=1) as fb:
        a, b = EnrollRun(fa, "A"), EnrollRun(fb, "B")
        for run in (a, b):  # both see every photo as new before either writes
            for p, d, s in zip(photos, digests, sizes, strict=True):
                assert run.triage("madonna", str(p), d, s)
        if order == "b-first":
            steps = [(b, i) for i in range(6)] + [(a, i) for i in range(6)]
        else:
            steps = [(r, i) for i in range(6) for r in ((a, b) if i % 2 else (b, a))]
        for run, i in steps:
            run.add("madonna", digests[i], sizes[i], results[i])
            run.flush()
        for run in (a, b):
            run.__exit__(None, None, None)
        stored = sum(p.photos for p in fa.gallery.people())
    ok = sum(1 for r in results if r.faces and r.error is None)
    assert stored == ok >= 4
    ra, rb = a.report, b.report
    assert ra.photos_enrolled + rb.photos_enrolled == ok, (ra, rb)
    assert ra.photos_skipped_known + rb.photos_skipped_known == ok
    assert ra.faces_added + rb.faces_added == ok
