"""Where one 640 px identify spends its CPU: decode, MTCNN's stages, alignment, embedding, search.

    .venv/bin/python bench/profile_identify.py [--faces ../shared/faces] [--photos 10] [--rounds 3]

Photos: 5celeb/val resized to 640 px (JPEG quality 90), as bench_identify.py makes them. One
process, one onnxruntime thread, models warmed up. Every stage is timed with this process's CPU
time (``time.process_time``), so other jobs on a shared machine disturb it far less than wall
time. The timers wrap the stages from outside (this script only); nothing in the library changes.
Ends with ONE JSON line: CPU milliseconds per photo of each stage and in total, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import cv2

from facebank import FaceBank, Settings
from facebank.detect import mtcnn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from bench_identify import photos_640  # noqa: E402

SPENT: dict[str, float] = defaultdict(float)


def timed(name: str, fn):
    def wrapper(*args, **kwargs):
        t = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[name] += time.process_time() - t
    return wrapper


class TimedSession:
    def __init__(self, name: str, session) -> None:
        self.name, self.session = name, session

    def run(self, *args, **kwargs):
        t = time.process_time()
        try:
            return self.session.run(*args, **kwargs)
        finally:
            SPENT[self.name] += time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=REPO.parent / "shared" / "faces")
    ap.add_argument("--photos", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="profile-identify-") as tmp:
        tmp_path = Path(tmp)
        photos = photos_640(args.faces / "5celeb" / "val", args.photos, tmp_path)
        gallery = tmp_path / "g.db"
        with FaceBank(gallery, settings=Settings(workers=1)) as fb:
            fb.enroll_folder(args.faces / "5celeb" / "train")
        fb = FaceBank(gallery, settings=Settings(workers=1, threads=1))
        fb.identify(photos[0])
        pipe = fb.pipeline
        det = pipe.detector
        det._pnet = TimedSession("mtcnn P-Net (onnxruntime)", det._pnet)
        det._rnet = TimedSession("mtcnn R-Net (onnxruntime)", det._rnet)
        det._onet = TimedSession("mtcnn O-Net (onnxruntime)", det._onet)
        mtcnn.crop_and_resize = timed("mtcnn crop_and_resize (R/O-Net patches)", mtcnn.crop_and_resize)
        mtcnn.nms_keep = timed("mtcnn NMS", mtcnn.nms_keep)
        cv2_resize = cv2.resize  # MTCNN's pyramid is the only resize of a 640 px photo
        cv2.resize = timed("mtcnn pyramid resize (cv2 INTER_AREA, float32)", cv2_resize)
        det.detect = timed("detect (all of MTCNN)", det.detect)
        from facebank import images

        images.load_reduced = timed("read + decode (Pillow)", images.load_reduced)
        pipe.embedder.embed = timed("embed (fast ResNet, onnxruntime)", pipe.embedder.embed)
        from facebank import align

        align.align = timed("align (chip warp)", align.align)
        fb.name_faces = timed("search + assign", fb.name_faces)
        SPENT.clear()
        n = 0
        t0 = time.process_time()
        for _ in range(args.rounds):
            for p in photos:
                fb.identify(p)
                n += 1
        total = time.process_time() - t0
        cv2.resize = cv2_resize
    rows = {k: round(1000 * v / n, 2) for k, v in sorted(SPENT.items(), key=lambda kv: -kv[1])}
    rows["total identify"] = round(1000 * total / n, 2)
    for k, v in rows.items():
        print(f"{v:8.2f} ms  {k}", file=sys.stderr)
    print(json.dumps({"bench": "profile_identify", "photos": len(photos), "calls": n,
                      "cpu_ms_per_photo": rows, "load_avg_1m": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
