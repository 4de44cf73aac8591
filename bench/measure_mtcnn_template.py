"""Measure where MTCNN's five points lie inside dlib's face chip (TEMPLATE_IN_DLIB_CHIP).

facebank's dlib ResNet embedder was trained on chips cut by ``dlib.get_face_chip(img, shape5,
size=150, padding=0.25)`` from dlib's 5-point landmarks. To cut the same chip from MTCNN's points,
``facebank.align.similarity_chip`` needs the mean position of each MTCNN point in such a chip. This
script measures it on real faces:

1. find faces with dlib HOG (upsample 1) and fit dlib's 5-point shape predictor;
2. run facebank's MtcnnDetector on the same photo and pair each dlib face with the MTCNN face whose
   box overlaps it most (IoU >= 0.4);
3. map MTCNN's five points into the dlib chip with dlib's own chip geometry
   (``get_face_chip_details`` -> the similarity transform of dlib's ``get_mapping_to_chip``; the
   script checks it against ``dlib.get_face_chip`` pixel by pixel);
4. average them, as fractions of the padding-0 chip in align.similarity_chip's convention
   (``u = c / size * (1 + 2 * padding) - padding`` for chip pixel ``c``).

Photos: a deterministic sample of LFW (every Nth file of the sorted list) plus 5celeb/train.
5celeb/val and pins10 are left out: tests/test_detect_mtcnn.py measures descriptor distances there.

Run from the repo root::

    PYTHONPATH=src .venv/bin/python bench/measure_mtcnn_template.py [--lfw 1100]
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parents[1]
FACES = REPO.parent / "shared" / "faces"
SIZE = 150
PADDING = 0.25
NAMES = ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"]

log = logging.getLogger("measure_mtcnn_template")


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def mapping_to_chip(details) -> np.ndarray:
    """dlib's get_mapping_to_chip as a 2x3 matrix (image pixel -> chip pixel)."""
    from facebank.align import similarity_transform

    r = details.rect
    cx, cy = (r.left() + r.right()) / 2.0, (r.top() + r.bottom()) / 2.0
    c, s = math.cos(details.angle), math.sin(details.angle)

    def rot(x: float, y: float) -> tuple[float, float]:
        dx, dy = x - cx, y - cy
        return (c * dx - s * dy + cx, s * dx + c * dy + cy)

    src = np.array([rot(r.left(), r.top()), rot(r.right(), r.top()), rot(r.right(), r.bottom())])
    dst = np.array([[0, 0], [details.cols - 1, 0], [details.cols - 1, details.rows - 1]], float)
    return similarity_transform(src, dst)


def photos(lfw_count: int) -> list[Path]:
    lfw = sorted((FACES / "lfw" / "images").glob("*/*.jpg"))
    step = max(1, len(lfw) // max(lfw_count, 1))
    chosen = lfw[::step][:lfw_count]
    celeb = sorted((FACES / "5celeb" / "train").glob("*/*"))
    return chosen + [p for p in celeb if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", type=int, default=1100, help="how many LFW photos to sample")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import cv2
    import dlib

    from facebank import models
    from facebank.detect.mtcnn import MtcnnDetector
    from facebank.types import Box

    hog = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(models.dlib_model(models.SHAPE5)))
    mtcnn = MtcnnDetector()

    in_chip: list[np.ndarray] = []  # (5, 2) chip pixels, size 150, padding 0.25
    in_chip0: list[np.ndarray] = []  # (5, 2) / S in a padding-0 chip (dlib geometry), for comparison
    check_err: list[float] = []
    t0 = time.perf_counter()
    paths = photos(args.lfw)
    for n, path in enumerate(paths):
        try:
            img = load_rgb(path)
        except OSError as exc:
            log.warning("skip %s: %s", path, exc)
            continue
        if max(img.shape[:2]) > 1000:  # keep HOG upsampling cheap; geometry is scale-free
            s = 1000 / max(img.shape[:2])
            img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)),
                             interpolation=cv2.INTER_AREA)
        found = mtcnn.detect(img)
        if not found:
            continue
        for rect in hog(img, 1):
            box = Box(rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1)
            best = max(found, key=lambda d, box=box: box.iou(d.box))
            if box.iou(best.box) < 0.4:
                continue
            shape = sp(img, rect)
            pts = best.landmarks.as_array()
            details = dlib.get_face_chip_details(shape, size=SIZE, padding=PADDING)
            m = mapping_to_chip(details)
            in_chip.append(pts @ m[:, :2].T + m[:, 2])
            d0 = dlib.get_face_chip_details(shape, size=SIZE, padding=0.0)
            m0 = mapping_to_chip(d0)
            in_chip0.append((pts @ m0[:, :2].T + m0[:, 2]) / SIZE)
            if len(check_err) < 20:  # our geometry == dlib.get_face_chip?
                ours = cv2.warpAffine(img, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR)
                theirs = dlib.get_face_chip(img, shape, size=SIZE, padding=PADDING)
                check_err.append(float(np.abs(ours[5:-5, 5:-5].astype(float) - theirs[5:-5, 5:-5]).mean()))
        if (n + 1) % 200 == 0:
            log.info("%d/%d photos, %d faces, %.0f s", n + 1, len(paths), len(in_chip),
                     time.perf_counter() - t0)

    pts = np.stack(in_chip)
    unit = pts / SIZE * (1 + 2 * PADDING) - PADDING
    mean = unit.mean(axis=0)
    sd = unit.std(axis=0)
    unit0 = np.stack(in_chip0).mean(axis=0)
    print(f"faces: {len(pts)} from {len(paths)} photos; chip geometry check, mean |ours - dlib| "
          f"= {np.mean(check_err):.2f} grey levels")
    for k, name in enumerate(NAMES):
        print(f"  {name:12s} u = ({mean[k, 0]:.4f}, {mean[k, 1]:.4f})  sd ({sd[k, 0]:.4f}, {sd[k, 1]:.4f})"
              f"  [padding-0 chip /S: ({unit0[k, 0]:.4f}, {unit0[k, 1]:.4f})]")
    print("TEMPLATE_IN_DLIB_CHIP = np.array(")
    print("    [")
    for x, y in mean:
        print(f"        [{x:.4f}, {y:.4f}],")
    print("    ],\n    dtype=np.float64,\n)")
    if np.mean(check_err) > 3.0:
        sys.exit("chip geometry does not match dlib.get_face_chip: do not trust these numbers")


if __name__ == "__main__":
    main()
