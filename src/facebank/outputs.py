"""Outputs never land on inputs: every command that writes checks its output against its inputs.

An output (``identify --annotate``'s folder or OUT.mp4, every ``--report``, ``audit --quarantine``,
``facebank backup``'s file...) is refused when it IS an input, CONTAINS one (writing mirrored
copies under it could reach the originals: ``identify photos/ --annotate .``) or LIES INSIDE one
(the next walk of the input would take the outputs for inputs). Compared twice, so no spelling
slips through:

- by resolved path (``..``, ``.``, links);
- by (device, inode) of the output, of each of its existing ancestors, and of each input and its
  ancestors, so a hard link of an input file, a bind mount of an input folder or a second path to
  the same folder is caught as well.

``write_replacing`` writes a file through a temporary name and a rename, so even an output that
is a hard link of something else never changes the other name's bytes.

This module is a leaf: it imports nothing of facebank.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["OutputClash", "check_output", "check_output_file", "write_replacing"]


class OutputClash(ValueError):
    """An output that is, contains or lies inside an input (``str``: one line for the user)."""


def _real(path: Path) -> Path:
    """The path with every existing part resolved (the part that does not exist yet kept)."""
    return Path(os.path.realpath(path))


def _id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _chain(path: Path) -> list[tuple[Path, tuple[int, int]]]:
    """(path, (device, inode)) of ``path`` (if it exists) and of each existing ancestor, nearest
    first; ancestors found through ``..`` of the real path, so a bind mount shows its own id."""
    out: list[tuple[Path, tuple[int, int]]] = []
    real = _real(path)
    for p in (real, *real.parents):
        ident = _id(p)
        if ident is not None:
            out.append((p, ident))
    return out


def check_output(output: str | Path, inputs: Iterable[str | Path], flag: str = "the output") -> Path:
    """Refuse (``OutputClash``) an ``output`` that is, contains or lies inside one of ``inputs``
    (files or folders); returns the output's real path. ``flag`` names the output in the message
    (e.g. ``--annotate out``). Inputs that do not exist are ignored (their own error comes later)."""
    out = Path(output)
    out_real = _real(out)
    out_chain = _chain(out)
    out_ids = {ident for _, ident in out_chain}
    out_self = _id(out_real)
    for given in inputs:
        inp = Path(given)
        in_real = _real(inp)
        in_id = _id(in_real)
        if in_id is None:
            continue
        what = f"{flag} {output}"
        if out_real == in_real or out_self == in_id:
            raise OutputClash(f"{what} is the input {given} itself; writing it would overwrite the input "
                              "(choose another output)")
        if in_id in out_ids or in_real in out_real.parents:
            raise OutputClash(f"{what} lies inside the input {given}; outputs are never written inside an "
                              "input (choose a place outside it)")
        in_ancestors = {ident for _, ident in _chain(in_real)[1:]}
        if out_real in in_real.parents or (out_self is not None and out_self in in_ancestors):
            raise OutputClash(f"{what} contains the input {given}; writing there could overwrite the "
                              "input (choose a place outside it)")
    return out_real


def check_output_file(target: str | Path, input_ids: set[tuple[int, int]], flag: str = "the output") -> None:
    """Refuse one output FILE that exists and is the same file (device, inode) as an input photo
    (a hard link: writing it in place would change the original)."""
    ident = _id(Path(target))
    if ident is not None and ident in input_ids:
        raise OutputClash(f"{flag}: {target} is the same file as an input photo (a hard link); not written")


def file_ids(paths: Iterable[str | Path]) -> set[tuple[int, int]]:
    """(device, inode) of each existing file of ``paths``."""
    return {ident for p in paths if (ident := _id(Path(p))) is not None}


def write_replacing(target: str | Path, write: Callable[[Path], None]) -> Path:
    """Write ``target`` through a hidden temporary file in the same folder, then rename it over:
    the old file (and any other name of it, a hard link) is never written into, and a failed
    write leaves no half file. ``write(tmp)`` writes the content."""
    target = Path(target)
    tmp = target.with_name(f".{target.name}.facebank-partial")
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
