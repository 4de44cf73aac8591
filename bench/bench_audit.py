"""Audit of a labelled folder with planted mistakes: recall and precision per kind of finding.

    nice -n 10 .venv/bin/python bench/bench_audit.py [--data ../shared/faces/pins10] [--seed 0]

The script copies DATA to a temporary folder and corrupts the copy (seeded):
* ``--mislabeled`` (5 %) of the photos are moved to another person's folder, chosen at random;
* ``--duplicates`` (20) photos get a copy in their own folder, alternately downscaled (to 50-90 % of
  each side, JPEG quality 90) and recompressed at their size (JPEG quality 30-60);
* ``--no-face`` (5) photos without a face (../shared/faces/detection_edge/no_face) are dropped into
  random person folders;
* ``--strangers`` (0) photos of people who are not in DATA (LFW people with a single photo) are
  dropped into random person folders; they are scored as ``outlier``.
Then ``audit_folder`` runs on a plain copy of DATA (the clean set) and on the corrupted copy.

A finding is right when it names a planted mistake: ``mislabeled`` on a moved photo (and its
suggestion is scored separately: the person the photo came from), ``duplicate`` on a planted copy or
the photo it was made from, ``no_face`` on a planted photo. Recall = planted mistakes found / planted;
precision = right findings / findings of that kind. DATA may hold real mistakes of its own (the Pins
set was gathered from the web): findings on the corrupted copy at the same photo and of the same
kind as on the clean set are counted apart ("pre-existing"), and precision is given both with and
without them. Facts are cached (the embedding cache file's audit table), so a rerun is quick.

Ends with ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from facebank.audit import audit_folder
from facebank.audit.facts import FactsCache
from facebank.audit.run import labelled_photos
from facebank.images import is_image_path
from facebank.settings import Settings

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces"
SCORED = ("mislabeled", "duplicate", "no_face", "outlier")


def clean_copy(data: Path, out: Path, min_photos: int) -> None:
    """DATA's person folders with at least ``min_photos`` photos, copied to ``out``."""
    for entry in sorted(data.iterdir()):
        if entry.is_dir() and not entry.name.startswith("."):
            photos = [p for p in entry.iterdir() if p.is_file() and is_image_path(p)]
            if len(photos) >= min_photos:
                (out / entry.name).mkdir(parents=True)
                for p in photos:
                    shutil.copyfile(p, out / entry.name / p.name)


def corrupt(data: Path, out: Path, rng: np.random.Generator, mislabeled: float, duplicates: int,
            no_face: int, no_face_dir: Path, strangers: int = 0, strangers_dir: Path | None = None) -> dict:
    """Copy ``data`` to ``out`` with planted mistakes; returns the truth (paths inside ``out``)."""
    shutil.copytree(data, out, symlinks=False)
    items = list(labelled_photos(out))
    people = sorted({p for _, p in items})
    n_move = int(round(mislabeled * len(items)))
    order = rng.permutation(len(items))
    moved: dict[str, tuple[str, str]] = {}  # new path -> (true person, original relative path)
    for i in order[:n_move]:
        path, person = items[i]
        target = str(rng.choice([p for p in people if p != person]))
        dest = out / target / f"moved_{Path(path).name}"
        os.replace(path, dest)
        moved[str(dest)] = (person, str(Path(path).relative_to(out)))
    copies: dict[str, str] = {}  # planted copy -> its source
    for n, i in enumerate(order[n_move:n_move + duplicates]):
        path, person = items[i]
        src = Path(path)
        with Image.open(src) as im:
            im = im.convert("RGB")
            dest = src.with_name(f"{src.stem}_copy{n}.jpg")
            if n % 2 == 0:
                f = float(rng.uniform(0.5, 0.9))
                im = im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))), Image.LANCZOS)
                im.save(dest, quality=90)
            else:
                im.save(dest, quality=int(rng.integers(30, 61)))
        copies[str(dest)] = str(src)
    pool = sorted(p for p in no_face_dir.iterdir() if p.is_file() and is_image_path(p))
    faceless: list[str] = []
    for n, src in enumerate(rng.choice(pool, size=min(no_face, len(pool)), replace=False)):
        dest = out / str(rng.choice(people)) / f"noface{n}_{Path(src).name}"
        shutil.copyfile(src, dest)
        faceless.append(str(dest))
    outsiders: list[str] = []
    if strangers and strangers_dir is not None:
        # people with one photo in the set (LFW): nobody in DATA, so an outlier wherever they land
        lone = sorted(p for d in strangers_dir.iterdir() if d.is_dir()
                      for p in [*d.iterdir()] if len([*d.iterdir()]) == 1 and is_image_path(p))
        for n, src in enumerate(rng.choice(lone, size=min(strangers, len(lone)), replace=False)):
            dest = out / str(rng.choice(people)) / f"stranger{n}_{Path(src).name}"
            shutil.copyfile(src, dest)
            outsiders.append(str(dest))
    return {"moved": moved, "copies": copies, "no_face": faceless, "outlier": outsiders}


def original_of(path: str, out: Path, truth: dict) -> str:
    """The relative path a photo of the corrupted copy had in DATA (planted photos: itself)."""
    if path in truth["moved"]:
        return truth["moved"][path][1]
    return str(Path(path).relative_to(out))


def score(findings, clean, out: Path, truth: dict) -> dict:
    clean_keys = {(str(Path(f.path).relative_to(clean.root)), f.kind) for f in clean.findings}
    result = {}
    for kind in SCORED:
        mine = [f for f in findings.findings if f.kind == kind]
        pre = [f for f in mine if (original_of(f.path, out, truth), kind) in clean_keys]
        if kind == "mislabeled":
            planted = set(truth["moved"])
            right = [f for f in mine if f.path in planted]
            found = {f.path for f in right}
            named = sum(1 for f in right if f.suggestion == truth["moved"][f.path][0])
        elif kind == "duplicate":
            pair_of = {**{c: c for c in truth["copies"]}, **{s: c for c, s in truth["copies"].items()}}
            planted = set(truth["copies"])
            # on the planted copy, or on its source naming the copy
            right = [f for f in mine if f.path in truth["copies"]
                     or (f.path in pair_of and pair_of[f.path] in f.related)]
            found = {pair_of[f.path] for f in right}
            named = None
        else:
            planted = set(truth[kind])
            right = [f for f in mine if f.path in planted]
            found = {f.path for f in right}
            named = None
        wrong_pre = [f for f in pre if f not in right]
        rest = len(mine) - len(wrong_pre)
        result[kind] = {
            "planted": len(planted), "findings": len(mine), "right": len(right),
            "recall": round(len(found) / len(planted), 4) if planted else None,
            "precision": round(len(right) / len(mine), 4) if mine else None,
            "pre_existing": len(wrong_pre),
            "precision_without_pre_existing": round(len(right) / rest, 4) if rest else None,
        }
        if named is not None:
            result[kind]["likely_person_right"] = round(named / len(right), 4) if right else None
    return result


def _bar(it, **kw):
    from tqdm import tqdm

    return tqdm(it, mininterval=5, **kw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=FACES / "pins10")
    ap.add_argument("--no-face-dir", type=Path, default=FACES / "detection_edge" / "no_face")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mislabeled", type=float, default=0.05, help="share of photos moved (0.05)")
    ap.add_argument("--duplicates", type=int, default=20)
    ap.add_argument("--no-face", type=int, default=5)
    ap.add_argument("--min-photos", type=int, default=1,
                    help="only people with at least this many photos (e.g. 10 for LFW)")
    ap.add_argument("--strangers", type=int, default=0,
                    help="photos of people not in DATA (LFW people with one photo) to plant; scored "
                         "as outlier")
    ap.add_argument("--strangers-dir", type=Path, default=FACES / "lfw" / "images")
    ap.add_argument("--cache", type=Path, default=None, help="cache file (default: the embedding cache)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the corrupted copy here (must not exist)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.data.is_dir():
        raise SystemExit(f"error: {args.data} is not a folder")
    settings = Settings()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_audit_") as tmp:
        out = args.keep or Path(tmp) / "corrupted"
        clean_dir = Path(tmp) / "clean"
        clean_copy(args.data, clean_dir, args.min_photos)
        truth = corrupt(clean_dir, out, rng, args.mislabeled, args.duplicates, args.no_face, args.no_face_dir,
                        args.strangers, args.strangers_dir)
        with FactsCache(args.cache) as cache:
            clean = audit_folder(clean_dir, settings, cache=cache, progress=_bar)
            t1 = time.perf_counter()
            found = audit_folder(out, settings, cache=cache, progress=_bar)
            t2 = time.perf_counter()
        scores = score(found, clean, out, truth)
    load = os.getloadavg()
    clean_counts = Counter(f.kind for f in clean.findings)
    found_counts = Counter(f.kind for f in found.findings)
    print(f"{args.data}: {clean.photos} photos of {clean.people} people; "
          f"corrupted copy: {found.photos} photos")
    print(f"{'kind':<14}{'planted':>8}{'found':>7}{'right':>7}{'recall':>8}{'precision':>10}"
          f"{'pre-existing':>13}{'precision w/o pre':>18}")
    for kind, s in scores.items():
        print(f"{kind:<14}{s['planted']:>8}{s['findings']:>7}{s['right']:>7}{s['recall']!s:>8}"
              f"{s['precision']!s:>10}{s['pre_existing']:>13}{s['precision_without_pre_existing']!s:>18}")
    print("mislabeled: likely person named right for", scores["mislabeled"].get("likely_person_right"))
    print("findings on the clean set:", dict(clean_counts))
    print("findings on the corrupted copy:", dict(found_counts))
    print(f"clean audit {t1 - t0:.1f} s (includes the copy), corrupted audit {t2 - t1:.1f} s, "
          f"load average {load[0]:.2f}")
    summary = {
        "data": str(args.data), "seed": args.seed, "photos": found.photos, "scores": scores,
        "clean_findings": dict(clean_counts), "corrupted_findings": dict(found_counts),
        "seconds_corrupted_audit": round(t2 - t1, 1), "load_average_1min": round(load[0], 2),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
