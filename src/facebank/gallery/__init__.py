"""The gallery: authoritative store (SQLite by default, PostgreSQL for shared galleries) + index."""

from __future__ import annotations

from pathlib import Path

from facebank.gallery.base import Gallery, GalleryError, ModelMismatch, PersonExists, PersonNotFound

__all__ = ["Gallery", "GalleryError", "ModelMismatch", "PersonExists", "PersonNotFound", "open_gallery"]


def open_gallery(location: str | Path) -> Gallery:
    """Open (creating if needed) the gallery at a SQLite path or a ``postgresql://`` URL."""
    loc = str(location)
    if loc.startswith(("postgresql://", "postgres://")):
        from facebank.gallery.postgres import PostgresGallery

        return PostgresGallery(loc)
    from facebank.gallery.sqlite import SqliteGallery

    return SqliteGallery(loc)
