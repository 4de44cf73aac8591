"""Per-photo detect + embed time at 640 px, and enrollment photos/s on pins10.

    .venv/bin/python bench/bench_pipeline.py [--faces ../shared/faces] [--embedder dlib|fast]
        [--detector hog|mtcnn|cascade] [--workers 0] [--photos 40]

Ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facebank import FaceBank, Settings
from facebank.images import iter_image_files, load_image
from facebank.pipeline import FacePipeline


def photos_640(folder: Path, n: int) -> list[np.ndarray]:
    out = []
    for p in list(iter_image_files(folder))[: n * 2]:
        rgb = load_image(p).rgb
        im = Image.fromarray(rgb)
        scale = 640 / max(im.size)
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BILINEAR)
        out.append(np.asarray(im))
        if len(out) == n:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "faces")
    ap.add_argument("--embedder", default=None)
    ap.add_argument("--detector", default=None)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--photos", type=int, default=40)
    ap.add_argument("--skip-enroll", action="store_true")
    args = ap.parse_args()
    over = {k: v for k, v in (("embedder", args.embedder), ("detector", args.detector)) if v}
    settings = Settings(**over, workers=args.workers)

    pipe = FacePipeline(settings)
    imgs = photos_640(args.faces / "5celeb" / "train", args.photos)
    pipe.faces(imgs[0])  # warm-up
    det_ms, total_ms, faces = [], [], 0
    for rgb in imgs:
        t0 = time.perf_counter()
        dets = pipe.detections(rgb)
        t1 = time.perf_counter()
        found = pipe.faces(rgb, dets)
        t2 = time.perf_counter()
        det_ms.append((t1 - t0) * 1000)
        total_ms.append((t2 - t0) * 1000)
        faces += len(found)
    result = {
        "bench": "pipeline", "detector": settings.detector, "embedder": settings.embedder,
        "photos_640": len(imgs), "faces": faces,
        "detect_ms_median": round(statistics.median(det_ms), 1),
        "detect_embed_ms_median": round(statistics.median(total_ms), 1),
    }
    print(f"640 px photo, one process: detect {result['detect_ms_median']} ms, detect+embed "
          f"{result['detect_embed_ms_median']} ms (median of {len(imgs)})")

    if not args.skip_enroll:
        with tempfile.TemporaryDirectory() as tmp:
            fb = FaceBank(Path(tmp) / "g.db", settings=settings)
            report = fb.enroll_folder(args.faces / "pins10")
        result.update({"pins10_photos": report.photos_seen, "pins10_faces": report.faces_added,
                       "pins10_seconds": round(report.seconds, 1),
                       "pins10_photos_per_s": round(report.photos_per_second, 2),
                       "workers": settings.workers or "cores"})
        print(f"pins10: {report.photos_seen} photos in {report.seconds:.0f} s = "
              f"{report.photos_per_second:.1f} photos/s ({report.faces_added} faces)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
