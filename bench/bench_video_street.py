"""Real footage: ../shared/faces/video/street_1080p.mp4 (4.2 s, 1920x1080, 25 fps, people walking
towards the camera; identities unknown). Every frame (or ``--fps``) tracked with the default
pipeline; CPU seconds, peak memory, tracks; and track PURITY judged by the other model: every face of
every track is embedded again with the shared MobileFaceNet (ArcFace-trained; the tracker's own dlib
embeddings decided the links, so they cannot judge them), face by face (its batch is fixed at 1). A
track holds two people when, at some moment, the mean MobileFaceNet embedding of its faces before
and of its faces after (3 at least each) are farther apart than its same-person distance
(``--mfn-same``, default 1.19: the models README's LFW threshold for it), as in
tests/test_video_street.py. The largest distance between two single faces of a track is printed too:
it is often above 1.19 for one person (small, blurred, turning faces), so it is no judge alone.

    .venv/bin/python bench/bench_video_street.py [--faces ../shared/faces] [--models ../shared/models]
        [--fps N]

People counted by eye once (frames 0, 35, 70 and 104 viewed): 11 people show a face large enough to
name at some moment, plus a few tiny faces far behind (tests/test_video_street.py keeps the count).
Ends with ONE JSON line, appended to bench/results/video_street.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from record import record  # noqa: E402

MFN_CARD = {"name": "mobilefacenet-foamliu", "input_size": 112, "output_dim": 128,
            "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375], "channels": "RGB",
            "layout": "NCHW", "template": "arcface"}


def mobilefacenet(models: Path, work: Path):
    from facebank.embed.onnx import OnnxEmbedder

    card = work / "MobileFaceNet.json"
    card.write_text(json.dumps(MFN_CARD))
    return OnnxEmbedder(models / "mobilefacenet" / "MobileFaceNet.onnx", card=card)


def track_purity(fb, path: Path, fps: float | None, mfn) -> dict:
    """Track the video; MobileFaceNet embeddings of every face seen, keyed by (time, box)."""
    from facebank import align
    from facebank.video import analyze_video

    other: dict[tuple[float, tuple[int, ...]], np.ndarray] = {}

    def on_faces(frame, faces) -> None:
        for f in faces:
            if f.landmarks is None:
                continue
            chip = align.align(frame.rgb, f.box, f.landmarks, mfn.chip)
            other[(round(frame.time_s, 3), tuple(int(round(v)) for v in f.box.as_list()))] = \
                mfn.embed(chip[None])[0]

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu0, t0 = time.process_time(), time.perf_counter()
    res = analyze_video(fb, path, fps=fps, on_faces=on_faces)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"result": res, "other": other, "cpu_s": cpu, "wall_s": wall, "rss0_mb": rss0 / 1024,
            "rss1_mb": rss1 / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=Path("..") / "shared" / "faces")
    ap.add_argument("--models", type=Path, default=Path("..") / "shared" / "models")
    ap.add_argument("--fps", type=float, default=None,
                    help="frames analysed per second (default: every frame)")
    ap.add_argument("--mfn-same", type=float, default=1.19)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "facebank-bench-video")
    args = ap.parse_args()
    video = args.faces / "video" / "street_1080p.mp4"
    if not video.is_file():
        sys.exit(f"error: {video} not found (give --faces)")
    from facebank import FaceBank

    args.work.mkdir(parents=True, exist_ok=True)
    mfn = mobilefacenet(args.models, args.work)
    with FaceBank(args.work / "empty.db") as fb:
        fb.pipeline  # noqa: B018 - models loaded before timing
        run = track_purity(fb, video, args.fps, mfn)
    res = run["result"]
    impure, worst = [], []
    from facebank.video.track import Track

    def faces_of(t: Track) -> list[np.ndarray]:
        out = []
        for tm, box in zip(t.times_s.tolist(), t.boxes.tolist(), strict=True):
            key = (round(tm, 3), tuple(int(round(v)) for v in box))
            if key in run["other"]:
                out.append(run["other"][key])
        return out

    def unit(v: np.ndarray) -> np.ndarray:
        return v / np.linalg.norm(v)

    for t in res.tracks:
        e = faces_of(t)
        if len(e) < 2:
            continue
        m = np.stack([unit(x) for x in e])
        d = np.linalg.norm(m[:, None] - m[None], axis=2)
        worst.append(float(d.max()))
        change, at = max(((float(np.linalg.norm(unit(m[:k].mean(0)) - unit(m[k:].mean(0)))), k)
                          for k in range(3, len(m) - 2)), default=(0.0, 0))
        if change > args.mfn_same:
            impure.append({"track": t.id, "frames": t.frames, "at_face": at,
                           "before_after_mfn_l2": round(change, 3),
                           "max_pair_mfn_l2": round(float(d.max()), 3)})
    long_tracks = [t for t in res.tracks if t.frames >= 10]
    figures = {
        "video": "street_1080p.mp4 1920x1080 25 fps 4.2 s",
        "sample": "every frame" if not args.fps else args.fps,
        "frames_analysed": res.frames_analysed, "tracks": len(res.tracks),
        "tracks_10_frames_or_more": len(long_tracks),
        "unknown_people": len(set(res.unknown.values())), "cuts": len(res.cuts_s),
        "tracks_holding_two_people": impure,
        "max_pair_in_track_mfn_l2": round(max(worst), 3) if worst else None,
        "cpu_s": round(run["cpu_s"], 1), "cpu_s_per_video_s": round(run["cpu_s"] / 4.2, 2),
        "wall_s": round(run["wall_s"], 1), "peak_rss_mb_before": round(run["rss0_mb"]),
        "peak_rss_mb_after": round(run["rss1_mb"]), "load_avg_1min": round(os.getloadavg()[0], 2),
        "people_by_eye": 11,
    }
    for t in res.tracks:
        print(f"#{t.id} {t.start_s:.2f}-{t.end_s:.2f} s {t.frames} frames box {t.box.as_list()} "
              f"{res.label(t)}", file=sys.stderr)
    line = record("video_street", figures, notes="purity judged by MobileFaceNet (the other model)")
    print(json.dumps(line))


if __name__ == "__main__":
    main()
