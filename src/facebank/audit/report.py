"""The audit as one self-contained HTML page: a summary table, then per kind of finding a grid of
thumbnails (the face, or the photo when there is none; most certain first) and the full list."""

from __future__ import annotations

from pathlib import Path

from facebank.audit.base import KINDS
from facebank.audit.run import AuditResult
from facebank.report import plots
from facebank.report.html import Report

ABOUT = {
    "unreadable": "files that could not be read or decoded",
    "duplicate": "the same picture more than once in one person's folder (also resized or recompressed); "
                 "the largest copy is kept, the others are listed",
    "label_conflict": "the same picture filed under two or more people",
    "no_face": "no face found",
    "multi_face": "several faces of similar size: which one is the person?",
    "mislabeled": "the face looks like another person of the folder more than its own "
                  "(red: the likely person)",
    "outlier": "the face looks like no other photo of its person",
    "small_face": "faces too small to hold much detail",
    "blurry": "blurred faces",
    "dark": "under-exposed faces",
    "bright": "over-exposed, washed-out faces",
    "profile": "heads turned far to the side",
    "cut": "faces cut by the edge of the photo",
}


def _short(path: str, root: str) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


def audit_report(result: AuditResult, per_kind: int = 30) -> Report:
    boxes = result.boxes
    rep = Report(f"facebank audit of {result.root}")
    groups = result.by_kind()
    flagged = len(result.flagged_paths())
    rep.text(f"{result.photos} photos of {result.people} people; {len(result.findings)} findings on "
             f"{flagged} photos.")
    rep.table(["kind", "findings", "what it means"],
              [(k, len(groups.get(k, [])), ABOUT.get(k, "")) for k in KINDS])
    for kind, found in groups.items():
        rep.heading(f"{kind} ({len(found)})")
        rep.text(ABOUT.get(kind, ""))
        shown = found[:per_kind]
        items = []
        for f in shown:
            name = Path(f.path).name
            person = f.person or ""
            pred = f.suggestion or person
            caption = f"{person[:18]}\n{name[:18]}" if f.suggestion is None else \
                f"in: {person[:16]}\nlooks like: {f.suggestion[:14]}"
            items.append(plots.GridItem(f.path, person, pred, boxes.get(f.path), caption=caption))
        title = f"{kind}: {len(shown)} of {len(found)}, most certain first"
        rep.image(plots.photo_grid(items, columns=6, title=title), title)
        rep.table(["photo", "detail", "confidence"],
                  [(_short(f.path, result.root), f.detail, f.confidence) for f in found])
    return rep
