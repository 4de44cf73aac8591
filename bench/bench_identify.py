"""Identify latency for one 640 px photo: ``FaceBank.identify`` on a gallery of 5celeb/train, with
the default and the fast embedder (same model, so one gallery serves both).

    .venv/bin/python bench/bench_identify.py [--faces ../shared/faces] [--photos 10] [--rounds 3]
        [--embedders dlib,fast] [--detector DEFAULT]

Photos: 5celeb/val, resized to 640 px on the longer side and saved as JPEG (quality 90); each call
is a whole ``identify(path)``: read, decode, detect, align, embed, search, assign. Single process,
models loaded and warmed up before timing. Ends with ONE JSON line of p50/p95 per embedder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facebank import FaceBank, Settings
from facebank.images import iter_image_files, load_image

REPO = Path(__file__).resolve().parents[1]


def photos_640(folder: Path, n: int, out: Path) -> list[Path]:
    paths = []
    for i, p in enumerate(sorted(iter_image_files(folder))[:n]):
        im = Image.fromarray(load_image(p).rgb)
        scale = 640 / max(im.size)
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BILINEAR)
        target = out / f"val_{i:02d}.jpg"
        im.save(target, quality=90)
        paths.append(target)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=REPO.parent / "shared" / "faces")
    ap.add_argument("--photos", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--embedders", default="dlib,fast")
    ap.add_argument("--detector", default=None)
    args = ap.parse_args()
    base = {"detector": args.detector} if args.detector else {}
    started = time.time()
    summary: dict = {"bench": "identify", "photo_side_px": 640, "gallery": "5celeb/train", "results": {}}
    with tempfile.TemporaryDirectory(prefix="bench-identify-") as tmp:
        tmp_path = Path(tmp)
        photos = photos_640(args.faces / "5celeb" / "val", args.photos, tmp_path)
        gallery = tmp_path / "g.db"
        with FaceBank(gallery, settings=Settings(**base)) as fb:
            report = fb.enroll_folder(args.faces / "5celeb" / "train")
        summary["gallery_faces"] = report.faces_added
        summary["detector"] = Settings(**base).detector
        for name in [e for e in args.embedders.split(",") if e]:
            try:
                fb = FaceBank(gallery, settings=Settings(**base, embedder=name, workers=1))
                fb.identify(photos[0])  # loads the models, builds the index
            except Exception as exc:
                summary["results"][name] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            times, faces, named = [], 0, 0
            with fb:
                for _ in range(args.rounds):
                    for p in photos:
                        t = time.perf_counter()
                        result = fb.identify(p)
                        times.append(time.perf_counter() - t)
                        faces += len(result.faces)
                        named += sum(f.match.name is not None for f in result.faces)
            ms = np.asarray(times) * 1e3
            summary["results"][name] = {
                "calls": len(times), "p50_ms": round(float(np.percentile(ms, 50)), 1),
                "p95_ms": round(float(np.percentile(ms, 95)), 1), "mean_ms": round(float(ms.mean()), 1),
                "faces_per_call": round(faces / len(times), 2),
                "named_per_call": round(named / len(times), 2),
            }
            print(f"{name}: {summary['results'][name]}", file=sys.stderr, flush=True)
    summary["load_avg_1m"] = round(os.getloadavg()[0], 2)
    summary["seconds"] = round(time.time() - started, 1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
