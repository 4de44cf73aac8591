"""audit: check a labelled folder for mistakes (thin: parse, call facebank.audit, print)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import typer

from facebank.cli.app import (
    CropOpt,
    DetectorOpt,
    EmbedderOpt,
    FlipOpt,
    OnnxOpt,
    WorkersOpt,
    app,
    check_output,
    fail,
    make_settings,
    progress,
)

_KINDS_HELP = (
    "unreadable, duplicate (the same picture, also resized or recompressed), label_conflict (one "
    "picture under two people), no_face, multi_face, mislabeled (looks like another person of the "
    "folder; the likely person is named), outlier (like no other photo of its person), small_face, "
    "blurry, dark, bright, profile, cut (face cut by the photo's edge)"
)


@app.command(help=(
    "Check a labelled folder (FOLDER/<person>/*.jpg) for mistakes and weak photos. Kinds of "
    f"finding: {_KINDS_HELP}. Prints one line per finding (--json: one JSON object per line with "
    "path, kind, detail, confidence). Photos are only moved with --quarantine, never deleted.\n\n"
    "Examples:\n\n"
    "  facebank audit photos/ --report audit.html\n\n"
    "  facebank audit photos/ --kind duplicate,no_face,mislabeled --quarantine ../held-back"
))
def audit(
    folder: Path = typer.Argument(..., help="a folder with one sub-folder of photos per person"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per finding per line"),
    report: Path = typer.Option(None, "--report", help="write an HTML page with thumbnails per kind here"),
    quarantine_dir: Path = typer.Option(
        None, "--quarantine",
        help="MOVE the flagged photos (of the --kind kinds) to this folder, keeping their relative "
             "paths; it must be outside FOLDER. An undo script is written there."),
    kind: str = typer.Option(None, "--kind", help="only these kinds, comma-separated (default all)"),
    min_confidence: float = typer.Option(0.0, "--min-confidence",
                                         help="leave out findings less certain than this (0-1)"),
    cache: Path = typer.Option(None, "--cache", help="cache file (default: the embedding cache of the "
                               "user cache dir, or FACEBANK_CACHE_DIR); photos seen before are not redone"),
    detector: str = DetectorOpt, embedder: str = EmbedderOpt, onnx_model: str = OnnxOpt,
    flip: bool = FlipOpt, workers: int = WorkersOpt, crop_fallback: str = CropOpt,
) -> None:
    from facebank.audit import KINDS, audit_folder
    from facebank.audit.facts import FactsCache

    kinds = None
    if kind:
        kinds = [k.strip() for k in kind.split(",") if k.strip()]
        bad = [k for k in kinds if k not in KINDS]
        if bad:
            raise fail(f"unknown kind {', '.join(bad)}; choose from {', '.join(KINDS)}", 2)
    if not 0.0 <= min_confidence <= 1.0:
        raise fail("--min-confidence must be between 0 and 1", 2)
    if not folder.is_dir():
        raise fail(f"{folder} is not a folder (want one sub-folder per person)", 2)
    check_output(report, [folder], "--report")
    check_output(quarantine_dir, [folder], "--quarantine")
    if quarantine_dir is not None:
        from facebank.audit.quarantine import QuarantineError, check_destination

        try:
            check_destination(folder, quarantine_dir)
        except QuarantineError as exc:
            raise fail(str(exc), 2) from None
    settings = make_settings(None, detector=detector, embedder=embedder, onnx_model=onnx_model, flip=flip,
                             workers=workers, crop_fallback=crop_fallback)
    try:
        with FactsCache(cache) as c:
            result = audit_folder(folder, settings, cache=c, progress=progress, kinds=kinds)
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from None
    if min_confidence > 0:
        from dataclasses import replace

        result = replace(result, findings=tuple(f for f in result.findings if f.confidence >= min_confidence))
    for f in result.findings:
        if as_json:
            sys.stdout.write(json.dumps(f.to_json(), ensure_ascii=False) + "\n")
        else:
            typer.echo(f"{f.kind:<14} {f.confidence:.2f}  {f.path}: {f.detail}")
    for path, reason in result.skipped:
        typer.echo(f"  skipped {path}: {reason}", err=True)
    counts = Counter(f.kind for f in result.findings)
    summary = ", ".join(f"{n} {k}" for k, n in counts.items()) or "nothing to report"
    typer.echo(f"audited {result.photos} photos of {result.people} people: {summary}", err=True)
    if report is not None:
        from facebank.audit.report import audit_report

        try:
            audit_report(result).save(report)
        except OSError as exc:
            raise fail(f"cannot write the report {report}: {exc}") from None
        typer.echo(f"report written to {report}", err=True)
    if quarantine_dir is not None:
        from facebank.audit.quarantine import QuarantineError, quarantine

        try:
            q = quarantine(folder, result.flagged_paths(), quarantine_dir)
        except QuarantineError as exc:
            raise fail(str(exc), 2) from None
        for path, reason in q.problems:
            typer.echo(f"  not moved {path}: {reason}", err=True)
        typer.echo(f"moved {len(q.moved)} photos to {quarantine_dir}"
                   + (f"; undo with: sh {q.undo_script}" if q.undo_script else ""), err=True)
