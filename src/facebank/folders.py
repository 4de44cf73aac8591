"""Walking photo folders safely: every real folder once, links that would loop skipped and named.

Every command and job that takes a folder lists it here (enroll, identify, server jobs, Ray
enrollment, evaluation). A folder tree is user input like any other:

- symbolic links to folders are followed only when they lead OUT of the tree being walked (a
  person's folder that lives elsewhere); a link back into the tree or to a folder that contains it
  (``ln -s . self``, ``ln -s ../p up``, ``ln -s / root``) is skipped and reported, and no real folder
  (device + inode) is ever entered twice, so loops and bind mounts cannot make a walk endless;
- an entry that cannot be listed or examined (permission denied, I/O error, a dangling link) is
  that entry's problem: it is reported and the walk goes on;
- a photo-named entry that is no regular file (a FIFO, a device such as ``/dev/zero``) is reported
  and never opened, so reading it cannot block or fill memory;
- hidden entries (``.name``) are not walked; the order is stable (sorted by name);
- a walk ``confine_to`` a folder (the server's enroll root) never leaves it: every link is
  resolved, one that leads outside is that entry's problem (its message names nothing outside),
  and the reader checks the file it actually opened (``images.read_bytes(within=...)``), so a link
  swapped in after the walk cannot lead out either. A user's own walk (no ``confine_to``) follows
  links out of the tree, by design (a person's folder that lives elsewhere).

This module is a leaf: it imports nothing of facebank, so ``images`` and everything else can use it.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".jfif", ".ppm", ".pgm"}
)


def is_image_path(path: str | Path) -> bool:
    """A photo by its name: a known image suffix and not hidden."""
    p = Path(path)
    return p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")


@dataclass(frozen=True)
class SkippedEntry:
    """A folder entry the walk did not use, and why (for the user: path + reason)."""

    path: str
    reason: str


OnSkip = Callable[[str, str], None]


class FolderWalk:
    """The photos under one root folder; remembers what it skipped in ``skipped``.

    One walk shares its memory of visited folders across calls, so ``labelled()`` (one sub-folder
    per person) never gives a photo to two people through a link. ``on_skip(path, reason)`` is
    called for every skipped entry as it is found (e.g. to add it to an enrollment's problems).
    """

    def __init__(self, root: str | Path, on_skip: OnSkip | None = None,
                 confine_to: str | Path | None = None) -> None:
        self.root = Path(root)
        self.on_skip = on_skip
        #: the real folder no entry may lead out of (None: links out of the tree are followed)
        self.confine_to: Path | None = Path(os.path.realpath(confine_to)) if confine_to is not None else None
        self.skipped: list[SkippedEntry] = []
        self._visited: set[tuple[int, int]] = set()
        try:
            self._real_root: Path | None = self.root.resolve(strict=True)
        except (OSError, RuntimeError):
            self._real_root = None

    # -- public -----------------------------------------------------------------------------------
    def photos(self, folder: str | Path | None = None) -> Iterator[Path]:
        """Photo files under ``folder`` (default: the root), depth first in name order. A photo file
        given as the root is yielded itself."""
        start = self.root if folder is None else Path(folder)
        if folder is None and _is_file(start):
            if self._inside(start):
                yield start
            return
        if not self._enter(start, is_link=folder is not None and start.is_symlink()):
            return
        stack: list[Iterator[os.DirEntry[str]]] = [iter(self._list(start))]
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            if entry.name.startswith("."):
                continue
            kind = self._kind(entry)
            if kind == "dir":
                path = Path(entry.path)
                if self._enter(path, is_link=_is_link(entry)):
                    stack.append(iter(self._list(path)))
            elif kind == "file" and is_image_path(entry.name):
                if self._inside(Path(entry.path)):
                    yield Path(entry.path)
            elif kind == "other" and is_image_path(entry.name):
                self._skip(entry.path, "not a regular file (a device, FIFO or socket); not read")

    def labelled(self, person: str | None = None) -> Iterator[tuple[str, Path]]:
        """(person, photo) pairs: with ``person``, every photo under the root is theirs; without, each
        sub-folder of the root is one person (photos directly in the root are skipped, reported)."""
        if person is not None:
            for path in self.photos():
                yield person, path
            return
        if not self._enter(self.root, is_link=False):
            return
        for entry in self._list(self.root):
            if entry.name.startswith("."):
                continue
            kind = self._kind(entry)
            if kind == "dir":
                for path in self.photos(entry.path):
                    yield entry.name, path
            elif is_image_path(entry.name):
                self._skip(entry.path, "not inside a person's folder (use --person NAME for a folder "
                                       "of one person's photos)")

    def count(self) -> int:
        """How many photos a fresh walk of the root finds (for progress bars; skips not reported)."""
        return sum(1 for _ in FolderWalk(self.root, confine_to=self.confine_to).photos())

    # -- internals --------------------------------------------------------------------------------
    def _inside(self, path: Path) -> bool:
        """Without ``confine_to``, always; with it: does ``path``, every link resolved, lie inside?
        (A link out is reported without naming where it leads.)"""
        if self.confine_to is None:
            return True
        try:
            real = Path(os.path.realpath(path, strict=True))
        except (OSError, RuntimeError, ValueError) as exc:
            self._skip(path, f"not followed: {_why(exc)}")
            return False
        if real == self.confine_to or self.confine_to in real.parents:
            return True
        self._skip(path, "not followed: a link that leads outside the folder this walk may read")
        return False

    def _skip(self, path: str | Path, reason: str) -> None:
        item = SkippedEntry(str(path), reason)
        self.skipped.append(item)
        log.info("skipped %s: %s", item.path, item.reason)
        if self.on_skip is not None:
            self.on_skip(item.path, item.reason)

    def _list(self, folder: Path) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(folder) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self._skip(folder, f"cannot list this folder: {_why(exc)}")
            return []

    def _kind(self, entry: os.DirEntry[str]) -> str:
        """'dir', 'file' (regular), 'other' (device, FIFO, socket) or 'bad' (already reported)."""
        try:
            st = entry.stat(follow_symlinks=True)
        except OSError as exc:
            if _is_link(entry):
                self._skip(entry.path, f"broken link ({_why(exc)})")
            elif is_image_path(entry.name):
                self._skip(entry.path, f"cannot examine this file: {_why(exc)}")
            return "bad"
        if stat.S_ISDIR(st.st_mode):
            return "dir"
        return "file" if stat.S_ISREG(st.st_mode) else "other"

    def _enter(self, folder: Path, is_link: bool) -> bool:
        """May the walk go into ``folder``? Each real folder once; links only out of the tree."""
        try:
            st = folder.stat()
        except OSError as exc:
            self._skip(folder, f"cannot open this folder: {_why(exc)}")
            return False
        key = (st.st_dev, st.st_ino)
        if self.confine_to is not None and not self._inside(folder):
            return False
        if is_link:
            try:
                target = folder.resolve(strict=True)
            except (OSError, RuntimeError) as exc:
                self._skip(folder, f"link not followed: {_why(exc)}")
                return False
            root = self._real_root
            if root is not None and (target == root or root in target.parents):
                self._skip(folder, "link not followed: it leads back into the folder being walked"
                                   f"{self._shown(target)}, which is walked once through its real path")
                return False
            if root is not None and target in root.parents:
                where = "a folder" if self.confine_to is not None else f"{target}, a folder"
                self._skip(folder, f"link not followed: it leads to {where} that contains the folder "
                                   "being walked (a loop)")
                return False
        if key in self._visited:
            self._skip(folder, "folder not walked again: already visited through another path" +
                       (" (a link)" if is_link else ""))
            return False
        self._visited.add(key)
        return True

    def _shown(self, target: Path) -> str:
        """' (TARGET)' for messages; nothing in a confined walk (its messages name no real path)."""
        return "" if self.confine_to is not None else f" ({target})"


def _is_link(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_symlink()
    except OSError:
        return False


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def iter_image_files(root: str | Path, on_skip: OnSkip | None = None) -> Iterator[Path]:
    """Photo files under ``root`` in a stable order (a safe walk; see ``FolderWalk``)."""
    return FolderWalk(root, on_skip=on_skip).photos()


def labelled_photos(root: str | Path, person: str | None = None,
                    on_skip: OnSkip | None = None) -> Iterator[tuple[str, Path]]:
    """(person, photo) for a folder-per-person tree (or every photo of ``root`` for ``person``)."""
    return FolderWalk(root, on_skip=on_skip).labelled(person)


def count_photos(root: str | Path) -> int:
    return FolderWalk(root).count()


def expand_paths(paths: list[Path], on_skip: OnSkip | None = None) -> list[Path]:
    """Photos and folders given on a command line -> photo files (folders walked safely; a file
    given by name is kept whatever its name, so that its problem is reported, not ignored)."""
    out: list[Path] = []
    for p in paths:
        try:
            is_dir = p.is_dir()
        except OSError:
            is_dir = False
        out.extend(FolderWalk(p, on_skip=on_skip).photos() if is_dir else [p])
    return out


def expand_with_names(paths: list[Path], on_skip: OnSkip | None = None) -> list[tuple[Path, Path]]:
    """Like ``expand_paths``, each photo with a relative output name that mirrors how it was given
    (a folder's photos keep their path below the folder's name, a file keeps its name), unique
    even on a case-insensitive file system (``photo.jpg``, ``photo-2.jpg``...)."""
    out: list[tuple[Path, Path]] = []
    used: set[str] = set()
    for p in paths:
        try:
            is_dir = p.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            base = Path(p.resolve().name or "root")
            named = [(f, base / f.relative_to(p)) for f in FolderWalk(p, on_skip=on_skip).photos()]
        else:
            named = [(p, Path(p.name or "photo"))]
        for f, rel in named:
            out.append((f, _unique(rel, used)))
    return out


def _unique(rel: Path, used: set[str]) -> Path:
    candidate, k = rel, 1
    while str(candidate).casefold() in used:
        k += 1
        candidate = rel.with_name(f"{rel.stem}-{k}{rel.suffix}")
    used.add(str(candidate).casefold())
    return candidate
