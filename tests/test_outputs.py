"""Outputs never land on inputs (issue 17): every command that writes refuses an output that is,
contains or lies inside an input (by real path and by device/inode), `identify --annotate .`
leaves every original byte-identical, and quarantine never writes outside its folder."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import facebank
from facebank.audit.quarantine import QuarantineError, quarantine
from facebank.images import iter_image_files
from facebank.outputs import OutputClash, check_output, check_output_file, file_ids, write_replacing

SRC = Path(facebank.__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("FACEBANK_GALLERY", None)
    return subprocess.run([sys.executable, "-m", "facebank", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(run: subprocess.CompletedProcess, code: int = 2) -> str:
    assert run.returncode == code, (run.returncode, run.stdout, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    assert "Traceback" not in run.stderr
    return lines[0]


# -- the check itself ------------------------------------------------------------------------------
def test_an_output_that_is_contains_or_lies_inside_an_input_is_refused(tmp_path):
    photos = tmp_path / "photos"
    (photos / "ada").mkdir(parents=True)
    (photos / "ada" / "a.jpg").write_bytes(b"a")
    with pytest.raises(OutputClash, match="is the input"):
        check_output(photos, [photos], "--annotate")
    with pytest.raises(OutputClash, match="is the input"):
        check_output(photos / "ada" / "a.jpg", [photos / "ada" / "a.jpg"], "--report")
    with pytest.raises(OutputClash, match="contains the input"):
        check_output(tmp_path, [photos], "--annotate")
    with pytest.raises(OutputClash, match="contains the input"):
        check_output(photos / "ada", [photos / "ada" / "a.jpg"], "--annotate")
    with pytest.raises(OutputClash, match="lies inside the input"):
        check_output(photos / "ada" / "out" / "new", [photos], "--annotate")  # does not exist yet
    with pytest.raises(OutputClash, match="lies inside the input"):
        check_output(photos / ".." / "photos" / "r.html", [photos], "--report")
    assert check_output(tmp_path / "elsewhere", [photos], "--annotate") == tmp_path / "elsewhere"


def test_links_hard_links_and_a_second_path_of_the_same_folder_are_caught(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"a")
    (tmp_path / "alias").symlink_to(photos)
    with pytest.raises(OutputClash, match="is the input"):
        check_output(tmp_path / "alias", [photos], "--annotate")
    with pytest.raises(OutputClash, match="lies inside"):
        check_output(tmp_path / "alias" / "out", [photos], "--annotate")
    os.link(photos / "a.jpg", tmp_path / "hard.jpg")  # the same file under a second name
    with pytest.raises(OutputClash, match="is the input"):
        check_output(tmp_path / "hard.jpg", [photos / "a.jpg"], "--report")
    with pytest.raises(OutputClash, match="hard link"):
        check_output_file(tmp_path / "hard.jpg", file_ids([photos / "a.jpg"]), "--annotate")


def test_writing_over_a_hard_link_replaces_the_name_and_leaves_the_other_name_alone(tmp_path):
    (tmp_path / "original.jpg").write_bytes(b"original")
    os.link(tmp_path / "original.jpg", tmp_path / "copy.jpg")
    write_replacing(tmp_path / "copy.jpg", lambda tmp: tmp.write_bytes(b"new"))
    assert (tmp_path / "original.jpg").read_bytes() == b"original"
    assert (tmp_path / "copy.jpg").read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# -- commands ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_gallery(tmp_path_factory, faces_dir) -> Path:
    from facebank import FaceBank

    path = tmp_path_factory.mktemp("gallery") / "g.db"
    photos = list(iter_image_files(faces_dir / "5celeb" / "train" / "madonna"))[:2]
    with FaceBank(path, workers=1) as fb:
        assert fb.enroll_photos("madonna", photos).photos_enrolled == 2
    return path


@pytest.fixture
def photos(tmp_path, faces_dir) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, src in enumerate(list(iter_image_files(faces_dir / "5celeb" / "val" / "madonna"))[:3]):
        shutil.copy(src, folder / f"{i}.jpg")
    return folder


@pytest.mark.shared
def test_identify_annotate_dot_leaves_every_original_byte_identical(photos, small_gallery):
    before = digests(photos)
    names = sorted(p.name for p in photos.iterdir())
    # the photos given one by one from inside their folder: their copies would be written over them
    run = run_cli("identify", *names, "--annotate", ".", "-g", str(small_gallery), "-j", "1", cwd=photos)
    assert "--annotate" in one_error_line(run)
    # the folder given from its parent: the copies would go to ./photos/..., the originals
    run = run_cli("identify", "photos", "--annotate", ".", "-g", str(small_gallery), "-j", "1",
                  cwd=photos.parent)
    assert "contains the input" in one_error_line(run)
    run = run_cli("identify", ".", "--annotate", "out", "-g", str(small_gallery), "-j", "1", cwd=photos)
    assert "lies inside the input" in one_error_line(run)
    assert digests(photos) == before


@pytest.mark.shared
def test_an_annotated_copy_is_never_written_into_a_hard_link_of_its_photo(photos, small_gallery, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    os.link(photos / "0.jpg", out / "0.jpg")  # the place of 0.jpg's copy is the original itself
    before = digests(photos)
    run = run_cli("identify", *(str(p) for p in sorted(photos.iterdir())), "--annotate", str(out),
                  "-g", str(small_gallery), "-j", "1", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "hard link" in run.stderr
    assert digests(photos) == before
    assert (out / "1.jpg").is_file() and (out / "2.jpg").is_file()
    assert (out / "1.jpg").read_bytes() != (photos / "1.jpg").read_bytes()  # annotated, not a copy


def test_every_report_and_output_flag_refuses_its_input(tmp_path):
    photos = tmp_path / "photos"
    (photos / "ada").mkdir(parents=True)
    (photos / "ada" / "a.jpg").write_bytes(b"x")
    video = tmp_path / "v.mp4"
    video.write_bytes(b"not decoded: refused before")
    (tmp_path / "g.db.photos").mkdir()
    shutil.copy(video, tmp_path / "g.db.photos" / "v.mp4")  # a video inside the folder kept faces go to
    cases = [
        ("identify", str(video), "--annotate", str(video)),
        ("identify", str(video), "--report", str(video)),
        ("identify", str(tmp_path / "g.db.photos" / "v.mp4"), "--keep-unknown", "-g", str(tmp_path / "g.db")),
        ("identify", str(photos), "--annotate", str(photos / "ada")),
        ("audit", str(photos), "--report", str(photos / "audit.html")),
        ("audit", str(photos), "--quarantine", str(tmp_path)),
        ("audit", str(photos), "--quarantine", str(photos / "held")),
        ("evaluate", str(photos), "--report", str(photos / "r.html")),
        ("calibrate", str(photos), "--report", str(photos)),
        ("study", "gallery-size", str(photos), "--report", str(photos / "ada" / "r.html")),
        ("train", str(photos), "--out", str(photos / "model.bin")),
        ("demo", "--train", str(photos), "--test", str(photos), "--out", str(photos / "demo")),
        ("cluster", "-g", str(tmp_path / "g.db"), "--report", str(tmp_path / "g.db")),
    ]
    (tmp_path / "g.db").write_bytes(b"")
    for args in cases:
        line = one_error_line(run_cli(*args, cwd=tmp_path, timeout=120))
        assert "input" in line, (args, line)
    assert digests(photos) == {"ada/a.jpg": hashlib.sha256(b"x").hexdigest()}


# -- quarantine ----------------------------------------------------------------------------------------
def test_a_quarantine_person_folder_that_is_a_link_is_refused_and_nothing_leaves_the_quarantine(tmp_path):
    root, dest, elsewhere = tmp_path / "photos", tmp_path / "held", tmp_path / "elsewhere"
    for person in ("alice", "bob"):
        (root / person).mkdir(parents=True)
        (root / person / "1.jpg").write_bytes(person.encode())
    dest.mkdir()
    elsewhere.mkdir()
    (dest / "alice").symlink_to(elsewhere)
    rep = quarantine(root, [root / "alice" / "1.jpg", root / "bob" / "1.jpg"], dest)
    assert [Path(m.target).relative_to(dest).as_posix() for m in rep.moved] == ["bob/1.jpg"]
    assert [(Path(p).name, "link" in r) for p, r in rep.problems] == [("1.jpg", True)]
    assert list(elsewhere.iterdir()) == []
    assert (root / "alice" / "1.jpg").read_bytes() == b"alice"


def test_a_quarantine_folder_that_contains_the_audited_folder_is_refused(tmp_path):
    root = tmp_path / "photos"
    (root / "alice").mkdir(parents=True)
    (root / "alice" / "1.jpg").write_bytes(b"a")
    with pytest.raises(QuarantineError, match="contains"):
        quarantine(root, [root / "alice" / "1.jpg"], tmp_path)
    (tmp_path / "alias").symlink_to(root)
    with pytest.raises(QuarantineError):
        quarantine(root, [root / "alice" / "1.jpg"], tmp_path / "alias" / "held")
    assert (root / "alice" / "1.jpg").read_bytes() == b"a"


def test_a_bind_mount_of_the_input_folder_is_caught(tmp_path):
    """The same folder mounted at a second place: the paths differ, device and inode do not."""
    photos, mirror = tmp_path / "photos", tmp_path / "mirror"
    photos.mkdir()
    mirror.mkdir()
    (photos / "a.jpg").write_bytes(b"a")
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("bind mounts need mount(8) and root")
    if subprocess.run(["mount", "--bind", str(photos), str(mirror)], capture_output=True).returncode != 0:
        pytest.skip("bind mounts are not allowed here")
    try:
        assert (mirror / "a.jpg").is_file() and os.path.realpath(mirror) != os.path.realpath(photos)
        with pytest.raises(OutputClash, match="is the input"):
            check_output(mirror, [photos], "--annotate")
        with pytest.raises(OutputClash, match="lies inside the input"):
            check_output(mirror / "annotated", [photos], "--annotate")
        with pytest.raises(OutputClash, match="is the input"):
            check_output(mirror / "a.jpg", [photos / "a.jpg"], "--report")
    finally:
        subprocess.run(["umount", str(mirror)], capture_output=True)
