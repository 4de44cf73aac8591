"""Move flagged photos out of a labelled folder into a quarantine folder, and back.

Nothing is ever deleted. Each photo keeps its path relative to the audited folder under the
quarantine folder (``DIR/<person>/<photo>``); a name already taken gets `` (1)``, `` (2)`` ...
Every move is appended to ``DIR/facebank-undo-<stamp>.jsonl`` and ``.sh`` *as it happens*, so an
interrupted run can still be undone: ``sh DIR/facebank-undo-<stamp>.sh`` or ``undo(path)``.

Refused: a quarantine folder that is, lies inside (the next audit would walk it) or contains the
audited folder (compared by real path and by device/inode, ``facebank.outputs``), photos that are
symbolic links or are reached through one (never follow a link out of the folder), anything outside
the audited folder. Nothing is ever written outside the quarantine folder: a folder inside it that
is a link (``DIR/<person>`` -> elsewhere) is refused for the photos that would go there.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shlex
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class QuarantineError(ValueError):
    """The quarantine cannot start (a bad destination); nothing was moved."""


@dataclass(frozen=True)
class Moved:
    """One photo moved: ``source`` (where it was) -> ``target`` (where it is now)."""

    source: str
    target: str


@dataclass(frozen=True)
class QuarantineReport:
    moved: tuple[Moved, ...]
    problems: tuple[tuple[str, str], ...]  # (path, reason) of photos left where they were
    undo_file: str | None  # the JSON-lines undo list (None when nothing moved)
    undo_script: str | None


def check_destination(root: str | Path, dest: str | Path) -> tuple[Path, Path]:
    """(root, dest) resolved; raises QuarantineError when dest is root, inside it or contains it
    (by real path, or by device and inode: a bind mount or a second path of the same folder)."""
    from facebank.outputs import OutputClash, check_output

    root_r = Path(root).resolve()
    dest_r = Path(dest).resolve()
    if dest_r == root_r or dest_r.is_relative_to(root_r):
        raise QuarantineError(f"the quarantine folder {dest} is inside the audited folder {root}; "
                              "choose a folder outside it")
    try:
        check_output(dest, [root], "the quarantine folder")
    except OutputClash as exc:
        raise QuarantineError(str(exc)) from None
    if dest_r.exists() and not dest_r.is_dir():
        raise QuarantineError(f"{dest} exists and is not a folder")
    return root_r, dest_r


def _free_name(target: Path) -> Path:
    if not os.path.lexists(target):
        return target
    for n in range(1, 10_000):
        cand = target.with_name(f"{target.stem} ({n}){target.suffix}")
        if not os.path.lexists(cand):
            return cand
    raise OSError(errno.EEXIST, f"no free name for {target}")


def _move_file(src: Path, dst: Path) -> None:
    """Rename; across file systems copy to a hidden temporary name, then rename, then unlink the
    source (the target is never half-written, the source only goes once the copy is whole)."""
    try:
        os.rename(src, dst)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    tmp = dst.with_name(f".{dst.name}.facebank-partial")
    try:
        shutil.copy2(src, tmp, follow_symlinks=False)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.rename(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.unlink(src)


def quarantine(root: str | Path, paths: Iterable[str | Path], dest: str | Path) -> QuarantineReport:
    """Move ``paths`` (photos under ``root``) to ``dest``, mirroring their place under ``root``."""
    root_r, dest_r = check_destination(root, dest)
    root_abs = Path(os.path.abspath(root))
    moved: list[Moved] = []
    problems: list[tuple[str, str]] = []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    undo_json = dest_r / f"facebank-undo-{stamp}.jsonl"
    undo_sh = dest_r / f"facebank-undo-{stamp}.sh"
    logs = None
    try:
        for p in dict.fromkeys(str(x) for x in paths):
            path = Path(p)
            absolute = Path(os.path.abspath(path))
            try:
                rel = absolute.relative_to(root_abs)
            except ValueError:
                problems.append((p, f"not under the audited folder {root}; not moved"))
                continue
            if path.is_symlink():
                problems.append((p, "is a symbolic link; not moved"))
                continue
            real = Path(os.path.realpath(path))
            if real != root_r / rel:
                problems.append((p, "is reached through a symbolic link; not moved"))
                continue
            if not path.is_file():
                problems.append((p, "is no longer a file; not moved"))
                continue
            try:
                target = dest_r / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                if Path(os.path.realpath(target.parent)) != target.parent:
                    problems.append((p, f"the quarantine folder {target.parent.relative_to(dest_r)} is a "
                                        "link (or lies under one); nothing is moved out of the quarantine "
                                        "folder; not moved"))
                    continue
                target = _free_name(target)
                if logs is None:
                    logs = _open_undo(undo_json, undo_sh)
                _move_file(real, target)
            except OSError as exc:
                problems.append((p, f"could not move: {exc.strerror or exc}"))
                continue
            m = Moved(str(real), str(target))
            moved.append(m)
            _log_move(logs, m)
    finally:
        if logs is not None:
            for fh in logs:
                fh.close()
    log.info("quarantined %d photos in %s; %d left in place", len(moved), dest_r, len(problems))
    return QuarantineReport(tuple(moved), tuple(problems), str(undo_json) if moved else None,
                            str(undo_sh) if moved else None)


def _open_undo(undo_json: Path, undo_sh: Path):
    undo_json.parent.mkdir(parents=True, exist_ok=True)
    js = open(undo_json, "x", encoding="utf-8")  # noqa: SIM115 (closed by the caller)
    sh = open(undo_sh, "x", encoding="utf-8")  # noqa: SIM115
    sh.write("#!/bin/sh\n# Moves the photos quarantined by 'facebank audit' back (never overwrites).\n"
             "# Run it as: sh " + shlex.quote(str(undo_sh)) + "\nset -u\n")
    sh.flush()
    return js, sh


def _log_move(logs, m: Moved) -> None:
    js, sh = logs
    js.write(json.dumps({"from": m.source, "to": m.target}, ensure_ascii=False) + "\n")
    js.flush()
    sh.write(f"mkdir -p -- {shlex.quote(str(Path(m.source).parent))} && "
             f"mv -n -- {shlex.quote(m.target)} {shlex.quote(m.source)}\n")
    sh.flush()


def undo(undo_file: str | Path) -> QuarantineReport:
    """Move the photos of an undo list back where they were (latest first); a place taken again
    in the meantime is left alone and reported."""
    lines = Path(undo_file).read_text(encoding="utf-8").splitlines()
    moves = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            moves.append(Moved(str(item["from"]), str(item["to"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise QuarantineError(f"{undo_file} line {n} is no move: {exc}") from None
    back: list[Moved] = []
    problems: list[tuple[str, str]] = []
    for m in reversed(moves):
        src, dst = Path(m.target), Path(m.source)
        if os.path.lexists(dst):
            problems.append((m.target, f"{m.source} exists again; left in quarantine"))
            continue
        if not src.is_file() or src.is_symlink():
            problems.append((m.target, "is no longer in quarantine"))
            continue
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            _move_file(src, dst)
        except OSError as exc:
            problems.append((m.target, f"could not move back: {exc.strerror or exc}"))
            continue
        back.append(Moved(m.target, m.source))
    return QuarantineReport(tuple(back), tuple(problems), None, None)
