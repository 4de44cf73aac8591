"""Landmarks -> aligned face chip in the layout the embedder was trained on.

dlib 5-point landmarks go through ``dlib.get_face_chip`` itself (bit-exact with dlib and with the
face_recognition package). Other landmark schemes (MTCNN's eyes, nose and mouth corners) are
mapped by a similarity transform onto the positions those points take in a dlib chip.
"""

from __future__ import annotations

import numpy as np

from facebank.embed.base import ChipSpec
from facebank.types import Box, Landmarks


def _full_object_detection(box: Box, landmarks: Landmarks):
    import dlib

    rect = dlib.rectangle(int(round(box.x1)), int(round(box.y1)), int(round(box.x2)), int(round(box.y2)))
    pts = [dlib.point(int(round(x)), int(round(y))) for x, y in landmarks.points]
    return dlib.full_object_detection(rect, pts)


def similarity_chip(
    image: np.ndarray, src: np.ndarray, dst_unit: np.ndarray, spec: ChipSpec
) -> np.ndarray:
    """Warp ``image`` so points ``src`` (pixels) land on ``dst_unit`` (fractions of a padding-0 chip)."""
    import cv2

    size = spec.size
    # dlib's padding: the padding-0 square grows by 2*padding of its side and is then resized.
    dst = (np.asarray(dst_unit, np.float64) + spec.padding) / (1.0 + 2.0 * spec.padding) * size
    matrix, _ = cv2.estimateAffinePartial2D(np.asarray(src, np.float64), dst, method=cv2.LMEDS)
    if matrix is None:
        raise ValueError("could not fit an alignment transform to the landmarks")
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def align(image: np.ndarray, box: Box, landmarks: Landmarks, spec: ChipSpec) -> np.ndarray:
    """Cut one aligned chip (spec.size x spec.size x 3, uint8 RGB) from an RGB uint8 image."""
    if landmarks.scheme == "dlib5":
        import dlib

        return dlib.get_face_chip(image, _full_object_detection(box, landmarks), size=spec.size,
                                  padding=spec.padding)
    if landmarks.scheme == "mtcnn5":
        from facebank.detect import mtcnn

        return similarity_chip(image, landmarks.as_array(), mtcnn.TEMPLATE_IN_DLIB_CHIP, spec)
    raise ValueError(f"no alignment for landmark scheme {landmarks.scheme!r}")


def crop_chip(image: np.ndarray, box: Box, spec: ChipSpec) -> np.ndarray:
    """An unaligned chip: the box grown by the padding, resized (used when landmarks fail)."""
    import cv2

    w, h = box.width, box.height
    side = max(w, h) * (1.0 + 2.0 * spec.padding)
    cx, cy = box.center
    x1, y1 = cx - side / 2, cy - side / 2
    scale = spec.size / side
    matrix = np.array([[scale, 0, -x1 * scale], [0, scale, -y1 * scale]], np.float64)
    return cv2.warpAffine(image, matrix, (spec.size, spec.size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)
