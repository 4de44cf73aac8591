"""The typer application and what every command shares (settings flags, logging, progress)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from pathlib import Path

import typer
from tqdm import tqdm

from facebank.settings import Settings

app = typer.Typer(
    name="facebank",
    help=(
        "Learn faces from folders of photos (one folder per person) and name them in new photos.\n\n"
        "Typical use:\n\n"
        "  facebank enroll photos/            # photos/<person>/*.jpg\n\n"
        "  facebank identify new/*.jpg        # names, or 'unknown'\n\n"
        "  facebank verify a.jpg b.jpg        # same person?\n\n"
        "The gallery is a SQLite file (default ./facebank.db, or FACEBANK_GALLERY, or --gallery)."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

GalleryOpt = typer.Option(None, "--gallery", "-g", help="gallery file (SQLite) or postgresql:// URL",
                          envvar="FACEBANK_GALLERY")
# pipeline options shared by every command that embeds photos
DetectorOpt = typer.Option(None, "--detector", help="mtcnn (default), hog, mmod or crop")
EmbedderOpt = typer.Option(None, "--embedder", help="fast (default), dlib or onnx (--onnx-model)")
OnnxOpt = typer.Option(None, "--onnx-model", help="ONNX face model file; its card is MODEL.json")
FlipOpt = typer.Option(None, "--flip/--no-flip", help="average each face with its mirror image")
WorkersOpt = typer.Option(None, "--workers", "-j", help="worker processes (0 = one per core)")
CropOpt = typer.Option(None, "--crop-fallback", help="auto | always (photos are face crops) | never")


class _TqdmHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(self.format(record), file=sys.stderr)


@app.callback()
def _root(verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="-v info, -vv debug")) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def make_settings(gallery: str | None = None, **flags: object) -> Settings:
    """Settings from the environment, overridden by the flags that were given."""
    s = Settings()
    update = {k: v for k, v in flags.items() if v is not None}
    if gallery is not None:
        update["gallery"] = gallery
    return s.model_copy(update=update) if update else s


def progress(it: Iterable, **kwargs: object) -> Iterable:
    """A tqdm bar on stderr, quiet when stderr is no terminal and the run is short."""
    return tqdm(it, file=sys.stderr, dynamic_ncols=True, disable=None, **kwargs)


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def expand(paths: list[Path]) -> list[Path]:
    """Photos and folders of photos -> photo files; what the walk skips is said on stderr."""
    from facebank.folders import expand_paths

    def say(path: str, reason: str) -> None:
        typer.echo(f"  skipped {path}: {reason}", err=True)

    return expand_paths(paths, on_skip=say)
