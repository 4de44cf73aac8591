"""Cuts found, missed and false on generated reels: PySceneDetect (facebank.video.shots) against the
old colour-histogram test, in one run; and the choice of the shot settings.

    .venv/bin/python bench/bench_video_shots.py [--faces ../shared/faces] [--work /tmp/facebank-bench-video]

Reels: bench/video_reels.py (1280x720, 25 fps, 2 s shots of 5celeb photos: one to three people,
still / pan / zoom, backgrounds from four near-identical greys so most cuts join look-alike shots,
every sixth shot fading from and to black). Every reel is decoded ONCE; each decoded frame (shrunk
to 256 px as decode.py does) goes to every detector under test at the same time.

Choice (on the development reels only): among ContentDetector thresholds x minimum shot lengths,
the fewest missed cuts with at most one false cut per minute of reel; among those, the minimum
shot length with the widest band of such thresholds, and the middle threshold of that band (the
largest margin both ways: a cut a little fainter, a pan a little faster).
The chosen setting and the old histogram test are then reported on the reported reels. A true cut
is found when a cut is reported within 0.1 s (plus the fade, for fades). Ends with ONE JSON line and
appends it to bench/results/video_shots.jsonl.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from record import record  # noqa: E402
from video_reels import make_reels, measure_photos  # noqa: E402

THRESHOLDS = (9.0, 12.0, 15.0, 18.0, 21.0, 24.0, 27.0)
MIN_SHOTS = (0.2, 0.3, 0.5)


class HistogramCuts:
    """The cut test facebank used before PySceneDetect (decode.py until this change): share of the
    3 x 16-bin colour histogram of a 48x27 thumbnail that moves between consecutive frames > 0.3."""

    delay_frames = 0
    width = 48

    def __init__(self, threshold: float = 0.3) -> None:
        self.threshold = threshold
        self.prev: np.ndarray | None = None
        self.cuts_s: list[float] = []

    def push(self, index: int, time_s: float, small_bgr: np.ndarray) -> None:
        import cv2

        thumb = cv2.resize(small_bgr, (48, 27), interpolation=cv2.INTER_AREA)
        px = thumb.reshape(-1, 3) >> 4
        hist = np.concatenate([np.bincount(px[:, c], minlength=16) for c in range(3)]) / float(len(px))
        if self.prev is not None and float(np.abs(self.prev - hist).sum()) / 6.0 > self.threshold:
            self.cuts_s.append(time_s)
        self.prev = hist

    def finish(self) -> None:
        pass

    def cuts_until(self, time_s: float) -> bool:
        return False


class Several:
    """Feeds every decoded frame to several detectors (one decode for all)."""

    delay_frames = 0
    width = 256

    def __init__(self, detectors: dict) -> None:
        self.detectors = detectors

    def push(self, index: int, time_s: float, small_bgr: np.ndarray) -> None:
        for d in self.detectors.values():
            d.push(index, time_s, small_bgr)

    def finish(self) -> None:
        for d in self.detectors.values():
            d.finish()

    def cuts_until(self, time_s: float) -> bool:
        return False


def run(reel, settings: dict) -> dict:
    from facebank.video import VideoReader
    from facebank.video.shots import ShotDetector, ShotSettings

    dets: dict = {"histogram": HistogramCuts()}
    for key, (thr, mn) in settings.items():
        dets[key] = ShotDetector(reel.fps, ShotSettings(threshold=thr, min_shot_s=mn))
    with VideoReader(reel.path, fps=0.5, cut_detector=Several(dets)) as r:
        for _ in r.frames():
            pass
    return {k: d.cuts_s for k, d in dets.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=Path("..") / "shared" / "faces")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "facebank-bench-video")
    args = ap.parse_args()
    if not (args.faces / "5celeb" / "val").is_dir():
        sys.exit(f"error: {args.faces}/5celeb not found (give --faces)")
    from facebank.video.synthetic import score_cuts

    args.work.mkdir(parents=True, exist_ok=True)
    photos = measure_photos(args.faces, args.work)
    reels = make_reels(photos, args.work)
    grid = {f"content {t:g} / {m:g} s": (t, m) for t, m in itertools.product(THRESHOLDS, MIN_SHOTS)}
    t0 = time.process_time()
    found = {kind: [run(r, grid) for r in rs] for kind, rs in reels.items()}
    cpu = time.process_time() - t0

    def total(kind: str, key: str) -> dict:
        scores = [score_cuts(r, f[key]) for r, f in zip(reels[kind], found[kind], strict=True)]
        minutes = sum(r.duration_s for r in reels[kind]) / 60.0
        out = {k: sum(getattr(s, k) for s in scores) for k in ("true_cuts", "found", "missed", "false")}
        out["false_per_min"] = round(out["false"] / minutes, 2)
        return out

    dev = {k: total("dev", k) for k in ["histogram", *grid]}
    ok = [k for k in grid if dev[k]["false_per_min"] <= 1.0] or list(grid)
    fewest = min(dev[k]["missed"] for k in ok)
    best = [k for k in ok if dev[k]["missed"] == fewest]
    band = max(MIN_SHOTS, key=lambda m: (sum(grid[k][1] == m for k in best), m))
    thresholds = sorted(grid[k][0] for k in best if grid[k][1] == band)
    chosen = f"content {thresholds[(len(thresholds) - 1) // 2]:g} / {band:g} s"
    for k in ["histogram", *grid]:
        print(f"dev  {k:24s} {dev[k]}", file=sys.stderr)
    report = {k: total("report", k) for k in ("histogram", chosen)}
    for k, v in report.items():
        print(f"report {k:24s} {v}", file=sys.stderr)
    figures = {"chosen": {"threshold": grid[chosen][0], "min_shot_s": grid[chosen][1]},
               "dev": {"histogram": dev["histogram"], "pyscenedetect": dev[chosen]},
               "report": {"histogram": report["histogram"], "pyscenedetect": report[chosen]},
               "dev_grid": {k: dev[k] for k in grid},
               "reels": {k: [f"{r.path.name} {r.duration_s:.0f} s" for r in v] for k, v in reels.items()},
               "cpu_s": round(cpu, 1), "load_avg_1min": round(os.getloadavg()[0], 2)}
    line = record("video_shots", figures,
                  notes="dev = 5celeb/train reels (settings chosen), report = 5celeb/val")
    print(json.dumps(line))


if __name__ == "__main__":
    main()
