"""dlib-bin vs the fast (ONNX) embedder: faces per second and agreement on real face chips.

1. cut N real chips: the largest HOG face of every k-th photo of ``--source`` (LFW by default),
   5-point landmarks, ``dlib.get_face_chip(size=150, padding=0.25)``, as the pipeline does;
2. time the ONNX conversion of dlib's .dat (into a temporary folder);
3. time dlib-bin's ``compute_face_descriptor`` on all chips (one call, dlib batches by 16) and the
   fast embedder's ``raw`` (batched), after a warm-up call each; best of ``--repeat`` runs;
4. time the fast embedder one chip at a time (latency, ms/face at batch 1);
5. compare raw descriptors: max |fast - dlib| over all dimensions of all faces.

The last line printed is one JSON object with the figures. The machine load and the CPU time
per face are reported too: other processes on the same cores slow both down (dlib uses one core,
the fast embedder ``--threads``), the CPU time per face much less so.

Run from the repo root::

    .venv/bin/python bench/bench_embedder.py [--faces 200] [--source ../shared/faces/lfw/images]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from facebank import models  # noqa: E402
from facebank.embed.dlib import DlibEmbedder  # noqa: E402
from facebank.embed.fast import FastDlibEmbedder, convert_dlib_resnet  # noqa: E402

DEFAULT_SOURCE = REPO.parent / "shared" / "faces" / "lfw" / "images"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def load_rgb(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        if max(im.size) > 1000:
            im.thumbnail((1000, 1000))
        return np.asarray(im)


def cut_chips(source: Path, n: int) -> np.ndarray:
    import dlib

    paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise SystemExit(f"no images under {source}")
    step = max(1, len(paths) // (n + n // 4 + 1))  # spread over many people, some photos fail
    order = paths[::step] + [p for i, p in enumerate(paths) if i % step]
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(models.dlib_model(models.SHAPE5)))
    chips: list[np.ndarray] = []
    for path in order:
        img = load_rgb(path)
        found = detector(img, 1 if max(img.shape[:2]) <= 500 else 0)
        if not found:
            continue
        box = max(found, key=lambda r: r.area())
        chips.append(dlib.get_face_chip(img, predictor(img, box), size=150, padding=0.25))
        if len(chips) == n:
            break
    if len(chips) < n:
        logging.warning("only %d faces found under %s (wanted %d)", len(chips), source, n)
    return np.stack(chips)


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def best_time(fn, repeat: int) -> tuple[float, float, np.ndarray]:
    """Best wall time over ``repeat`` runs, the process CPU time of that run, the result."""
    best, best_cpu, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        c0, t0 = cpu_seconds(), time.perf_counter()
        out = fn()
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        if wall < best:
            best, best_cpu = wall, cpu
    return best, best_cpu, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=int, default=200, help="number of face chips (default 200)")
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="folder of photos")
    ap.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: all cores)")
    ap.add_argument("--batch-size", type=int, default=32, help="fast embedder batch size (default 32)")
    ap.add_argument("--repeat", type=int, default=1, help="timed runs of each, best kept (default 1)")
    ap.add_argument("--latency-faces", type=int, default=50, help="chips timed one by one (default 50)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    if not args.source.is_dir():
        raise SystemExit(f"{args.source} not found (the shared photos live in ../shared/faces)")
    t0 = time.perf_counter()
    chips = cut_chips(args.source, args.faces)
    print(f"cut {len(chips)} chips from {args.source} in {time.perf_counter() - t0:.1f} s", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        convert_dlib_resnet(models.dlib_model(models.RESNET), Path(tmp) / "model.onnx")
        conversion_s = time.perf_counter() - t0
    print(f"conversion .dat -> ONNX: {conversion_s:.2f} s", flush=True)

    dlib_emb = DlibEmbedder()
    fast = FastDlibEmbedder(threads=args.threads, batch_size=args.batch_size)
    print(f"load average before timing: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)

    dlib_emb.raw(chips[:2])  # warm-up
    dlib_s, dlib_cpu, dlib_raw = best_time(lambda: dlib_emb.raw(chips), args.repeat)
    print(f"dlib-bin: {len(chips) / dlib_s:.2f} faces/s ({1000 * dlib_s / len(chips):.1f} ms/face, "
          f"CPU {1000 * dlib_cpu / len(chips):.1f} ms/face)", flush=True)

    fast.raw(chips[: args.batch_size])  # warm-up
    fast_s, fast_cpu, fast_raw = best_time(lambda: fast.raw(chips), args.repeat)
    print(f"fast ({fast.threads} threads, batch {args.batch_size}): {len(chips) / fast_s:.2f} faces/s "
          f"({1000 * fast_s / len(chips):.1f} ms/face, CPU {1000 * fast_cpu / len(chips):.1f} ms/face)",
          flush=True)

    one = chips[: max(1, min(args.latency_faces, len(chips)))]
    fast.raw(one[:1])
    t0 = time.perf_counter()
    for i in range(len(one)):
        fast.raw(one[i:i + 1])
    batch1_ms = 1000 * (time.perf_counter() - t0) / len(one)
    print(f"fast at batch 1: {batch1_ms:.1f} ms/face", flush=True)

    max_abs_diff = float(np.abs(fast_raw - dlib_raw).max())
    print(f"max |fast - dlib| per dimension: {max_abs_diff:.2e}", flush=True)
    print(json.dumps({
        "bench": "embedder",
        "faces": int(len(chips)),
        "dlib_faces_per_s": round(len(chips) / dlib_s, 2),
        "fast_faces_per_s": round(len(chips) / fast_s, 2),
        "speedup": round(dlib_s / fast_s, 2),
        "fast_ms_per_face_batch1": round(batch1_ms, 2),
        "dlib_cpu_ms_per_face": round(1000 * dlib_cpu / len(chips), 2),
        "fast_cpu_ms_per_face": round(1000 * fast_cpu / len(chips), 2),
        "max_abs_diff": max_abs_diff,
        "conversion_s": round(conversion_s, 2),
        "threads": fast.threads,
        "batch_size": args.batch_size,
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
