"""Where photos uploaded through the REST API are kept, and removing them with their person.

Uploads are stored content-addressed as ``<folder>/<sha256>.<ext>``; the default folder is
``<gallery>.photos`` next to a SQLite gallery (``facebank-photos`` in the working folder for a
PostgreSQL one). Photos enrolled from folders stay where they are and are never deleted here: only
files directly inside the uploads folder are.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)


def is_postgres(location: str | Path) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


def default_uploads_dir(gallery: str | Path) -> Path:
    """The uploads folder a server on ``gallery`` uses unless told otherwise (``--photos-dir``)."""
    if is_postgres(gallery):
        return Path("facebank-photos")
    return Path(str(gallery) + ".photos")


def is_upload(path: str | Path, folder: str | Path) -> bool:
    """Is ``path`` a file directly inside the uploads ``folder``?"""
    try:
        return Path(path).resolve().parent == Path(folder).resolve()
    except (OSError, RuntimeError):
        return False


def discard_uploads(paths: Iterable[str | Path], folder: str | Path) -> int:
    """Delete the uploads among ``paths`` (files inside ``folder`` only); returns how many."""
    removed = 0
    for p in paths:
        if not is_upload(p, folder):
            continue
        try:
            Path(p).unlink()
            removed += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not delete %s: %s", p, exc)
    return removed
