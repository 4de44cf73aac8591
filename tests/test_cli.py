"""The command line: helpful --help, JSON lines, people management, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from facebank.cli import app

runner = CliRunner()


def run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facebank", *args], capture_output=True, text=True,
                          timeout=600, **kw)


def test_help_lists_the_commands_and_teaches_usage():
    out = runner.invoke(app, ["--help"]).output
    for cmd in ("enroll", "identify", "verify", "people", "demo"):
        assert cmd in out
    assert "one folder per person" in out
    enroll_help = runner.invoke(app, ["enroll", "--help"]).output
    assert "--multi-face" in enroll_help and "rerun" in enroll_help


def test_missing_folder_is_a_clear_error(tmp_path):
    res = runner.invoke(app, ["enroll", str(tmp_path / "nope"), "--gallery", str(tmp_path / "g.db")])
    assert res.exit_code != 0 and "does not exist" in res.output


def test_identify_json_lines_and_people_commands(tmp_path, celeb_gallery, faces_dir):
    gallery = tmp_path / "g.db"
    gallery.write_bytes(celeb_gallery.read_bytes())
    val = sorted((faces_dir / "5celeb" / "val" / "madonna").iterdir())[:2]
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a photo")
    res = run("identify", "--json", "--gallery", str(gallery), "--annotate", str(tmp_path / "ann"),
              *map(str, val), str(bad))
    assert res.returncode == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(lines) == 3
    for obj in lines[:2]:
        assert set(obj) >= {"path", "faces", "error"} and obj["error"] is None
        face = obj["faces"][0]
        assert face["name"] == "madonna" and len(face["box"]) == 4
        assert isinstance(face["distance"], float) and isinstance(face["score"], float)
    assert lines[2]["error"] and lines[2]["faces"] == []
    assert len(list((tmp_path / "ann").iterdir())) == 2

    listed = run("people", "list", "--json", "--gallery", str(gallery))
    names = [p["name"] for p in json.loads(listed.stdout)]
    assert names == sorted(["ben_afflek", "elton_john", "jerry_seinfeld", "madonna", "mindy_kaling"])
    assert run("people", "rename", "madonna", "Madonna Ciccone", "--gallery", str(gallery)).returncode == 0
    assert run("people", "remove", "elton_john", "--gallery", str(gallery)).returncode == 0
    res = run("people", "remove", "nobody", "--gallery", str(gallery))
    assert res.returncode != 0 and "no person named" in res.stderr
    names = [p["name"] for p in json.loads(run("people", "list", "--json", "--gallery", str(gallery)).stdout)]
    assert "Madonna Ciccone" in names and "elton_john" not in names


def test_verify_exit_code_tells_same_or_different(faces_dir):
    a, b = sorted((faces_dir / "5celeb" / "val" / "jerry_seinfeld").iterdir())[:2]
    c = sorted((faces_dir / "5celeb" / "val" / "mindy_kaling").iterdir())[0]
    same = run("verify", "--json", str(a), str(b))
    diff = run("verify", "--json", str(a), str(c))
    assert same.returncode == 0 and json.loads(same.stdout)["same"] is True
    assert diff.returncode == 3 and json.loads(diff.stdout)["same"] is False  # 3: different people


def test_people_list_shows_the_threshold_the_gallery_estimates_and_identify_reports_its_score(
        tmp_path, celeb_gallery, faces_dir):
    gallery = tmp_path / "g.db"
    gallery.write_bytes(celeb_gallery.read_bytes())
    out = run("people", "list", "--gallery", str(gallery))
    assert out.returncode == 0, out.stderr
    last = out.stdout.splitlines()[-1]
    assert last.startswith("identification: rule margin:both:w=0.5, threshold ")
    assert "estimated from these 5 people for FAR 1 %" in last
    env_out = run("people", "list", "--gallery", str(gallery),
                  env={**os.environ, "FACEBANK_THRESHOLD": "0.25"})
    assert "threshold 0.2500 (set by FACEBANK_THRESHOLD)" in env_out.stdout.splitlines()[-1]
    photo = sorted((faces_dir / "5celeb" / "val" / "madonna").iterdir())[0]
    res = run("identify", "--json", "--gallery", str(gallery), str(photo))
    face = json.loads(res.stdout)["faces"][0]
    thr = float(last.split("threshold ")[1].split()[0])
    assert face["name"] == "madonna" and face["decision_score"] <= thr < face["distance"] + 0.5
    assert face["decision_score"] < face["distance"]  # the margin to the next person lowers it
