"""Database files SQLite holds open in this process, which nothing else may open.

On Linux (POSIX advisory locks) closing ANY descriptor of a file drops every lock the process holds
on it: a photo loader that opened and closed the gallery file (a link ``photo.jpg -> gallery.db``
in a folder being enrolled) would make another process believe it is the gallery's last user and
delete the WAL this process still writes to. The gallery registers its file here; readers of
user-named files ask ``held_by_sqlite`` before opening one.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_held: dict[tuple[int, int], int] = {}  # (device, inode) -> open connections
_lock = threading.Lock()


def _identity(path: str | Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def hold(path: str | Path) -> tuple[int, int] | None:
    """Record that SQLite has ``path`` open (returns the key to ``release``)."""
    key = _identity(path)
    if key is not None:
        with _lock:
            _held[key] = _held.get(key, 0) + 1
    return key


def release(key: tuple[int, int] | None) -> None:
    if key is None:
        return
    with _lock:
        n = _held.get(key, 0) - 1
        if n > 0:
            _held[key] = n
        else:
            _held.pop(key, None)


def held_by_sqlite(path: str | Path) -> bool:
    """Is ``path`` (links followed) a database file SQLite has open in this process?"""
    if not _held:
        return False
    key = _identity(path)
    with _lock:
        return key is not None and key in _held
