"""Folder walking: every real folder once, loops and unreadable entries reported, the walk goes on."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from facebank import images
from facebank.folders import FolderWalk, expand_paths, labelled_photos

needs_symlinks = pytest.mark.skipif(os.name == "nt", reason="symbolic links need POSIX")
BOUND = 200  # the old walk never ended on a loop: look at this many results at most


def tree(root: Path, *files: str) -> Path:
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    return root


@needs_symlinks
def test_symlink_loops_are_walked_once_and_the_links_reported(tmp_path):
    d = tree(tmp_path / "d", "p/x.jpg")
    os.symlink(".", d / "p" / "self")
    os.symlink("../p", d / "p" / "up")
    found = list(itertools.islice(images.iter_image_files(d), BOUND))
    assert found == [d / "p" / "x.jpg"]
    walk = FolderWalk(d)
    assert list(walk.photos()) == [d / "p" / "x.jpg"]
    skipped = {Path(s.path).name: s.reason for s in walk.skipped}
    assert set(skipped) == {"self", "up"}
    assert all("link not followed" in r for r in skipped.values())


@needs_symlinks
def test_a_link_to_a_folder_containing_the_tree_is_not_followed(tmp_path):
    d = tree(tmp_path / "d", "p/x.jpg", "../elsewhere.jpg")
    os.symlink("../..", d / "p" / "top")
    os.symlink("/", d / "p" / "root")
    walk = FolderWalk(d)
    assert list(itertools.islice(walk.photos(), BOUND)) == [d / "p" / "x.jpg"]
    assert {Path(s.path).name for s in walk.skipped} == {"top", "root"}


@needs_symlinks
def test_a_link_out_of_the_tree_is_followed_once(tmp_path):
    outside = tree(tmp_path / "outside", "a.jpg", "sub/b.jpg")
    d = tree(tmp_path / "d", "p/x.jpg")
    os.symlink(outside, d / "p" / "more")
    os.symlink(outside, d / "p" / "again")
    os.symlink(d, outside / "sub" / "back")  # and from there back into the tree
    walk = FolderWalk(d)
    names = [p.name for p in itertools.islice(walk.photos(), BOUND)]
    assert sorted(names) == ["a.jpg", "b.jpg", "x.jpg"]
    reasons = {Path(s.path).name: s.reason for s in walk.skipped}
    assert set(reasons) == {"more", "back"} or set(reasons) == {"again", "back"}


@needs_symlinks
def test_a_person_folder_linked_to_another_person_is_not_labelled_twice(tmp_path):
    d = tree(tmp_path / "d", "alice/1.jpg", "alice/2.jpg", "real_bob/3.jpg")
    os.symlink("alice", d / "bob")
    outside = tree(tmp_path / "carol_photos", "4.jpg")
    os.symlink(outside, d / "carol")
    skipped: list[tuple[str, str]] = []
    pairs = list(itertools.islice(labelled_photos(d, on_skip=lambda p, r: skipped.append((p, r))), BOUND))
    assert [(name, p.name) for name, p in pairs] == [
        ("alice", "1.jpg"), ("alice", "2.jpg"), ("carol", "4.jpg"), ("real_bob", "3.jpg")]
    assert [Path(p).name for p, _ in skipped] == ["bob"]


@needs_symlinks
def test_an_io_error_on_one_file_is_that_files_problem(tmp_path):
    d = tree(tmp_path / "d", "p/good.jpg")
    os.symlink("/proc/self/mem", d / "p" / "mem.jpg")  # reading offset 0 fails with EIO
    os.symlink(d / "p" / "nowhere.jpg", d / "p" / "dangling.jpg")
    walk = FolderWalk(d)
    found = list(walk.photos())
    assert [p.name for p in found] == ["good.jpg", "mem.jpg"]
    assert [Path(s.path).name for s in walk.skipped] == ["dangling.jpg"]
    if Path("/proc/self/mem").exists():
        with pytest.raises(images.ImageError, match="mem.jpg") as err:
            images.read_bytes(d / "p" / "mem.jpg")
        assert err.value.code == "unreadable_file"
        assert images.read_bytes(d / "p" / "good.jpg") == b"x"


@needs_symlinks
def test_devices_and_fifos_named_like_photos_are_reported_never_opened(tmp_path):
    d = tree(tmp_path / "d", "p/good.jpg")
    os.mkfifo(d / "p" / "pipe.jpg")  # opening it for reading would wait forever for a writer
    os.symlink("/dev/zero", d / "p" / "zero.jpg")  # reading it would never end
    walk = FolderWalk(d)
    assert [p.name for p in walk.photos()] == ["good.jpg"]
    assert sorted(Path(s.path).name for s in walk.skipped) == ["pipe.jpg", "zero.jpg"]
    for name in ("pipe.jpg", "zero.jpg"):  # named on the command line: refused, not read
        with pytest.raises(images.ImageError, match="not a regular file"):
            images.read_bytes(d / "p" / name)


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="root reads every folder")
def test_an_unreadable_folder_is_reported_and_the_walk_goes_on(tmp_path):
    d = tree(tmp_path / "d", "a/1.jpg", "b/2.jpg", "c/3.jpg")
    (d / "b").chmod(0)
    try:
        walk = FolderWalk(d)
        assert [p.name for p in walk.photos()] == ["1.jpg", "3.jpg"]
        assert [(Path(s.path).name, "Permission denied" in s.reason) for s in walk.skipped] == [("b", True)]
    finally:
        (d / "b").chmod(0o755)


def test_photos_in_the_root_of_a_labelled_tree_are_reported(tmp_path):
    d = tree(tmp_path / "d", "loose.jpg", "ann/a.jpg", ".hidden/h.jpg", "ann/.h.jpg", "ann/notes.txt")
    walk = FolderWalk(d)
    assert [(n, p.name) for n, p in walk.labelled()] == [("ann", "a.jpg")]
    assert [Path(s.path).name for s in walk.skipped] == ["loose.jpg"]
    assert [(n, p.name) for n, p in FolderWalk(d).labelled("zoe")] == [("zoe", "a.jpg"), ("zoe", "loose.jpg")]


def test_a_deep_tree_does_not_exhaust_the_stack(tmp_path):
    levels = [tmp_path / "deep"]
    try:
        for _ in range(1200):  # deeper than Python's recursion limit
            levels[-1].mkdir()
            levels.append(levels[-1] / "d")
        (levels[-2] / "x.jpg").write_bytes(b"x")
        assert [p.name for p in images.iter_image_files(tmp_path)] == ["x.jpg"]
    except OSError:
        pytest.skip("the file system refuses such a deep path")
    finally:  # bottom up: pytest's own clean-up would recurse too deep
        (levels[-2] / "x.jpg").unlink(missing_ok=True)
        for level in reversed(levels):
            if level.is_dir():
                level.rmdir()


def test_files_named_on_the_command_line_are_kept_whatever_their_name(tmp_path):
    d = tree(tmp_path / "d", "a.jpg", "sub/b.png")
    (tmp_path / "notes.txt").write_text("x")
    got = expand_paths([d, tmp_path / "notes.txt", tmp_path / "missing.jpg"])
    assert [p.name for p in got] == ["a.jpg", "b.png", "notes.txt", "missing.jpg"]


@pytest.fixture
def looped_tree(tmp_path, faces_dir) -> Path:
    """d/p/x.jpg (a real face), d/p/copy/y.jpg, two loops, a file whose read fails with EIO."""
    photo = next(images.iter_image_files(faces_dir / "5celeb" / "train" / "madonna"))
    d = tree(tmp_path / "d", "p/copy/.keep")
    (d / "p" / "x.jpg").write_bytes(photo.read_bytes())
    os.symlink(".", d / "p" / "self")
    os.symlink("../p", d / "p" / "up")
    os.symlink("/proc/self/mem", d / "p" / "mem.jpg")
    return d


@needs_symlinks
@pytest.mark.shared
@pytest.mark.slow
def test_enroll_and_identify_finish_on_symlink_loops_and_name_the_unreadable_file(looped_tree, tmp_path):
    from typer.testing import CliRunner

    from facebank.cli import app

    runner = CliRunner()
    db = str(tmp_path / "g.db")
    r = runner.invoke(app, ["enroll", str(looped_tree), "-g", db, "-j", "1"])
    assert r.exit_code == 0, r.output
    assert "enrolled 1 photos (1 faces) of 1 people" in r.output
    assert "mem.jpg" in r.output
    assert "self: link not followed" in r.output and "up: link not followed" in r.output
    r = runner.invoke(app, ["identify", str(looped_tree), "-g", db, "-j", "1"])
    assert r.exit_code == 0, r.output
    lines = [line for line in r.output.splitlines() if line.startswith(str(looped_tree))]
    assert [line.split(":")[0].rsplit("/", 1)[1] for line in lines] == ["mem.jpg", "x.jpg"], r.output
    assert "madonna" not in lines[0] and "p [distance" in lines[1]
