"""Video accuracy, tracking metrics and speed on generated reels with known truth.

    .venv/bin/python bench/bench_video.py [--faces ../shared/faces] [--work /tmp/facebank-bench-video]
        [--kinds dev,report] [--speed] [--speed-seconds 60]

Reels and gallery: bench/video_reels.py. ONE photo per person enrolled (the most frontal of
5celeb/train); development reels from the other 5celeb/train photos, reported reels from 5celeb/val
only (and the old standard reel of 5celeb/val). Each reel: 1280x720, 25 fps, 2 s shots; one to three
people at once, still / pan / zoom, near-identical grey backgrounds (look-alike cuts), fades, turned
faces (|landmark yaw| >= 0.25) in the pans. Default settings (MTCNN, fast embedder, the gallery's
decision rule), ``--fps 2``.

Per reel: seconds on screen (per appearance, whole seconds in which a sampled frame found the face),
named right, named WRONGLY, tracks that switch person; the same for the same frames named ONE BY ONE
(every detection its own one-face track, named by the same rule: the baseline a track must beat);
IDF1, ID switches and MOTA (facebank.video.synthetic.mot_metrics: IoU >= 0.5 against the face box
found in the still, scaled into the frame; a true object = one person in one shot).

``--speed``: CPU seconds per second of video at --fps 2 (this process, all threads: the machine is
shared, so not wall time) on a 720p reel and on a generated 1080p reel of at least ``--speed-seconds``.
Ends with ONE JSON line, appended to bench/results/video.jsonl.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from record import record  # noqa: E402
from video_reels import build_gallery, cached_video, face_boxes, make_reels, measure_photos, reel_photos  # noqa: E402


def one_by_one(fb, frames: list) -> list:
    """Every detection of every sampled frame as its own one-sighting track, named alone."""
    from facebank.video.name import name_embeddings
    from facebank.video.track import Track

    out = []
    for k, (t, faces) in enumerate(frames):
        for j, f in enumerate(faces):
            m = name_embeddings(fb, f.embedding[None])
            b = f.box
            out.append(Track(id=k * 100 + j, start_s=t, end_s=t, frames=1, box=b, times_s=np.asarray([t]),
                             boxes=np.asarray([[b.x1, b.y1, b.x2, b.y2]], np.float32),
                             embeddings=f.embedding[None], match=m))
    return out


def measure(fb, reel, boxes: dict, fps: float = 2.0) -> dict:
    from facebank.video import analyze_video
    from facebank.video.synthetic import mot_metrics, score_cuts, score_seconds

    frames: list = []
    cpu0 = time.process_time()
    res = analyze_video(fb, reel.path, fps=fps, on_faces=lambda fr, faces: frames.append((fr.time_s, faces)))
    cpu = time.process_time() - cpu0
    tracks = score_seconds(reel, res.tracks)
    single = score_seconds(reel, one_by_one(fb, frames))
    mot = mot_metrics(reel, res.tracks, 1.0 / fps, boxes)
    return {"reel": reel.path.name, "video_s": reel.duration_s, "shots": len(reel.shots),
            "tracks": tracks.as_dict(), "frames_one_by_one": single.as_dict(), "mot": mot.as_dict(),
            "cuts": score_cuts(reel, res.cuts_s).as_dict(), "cpu_s": round(cpu, 1),
            "cpu_s_per_video_s": round(cpu / reel.duration_s, 3)}


def speed(fb, path: Path, fps: float = 2.0) -> dict:
    from facebank.video import analyze_video

    load = os.getloadavg()[0]
    cpu0, t0 = time.process_time(), time.perf_counter()
    res = analyze_video(fb, path, fps=fps)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    v = res.video_seconds
    return {"video": f"{res.info.width}x{res.info.height} {v:.0f} s", "cpu_s": round(cpu, 1),
            "cpu_s_per_video_s": round(cpu / v, 3), "wall_s": round(wall, 1), "load_avg_1min": round(load, 2),
            "frames_analysed": res.frames_analysed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=Path("..") / "shared" / "faces")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "facebank-bench-video")
    ap.add_argument("--kinds", default="dev,report")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--speed-seconds", type=float, default=60.0)
    args = ap.parse_args()
    if not (args.faces / "5celeb" / "val").is_dir():
        sys.exit(f"error: {args.faces}/5celeb not found (give --faces)")
    from facebank import FaceBank
    from facebank.video.synthetic import mixed_shots

    args.work.mkdir(parents=True, exist_ok=True)
    photos = measure_photos(args.faces, args.work)
    reels = make_reels(photos, args.work)
    boxes = face_boxes(photos)
    out: dict = {}
    with FaceBank(build_gallery(photos, args.work)) as fb:
        fb.pipeline  # noqa: B018 - models loaded before timing
        for kind in [k for k in args.kinds.split(",") if k]:
            rows = [measure(fb, r, boxes) for r in reels[kind]]
            for row in rows:
                print(f"{kind} {row['reel']}: tracks {row['tracks']} | one by one {row['frames_one_by_one']} "
                      f"| mot {row['mot']} | cuts {row['cuts']}", file=sys.stderr)
            total = {}
            for part in ("tracks", "frames_one_by_one"):
                on = sum(r[part]["on_screen_s"] for r in rows)
                right = sum(r[part]["named_right_s"] for r in rows)
                total[part] = {"on_screen_s": on, "named_right_s": right,
                               "named_wrong_s": sum(r[part]["named_wrong_s"] for r in rows),
                               "share_named_right": round(right / on, 4) if on else 0.0,
                               "switching_tracks": sum(r[part]["switching_tracks"] for r in rows)}
            total["id_switches"] = sum(r["mot"]["id_switches"] for r in rows)
            out[kind] = {"total": total, "reels": rows}
        if args.speed:
            front, turned = reel_photos(photos, "val")
            n = max(1, int(np.ceil(args.speed_seconds / 70.0)))
            shots = [dataclasses.replace(s, seconds=3.0) for seed in range(n)
                     for s in mixed_shots(front, 3.0, 10 + seed, turned)]
            hd = cached_video(args.work / f"speed_1080p_{len(shots)}.mp4", shots, 1920, 1080)
            sd = cached_video(args.work / f"speed_720p_{len(shots)}.mp4", shots, 1280, 720)
            out["speed"] = {"720p": speed(fb, sd.path), "1080p": speed(fb, hd.path)}
            print(f"speed {out['speed']}", file=sys.stderr)
    out["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    line = record("video", out, notes="dev = 5celeb/train reels, report = 5celeb/val reels; one photo per "
                  "person enrolled; CPU seconds of this process")
    print(json.dumps(line))


if __name__ == "__main__":
    main()
