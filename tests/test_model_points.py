"""Operating points are measured per model and every threshold is looked up through them."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from facebank import decide
from facebank.calibration.points import measure_points
from facebank.embed.points import (
    DLIB_POINTS,
    NotCalibrated,
    points_for,
    points_for_settings,
    points_key,
    save_points,
)
from facebank.settings import Settings


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEBANK_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def people(n_people: int = 30, per: int = 8, spread: float = 0.35, dim: int = 64, seed: int = 0):
    """Unit vectors around random centres: same-person distances near ``spread`` * sqrt(2), strangers
    near sqrt(2) (a wide-scale model such as an ArcFace-trained one)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_people, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = np.repeat(centres, per, axis=0) + spread * rng.standard_normal((n_people * per, dim)) / np.sqrt(dim)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), [f"p{i}" for i in range(n_people) for _ in range(per)]


def test_measured_points_follow_the_models_scale_not_dlibs():
    x, y = people()
    m = measure_points(x, y, "wide-model", far=0.01)
    p = m.points
    a, b = np.triu_indices(len(x), 1)
    lab = np.asarray(y)
    d = np.linalg.norm(x[a] - x[b], axis=1)
    genuine, impostor = d[lab[a] == lab[b]], d[lab[a] != lab[b]]
    assert (impostor <= p.verify_l2).mean() <= 0.01 and (genuine <= p.verify_l2).mean() > 0.95
    assert p.verify_l2 > 0.9  # a wide-scale model: far above dlib's 0.42
    assert p.prior_l2["nearest"] > 0.6 and p.cluster_l2 > 0.6 and m.cluster_f1 > 0.95
    assert p.link_l2 > p.verify_l2 and p.outlier_l2 >= p.link_l2
    assert list(p.impostor_l2) == sorted(p.impostor_l2) and len(p.impostor_l2) == len(p.impostor_levels)
    assert {"tnorm_default", "znorm_default", "spread_default"} <= set(p.extra)
    with pytest.raises(ValueError, match="at least 4 people"):
        measure_points(x[:16], y[:16], "too-small")


def test_points_are_saved_apart_from_the_model_id_and_flip_off_falls_back(data_dir):
    with pytest.raises(NotCalibrated, match="facebank models calibrate"):
        points_for("onnx:abc")
    pts = replace(DLIB_POINTS, model_id="onnx:abc", verify_l2=1.19)
    save_points(pts)
    assert points_for("onnx:abc").verify_l2 == 1.19
    assert points_for(points_key("onnx:abc", flip=False)).verify_l2 == 1.19  # no no-flip points: flip's
    save_points(replace(pts, model_id=points_key("onnx:abc", flip=False), verify_l2=1.2))
    assert points_for(points_key("onnx:abc", flip=False)).verify_l2 == 1.2
    assert json.loads((data_dir / "points" / "onnx_abc.json").read_text())["verify_l2"] == 1.19
    assert points_for_settings(Settings()).verify_l2 == DLIB_POINTS.verify_l2


def test_a_small_gallery_is_pulled_towards_its_own_models_prior_not_dlibs():
    x, y = people(n_people=4, per=6)
    wide = measure_points(*people(), "wide").points
    dlib_rule = decide.decision_for(x, y, "distance", 0.01)
    own = decide.decision_for(x, y, "distance", 0.01, points=wide)
    assert dlib_rule.point.threshold < 0.5  # dlib's prior drags a wide-scale gallery to nothing
    assert own.point.threshold > 0.8
    assert decide.create("margin", points=wide).default_threshold == pytest.approx(
        wide.prior_l2["nearest"] - wide.prior_margin_slope * 0.5)
    assert decide.create("tnorm", points=wide).default_threshold == wide.extra["tnorm_default"]
    assert decide.create("tnorm").default_threshold == DLIB_POINTS.extra["tnorm_default"]


def test_settings_leave_verify_and_cluster_thresholds_to_the_model():
    s = Settings()
    assert s.verify_threshold is None and s.cluster_threshold is None
    with pytest.raises(ValueError):
        Settings(verify_threshold=3.0)
