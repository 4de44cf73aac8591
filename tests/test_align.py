"""Alignment: the similarity fit behind MTCNN chips, and faces cut by the edge of tight crops."""

from __future__ import annotations

import numpy as np
import pytest

from facebank.align import similarity_transform


def apply(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ matrix[:, :2].T + matrix[:, 2]


FIVE = np.array([[38.0, 52.0], [74.0, 51.0], [56.0, 72.0], [41.0, 92.0], [71.0, 91.0]])


def test_similarity_transform_recovers_an_exact_similarity() -> None:
    angle, scale, shift = np.deg2rad(12.0), 1.7, np.array([-20.0, 35.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = FIVE @ (scale * rot).T + shift
    m = similarity_transform(FIVE, dst)
    np.testing.assert_allclose(m[:, :2], scale * rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-7)


def test_every_point_pulls_on_the_fit() -> None:
    """Least squares: moving one point (a smiling mouth corner) moves the fit a little, it is
    neither ignored (as a robust two-point fit would) nor followed exactly."""
    dst = FIVE * 1.3 + 5.0
    base = similarity_transform(FIVE, dst)
    moved = FIVE.copy()
    moved[4] += [6.0, 4.0]
    m = similarity_transform(moved, dst)
    residual = np.linalg.norm(apply(m, moved) - dst, axis=1)
    assert not np.allclose(m, base)
    assert residual.max() < np.linalg.norm([6.0, 4.0]) * 1.3  # spread over the points
    # the least-squares optimum: no small change of the matrix lowers the squared error
    err = float((residual**2).sum())
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = rng.normal(scale=1e-3, size=2)
        tweak = m + np.array([[a, -b, 0.0], [b, a, 0.0]]) + np.r_[0, 0, rng.normal(scale=1e-2)].reshape(1, 3)
        assert float(((apply(tweak, moved) - dst) ** 2).sum()) >= err - 1e-9


def test_never_returns_a_mirror_image() -> None:
    mirrored = FIVE * np.array([-1.0, 1.0])
    m = similarity_transform(FIVE, mirrored)
    assert np.linalg.det(m[:, :2]) > 0


def test_rejects_degenerate_points() -> None:
    with pytest.raises(ValueError):
        similarity_transform(np.ones((5, 2)), FIVE)
    with pytest.raises(ValueError):
        similarity_transform(FIVE[:3], FIVE)


def test_face_cut_by_the_crop_edge_is_found_inside_a_border(faces_dir) -> None:
    """A 160 px kpop15 crop that starts at the eyes: MTCNN finds nothing in it, but finds the face
    once the crop sits in a black border; landmarks come back in the crop's own pixels."""
    from facebank import images
    from facebank.pipeline import FacePipeline
    from facebank.settings import Settings

    rgb = images.load_image(faces_dir / "kpop15" / "train" / "Yuju" / "bb6eda8.jpg").rgb
    h, w = rgb.shape[:2]
    plain = FacePipeline(Settings(pad_crops=0.0, crop_fallback="never"))
    assert plain.detections(rgb) == []
    padded = FacePipeline(Settings(crop_fallback="never"))
    found = padded.detections(rgb)
    assert len(found) == 1 and not found[0].fallback and found[0].detector == "mtcnn"
    box = found[0].box
    assert 0 <= box.x1 < box.x2 <= w and 0 <= box.y1 < box.y2 <= h
    eyes = np.asarray(found[0].landmarks.points[:2])
    assert (eyes[:, 1] < h / 2).all() and eyes[0, 0] < eyes[1, 0]  # both eyes in the top half, left first
    # a crop with no face (a cheek and neck) stays faceless with the border too
    cheek_path = faces_dir / "kpop15" / "train" / "Lisa" / "Screenshot_20190905-000650__01.jpg"
    cheek = images.load_image(cheek_path).rgb
    assert padded.detections(cheek) == []
