"""Numbers are validated at the edges (issue 17): each decision rule declares the range of its
threshold's unit and refuses the rest; the CLI says so in one 'error:' line with exit code 2 (no
traceback) for thresholds, FAR, workers and ports; the API answers 422 (tests/test_server_answers.py)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import facebank
from facebank import decide

SRC = Path(facebank.__file__).resolve().parents[1]


# -- the rules ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, good, bad", [
    ("distance", [0.0, 0.42, 2.0], [-0.01, 2.01, math.inf, -math.inf, math.nan]),
    ("distance:combine=mean", [1.0], [3.0, math.nan]),
    ("margin:weight=0.5", [-0.3, 0.0, 0.28, 2.4], [math.inf, -math.inf, math.nan]),
    ("tnorm", [-7.4, 3.0], [math.inf, math.nan]),
    ("znorm", [-4.6, 0.0], [-math.inf, math.nan]),
    ("spread", [0.0, 0.85, 40.0], [-0.1, math.inf, math.nan]),
])
def test_each_rule_declares_its_range_and_refuses_the_rest(spec, good, bad):
    rule = decide.parse(spec)
    low, high = decide.threshold_range(rule)
    assert low <= rule.default_threshold <= high
    for v in good:
        assert decide.check_threshold(rule, v) == v
        assert decide.check_threshold(spec, v) == v
    for v in bad:
        with pytest.raises(ValueError, match=rf"out of range for the {rule.name} rule: its unit is"):
            decide.check_threshold(rule, v)


def test_a_decision_refuses_a_threshold_out_of_its_rules_range():
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(6, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    names = ["a", "a", "b", "b", "c", "c"]
    with pytest.raises(ValueError, match="distance rule"):
        decide.decision_for(vecs, names, "distance", 0.01, threshold=math.inf)
    d = decide.decision_for(vecs, names, "distance", 0.01)
    dist = decide.gallery_faces(vecs, names).person_distances(vecs[:1])
    assert len(d.name(dist, 0.5)) == 1
    for v in (math.nan, math.inf, 2.5):
        with pytest.raises(ValueError):
            d.name(dist, v)


# -- the command line -----------------------------------------------------------------------------------
def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
    full.pop("FACEBANK_GALLERY", None)
    return subprocess.run([sys.executable, "-m", "facebank", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=120)


CASES = [
    (["identify", "x.jpg", "--threshold", "inf"], {}, "--threshold"),
    (["identify", "x.jpg", "--threshold", "nan"], {}, "--threshold"),
    (["identify", "x.jpg", "--threshold", "5"], {"FACEBANK_DECISION": "distance"}, "from 0 to 2"),
    (["verify", "a.jpg", "b.jpg", "--threshold", "-1"], {}, "--threshold"),
    (["calibrate", ".", "--far", "2"], {}, "--far"),
    (["calibrate", ".", "--far", "0"], {}, "--far"),
    (["calibrate", ".", "--far", "nan"], {}, "--far"),
    (["train", ".", "--out", "m.bin", "--far", "1"], {}, "--far"),
    (["train", ".", "--out", "m.bin", "--threshold", "inf"], {}, "--threshold"),
    (["benchmark", "openset", ".", "--target-far", "1.5"], {}, "--target-far"),
    (["cluster", "--threshold", "-5"], {}, "--threshold"),
    (["cluster", "--threshold", "nan"], {}, "--threshold"),
    (["enroll", ".", "-j", "-5"], {}, "--workers"),
    (["scan", ".", "-j", "-1"], {}, "--workers"),
    (["audit", ".", "-j", "-2"], {}, "--workers"),
    (["serve", "--port", "99999"], {}, "--port"),
    (["serve", "--port", "0"], {}, "--port"),
    (["serve", "--port", "-1"], {}, "--port"),
    (["serve", "--max-upload-mb", "nan"], {}, "--max-upload-mb"),
    (["people", "list", "-g", "g.db"], {"FACEBANK_THRESHOLD": "nan"}, "FACEBANK_THRESHOLD"),
    (["people", "list", "-g", "g.db"], {"FACEBANK_WORKERS": "-3"}, "FACEBANK_WORKERS"),
    (["people", "list", "-g", "g.db"], {"FACEBANK_CLUSTER_THRESHOLD": "inf"}, "FACEBANK_CLUSTER_THRESHOLD"),
]


IDS = [" ".join(a) + "".join(f" {k}={v}" for k, v in e.items()) for a, e, _ in CASES]


@pytest.mark.parametrize("args, env, named", CASES, ids=IDS)
def test_a_number_out_of_range_is_one_error_line_and_exit_2(tmp_path, args, env, named):
    (tmp_path / "x.jpg").write_bytes(b"x")
    if args[0] == "people":  # a real gallery: only the number can be what is wrong
        from facebank.gallery import open_gallery

        open_gallery(str(tmp_path / "g.db")).close()
    r = run(*args, cwd=tmp_path, env=env)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "m.bin").exists()
