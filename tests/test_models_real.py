"""The shared MobileFaceNet end to end through the installed path: install --from a local copy,
calibrate on pins10 (a ~1,000-photo subset), then verify, enroll + identify and scan with it.
The user data folder is a temporary directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facebank.cli import app

REPO = Path(__file__).resolve().parents[1]
SHARED_MODEL = Path(os.environ.get("FACEBANK_SHARED_MODELS") or REPO.parent / "shared" / "models") \
    / "mobilefacenet" / "MobileFaceNet.onnx"


def shared_model() -> Path:
    if not SHARED_MODEL.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SHARED_MODEL} is missing in CI")
        pytest.skip(f"the shared MobileFaceNet is not at {SHARED_MODEL}")
    return SHARED_MODEL


@pytest.fixture(scope="module")
def installed(tmp_path_factory, faces_dir):
    """mobilefacenet installed --from the shared copy and calibrated on pins10 (1,000 photos)."""
    data = tmp_path_factory.mktemp("data")
    mp = pytest.MonkeyPatch()
    mp.setenv("FACEBANK_DATA_DIR", str(data))
    model = shared_model()
    res = CliRunner().invoke(app, ["models", "install", "mobilefacenet", "--from", str(model),
                                   "--no-calibrate"])
    assert res.exit_code == 0, res.output
    yield data, mp
    mp.undo()


def test_an_uncalibrated_model_is_refused_with_the_command_to_run(installed, faces_dir):
    a, b = sorted((faces_dir / "5celeb" / "val" / "jerry_seinfeld").iterdir())[:2]
    res = CliRunner().invoke(app, ["verify", "--onnx-model", "mobilefacenet", str(a), str(b)])
    assert res.exit_code == 1 and "facebank models calibrate" in res.output


def test_calibrate_then_verify_identify_and_scan_with_mobilefacenet(installed, faces_dir, tmp_path):
    data, _ = installed
    run = CliRunner().invoke
    res = run(app, ["models", "calibrate", "mobilefacenet", str(faces_dir / "pins10"), "--limit", "1000",
                    "--json"])
    assert res.exit_code == 0, res.output
    pts = json.loads(res.output[res.output.index("{"):])["points"]
    assert pts["model_id"].startswith("onnx:b7120c095d60094f:")
    # this model's distances live on another scale than dlib's 0.42
    assert 0.9 < pts["verify_l2"] < 1.4 and 0.8 < pts["cluster_l2"] < 1.5
    listed = json.loads(run(app, ["models", "list", "--json"]).output)
    assert next(r for r in listed if r["name"] == "mobilefacenet")["operating_points"]["verify_l2"] == \
        pytest.approx(pts["verify_l2"])

    val = faces_dir / "5celeb" / "val"
    a, b = sorted((val / "jerry_seinfeld").iterdir())[:2]
    c = sorted((val / "mindy_kaling").iterdir())[0]
    same = run(app, ["verify", "--json", "--onnx-model", "mobilefacenet", str(a), str(b)])
    diff = run(app, ["verify", "--json", "--onnx-model", "mobilefacenet", str(a), str(c)])
    assert same.exit_code == 0 and json.loads(same.output)["threshold"] == pytest.approx(pts["verify_l2"])
    assert diff.exit_code == 3 and json.loads(diff.output)["same"] is False

    # a new gallery picks the best installed, calibrated model by itself (no --onnx-model)
    gallery = tmp_path / "g.db"
    res = run(app, ["enroll", str(faces_dir / "5celeb" / "train"), "-g", str(gallery), "-j", "1"])
    assert res.exit_code == 0, res.output
    from facebank.gallery.sqlite import SqliteGallery

    g = SqliteGallery(gallery)
    assert g.model_id == pts["model_id"]
    g.close()
    res = run(app, ["identify", str(val), "-g", str(gallery), "--json", "-j", "1"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    right = sum(any(f.get("name") == Path(r["path"]).parent.name for f in r.get("faces", [])) for r in rows)
    assert right >= 23, rows  # 5celeb val: 25 photos

    # scan of photos with several faces: the fixed-batch model embeds every face
    scan_g = tmp_path / "scan.db"
    res = run(app, ["scan", str(faces_dir / "detection_edge" / "multi_face"), "-g", str(scan_g),
                    "--onnx-model", "mobilefacenet", "-j", "1"])
    assert res.exit_code == 0 and "0 problems" in res.output, res.output


def test_cluster_and_audit_use_mobilefacenets_own_distances(installed, faces_dir, tmp_path):
    from facebank.embed.points import points_for

    data, _ = installed
    run = CliRunner().invoke
    res = run(app, ["models", "calibrate", "mobilefacenet", str(faces_dir / "pins10"), "--limit", "1000"])
    assert res.exit_code == 0, res.output
    gallery = tmp_path / "lib.db"
    res = run(app, ["scan", str(faces_dir / "5celeb" / "val"), "-g", str(gallery), "-j", "1"])
    assert res.exit_code == 0, res.output
    from facebank.gallery.sqlite import SqliteGallery

    g = SqliteGallery(gallery)
    model_id = g.model_id
    g.close()
    pts = points_for(model_id)
    res = run(app, ["cluster", "-g", str(gallery)])
    assert res.exit_code == 0 and f"threshold {pts.cluster_l2:.2f}" in res.output, res.output
    clusters = [line for line in res.output.splitlines() if line.startswith("cluster ")]
    assert 5 <= len(clusters) <= 8  # 5 people (dlib's 0.36 on this model would leave every face alone)
    res = run(app, ["audit", str(faces_dir / "5celeb" / "val"), "--onnx-model", "mobilefacenet", "-j", "1"])
    assert "audited 25 photos of 5 people" in res.output and "error:" not in res.output, res.output
    assert "mislabeled" not in res.output and "outlier" not in res.output
