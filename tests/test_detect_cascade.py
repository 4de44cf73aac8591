"""The detection cascade (issue 21): MTCNN first; only where it finds no face, dlib's MMOD looks
again on the photo shrunk to ``mmod_max_side``; boxes merged."""

from __future__ import annotations

import numpy as np
import pytest

from facebank.pipeline import FacePipeline, box_iou, merge_boxes, with_cascade
from facebank.settings import Settings
from facebank.types import Box, Detection
from tests.hard_faces import hard_faces
from tests.negatives import multi_face_boxes, negatives


@pytest.fixture(scope="module")
def cascade():
    return FacePipeline(Settings(threads=1, crop_fallback="never", second_look="mmod"))


@pytest.fixture(scope="module")
def mtcnn_only():
    return FacePipeline(Settings(threads=1, second_look="", crop_fallback="never"))


def test_scan_enroll_and_audit_look_again_with_mmod_unless_the_user_chose_a_second_look():
    from facebank.audit.base import AuditConfig

    assert with_cascade(Settings()).second_look == "mmod"
    assert "|look=mmod:256:0" in with_cascade(Settings()).pipeline_key()
    assert with_cascade(Settings(second_look="")).second_look == ""
    assert with_cascade(Settings(second_look="hog")).second_look == "hog"
    assert AuditConfig().second_look == "mmod"


def test_enrollment_runs_the_cascade(tmp_path, faces_dir, monkeypatch):
    import facebank.api as api
    from facebank import FaceBank

    seen = []
    real = api.process_stream

    def spy(paths, settings, pipeline=None):
        seen.append(settings.second_look)
        return real(paths, settings, pipeline)

    monkeypatch.setattr(api, "process_stream", spy)
    (tmp_path / "p").mkdir()
    with FaceBank(tmp_path / "g.db", workers=1) as fb:
        fb.enroll_folder(tmp_path / "p")
    assert seen == ["mmod"]


def test_faces_mtcnn_misses_are_found_by_the_mmod_second_look(cascade, mtcnn_only, faces_dir):
    items = list(hard_faces(faces_dir))
    assert len(items) >= 25
    sample = items[::4]  # grey, tinted, dark, and the real 5celeb photo MTCNN misses
    assert not any(mtcnn_only.detections(rgb) for _, rgb in sample)
    found = [name for name, rgb in sample if cascade.detections(rgb)]
    assert len(found) == len(sample), sorted({n for n, _ in sample} - set(found))
    assert any(d.detector == "mmod" for d in cascade.detections(sample[0][1]))


def test_mmod_runs_only_where_mtcnn_found_nothing(faces_dir):
    from facebank import images

    pipe = FacePipeline(Settings(threads=1, second_look="mmod"))
    rgb = images.load_image(faces_dir / "detection_edge" / "multi_face" / "facenet-pytorch_multiface.jpg").rgb
    dets = pipe.detections(rgb)
    assert len(dets) == 6 and {d.detector for d in dets} == {"mtcnn"}
    assert pipe._mmod is None  # never loaded: no second look was needed


def test_the_negatives_fixture_has_over_200_photos_without_a_face_and_few_false_faces(cascade, faces_dir):
    items = list(negatives(faces_dir))
    assert len(items) >= 200
    assert len({n for n, _ in items}) == len(items)
    assert sum(len(b) for b in multi_face_boxes().values()) == 31  # hand-checked faces of multi_face
    sample = items[::12]
    false = sum(len(cascade.detections(rgb)) for _, rgb in sample)
    assert false / len(sample) <= 0.05, false  # bench_cascade: the full set, before and after


def test_overlapping_boxes_merge_into_the_best():
    a = Detection(Box(0, 0, 100, 100), 0.9, "mmod")
    b = Detection(Box(10, 10, 105, 105), 1.2, "mmod")
    c = Detection(Box(300, 300, 380, 380), 0.5, "mmod")
    kept = merge_boxes([a, b, c])
    assert kept == [b, c]
    assert box_iou(a.box, a.box) == pytest.approx(1.0)
    assert box_iou(a.box, c.box) == 0.0
    assert box_iou(Box(0, 0, 0, 0), Box(0, 0, 0, 0)) == 0.0


def test_a_blank_photo_gives_no_face_after_both_looks(cascade):
    assert cascade.detections(np.full((300, 400, 3), 127, np.uint8)) == []
