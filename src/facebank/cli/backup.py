"""facebank backup: a consistent copy of a SQLite gallery, safe while a server writes to it."""

from __future__ import annotations

from pathlib import Path

import typer

from facebank.cli.app import app, fail


@app.command()
def backup(
    gallery: str = typer.Argument(..., help="the gallery file (SQLite) to copy"),
    out: Path = typer.Argument(..., help="the backup file to write (a single SQLite file)"),
    force: bool = typer.Option(False, "--force", help="replace OUT if it exists"),
) -> None:
    """Copy GALLERY to OUT with SQLite's online backup API: one consistent snapshot, including the
    writes still in GALLERY-wal, taken while a server or other commands go on using the gallery.
    Do not copy the .db file alone with cp: the recent writes live in the -wal file beside it.
    A PostgreSQL gallery is backed up with pg_dump."""
    from facebank.gallery.base import GalleryError, GalleryStorageError
    from facebank.gallery.sqlite import backup_gallery

    try:
        report = backup_gallery(gallery, out, force=force)
    except GalleryStorageError as exc:
        raise fail(str(exc)) from None
    except GalleryError as exc:
        raise fail(str(exc), 2) from None
    typer.echo(f"backed up {gallery} to {report.out}: {report.people} people, {report.photos} photos, "
               f"{report.faces} faces, {report.size_bytes / 1e6:.1f} MB in {report.seconds:.1f} s")
