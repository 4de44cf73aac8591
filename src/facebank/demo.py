"""The demo (``facebank demo`` / ``make demo``): enroll, identify, measure, draw."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from facebank.api import FaceBank
from facebank.draw import annotate
from facebank.images import iter_image_files, load_image
from facebank.progress import no_progress as _no_progress
from facebank.settings import Settings

log = logging.getLogger(__name__)


def run_demo(faces: Path, out: Path, settings: Settings, train: Path | None = None,
             test: Path | None = None, progress=_no_progress,
             echo: Callable[[str], None] = log.info) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    train = train or faces / "5celeb" / "train"
    if test is None and (faces / "5celeb" / "val").is_dir() and train == faces / "5celeb" / "train":
        test = faces / "5celeb" / "val"
    groups = faces / "detection_edge" / "multi_face"
    fb = FaceBank(settings=settings)
    echo(f"1/3 enrolling {train} into {settings.gallery}")
    report = fb.enroll_folder(train, progress=progress)
    people = fb.people()
    echo(f"    {len(people)} people, {sum(p.faces for p in people)} faces "
         f"({report.photos_enrolled} new photos, {report.photos_skipped_known} already enrolled, "
         f"{len(report.problems)} problems)")
    for path, reason in report.problems:
        echo(f"    skipped {path}: {reason}")
    summary: dict = {"people": len(people), "enrolled_faces": sum(p.faces for p in people)}

    if test is not None and test.is_dir():
        echo(f"2/3 identifying {test}")
        paths = list(iter_image_files(test))
        truth = {str(p): p.parent.name for p in paths}
        correct = no_face = 0
        rows = []
        for result in fb.identify_many(paths, progress=progress, total=len(paths)):
            best = min(result.faces, key=lambda f: f.match.distance) if result.faces else None
            name = best.match.name if best else None
            ok = name == truth[result.path]
            correct += ok
            no_face += not result.faces
            rows.append({"path": result.path, "truth": truth[result.path], "pred": name, "ok": ok})
            if result.error is None:
                _save(result, out / "annotated" / test.name)
            if not ok:
                echo(f"    wrong: {result.path}: {truth[result.path]} -> {name}")
        acc = correct / len(paths) if paths else 0.0
        echo(f"    top-1 accuracy: {correct}/{len(paths)} = {acc:.1%} ({no_face} photos without a face)")
        summary.update({"test_photos": len(paths), "top1": acc, "photos_without_face": no_face})
        (out / "predictions.json").write_text(json.dumps(rows, indent=1))

    if groups.is_dir() and train == faces / "5celeb" / "train":
        echo(f"3/3 group photos in {groups}")
        paths = list(iter_image_files(groups))
        counts = []
        for result in fb.identify_many(paths, progress=progress, total=len(paths)):
            counts.append(len(result.faces))
            names = [f.match.name or "unknown" for f in result.faces]
            echo(f"    {Path(result.path).name}: {len(result.faces)} faces: {', '.join(names)}")
            if result.error is None:
                _save(result, out / "annotated" / "multi_face")
        summary.update({"group_photos": len(paths), "group_faces": counts})
    echo(f"annotated photos: {out / 'annotated'}")
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _save(result, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    img = load_image(result.path)
    annotate(img.rgb, result).save(folder / (Path(result.path).stem[:80] + ".jpg"), quality=88)
