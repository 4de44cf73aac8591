"""facebank.detect.mtcnn: the ONNX MTCNN cascade, checked against the original mtcnn package.

The reference fixture (tests/fixtures/mtcnn_reference.json) was written once by
bench/make_mtcnn_reference.py in a throwaway TensorFlow virtualenv; these tests never import
TensorFlow or the mtcnn package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facebank.detect import create
from facebank.detect.mtcnn import (
    TEMPLATE_IN_DLIB_CHIP,
    MtcnnDetector,
    build_onet,
    build_pnet,
    build_rnet,
    crop_and_resize,
    nms_keep,
    pyramid_scales,
    square,
)
from facebank.types import Box, Landmarks

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces"
REFERENCE = Path(__file__).resolve().parent / "fixtures" / "mtcnn_reference.json"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def load_rgb(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def need_photos(*parts: str) -> Path:
    path = FACES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real photos not available: {path} is missing (../shared/faces next to the repo)")
    return path


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


@pytest.fixture(scope="module")
def detector() -> MtcnnDetector:
    return MtcnnDetector()


# -- construction and pieces --------------------------------------------------------------------


def test_registered_with_package_defaults() -> None:
    det = create("mtcnn", upsample=2, whatever="ignored")
    assert isinstance(det, MtcnnDetector)
    assert det.name == "mtcnn"
    assert det.min_face_size == 20
    assert det.scale_factor == pytest.approx(0.709)
    assert det.thresholds == (0.6, 0.7, 0.8)  # mtcnn 1.0.0: threshold_pnet/rnet/onet
    custom = create("mtcnn", min_face_size=40, scale_factor=0.6, thresholds=(0.5, 0.6, 0.9))
    assert (custom.min_face_size, custom.scale_factor, custom.thresholds) == (40, 0.6, (0.5, 0.6, 0.9))


def test_onnx_graphs_are_valid_and_shaped() -> None:
    import onnx
    import onnxruntime as ort

    from facebank.detect.mtcnn import _load_weights

    for stage, build, shape, outs in (
        ("pnet", build_pnet, (1, 12, 12, 3), [(1, 4, 1, 1), (1, 2, 1, 1)]),
        ("pnet", build_pnet, (1, 31, 20, 3), [(1, 4, 11, 5), (1, 2, 11, 5)]),
        ("rnet", build_rnet, (3, 24, 24, 3), [(3, 4), (3, 2)]),
        ("onet", build_onet, (2, 48, 48, 3), [(2, 4), (2, 10), (2, 2)]),
    ):
        model = build(_load_weights(stage))
        onnx.checker.check_model(model)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"image": np.zeros(shape, np.float32)})
        assert [g.shape for g in got] == outs
        np.testing.assert_allclose(got[-1].sum(axis=1), 1.0, atol=1e-5)  # softmax over classes


def test_pyramid_follows_mtcnn_package() -> None:
    scales = pyramid_scales(480, 640, 20, 0.709)
    assert len(scales) == round(-(np.log(480 / 12) / np.log(0.709) + 1))
    assert scales[0] == pytest.approx(0.6)
    np.testing.assert_allclose(scales[1:] / scales[:-1], 0.709)
    assert len(pyramid_scales(10, 10, 20, 0.709)) == 0


def test_nms_drops_boxes_overlapped_by_any_earlier_box() -> None:
    # B overlaps A, C overlaps B but not A: mtcnn 1.0.0 drops C too (B suppresses even though dropped)
    boxes = np.array([[0, 0, 10, 10], [3, 0, 13, 10], [6, 0, 16, 10], [40, 40, 50, 50]], float)
    assert nms_keep(boxes, 0.4, "union").tolist() == [0, 3]
    # "min": a box inside a bigger earlier box is dropped even with a small IoU
    boxes = np.array([[0, 0, 100, 100], [10, 10, 30, 30]], float)
    assert nms_keep(boxes, 0.7, "union").tolist() == [0, 1]
    assert nms_keep(boxes, 0.7, "min").tolist() == [0]
    assert nms_keep(np.zeros((0, 4)), 0.5).tolist() == []


def test_square_keeps_centre() -> None:
    sq = square(np.array([[10.0, 20.0, 30.0, 60.0]]))
    np.testing.assert_allclose(sq, [[0.0, 20.0, 40.0, 60.0]])


def test_crop_and_resize_uses_tensorflow_convention() -> None:
    h, w = 10, 20
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack([xx, yy, xx + yy], axis=2)  # linear: bilinear sampling is exact
    out = crop_and_resize(image, np.array([[0.0, 0.0, w, h]]), 5)
    # TF samples y = y1/h*(h-1) + i*(y2-y1)/h*(h-1)/(S-1): the pixel box [0, w] covers [0, w-1]
    np.testing.assert_allclose(out[0, 0, :, 0], np.linspace(0, w - 1, 5), atol=1e-5)
    np.testing.assert_allclose(out[0, :, 0, 1], np.linspace(0, h - 1, 5), atol=1e-5)
    # samples outside the image are 0
    out = crop_and_resize(image, np.array([[-10.0, -5.0, 10.0, 5.0]]), 3)
    assert out[0, 0, 0].tolist() == [0.0, 0.0, 0.0]
    assert out[0, 2, 2, 0] == pytest.approx(10 / w * (w - 1), abs=1e-4)


def test_blank_tiny_and_grey_images(detector: MtcnnDetector) -> None:
    assert detector.detect(np.full((240, 320, 3), 128, np.uint8)) == []
    assert detector.detect(np.zeros((8, 8, 3), np.uint8)) == []
    assert detector.detect(np.zeros((100, 100), np.uint8)) == []  # grey accepted
    with pytest.raises(ValueError):
        detector.detect(np.zeros((10, 10, 2), np.uint8))


def test_template_is_plausible() -> None:
    t = TEMPLATE_IN_DLIB_CHIP
    assert t.shape == (5, 2)
    assert np.all((t > 0) & (t < 1))
    le, re, nose, ml, mr = t
    assert le[0] < nose[0] < re[0] and ml[0] < mr[0]  # left/right as seen in the image
    assert max(le[1], re[1]) < nose[1] < min(ml[1], mr[1])


def test_no_tensorflow_or_torch_imported() -> None:
    photo = FACES / "detection_edge" / "multi_face" / "face_recognition_two_people.jpg"
    code = f"""
import sys
import numpy as np
import facebank.detect.mtcnn as m
from pathlib import Path
p = Path({str(photo)!r})
if p.exists():
    from PIL import Image, ImageOps
    img = np.asarray(ImageOps.exif_transpose(Image.open(p)).convert("RGB"))
else:
    img = np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)
found = m.MtcnnDetector().detect(img)
assert "tensorflow" not in sys.modules, "tensorflow was imported"
assert "torch" not in sys.modules, "torch was imported"
assert "mtcnn" not in sys.modules, "the mtcnn package was imported"
print(len(found))
"""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    if photo.exists():
        assert int(res.stdout.strip()) == 2


# -- against the original package ------------------------------------------------------------


def _reference() -> dict:
    return json.loads(REFERENCE.read_text())


@pytest.mark.shared
@pytest.mark.parametrize("entry", _reference()["photos"], ids=lambda e: Path(e["path"]).name[:40])
def test_matches_original_mtcnn_package(entry: dict, detector: MtcnnDetector) -> None:
    path = need_photos(entry["path"])
    image = load_rgb(path)
    assert image.shape[:2] == (entry["height"], entry["width"])
    ours = detector.detect(image)
    margin = 0.85  # O-Net threshold 0.8 plus a margin: borderline faces may flip either way

    def match(box: Box, faces: list) -> tuple[float, int]:
        ious = [box.iou(f) for f in faces]
        k = int(np.argmax(ious)) if ious else -1
        return (ious[k] if ious else 0.0), k

    ref_boxes = [Box(*f["box"]) for f in entry["faces"]]
    for f, rbox in zip(entry["faces"], ref_boxes, strict=True):
        if f["confidence"] < margin:
            continue
        iou, k = match(rbox, [d.box for d in ours])
        assert iou >= 0.9, f"reference face {f['box']} ({f['confidence']:.3f}) not found (best IoU {iou:.3f})"
        d = ours[k]
        assert d.score == pytest.approx(f["confidence"], abs=0.02)
        tol = max(3.0, 0.03 * rbox.width)
        err = np.abs(d.landmarks.as_array() - np.asarray(f["landmarks"])).max()
        assert err <= tol, f"landmarks off by {err:.2f} px (tolerance {tol:.1f})"
    for d in ours:
        if d.score < margin:
            continue
        iou, _ = match(d.box, ref_boxes)
        assert iou >= 0.9, f"extra face {d.box} ({d.score:.3f}) not in the reference"
    assert sum(f["confidence"] >= margin for f in entry["faces"]) == sum(d.score >= margin for d in ours)


@pytest.mark.shared
def test_detections_are_well_formed(detector: MtcnnDetector) -> None:
    image = load_rgb(need_photos("detection_edge", "multi_face", "jurassic_example_01.jpg"))
    found = detector.detect(image)
    assert len(found) >= 3
    scores = [d.score for d in found]
    assert scores == sorted(scores, reverse=True)
    h, w = image.shape[:2]
    for d in found:
        assert d.detector == "mtcnn" and not d.fallback
        assert 0.8 < d.score <= 1.0
        assert 0 <= d.box.x1 < d.box.x2 <= w - 1 and 0 <= d.box.y1 < d.box.y2 <= h - 1
        assert d.landmarks.scheme == "mtcnn5" and len(d.landmarks.points) == 5
        le, re, nose, ml, mr = d.landmarks.as_array()
        assert le[0] < re[0] and ml[0] < mr[0]
        assert d.box.x1 - 5 <= nose[0] <= d.box.x2 + 5 and d.box.y1 - 5 <= nose[1] <= d.box.y2 + 5


# -- behaviour on the edge-case folders ----------------------------------------------------------


@pytest.mark.shared
def test_at_most_one_false_face_on_no_face_folder(detector: MtcnnDetector) -> None:
    folder = need_photos("detection_edge", "no_face")
    per_photo = {p.name: len(detector.detect(load_rgb(p))) for p in images_in(folder)}
    assert len(per_photo) >= 10
    print(f"\nno_face: {sum(per_photo.values())} false face(s) in {len(per_photo)} photos {per_photo}")
    assert sum(per_photo.values()) <= 1, per_photo


@pytest.mark.shared
@pytest.mark.slow
def test_finds_at_least_as_many_faces_as_hog_on_multi_face(detector: MtcnnDetector) -> None:
    import dlib

    folder = need_photos("detection_edge", "multi_face")
    hog = dlib.get_frontal_face_detector()
    ours = theirs = 0
    for p in images_in(folder):
        image = load_rgb(p)
        ours += len(detector.detect(image))
        theirs += len(hog(image, 1))
    print(f"\nmulti_face: MTCNN {ours} faces, dlib HOG(upsample 1) {theirs}")
    assert ours >= theirs, f"MTCNN {ours} faces vs HOG(upsample 1) {theirs}"


# -- alignment: MTCNN chips look like dlib chips to the embedder ----------------------------------


def _descriptor_pairs(detector: MtcnnDetector, max_faces: int = 40) -> list[float]:
    """L2 distances between unit dlib descriptors of dlib-aligned and MTCNN-aligned chips.

    Photos: 5celeb/val and pins10 (two per person), none of which was used to measure the template.
    """
    import cv2
    import dlib

    from facebank import models
    from facebank.align import align
    from facebank.embed.dlib import DlibEmbedder

    val = need_photos("5celeb", "val")
    paths = [p for d in sorted(val.iterdir()) if d.is_dir() for p in images_in(d)]
    pins = FACES / "pins10"
    if pins.exists():
        paths += [p for d in sorted(pins.iterdir()) if d.is_dir() for p in images_in(d)[:2]]
    hog = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(models.dlib_model(models.SHAPE5)))
    emb = DlibEmbedder()
    dists = []
    for p in paths:
        img = load_rgb(p)
        if max(img.shape[:2]) > 800:
            s = 800 / max(img.shape[:2])
            size = (round(img.shape[1] * s), round(img.shape[0] * s))
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        rects = hog(img, 1)
        found = detector.detect(img)
        if not rects or not found:
            continue
        rect = max(rects, key=lambda r: r.area())
        box = Box(rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1)
        best = max(found, key=lambda d, box=box: box.iou(d.box))
        if box.iou(best.box) < 0.4:
            continue
        shape = sp(img, rect)
        lm5 = Landmarks(tuple((float(q.x), float(q.y)) for q in shape.parts()), "dlib5")
        chips = np.stack([align(img, box, lm5, emb.chip), align(img, best.box, best.landmarks, emb.chip)])
        a, b = emb.embed(chips)
        dists.append(float(np.linalg.norm(a - b)))
        if len(dists) >= max_faces:
            break
    return dists


@pytest.mark.shared
@pytest.mark.slow
def test_mtcnn_chips_embed_like_dlib_chips(detector: MtcnnDetector) -> None:
    dists = _descriptor_pairs(detector)
    assert len(dists) >= 25, f"only {len(dists)} faces found by both detectors"
    median = float(np.median(dists))
    print(f"\ndlib vs MTCNN alignment, {len(dists)} faces: median L2 {median:.3f}, "
          f"90th pct {np.percentile(dists, 90):.3f}, max {max(dists):.3f}")
    # same person on LFW is typically < 0.5 and different people > 0.6
    assert median < 0.2, f"median L2 between dlib- and MTCNN-aligned descriptors {median:.3f}"
    assert np.percentile(dists, 90) < 0.35, sorted(dists)
