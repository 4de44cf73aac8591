"""Scan and cluster messages a user reads (issue 21): the progress bar says what runs, a rerun
reports no speed and no stale 'no face found', ``cluster --json`` gives the id ``people move`` takes."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from facebank import FaceBank
from facebank.cli import app
from facebank.cluster.scan import scan_library

runner = CliRunner()


def _library(tmp_path, faces_dir):
    lib = tmp_path / "lib"
    lib.mkdir()
    for i, p in enumerate(sorted((faces_dir / "5celeb" / "val").rglob("*.jpg"))[:2]):
        shutil.copy(p, lib / f"face{i}.jpg")
    shutil.copy(sorted((faces_dir / "detection_edge" / "no_face").iterdir())[0], lib / "none.jpg")
    return lib


def test_scan_progress_bar_is_labelled_scan(tmp_path, faces_dir):
    lib = _library(tmp_path, faces_dir)
    seen: list[str] = []

    def progress(it, **kw):
        seen.append(str(kw.get("desc")))
        return it

    with FaceBank(tmp_path / "g.db", workers=1) as fb:
        scan_library(fb, lib, progress=progress)
    assert seen == ["scan"]


def test_rerun_says_no_speed_and_no_stale_no_face(tmp_path, faces_dir):
    lib = _library(tmp_path, faces_dir)
    db = str(tmp_path / "g.db")
    first = runner.invoke(app, ["scan", str(lib), "--gallery", db, "--workers", "1"])
    assert first.exit_code == 0, first.output
    assert "photos/s" in first.output
    again = runner.invoke(app, ["scan", str(lib), "--gallery", db, "--workers", "1"])
    assert again.exit_code == 0, again.output
    assert "photos/s" not in again.output
    assert "first added" not in again.output
    assert "3 already known" in again.output


def test_cluster_json_gives_the_face_id_people_move_takes(tmp_path, faces_dir):
    lib = _library(tmp_path, faces_dir)
    db = str(tmp_path / "g.db")
    assert runner.invoke(app, ["scan", str(lib), "--gallery", db, "--workers", "1"]).exit_code == 0
    out = runner.invoke(app, ["cluster", "--gallery", db, "--json"])
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert rows and all(isinstance(r["face"], int) for r in rows)
    moved = runner.invoke(app, ["people", "move", str(rows[0]["face"]), "Ann", "--gallery", db])
    assert moved.exit_code == 0, moved.output
    assert "face" in moved.output and "Ann" in moved.output


def test_people_undo_and_hide_from_the_command_line(tmp_path, faces_dir):
    lib = _library(tmp_path, faces_dir)
    db = str(tmp_path / "g.db")
    assert runner.invoke(app, ["scan", str(lib), "--gallery", db, "--workers", "1"]).exit_code == 0
    listed = runner.invoke(app, ["cluster", "--gallery", db, "--json"]).stdout.splitlines()
    rows = [json.loads(x) for x in listed if x.startswith("{")]
    face = rows[0]["face"]
    assert runner.invoke(app, ["people", "move", str(face), "Ann", "--gallery", db]).exit_code == 0
    hidden = runner.invoke(app, ["people", "hide", "Ann", "--gallery", db])
    assert hidden.exit_code == 0 and "Ann is hidden" in hidden.output
    undone = runner.invoke(app, ["people", "undo", "2", "--gallery", db])
    assert undone.exit_code == 0, undone.output
    assert undone.output.splitlines() == ["undone: hide Ann", f"undone: face {face} to Ann"]
    again = runner.invoke(app, ["people", "undo", "--gallery", db])
    assert again.exit_code == 1 and again.output.startswith("error: nothing to undo")
    assert "Traceback" not in again.output
    bad = runner.invoke(app, ["people", "hide", "Nobody", "--gallery", db])
    assert bad.exit_code == 1 and "no person named 'Nobody'" in bad.output
