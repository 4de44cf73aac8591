"""Where photos uploaded through the REST API are kept, and removing them with their person.

Uploads are stored content-addressed as ``<folder>/<sha256>.<ext>``; the default folder is
``<gallery>.photos`` next to a SQLite gallery; for a PostgreSQL one, a folder named after the
database in the user's data folder (the same for the server and ``people remove`` wherever they
run, never the working folder). Photos enrolled from folders stay where they are and are never
deleted here: only files directly inside the uploads folder are.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)


def is_postgres(location: str | Path) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


def default_uploads_dir(gallery: str | Path) -> Path:
    """The uploads folder a server on ``gallery`` uses unless told otherwise (``--photos-dir``)."""
    if is_postgres(gallery):
        import platformdirs

        return Path(platformdirs.user_data_dir("facebank")) / "uploads" / postgres_folder_name(str(gallery))
    return Path(str(gallery) + ".photos")


def postgres_folder_name(url: str) -> str:
    """A folder name for a PostgreSQL gallery: its database name and a hash of its address (user,
    host, port, database, options; never the password), so two databases never share uploads."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}@{host}:{parts.port or ''}"
    address = urlunsplit(("postgresql", netloc, parts.path, parts.query, ""))
    database = re.sub(r"[^A-Za-z0-9._-]+", "_", parts.path.strip("/")) or "postgres"
    return f"{database[:60]}-{hashlib.sha256(address.encode()).hexdigest()[:12]}"


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
