"""Measures of one face, from its landmarks and its aligned chip: head turn (yaw), how much of it
lies outside the photo, blur (re-blur ratio) and brightness. Used by the quality record every stored
face gets (``facebank.quality``) and by the audit's quality findings (``facebank.audit.quality``)."""

from __future__ import annotations

import math

import numpy as np

from facebank.types import Landmarks

# depth of the nose point in front of the eyes, in half inter-ocular distances, on a generic 3D
# face (the 68-point model of OpenCV's head-pose examples: eye centres ~160 units from the midline,
# ~130 units behind the nose tip). dlib's 5th point is the base of the nose, nearer the eye plane.
_NOSE_DEPTH = {"mtcnn5": 0.8, "dlib5": 0.55}


def eye_nose(lm: Landmarks) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(left eye centre, right eye centre, nose) in the photo, left/right as seen in the image."""
    p = lm.as_array()
    if lm.scheme == "mtcnn5" and len(p) >= 3:
        a, b, nose = p[0], p[1], p[2]
    elif lm.scheme == "dlib5" and len(p) >= 5:
        a, b, nose = p[0:2].mean(axis=0), p[2:4].mean(axis=0), p[4]
    else:
        return None
    return (a, b, nose) if a[0] <= b[0] else (b, a, nose)


def yaw_degrees(lm: Landmarks | None) -> float | None:
    """Head yaw from the nose's sideways offset between the eyes: offset / half eye distance =
    (depth / half eye distance) * tan(yaw) for a head turned by ``yaw`` (0 = frontal)."""
    if lm is None or lm.scheme not in _NOSE_DEPTH:
        return None
    pts = eye_nose(lm)
    if pts is None:
        return None
    left, right, nose = pts
    axis = right - left
    half = float(np.linalg.norm(axis)) / 2.0
    if half < 1e-6:
        return None
    offset = float(np.dot(nose - (left + right) / 2.0, axis / (2.0 * half)))
    return math.degrees(math.atan(offset / half / _NOSE_DEPTH[lm.scheme]))


def outside_fraction(lm: Landmarks | None, width: int, height: int, grid: int = 24) -> float:
    """The fraction of the face square (the padding-0 square of the aligned chip, brow to chin)
    that lies outside the photo, found by mapping the chip template back through the landmarks."""
    if lm is None:
        return 0.0
    from facebank.align import similarity_transform
    from facebank.detect.mtcnn import TEMPLATE_IN_DLIB_CHIP

    if lm.scheme == "mtcnn5":
        src, dst = TEMPLATE_IN_DLIB_CHIP, lm.as_array()[:5]
    else:
        pts = eye_nose(lm)
        if pts is None:
            return 0.0
        src, dst = TEMPLATE_IN_DLIB_CHIP[:2], np.stack(pts[:2])
    try:
        m = similarity_transform(src, dst)
    except ValueError:
        return 0.0
    u = (np.arange(grid) + 0.5) / grid
    gx, gy = np.meshgrid(u, u)
    square = np.stack([gx.ravel(), gy.ravel(), np.ones(gx.size)])
    x, y = m @ square
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    return float(1.0 - inside.mean())


def blur_ratio(gray: np.ndarray, size: int = 11) -> float:
    """No-reference blur of a grey image (Crete et al. 2007, "The blur effect"): how little of its
    edge strength is lost when it is blurred once more. 0 = sharp, 1 = no detail at all."""
    from scipy.ndimage import sobel, uniform_filter1d

    img = gray.astype(np.float64)
    out = []
    for axis in (0, 1):
        sharp = np.abs(sobel(img, axis=axis))
        blurred = np.abs(sobel(uniform_filter1d(img, size, axis=axis), axis=axis))
        sharp, blurred = sharp[2:-2, 2:-2], blurred[2:-2, 2:-2]
        total = float(sharp.sum())
        if total <= 1e-9:
            return 1.0
        lost = float(np.maximum(0.0, sharp - blurred).sum())
        out.append(abs(total - lost) / total)
    return max(out)


def face_region(chip: np.ndarray, padding: float = 0.25) -> np.ndarray:
    """The face proper of an aligned chip: the square inside the padding, inner 80 % of it."""
    n = chip.shape[0]
    lo = int(round(n * padding / (1 + 2 * padding))) + 1
    hi = n - lo
    shrink = int(round((hi - lo) * 0.1))
    return chip[lo + shrink:hi - shrink, lo + shrink:hi - shrink]


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def chip_measures(chip: np.ndarray, padding: float = 0.25) -> tuple[float, float, float, float]:
    """(blur ratio, mean luma, 5th and 95th percentile of luma; 0-255) of the face proper of an
    aligned RGB chip."""
    face = luma(face_region(chip, padding).astype(np.float64))
    low, high = np.percentile(face, [5, 95])
    return blur_ratio(face), float(face.mean()), float(low), float(high)
