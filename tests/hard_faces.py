"""Faces MTCNN misses and dlib's MMOD finds (issue 21): a real 5celeb photo, and pins10 face photos
made grey, low-contrast grey, tinted blue or red, or dark (the recipe below, applied at test time to
../shared/faces; the list in tests/fixtures/hard_faces.json was found by running both detectors)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

LIST = Path(__file__).parent / "fixtures" / "hard_faces.json"


def make_hard(rgb: np.ndarray, how: str) -> np.ndarray:
    """``rgb`` made hard to see: orig, gray, gray_lowc, blue_tint, red_tint or dark."""
    t = rgb.astype(np.float32)
    gray = t @ np.array([0.299, 0.587, 0.114], np.float32)
    if how == "orig":
        return rgb
    if how == "gray":
        out = np.stack([gray] * 3, -1)
    elif how == "gray_lowc":
        out = np.stack([gray * 0.35 + 90] * 3, -1)
    elif how == "blue_tint":
        out = t * np.array([0.2, 0.5, 1.0], np.float32)
    elif how == "red_tint":
        out = t * np.array([1.0, 0.3, 0.1], np.float32)
    elif how == "dark":
        out = t * 0.25
    else:
        raise ValueError(f"unknown recipe {how!r}")
    return np.ascontiguousarray(out.clip(0, 255).astype(np.uint8))


def hard_faces(faces: Path) -> Iterator[tuple[str, np.ndarray]]:
    from facebank import images

    for rel, how in json.loads(LIST.read_text()):
        rgb = images.load_image(faces / rel).rgb
        small, _ = images.downscale(rgb, 640)
        yield f"{rel}@{how}", make_hard(small, how)
