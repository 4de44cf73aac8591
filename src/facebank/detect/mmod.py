"""dlib's MMOD CNN face detector (accurate, slow on CPU: seconds per photo)."""

from __future__ import annotations

import numpy as np

from facebank import models
from facebank.detect.base import register
from facebank.detect.hog import auto_upsample
from facebank.types import Box, Detection


class MmodDetector:
    name = "mmod"

    def __init__(self, upsample: int | str = "auto", min_face: int = 40, **_: object) -> None:
        import dlib

        self._det = dlib.cnn_face_detection_model_v1(str(models.dlib_model(models.MMOD)))
        self.upsample = upsample
        self.min_face = min_face

    def detect(self, image: np.ndarray) -> list[Detection]:
        # MMOD's window is also ~80 px; upsampling costs 4x per step, so keep it for small photos
        up = auto_upsample(image, self.min_face, 2_000_000) if self.upsample == "auto" else int(self.upsample)
        dets = self._det(np.ascontiguousarray(image), up)
        found = [
            Detection(
                Box(d.rect.left(), d.rect.top(), d.rect.right() + 1, d.rect.bottom() + 1),
                float(d.confidence),
                self.name,
            )
            for d in dets
        ]
        return sorted(found, key=lambda d: -d.score)


@register("mmod")
def _make(upsample: int | str = "auto", min_face: int = 40, **_: object) -> MmodDetector:
    return MmodDetector(upsample=upsample, min_face=min_face)
