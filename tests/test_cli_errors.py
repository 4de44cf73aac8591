"""Every bad argument: one line 'error: ...', exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from facebank.cli import app

runner = CliRunner()


def refused(*args: str, match: str) -> str:
    """Run the CLI in this process; it must exit 2 with one line 'error: ...' containing ``match``."""
    res = runner.invoke(app, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    assert res.exit_code == 2, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and match in errors[0], res.output
    return errors[0]


@pytest.fixture
def gallery(tmp_path) -> str:
    from facebank.gallery.sqlite import SqliteGallery

    path = tmp_path / "g.db"
    SqliteGallery(path).close()
    return str(path)


@pytest.fixture
def jpeg(tmp_path) -> Path:
    from PIL import Image

    path = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 48), (120, 90, 60)).save(path)
    return path


def test_model_option_on_a_jpeg_a_missing_file_and_a_truncated_model(tmp_path, gallery, jpeg):
    refused("identify", str(jpeg), "-g", gallery, "--model", str(jpeg), match="not a facebank classifier")
    missing = str(tmp_path / "none.model")
    refused("identify", str(jpeg), "-g", gallery, "--model", missing, match="no such file")
    import numpy as np

    from facebank.learn.classifiers import create
    from facebank.learn.models import save_model
    from facebank.settings import Settings

    x = np.random.default_rng(0).normal(size=(12, 128)).astype(np.float32)
    model = tmp_path / "m.model"
    save_model(model, create("centroid").fit(x, ["a", "b", "c"] * 4), Settings())
    model.write_bytes(model.read_bytes()[:-40])
    refused("identify", str(jpeg), "-g", gallery, "--model", str(model), match="damaged")
    refused("identify", str(jpeg), "-g", gallery, "--model", str(tmp_path), match="folder")


def sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_gallery_option_on_a_folder_a_jpeg_and_another_apps_sqlite_file(tmp_path, jpeg):
    import sqlite3

    refused("people", "list", "-g", str(tmp_path), match="is a folder")
    refused("identify", str(jpeg), "-g", str(tmp_path), match="is a folder")
    refused("people", "list", "-g", str(jpeg), match="not a facebank gallery")
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        con.execute("INSERT INTO notes(text) VALUES ('mine')")
    con.close()
    before = sha(other)
    refused("people", "list", "-g", str(other), match="not a facebank gallery")
    refused("enroll", str(tmp_path), "-g", str(other), match="not a facebank gallery")
    refused("identify", str(jpeg), "-g", str(other), match="not a facebank gallery")
    assert sha(other) == before and not Path(str(other) + "-wal").exists()  # left as it was


def test_commands_that_only_read_refuse_a_missing_gallery_and_create_nothing(tmp_path, jpeg):
    missing = tmp_path / "nonexistent" / "dir" / "x.db"
    refused("identify", str(jpeg), "-g", str(missing), match="no gallery at")
    refused("people", "list", "-g", str(missing), match="no gallery at")
    refused("people", "remove", "ann", "-g", str(missing), match="no gallery at")
    refused("people", "rename", "ann", "bea", "-g", str(missing), match="no gallery at")
    assert not (tmp_path / "nonexistent").exists()


def test_bad_pipeline_options_are_one_line_errors(tmp_path, gallery, jpeg):
    refused("identify", str(jpeg), "-g", gallery, "--detector", "foo", match="unknown detector")
    refused("enroll", str(tmp_path), "-g", gallery, "--detector", "foo", match="unknown detector")
    refused("verify", str(jpeg), str(jpeg), "--embedder", "nope", match="unknown embedder")
    refused("identify", str(jpeg), "-g", gallery, "--crop-fallback", "sometimes", match="--crop-fallback")
    refused("enroll", str(tmp_path), "-g", gallery, "--multi-face", "all", match="--multi-face")


def test_annotate_pointing_at_a_file_is_refused(tmp_path, gallery, jpeg):
    refused("identify", str(jpeg), "-g", gallery, "--annotate", str(jpeg), match="--annotate")


def all_commands(group, prefix=()):
    import click

    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from all_commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


def test_help_shows_no_python_types_and_each_short_flag_means_one_thing():
    import typer.main

    root = typer.main.get_command(app)
    meaning: dict[str, set[str]] = {}
    for path, cmd in all_commands(root):
        res = runner.invoke(app, [*path, "--help"])
        assert res.exit_code == 0, (path, res.output)
        usage = res.output.split("\n\n", 1)[0]
        assert "{" not in usage and "}" not in usage, (path, usage)
        for bad in ("<str>", "<int>", "<float>", "list[", "<Path>", "<path>"):
            assert bad not in res.output, (path, bad, res.output)
        for param in cmd.params:
            longs = [o for o in param.opts if o.startswith("--")]
            for opt in param.opts:
                if len(opt) == 2 and opt.startswith("-"):
                    meaning.setdefault(opt, set()).add(longs[0] if longs else str(param.name))
    clashes = {flag: names for flag, names in meaning.items() if len(names) > 1}
    assert not clashes, clashes


def test_version():
    from facebank import __version__

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"facebank {__version__}"


def test_enroll_of_a_missing_folder_or_engine_is_a_bad_argument(tmp_path, gallery):
    refused("enroll", str(tmp_path / "nope"), "-g", gallery, match="does not exist")
    refused("enroll", str(tmp_path), "-g", gallery, "--engine", "spark", match="unknown engine")


def test_identify_with_a_model_needs_no_gallery(tmp_path, jpeg):
    import numpy as np

    from facebank.learn.classifiers import create
    from facebank.learn.models import save_model
    from facebank.settings import Settings

    x = np.random.default_rng(1).normal(size=(12, 128)).astype(np.float32)
    model = tmp_path / "m.model"
    save_model(model, create("centroid").fit(x, ["a", "b", "c"] * 4), Settings())
    missing = tmp_path / "none" / "g.db"
    res = runner.invoke(app, ["identify", str(jpeg), "-g", str(missing), "--model", str(model), "-j", "1"])
    assert res.exit_code == 0, res.output
    assert not missing.parent.exists()
