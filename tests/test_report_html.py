"""Plots, the self-contained HTML report, and the learn commands end to end on small real subsets."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from facebank.cli import app
from facebank.evaluate.metrics import roc
from facebank.images import iter_image_files
from facebank.learn.classifiers import EpochRecord
from facebank.report import plots
from facebank.report.html import Report

PNG = b"\x89PNG\r\n\x1a\n"


def test_every_plot_is_a_png():
    rng = np.random.default_rng(0)
    hist = [EpochRecord(i, 1.0 / i, 1.2 / i, 0.5 + i / 20, 0.5 + i / 25) for i in range(1, 8)]
    r = roc(rng.normal(0.3, 0.05, 200), rng.normal(0.6, 0.05, 200))
    pngs = [
        plots.photos_per_person({"ann": 3, "bob": 5}),
        plots.training_curves(hist),
        plots.confusion_matrix(np.array([[3, 1], [0, 4]]), ["ann", "bob"], ["ann", "bob"]),
        plots.roc_det({"x": r}),
        plots.distance_histogram(rng.normal(0.3, 0.05, 50), rng.normal(0.6, 0.05, 50), 0.45),
        plots.gallery_size_curve({"centroid": (np.array([1, 3]), np.array([0.8, 0.9]),
                                               np.array([0.05, 0.02]))}),
        plots.embedding_map(rng.normal(size=(30, 8)), ["a"] * 15 + ["b"] * 15),
        plots.bar_chart({"svm": (0.9, 0.01)}, "top-1", "t"),
    ]
    assert all(p.startswith(PNG) and len(p) > 2000 for p in pngs)


def test_photo_grid_marks_mistakes_red(faces_dir):
    photos = list(iter_image_files(faces_dir / "5celeb" / "val" / "madonna"))[:2]
    items = [plots.GridItem(str(photos[0]), "madonna", "madonna"),
             plots.GridItem(str(photos[1]), "madonna", "elton_john")]
    png = plots.photo_grid(items)
    assert png.startswith(PNG)
    from io import BytesIO

    from PIL import Image

    rgb = np.asarray(Image.open(BytesIO(png)).convert("RGB")).astype(int)
    red = (rgb[..., 0] > 180) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)
    assert red.sum() > 500, "the mistaken photo gets a red border and title"


def test_report_is_one_self_contained_file(tmp_path):
    rep = Report("t <&>")
    rep.heading("h").text("x < y").table(["a", "b"], [["r", 0.5]], highlight=0)
    rep.image(plots.bar_chart({"svm": (0.9, 0.01)}, "top-1", "t"), "cap")
    path = rep.save(tmp_path / "r.html")
    html = path.read_text()
    srcs = re.findall(r'src="([^"]+)"', html)
    assert len(srcs) == 1 and srcs[0].startswith("data:image/png;base64,")
    assert base64.b64decode(srcs[0].split(",", 1)[1]).startswith(PNG)
    assert "t &lt;&amp;&gt;" in html and "x &lt; y" in html
    assert "http" not in html.replace("http-equiv", "")


# ---- commands -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cache_path(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp() / "facebank-learn-cache.db"


def _subset(root: Path, dest: Path, per_person: int, people: int | None = None) -> Path:
    for folder in sorted(p for p in root.iterdir() if p.is_dir())[:people]:
        (dest / folder.name).mkdir(parents=True)
        for photo in list(iter_image_files(folder))[:per_person]:
            (dest / folder.name / photo.name).symlink_to(photo)
    return dest


def _run(args: list[str]):
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def _images(html: str) -> int:
    return len(re.findall(r'<img [^>]*src="data:image/png;base64,', html))


@pytest.mark.shared
def test_evaluate_command_prints_json_and_writes_a_report_with_every_plot(faces_dir, tmp_path, cache_path):
    root = _subset(faces_dir / "5celeb" / "train", tmp_path / "d", per_person=8)
    out = tmp_path / "r.html"
    res = _run(["evaluate", str(root), "--classifier", "centroid,mlp", "--folds", "3", "--report", str(out),
                "--json", "--cache", str(cache_path), "-j", "1"])
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["protocol"] == "kfold" and summary["folds"] == 3
    assert set(summary["results"]) == {"centroid", "mlp"} and summary["results"]["centroid"]["top1"] >= 0.8
    html = out.read_text()
    # bar chart, photos per person, training curves, confusion, grid, PCA map
    assert _images(html) >= 6
    for title in ("Training curves: mlp", "Embedding map", "Best classifier"):
        assert title in html
    text = _run(["evaluate", str(root), "--classifier", "centroid", "--folds", "2",
                 "--cache", str(cache_path),
                 "-j", "1"]).stdout
    assert "centroid" in text and "top-1" in text


@pytest.mark.shared
def test_open_set_study_and_calibrate_commands(faces_dir, tmp_path, cache_path):
    root = _subset(faces_dir / "pins10", tmp_path / "d", per_person=10, people=4)
    common = ["--cache", str(cache_path), "-j", "1", "--json"]
    s = json.loads(_run(["evaluate", str(root), "--open-set", "--known", "2", "--repeats", "2",
                         "-c", "centroid",
                         "--report", str(tmp_path / "o.html"), *common]).stdout.splitlines()[-1])
    assert s["protocol"] == "open-set" and "tar_at_far_1%" in s["results"]["centroid"]
    assert _images((tmp_path / "o.html").read_text()) >= 4
    s = json.loads(_run(["study", "gallery-size", str(root), "--per-person", "1,3", "--repeats", "2",
                         "--test-per-person", "3", "--report", str(tmp_path / "s.html"), *common])
                   .stdout.splitlines()[-1])
    assert set(s["results"]) == {"centroid", "nearest"} and set(s["results"]["nearest"]) == {"1", "3"}
    assert "Accuracy vs photos per person" in (tmp_path / "s.html").read_text() or _images(
        (tmp_path / "s.html").read_text()) >= 3
    s = json.loads(_run(["calibrate", str(root), "--far", "0.05", "--repeats", "2", *common])
                   .stdout.splitlines()[-1])
    assert s["protocol"] == "calibrate" and 0 < s["threshold"] < 1.5


@pytest.mark.shared
def test_trained_model_names_faces_through_identify(faces_dir, tmp_path, cache_path):
    model = tmp_path / "celeb.model"
    s = json.loads(_run(["train", str(faces_dir / "5celeb" / "train"), "--classifier", "svm",
                         "--out", str(model),
                         "--cache", str(cache_path), "-j", "1", "--json"]).stdout.splitlines()[-1])
    assert s["people"] == 5 and model.is_file() and 0.2 < s["threshold"] < 1.0
    val = faces_dir / "5celeb" / "val"
    photos = [next(iter_image_files(val / p)) for p in ("madonna", "elton_john")]
    res = _run(["identify", "--model", str(model), "--gallery", str(tmp_path / "g.db"), "--json", "-j", "1",
                *map(str, photos)])
    names = [json.loads(line)["faces"][0]["name"] for line in res.stdout.strip().splitlines()
             if line.startswith("{")]
    assert names == ["madonna", "elton_john"]
    # a stranger (LFW photo of someone else) is unknown at the calibrated threshold
    stranger = next(iter_image_files(faces_dir / "lfw" / "images"))
    res = _run(["identify", "--model", str(model), "--gallery", str(tmp_path / "g.db"), "--json", "-j", "1",
                str(stranger)])
    assert json.loads(res.stdout.strip().splitlines()[-1])["faces"][0]["name"] is None


@pytest.mark.shared
def test_lfw_benchmark_command_on_a_few_pairs(faces_dir, tmp_path, cache_path):
    out = tmp_path / "lfw.html"
    s = json.loads(_run(["benchmark", "lfw", str(faces_dir / "lfw"), "--limit", "1", "--no-flip", "--report",
                         str(out), "--cache", str(cache_path), "-j", "1", "--json"]).stdout.splitlines()[-1])
    assert s["protocol"] == "lfw-view2" and s["pairs"] == 20 and s["folds"] == 10
    assert s["accuracy"] >= 0.8
    assert _images(out.read_text()) >= 2
