"""Photos with no face in them, made from ../shared/faces by the recipe in
``tests/fixtures/negatives_recipe.json``: crops of ``detection_edge/no_face`` at several scales and
turns, and crops of ``detection_edge/multi_face`` with every face (hand-checked boxes) masked grey.
Every face a detector finds in them is a false face. Used by the tests and by bench/bench_cascade.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

RECIPE = Path(__file__).parent / "fixtures" / "negatives_recipe.json"


def recipe() -> dict:
    return json.loads(RECIPE.read_text())


def _crop(rgb: np.ndarray, fx: float, fy: float, frac: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    cw, ch = max(8, int(w * frac)), max(8, int(h * frac))
    x, y = int(w * fx), int(h * fy)
    return rgb[y:y + ch, x:x + cw]


def _turn(rgb: np.ndarray, angle: float) -> np.ndarray:
    import cv2

    if angle == 0:
        return rgb
    if angle == 90:
        return np.ascontiguousarray(np.rot90(rgb))
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    return cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT)


def _shrink(rgb: np.ndarray, side: int) -> np.ndarray:
    import cv2

    s = side / max(rgb.shape[:2])
    if s >= 1.0:
        return np.ascontiguousarray(rgb)
    return cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)


def mask_faces(rgb: np.ndarray, boxes: list[list[float]], grow: float) -> np.ndarray:
    """``rgb`` with every box, grown by ``grow`` of its side each way, filled with mid grey."""
    out = rgb.copy()
    h, w = rgb.shape[:2]
    for x1, y1, x2, y2 in boxes:
        gx, gy = (x2 - x1) * grow, (y2 - y1) * grow
        a, b = max(0, int(x1 - gx)), max(0, int(y1 - gy))
        c, d = min(w, int(x2 + gx)), min(h, int(y2 + gy))
        out[b:d, a:c] = 128
    return out


def negatives(faces: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(name, RGB uint8) of every negative, in a fixed order, each at most ``side`` px."""
    from facebank import images

    r = recipe()
    edge = faces / "detection_edge"
    for kind in ("no_face", "multi_face"):
        spec = r[kind]
        for path in sorted(images.iter_image_files(edge / kind)):
            rgb = images.load_image(path).rgb
            if kind == "multi_face":
                rgb = mask_faces(rgb, spec["boxes"][Path(path).name], r["mask_grow"])
            for i, (fx, fy, frac) in enumerate(spec["crops"]):
                crop = _crop(rgb, fx, fy, frac)
                for angle in spec["turns"]:
                    # shrink first: the photo a scan would see, and turning a small image is cheap
                    yield f"{kind}/{Path(path).name}#crop{i}@{angle}", _turn(_shrink(crop, r["side"]), angle)


def multi_face_boxes() -> dict[str, list[list[float]]]:
    return recipe()["multi_face"]["boxes"]
