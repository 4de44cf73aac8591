"""dlib's ResNet face recogniser (128-d), the reference embedder, from face_recognition_models."""

from __future__ import annotations

import logging

import numpy as np

from facebank import models
from facebank.embed.base import ChipSpec, embed_raw, register

log = logging.getLogger(__name__)

DLIB_MODEL_ID = "dlib-resnet-v1"


class DlibEmbedder:
    """dlib ``face_recognition_model_v1`` on 150x150 chips cut by ``dlib.get_face_chip``.

    ``flip=True`` averages the descriptor of the chip and of its mirror image (test-time
    augmentation) before L2 normalisation. dlib-bin has no BLAS: one core per call.
    """

    dim = 128
    chip = ChipSpec(size=150, padding=0.25)

    def __init__(self, flip: bool = False) -> None:
        import dlib

        self._net = dlib.face_recognition_model_v1(str(models.dlib_model(models.RESNET)))
        self.flip = flip
        self.model_id = DLIB_MODEL_ID

    def raw(self, chips: np.ndarray) -> np.ndarray:
        """dlib's unnormalised descriptors (N, 128) for chips (N, 150, 150, 3) uint8 RGB."""
        if len(chips) == 0:
            return np.zeros((0, self.dim), np.float32)
        batch = [np.ascontiguousarray(c, dtype=np.uint8) for c in chips]
        return np.asarray(self._net.compute_face_descriptor(batch), dtype=np.float32)

    def embed(self, chips: np.ndarray) -> np.ndarray:
        return embed_raw(self.raw, chips, self.flip)


@register("dlib")
def _make(flip: bool = False, **_: object) -> DlibEmbedder:
    return DlibEmbedder(flip=flip)
