"""Identify latency for one 640 px photo and for the same photo at 16 MP: ``FaceBank.identify`` on a
gallery of 5celeb/train, with the default and the fast embedder (same model, so one gallery serves
both).

    .venv/bin/python bench/bench_identify.py [--faces ../shared/faces] [--photos 10] [--rounds 3]
        [--embedders dlib,fast] [--detector DEFAULT] [--threads 1] [--big-mp 16]

Photos: 5celeb/val, resized to 640 px on the longer side and saved as JPEG (quality 90), and the
same photos upscaled (bicubic) to ``--big-mp`` megapixels, JPEG quality 90, like a phone photo;
each call is a whole ``identify(path)``: read, decode, detect, align, embed, search, assign. Single
process, ``--threads`` onnxruntime threads (1 = one core), models loaded and warmed up before
timing; 640 px and big calls alternate so both see the same machine load. Wall time and this
process's CPU time (``time.process_time``: less disturbed by other jobs on a shared machine) per
call. Ends with ONE JSON line of p50/p95 per embedder and photo size, the big/640 ratios and the
load average.
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


def photos_big(small: list[Path], megapixels: float, out: Path) -> list[Path]:
    paths = []
    for p in small:
        im = Image.open(p).convert("RGB")
        scale = (megapixels * 1e6 / (im.width * im.height)) ** 0.5
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BICUBIC)
        target = out / f"big_{p.name}"
        im.save(target, quality=90)
        paths.append(target)
    return paths


def stats(wall: list[float], cpu: list[float], faces: int, named: int) -> dict:
    ms, cpu_ms = np.asarray(wall) * 1e3, np.asarray(cpu) * 1e3
    return {"calls": len(wall), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "mean_ms": round(float(ms.mean()), 1),
            "cpu_p50_ms": round(float(np.percentile(cpu_ms, 50)), 1),
            "faces_per_call": round(faces / len(wall), 2), "named_per_call": round(named / len(wall), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=REPO.parent / "shared" / "faces")
    ap.add_argument("--photos", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--embedders", default="dlib,fast")
    ap.add_argument("--detector", default=None)
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime threads (1 = one core)")
    ap.add_argument("--big-mp", type=float, default=16.0, help="megapixels of the big photos (0 = none)")
    args = ap.parse_args()
    base = {"detector": args.detector} if args.detector else {}
    started = time.time()
    summary: dict = {"bench": "identify", "photo_side_px": 640, "big_megapixels": args.big_mp,
                     "gallery": "5celeb/train", "threads": args.threads, "results": {}}
    with tempfile.TemporaryDirectory(prefix="bench-identify-") as tmp:
        tmp_path = Path(tmp)
        photos = photos_640(args.faces / "5celeb" / "val", args.photos, tmp_path)
        sets = {"640": photos}
        if args.big_mp > 0:
            sets["big"] = photos_big(photos, args.big_mp, tmp_path)
        gallery = tmp_path / "g.db"
        with FaceBank(gallery, settings=Settings(**base)) as fb:
            report = fb.enroll_folder(args.faces / "5celeb" / "train")
        summary["gallery_faces"] = report.faces_added
        summary["detector"] = Settings(**base).detector
        for name in [e for e in args.embedders.split(",") if e]:
            try:
                fb = FaceBank(gallery, settings=Settings(**base, embedder=name, workers=1,
                                                         threads=args.threads))
                fb.identify(photos[0])  # loads the models, builds the index
            except Exception as exc:
                summary["results"][name] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            runs = {k: ([], [], [0], [0]) for k in sets}
            with fb:
                for _ in range(args.rounds):
                    for i in range(len(photos)):
                        for key, paths in sets.items():
                            wall, cpu, faces, named = runs[key]
                            t, c = time.perf_counter(), time.process_time()
                            result = fb.identify(paths[i])
                            cpu.append(time.process_time() - c)
                            wall.append(time.perf_counter() - t)
                            faces[0] += len(result.faces)
                            named[0] += sum(f.match.name is not None for f in result.faces)
            row = {key: stats(w, c, f[0], n[0]) for key, (w, c, f, n) in runs.items()}
            if "big" in row:
                row["big_vs_640_p50"] = round(row["big"]["p50_ms"] / row["640"]["p50_ms"], 2)
                row["big_vs_640_cpu_p50"] = round(row["big"]["cpu_p50_ms"] / row["640"]["cpu_p50_ms"], 2)
            summary["results"][name] = row
            print(f"{name}: {row}", file=sys.stderr, flush=True)
    summary["load_avg_1m"] = round(os.getloadavg()[0], 2)
    summary["seconds"] = round(time.time() - started, 1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
