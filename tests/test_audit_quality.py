"""Audit quality measures on made images: blur, brightness, yaw, faces cut by the edge."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facebank.audit.base import AuditConfig, AuditFolder, FaceFacts, PhotoFacts
from facebank.audit.quality import (
    QualityCheck,
    blur_ratio,
    chip_measures,
    outside_fraction,
    yaw_degrees,
)
from facebank.detect.mtcnn import TEMPLATE_IN_DLIB_CHIP
from facebank.types import Box, Landmarks


def _texture(seed: int = 0, size: int = 150) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size // 4, size // 4, 3), dtype=np.uint8)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_NEAREST)


def test_blur_ratio_grows_with_blur_and_is_one_on_a_flat_image():
    sharp = cv2.cvtColor(_texture(), cv2.COLOR_RGB2GRAY)
    ratios = [blur_ratio(cv2.GaussianBlur(sharp, (0, 0), s) if s else sharp) for s in (0, 1, 2, 4)]
    assert ratios == sorted(ratios) and ratios[0] < 0.5 < ratios[-1]
    assert blur_ratio(np.full((100, 100), 128, np.uint8)) == 1.0


def test_exposure_is_judged_by_highlights_and_shadows_not_by_skin_tone():
    cfg = AuditConfig()
    lit = np.clip(_texture().astype(int), 0, 255).astype(np.uint8)
    dark_skin = (lit * 0.45 + 10).astype(np.uint8)  # a darker face in good light: highlights ~125
    under = (lit * 0.25).astype(np.uint8)              # the same face a bit over 2 stops under
    over = np.clip(lit.astype(int) // 3 + 180, 0, 255).astype(np.uint8)  # washed out
    for chip, dark, bright in ((lit, False, False), (dark_skin, False, False), (under, True, False),
                               (over, False, True)):
        _, mean, low, high = chip_measures(chip)
        assert low <= mean <= high
        assert (high < cfg.dark_luma) == dark and (low > cfg.bright_luma) == bright


def _mtcnn_landmarks(cx: float, cy: float, side: float, nose_shift: float = 0.0) -> Landmarks:
    """The template's five points for a face of ``side`` px centred at (cx, cy); the nose moved
    sideways by ``nose_shift`` half eye distances."""
    pts = (TEMPLATE_IN_DLIB_CHIP - 0.5) * side + np.array([cx, cy])
    half = (pts[1, 0] - pts[0, 0]) / 2
    pts[2, 0] += nose_shift * half
    return Landmarks(tuple(map(tuple, pts.tolist())), "mtcnn5")


def test_yaw_is_zero_for_a_frontal_face_and_signed_when_the_nose_moves():
    assert abs(yaw_degrees(_mtcnn_landmarks(100, 100, 80))) < 2
    right = yaw_degrees(_mtcnn_landmarks(100, 100, 80, nose_shift=0.8))
    left = yaw_degrees(_mtcnn_landmarks(100, 100, 80, nose_shift=-0.8))
    assert right == pytest.approx(45, abs=1) and left == pytest.approx(-45, abs=1)
    assert yaw_degrees(None) is None
    dlib5 = Landmarks(((70, 50), (60, 50), (30, 50), (40, 50), (50, 70)), "dlib5")  # frontal
    assert abs(yaw_degrees(dlib5)) < 1


def test_face_square_outside_the_photo():
    inside = _mtcnn_landmarks(100, 100, 80)
    assert outside_fraction(inside, 200, 200) == 0.0
    half_out = _mtcnn_landmarks(0, 100, 80)  # centred on the left edge
    assert 0.4 < outside_fraction(half_out, 200, 200) < 0.6


def _face(side=120.0, sharpness=0.3, low=40.0, high=200.0, yaw=0.0, outside=0.0, fallback=False) -> FaceFacts:
    return FaceFacts(Box(10, 10, 10 + side, 10 + side), None, 0.99, np.zeros(128, np.float32),
                     fallback, sharpness, (low + high) / 2, yaw, outside, low, high)


def test_quality_check_reports_each_kind_once_and_nothing_for_a_good_face():
    faces = {
        "good.jpg": _face(), "small.jpg": _face(side=30), "blurry.jpg": _face(sharpness=0.9),
        "dark.jpg": _face(low=5, high=60), "bright.jpg": _face(low=200, high=255),
        "profile.jpg": _face(yaw=-70), "cut.jpg": _face(outside=0.4),
        "crop.jpg": _face(low=0, high=5, fallback=True),
    }
    photos = [PhotoFacts(p, "alice", "x", 300, 300, 0, (f,)) for p, f in faces.items()]
    folder = AuditFolder("/", photos, AuditConfig(), main=[0] * len(photos))
    found = {(f.path, f.kind) for f in QualityCheck().run(folder)}
    assert found == {("small.jpg", "small_face"), ("blurry.jpg", "blurry"), ("dark.jpg", "dark"),
                     ("bright.jpg", "bright"), ("profile.jpg", "profile"), ("cut.jpg", "cut")}
