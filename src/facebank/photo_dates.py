"""When a photo was taken (issue 21, a person's timeline): EXIF DateTimeOriginal or DateTime, else
the file's modification time, else nothing (the file is gone). Only the file's header is read."""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

_EXIF_ORIGINAL = 0x9003  # DateTimeOriginal (Exif IFD)
_EXIF_DATETIME = 0x0132  # DateTime (IFD0)
_EXIF_IFD = 0x8769


def photo_date(path: str | Path) -> tuple[str | None, str]:
    """(ISO 8601 date-time or None, source: 'exif' | 'file' | 'none') of one photo file."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            exif = im.getexif()
            raw = exif.get_ifd(_EXIF_IFD).get(_EXIF_ORIGINAL) or exif.get(_EXIF_DATETIME)
        if isinstance(raw, str):
            when = dt.datetime.strptime(raw.strip()[:19], "%Y:%m:%d %H:%M:%S")
            if 1900 <= when.year <= 2200:
                return when.isoformat(), "exif"
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:  # odd headers
        log.debug("no EXIF date in %s: %s", path, exc)
    try:
        stamp = os.stat(path).st_mtime
    except OSError:
        return None, "none"
    return dt.datetime.fromtimestamp(stamp).replace(microsecond=0).isoformat(), "file"


def fill_photo_dates(gallery: object, limit: int = 100_000) -> int:
    """Date the gallery's photos that have no date yet (after a scan; back-fills older galleries).
    Returns the number dated; a gallery without dates (PostgreSQL for now) is left alone."""
    todo = getattr(gallery, "undated_photos", None)
    if todo is None:
        return 0
    found = [(pid, *photo_date(path)) for pid, path in todo(limit)]
    if found:
        gallery.set_photo_dates(found)  # type: ignore[attr-defined]
    return len(found)
