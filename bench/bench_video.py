"""Video speed and accuracy: seconds of 720p video analysed per second of wall time, and how well the
tracks of a generated reel are named.

    .venv/bin/python bench/bench_video.py [--faces ../shared/faces] [--shot-seconds 3]
        [--every-frame-shots 5] [--work /tmp/facebank-bench-video]

The reel (``facebank.video.synthetic.standard_shots``, seed 0): every 5celeb/val person alone in a
still, a panning and a zooming shot, then five shots of two people side by side, 1280x720, 25 fps,
H.264, ``--shot-seconds`` per shot (default 3: a 60 s reel); the gallery is 5celeb/train (no photo of
the reel is enrolled). Default settings throughout (MTCNN, fast embedder, threshold 0.35); the
tracker's settings were fixed before the first run and never tuned on this reel.

* ``--fps 2``: the whole reel through ``analyze_video`` (decode every frame for cut detection,
  faces on 2 frames per second), speed = seconds of video / wall seconds (> 1: faster than real
  time); accuracy = share of on-screen seconds named right (0.5 s grid), tracks that switch person;
* every frame: the first ``--every-frame-shots`` shots only (default 5, 15 s), same figures;
* decode only: the whole reel decoded (and cut-checked) with no face work, for scale.

On a shared machine wall time grows with the load of others; the CPU seconds of this process (all
its threads) are printed too: video seconds per CPU second is what one idle core would do.

The machine is shared: the load average is printed next to the figures. Ends with ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=Path("..") / "shared" / "faces")
    ap.add_argument("--shot-seconds", type=float, default=3.0)
    ap.add_argument("--every-frame-shots", type=int, default=5)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "facebank-bench-video")
    args = ap.parse_args()
    if not (args.faces / "5celeb" / "val").is_dir():
        sys.exit(f"error: {args.faces}/5celeb not found (give --faces)")

    from facebank import FaceBank
    from facebank.video import VideoReader, analyze_video
    from facebank.video.synthetic import make_video, score_tracks, standard_shots

    args.work.mkdir(parents=True, exist_ok=True)
    shots = standard_shots(args.faces / "5celeb" / "val", seconds=args.shot_seconds)
    t = time.perf_counter()
    reel = make_video(args.work / "reel.mp4", shots)
    short = make_video(args.work / "short.mp4", shots[: args.every_frame_shots])
    print(f"reels written in {time.perf_counter() - t:.1f} s: {reel.duration_s:.0f} s and "
          f"{short.duration_s:.0f} s of 1280x720", file=sys.stderr)
    gallery = args.work / "gallery.db"
    with FaceBank(gallery) as fb:
        if not fb.people():
            fb.enroll_folder(args.faces / "5celeb" / "train")
        fb.pipeline  # noqa: B018 - load the models before timing

        t = time.perf_counter()
        with VideoReader(reel.path, fps=2.0) as r:
            n = sum(1 for _ in r.frames())
        decode_s = time.perf_counter() - t
        out: dict = {"bench": "video", "video": "1280x720 25 fps H.264, generated from 5celeb/val",
                     "decode_only_video_s_per_s": round(reel.duration_s / decode_s, 2), "decoded_samples": n}
        for label, video, fps in (("fps2", reel, 2.0), ("every_frame", short, None)):
            load = os.getloadavg()[0]
            t, cpu = time.perf_counter(), time.process_time()
            res = analyze_video(fb, video.path, fps=fps)
            wall, cpu = time.perf_counter() - t, time.process_time() - cpu
            score = score_tracks(video, res.tracks, 1.0 / fps if fps else 1.0 / video.fps)
            out[label] = {
                "video_s": video.duration_s, "wall_s": round(wall, 2),
                "video_s_per_wall_s": round(video.duration_s / wall, 3),
                "cpu_s": round(cpu, 2), "video_s_per_cpu_s": round(video.duration_s / cpu, 3),
                "frames_analysed": res.frames_analysed, "load_avg_1min": round(load, 2),
                **score.as_dict(),
            }
            print(f"{label}: {video.duration_s:.0f} s of video in {wall:.1f} s "
                  f"({video.duration_s / wall:.2f}x real time, load {load:.1f}); "
                  f"named right {score.share_named_right:.1%}, tracks {score.tracks} for "
                  f"{score.appearances} appearances, switching {score.switching_tracks}", file=sys.stderr)
    out["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    out["cpu_count"] = os.cpu_count()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
