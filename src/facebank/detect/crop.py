"""The crop 'detector': the photo already is a face crop (e.g. kpop15's 160x160 crops).

Its detections are flagged ``fallback=True`` so results say no detector vouched for them.
"""

from __future__ import annotations

import numpy as np

from facebank.detect.base import register
from facebank.types import Box, Detection

# A tight face crop (MTCNN-style, like kpop15) holds the face with a small margin.
CROP_MARGIN = 0.08


def whole_photo_detection(image: np.ndarray, margin: float = CROP_MARGIN) -> Detection:
    h, w = image.shape[:2]
    mx, my = w * margin, h * margin
    return Detection(Box(mx, my, w - mx, h - my), 0.0, "crop", fallback=True)


class CropDetector:
    name = "crop"

    def __init__(self, margin: float = CROP_MARGIN, **_: object) -> None:
        self.margin = margin

    def detect(self, image: np.ndarray) -> list[Detection]:
        return [whole_photo_detection(image, self.margin)]


@register("crop")
def _make(margin: float = CROP_MARGIN, **_: object) -> CropDetector:
    return CropDetector(margin=margin)
