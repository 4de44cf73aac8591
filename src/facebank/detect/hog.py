"""dlib's HOG + linear SVM frontal face detector (fast, the default)."""

from __future__ import annotations

import logging
import math

import numpy as np

from facebank.detect.base import register
from facebank.types import Box, Detection

log = logging.getLogger(__name__)

HOG_MIN_FACE = 80  # dlib's HOG window finds faces of about 80x80 px and larger


def auto_upsample(image: np.ndarray, min_face: int, max_pixels_after: int = 4_000_000) -> int:
    """Upsampling needed to see faces of ``min_face`` px, bounded so the work stays sane."""
    need = max(0, math.ceil(math.log2(HOG_MIN_FACE / max(min_face, 1))))
    h, w = image.shape[:2]
    while need > 0 and h * w * (4**need) > max_pixels_after:
        need -= 1
    return need


class HogDetector:
    name = "hog"

    def __init__(self, upsample: int | str = "auto", min_face: int = 40, **_: object) -> None:
        import dlib

        self._det = dlib.get_frontal_face_detector()
        self.upsample = upsample
        self.min_face = min_face

    def detect(self, image: np.ndarray) -> list[Detection]:
        up = auto_upsample(image, self.min_face) if self.upsample == "auto" else int(self.upsample)
        rects, scores, _ = self._det.run(np.ascontiguousarray(image), up, -0.2)
        found = [
            Detection(Box(r.left(), r.top(), r.right() + 1, r.bottom() + 1), float(s), self.name)
            for r, s in zip(rects, scores, strict=True)
        ]
        # dlib's default decision threshold is 0 (we asked for -0.2 only to rank weak candidates)
        found = [d for d in found if d.score >= 0.0]
        return sorted(found, key=lambda d: -d.score)


@register("hog")
def _make(upsample: int | str = "auto", min_face: int = 40, **_: object) -> HogDetector:
    return HogDetector(upsample=upsample, min_face=min_face)
