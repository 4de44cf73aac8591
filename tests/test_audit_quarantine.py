"""Quarantine: flagged photos are moved (never deleted) with their relative paths, name clashes get
a new name, links are not followed, a destination inside the folder is refused, and the undo list
(library or shell script) puts everything back."""

from __future__ import annotations

import os
import subprocess

import pytest

from facebank.audit.quarantine import QuarantineError, quarantine, undo


def _tree(root):
    files = {}
    for person in ("alice", "bob"):
        (root / person).mkdir(parents=True)
        for n in range(3):
            p = root / person / f"{n}.jpg"
            p.write_bytes(f"{person}{n}".encode())
            files[str(p)] = p.read_bytes()
    return files


def _snapshot(root):
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def test_round_trip_with_the_library_undo(tmp_path):
    root, dest = tmp_path / "photos", tmp_path / "held"
    before = _tree(root)
    flagged = [root / "alice" / "0.jpg", root / "bob" / "2.jpg", root / "alice" / "0.jpg"]  # twice: once
    (dest / "alice").mkdir(parents=True)
    (dest / "alice" / "0.jpg").write_bytes(b"already here")  # a name clash in the quarantine
    rep = quarantine(root, flagged, dest)
    assert not rep.problems and len(rep.moved) == 2
    assert not (root / "alice" / "0.jpg").exists() and (dest / "bob" / "2.jpg").read_bytes() == b"bob2"
    assert (dest / "alice" / "0 (1).jpg").read_bytes() == b"alice0"
    assert (dest / "alice" / "0.jpg").read_bytes() == b"already here"  # nothing overwritten
    back = undo(rep.undo_file)
    assert len(back.moved) == 2 and not back.problems
    assert _snapshot(root) == before


def test_round_trip_with_the_shell_script(tmp_path):
    root, dest = tmp_path / "photos", tmp_path / "held out"  # a space in the name
    before = _tree(root)
    rep = quarantine(root, [root / "bob" / "1.jpg"], dest)
    subprocess.run(["sh", rep.undo_script], check=True, timeout=60)
    assert _snapshot(root) == before


def test_a_destination_inside_the_folder_is_refused_and_nothing_moves(tmp_path):
    root = tmp_path / "photos"
    before = _tree(root)
    for bad in (root, root / "quarantine", root / "alice" / "x"):
        with pytest.raises(QuarantineError, match="inside"):
            quarantine(root, [root / "alice" / "0.jpg"], bad)
    assert _snapshot(root) == before


def test_links_and_outside_paths_are_left_alone(tmp_path):
    root, dest, outside = tmp_path / "photos", tmp_path / "held", tmp_path / "elsewhere"
    _tree(root)
    outside.mkdir()
    secret = outside / "secret.jpg"
    secret.write_bytes(b"keep me")
    os.symlink(secret, root / "alice" / "link.jpg")
    os.symlink(outside, root / "bob" / "linked_dir")
    rep = quarantine(root, [root / "alice" / "link.jpg", root / "bob" / "linked_dir" / "secret.jpg",
                            secret, root / "alice" / "gone.jpg"], dest)
    assert not rep.moved and rep.undo_file is None
    reasons = dict(rep.problems)
    assert "symbolic link" in reasons[str(root / "alice" / "link.jpg")]
    assert "symbolic link" in reasons[str(root / "bob" / "linked_dir" / "secret.jpg")]
    assert "not under" in reasons[str(secret)]
    assert "no longer" in reasons[str(root / "alice" / "gone.jpg")]
    assert secret.read_bytes() == b"keep me" and (root / "alice" / "link.jpg").is_symlink()


def test_undo_leaves_a_place_taken_again_alone(tmp_path):
    root, dest = tmp_path / "photos", tmp_path / "held"
    _tree(root)
    rep = quarantine(root, [root / "alice" / "1.jpg"], dest)
    (root / "alice" / "1.jpg").write_bytes(b"new photo")
    back = undo(rep.undo_file)
    assert not back.moved and "exists again" in back.problems[0][1]
    assert (root / "alice" / "1.jpg").read_bytes() == b"new photo" and (dest / "alice" / "1.jpg").exists()
