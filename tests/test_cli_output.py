"""What the CLI prints: valid JSON always, reasons for unknown faces, annotated copies that mirror
their inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from facebank.cli import app
from facebank.images import iter_image_files

runner = CliRunner()


def strict_json(line: str):
    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


@pytest.fixture
def empty_gallery(tmp_path) -> str:
    from facebank.gallery.sqlite import SqliteGallery

    SqliteGallery(tmp_path / "empty.db").close()
    return str(tmp_path / "empty.db")


@pytest.mark.shared
def test_identify_on_an_empty_gallery_prints_valid_json_and_says_gallery_is_empty(empty_gallery, faces_dir):
    photo = str(next(iter_image_files(faces_dir / "5celeb" / "val" / "madonna")))
    res = runner.invoke(app, ["identify", "--json", "-g", empty_gallery, "-j", "1", photo])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    face = strict_json(lines[0])["faces"][0]
    assert face["distance"] is None and face["score"] is None and face["name"] is None
    assert face["reason"] == "empty_gallery"
    plain = runner.invoke(app, ["identify", "-g", empty_gallery, "-j", "1", photo])
    assert "unknown (gallery is empty)" in plain.stdout and "nearest: None" not in plain.stdout


@pytest.mark.shared
def test_verify_json_reports_errors_as_json(tmp_path, faces_dir):
    photo = str(next(iter_image_files(faces_dir / "5celeb" / "val" / "madonna")))
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a photo")
    res = runner.invoke(app, ["verify", "--json", photo, str(bad)])
    assert res.exit_code == 1
    out = strict_json(res.stdout.strip().splitlines()[-1])
    assert out["same"] is None and "bad.jpg" in out["error"]


@pytest.mark.shared
def test_annotated_copies_mirror_the_input_folders_and_keep_their_format(tmp_path, empty_gallery, faces_dir):
    photo = next(iter_image_files(faces_dir / "5celeb" / "val" / "madonna"))
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "sub").mkdir(parents=True)
    b.mkdir()
    shutil.copy(photo, a / "x.jpg")
    shutil.copy(photo, a / "sub" / "x.jpg")
    Image.open(photo).convert("RGB").save(b / "x.png")
    Image.open(photo).convert("RGB").save(b / "y.jpg")
    out = tmp_path / "out"
    res = runner.invoke(app, ["identify", "-g", empty_gallery, "-j", "1", "--annotate", str(out),
                              str(a), str(b), str(b / "y.jpg")])
    assert res.exit_code == 0, res.output
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["a/sub/x.jpg", "a/x.jpg", "b/x.png", "b/y.jpg", "y.jpg"]
    assert Image.open(out / "b" / "x.png").format == "PNG"
    assert Image.open(out / "a" / "x.jpg").format == "JPEG"


def test_output_names_are_unique_even_for_the_same_file_name_twice(tmp_path):
    from facebank.folders import expand_with_names

    for rel in ("one/p.jpg", "two/p.jpg", "two/P.JPG"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    named = expand_with_names([tmp_path / "one" / "p.jpg", tmp_path / "two" / "p.jpg", tmp_path / "two"])
    names = [str(rel) for _, rel in named]
    assert names[:2] == ["p.jpg", "p-2.jpg"]
    assert len({n.casefold() for n in names}) == len(names) == 4
    assert Path(names[2]).parent.name == "two"
