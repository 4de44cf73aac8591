"""The typer application and what every command shares (settings flags, logging, progress)."""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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
OnnxOpt = typer.Option(None, "--onnx-model", help="an ONNX face model: a file (its card MODEL.json beside "
                       "it) or an installed model's name ('facebank models list'); implies --embedder onnx")
FlipOpt = typer.Option(None, "--flip/--no-flip", help="average each face with its mirror image")
def _workers(value: int | None) -> int | None:
    if value is not None and value < 0:
        raise fail(f"--workers {value}: must be 0 (one per core) or more", 2)
    return value


WorkersOpt = typer.Option(None, "--workers", "-j", help="worker processes (0 = one per core)",
                          callback=_workers)
CropOpt = typer.Option(None, "--crop-fallback", help="auto | always (photos are face crops) | never")


def _version(value: bool) -> None:
    if value:
        from facebank import __version__

        typer.echo(f"facebank {__version__}")
        raise typer.Exit()


_PLAIN_TYPES = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "Path": "PATH", "path": "PATH",
                "file": "FILE", "directory": "FOLDER", "bool": "BOOLEAN"}


def _plain_help_types() -> None:
    """typer >= 0.25 writes Python types in --help (``<list[Path]>``, ``{photos}``); write plain
    metavars instead (``PATH``, ``TEXT``, ``PHOTOS...``). A typer without these hooks is left as is."""
    from typer import core

    param, argument = getattr(core, "_TyperParameter", None), getattr(core, "TyperArgument", None)
    if param is None or argument is None or getattr(param, "_facebank_plain", False):
        return
    original = getattr(param, "display_type", None)
    if original is None or not hasattr(argument, "_usage_display_name"):
        return

    def display_type(self, ctx) -> str:
        label = str(original(self, ctx))
        inner = label[1:-1] if label.startswith("<") and label.endswith(">") else label
        if inner.startswith("list[") and inner.endswith("]"):
            inner = inner[5:-1]
        if "|" in inner:
            return f"[{inner}]"
        return _PLAIN_TYPES.get(inner, inner.upper())

    def usage_name(self) -> str:
        name = str(self.display_name_raw).upper()
        if not self.required:
            name = f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    param.display_type = display_type
    argument._usage_display_name = usage_name
    param._facebank_plain = True


_plain_help_types()


class _TqdmHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(self.format(record), file=sys.stderr)


@app.callback()
def _root(verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="-v info, -vv debug"),
          version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print facebank's version and exit")) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def make_settings(gallery: str | None = None, **flags: object) -> Settings:
    """Settings from the environment, overridden by the flags that were given; a bad value (flag or
    FACEBANK_* variable) is one 'error:' line and exit code 2."""
    from pydantic import ValidationError

    update: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    if update.get("onnx_model") and "embedder" not in update:  # a model named: the onnx embedder runs it
        update["embedder"] = "onnx"
    if gallery is not None:
        update["gallery"] = gallery
    try:
        s = Settings(**update)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err.get("loc") else "?"
        where = f"--{field.replace('_', '-')}" if field in update else f"FACEBANK_{field.upper()}"
        raise fail(f"{where} {err.get('input')!r}: {err['msg']}", 2) from None
    _check_numbers(s, update)
    for field in ("detector", "embedder"):
        if field in update:
            from facebank import detect, embed

            known = (detect if field == "detector" else embed).available()
            if update[field] not in known:
                raise fail(f"--{field} {update[field]!r}: unknown {field}; choose one of "
                           f"{', '.join(known)}", 2)
    return s


def _check_numbers(s: Settings, given: dict[str, object]) -> None:
    """Numbers a Settings field accepts by type but that mean nothing: one 'error:' line, exit 2.
    (Workers and threads >= 0; the identification threshold in its decision rule's range, never
    NaN or infinite; L2 thresholds of verification and clustering in [0, 2].)"""
    from facebank import decide

    def where(field: str) -> str:
        return f"--{field.replace('_', '-')}" if field in given else f"FACEBANK_{field.upper()}"

    for field in ("workers", "threads"):
        if getattr(s, field) < 0:
            raise fail(f"{where(field)} {getattr(s, field)}: must be 0 (one per core) or more", 2)
    if s.threshold is not None:
        try:
            decide.check_threshold(s.decision, s.threshold)
        except ValueError as exc:
            raise fail(f"{where('threshold')}: {exc}", 2) from None
    for field in ("verify_threshold", "cluster_threshold"):
        check_number(getattr(s, field), where(field), 0.0, 2.0, "an L2 distance between unit embeddings")


def check_number(value: float | None, flag: str, low: float, high: float, unit: str = "",
                 open_low: bool = False, open_high: bool = False) -> None:
    """Exit 2 with one 'error:' line unless ``value`` (None: not given) is a finite number in the
    range (closed unless ``open_low`` / ``open_high``)."""
    if value is None:
        return
    ok = math.isfinite(value) and (low < value if open_low else low <= value) \
        and (value < high if open_high else value <= high)
    if not ok:
        span = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        raise fail(f"{flag} {value!r}: must be a number in {span}" + (f" ({unit})" if unit else ""), 2)


def open_bank(settings: Settings, must_exist: bool = False):
    """The FaceBank of ``settings.gallery``; a folder, a file that is no facebank gallery or (with
    ``must_exist``, for commands that only read) a missing gallery is one 'error:' line, exit 2."""
    from facebank import FaceBank
    from facebank.gallery import GalleryError
    from facebank.gallery.base import GalleryStorageError
    from facebank.gallery.uploads import is_postgres

    loc = str(settings.gallery)
    if must_exist and not is_postgres(loc) and loc != ":memory:" and not Path(loc).exists():
        raise fail(f"no gallery at {loc}: enroll photos first ('facebank enroll FOLDER -g {loc}'), or "
                   "name the gallery with -g/--gallery or FACEBANK_GALLERY", 2)
    try:
        return FaceBank(settings=settings)
    except GalleryStorageError as exc:  # the disk: full, read-only, locked (a runtime error, exit 1)
        raise fail(str(exc)) from None
    except GalleryError as exc:
        raise fail(str(exc), 2) from None
    except Exception as exc:  # sqlite3 / psycopg errors opening the gallery
        raise fail(f"cannot open the gallery {loc}: {type(exc).__name__}: {exc}", 2) from None


def progress(it: Iterable, **kwargs: object) -> Iterable:
    """A tqdm bar on stderr, quiet when stderr is no terminal and the run is short."""
    return tqdm(it, file=sys.stderr, dynamic_ncols=True, disable=None, **kwargs)


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def check_output(output: Path | str | None, inputs: Iterable[Path | str | None], flag: str) -> None:
    """Exit 2 with one 'error:' line when ``output`` is, contains or lies inside an input
    (``facebank.outputs.check_output``: resolved paths and device/inode, so links, hard links and
    bind mounts are caught). Nothing to check when ``output`` is None."""
    if output is None:
        return
    from facebank.outputs import OutputClash
    from facebank.outputs import check_output as check

    try:
        check(output, [p for p in inputs if p is not None], flag)
    except OutputClash as exc:
        raise fail(str(exc), 2) from None


def _say_skipped(path: str, reason: str) -> None:
    typer.echo(f"  skipped {path}: {reason}", err=True)


def expand(paths: list[Path]) -> list[Path]:
    """Photos and folders of photos -> photo files; what the walk skips is said on stderr."""
    from facebank.folders import expand_paths

    return expand_paths(paths, on_skip=_say_skipped)


def expand_named(paths: list[Path]) -> list[tuple[Path, Path]]:
    """``expand`` with a unique relative output name per photo that mirrors the input folders."""
    from facebank.folders import expand_with_names

    return expand_with_names(paths, on_skip=_say_skipped)
