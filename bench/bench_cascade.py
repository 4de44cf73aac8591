"""Detection cascade (issue 21): MTCNN, and where it finds nothing dlib's MMOD on the photo shrunk
to ``mmod_max_side``. Before (no second look) and after (``second_look=mmod``):

- scan photos/s (wall, the figure ``facebank scan`` prints) and CPU seconds of the workers on
  5celeb + kpop15/unlabeled_raw + detection_edge, with the faces found;
- faces of detection_edge/multi_face found, against the hand-checked boxes of the fixture;
- false faces per 100 negatives (tests/negatives.py: >= 200 crops without a face);
- faces found on made-hard photos MTCNN misses (grey, low contrast, tinted, dark pins10 crops);
- peak memory (max RSS) of a process with MMOD loaded.

    .venv/bin/python bench/bench_cascade.py [--side 320]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from record import record  # noqa: E402

from facebank import FaceBank  # noqa: E402
from facebank.cluster.scan import scan_library  # noqa: E402
from facebank.pipeline import FacePipeline, box_iou  # noqa: E402
from facebank.settings import Settings  # noqa: E402
from facebank.types import Box  # noqa: E402
from tests.hard_faces import hard_faces  # noqa: E402
from tests.negatives import multi_face_boxes, negatives  # noqa: E402

FACES = ROOT.parent / "shared" / "faces"
SETS = ("5celeb", "kpop15/unlabeled_raw", "detection_edge")


def scan_speed(look: str, side: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "lib"
        lib.mkdir()
        n = 0
        for s in SETS:
            for p in sorted((FACES / s).rglob("*")):
                if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg", ".png"):
                    (lib / f"{n:04d}{p.suffix.lower()}").symlink_to(p)
                    n += 1
        before = os.times()
        with FaceBank(Path(tmp) / "g.db", second_look=look, mmod_max_side=side) as fb:  # set: kept
            rep = scan_library(fb, lib)
        after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return {"photos": rep.photos_seen, "photos_per_s": round(rep.photos_per_second, 2),
            "faces": rep.faces_added, "no_face": len(rep.problems), "worker_cpu_s": round(cpu, 1)}


def multi_face(pipe: FacePipeline) -> dict:
    from facebank import images

    truth = multi_face_boxes()
    hit = found = 0
    for name, boxes in truth.items():
        dets = pipe.detections(images.load_image(FACES / "detection_edge" / "multi_face" / name).rgb)
        found += len(dets)
        hit += sum(any(box_iou(d.box, Box(*map(float, b))) >= 0.3 for d in dets) for b in boxes)
    return {"faces": sum(len(b) for b in truth.values()), "found": hit, "detections": found}


def false_faces(pipe: FacePipeline) -> dict:
    n = bad = photos = 0
    t0 = time.process_time()
    for _, rgb in negatives(FACES):
        n += 1
        d = len(pipe.detections(rgb))
        bad += d
        photos += d > 0
    return {"negatives": n, "false_faces_per_100": round(100 * bad / n, 2),
            "photos_with_false_face_per_100": round(100 * photos / n, 2),
            "cpu_s_per_negative": round((time.process_time() - t0) / n, 3)}


def hard(pipe: FacePipeline) -> dict:
    items = list(hard_faces(FACES))
    return {"photos": len(items), "found": sum(bool(pipe.detections(rgb)) for _, rgb in items)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--side", type=int, default=Settings().mmod_max_side)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    figures: dict = {"mmod_max_side": args.side}
    for label, look in (("before", ""), ("after", "mmod")):
        row = {"scan": scan_speed(look, args.side)}
        pipe = FacePipeline(Settings(second_look=look, mmod_max_side=args.side, threads=1))
        row["multi_face"] = multi_face(pipe)
        row["negatives"] = false_faces(pipe)
        row["hard"] = hard(pipe)
        row["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        figures[label] = row
        print(label, row, flush=True)
    b, a = figures["before"]["scan"]["photos_per_s"], figures["after"]["scan"]["photos_per_s"]
    figures["scan_speed_drop"] = round(1 - a / b, 3) if b else None
    record("cascade", figures, notes="2 workers; MMOD only where MTCNN finds no face; load in the line")
    print(figures)


if __name__ == "__main__":
    main()
