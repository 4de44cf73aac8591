"""What converting a sampled frame once, straight to the detector's size, would save and cost.

    .venv/bin/python bench/bench_video_convert.py [--faces ../shared/faces] [--fps 5]

Today a sampled frame is converted to full-size RGB (PyAV), the detector looks at a copy shrunk to
``detect_max_side`` (1280), and the face chips are cut from the full-size frame. The alternative:
PyAV converts the frame once, straight to 1280 pixels, and chips are cut from that. On the real
1080p street footage (many small faces), per sampled frame: CPU milliseconds of each conversion, and
for every face found both ways (IoU >= 0.5) the L2 distance between its two dlib embeddings, by face
height (in full-size pixels): what the smaller chips cost small faces. Measurement only; nothing
in the library changes. Ends with ONE JSON line, appended to bench/results/video_convert.jsonl.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from record import record  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=Path("..") / "shared" / "faces")
    ap.add_argument("--fps", type=float, default=5.0)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "facebank-bench-video")
    args = ap.parse_args()
    video = args.faces / "video" / "street_1080p.mp4"
    if not video.is_file():
        sys.exit(f"error: {video} not found (give --faces)")
    import av

    from facebank import FaceBank
    from facebank.images import downscale
    from facebank.video.synthetic import box_iou

    args.work.mkdir(parents=True, exist_ok=True)
    full_ms, straight_ms, rows = [], [], []
    found_full = found_straight = 0
    with FaceBank(args.work / "empty.db") as fb, av.open(str(video)) as c:
        pipe = fb.pipeline
        side = fb.settings.detect_max_side
        stream = c.streams.video[0]
        step, next_t = 1.0 / args.fps, 0.0
        for frame in c.decode(stream):
            t = float(frame.pts * frame.time_base)
            if t + 1e-6 < next_t:
                continue
            next_t += step
            t0 = time.process_time()
            rgb = frame.to_ndarray(format="rgb24")
            downscale(rgb, side)  # what the detector's copy costs today
            full_ms.append((time.process_time() - t0) * 1000)
            f = side / max(frame.width, frame.height)
            t0 = time.process_time()
            small = frame.reformat(width=round(frame.width * f), height=round(frame.height * f),
                                   format="rgb24").to_ndarray()
            straight_ms.append((time.process_time() - t0) * 1000)
            a, b = pipe.faces(rgb), pipe.faces(small)
            found_full += len(a)
            found_straight += len(b)
            for fa in a:
                ba = fa.box.as_list()
                for fb_ in b:
                    bb = [v / f for v in fb_.box.as_list()]
                    if box_iou(ba, bb) >= 0.5:
                        rows.append((fa.box.height, float(np.linalg.norm(fa.embedding - fb_.embedding))))
                        break
    rows.sort()
    bands = {}
    for lo, hi in ((0, 60), (60, 90), (90, 130), (130, 10_000)):
        d = [x for h, x in rows if lo <= h < hi]
        if d:
            name = f"{lo}-{hi if hi < 10_000 else 'up'} px"
            bands[name] = {"faces": len(d), "median_l2": round(float(np.median(d)), 3),
                           "max_l2": round(float(max(d)), 3)}
    figures = {"frames": len(full_ms), "convert_full_then_shrink_ms": round(float(np.median(full_ms)), 1),
               "convert_straight_ms": round(float(np.median(straight_ms)), 1),
               "faces_found_full": found_full, "faces_found_straight": found_straight,
               "same_face_l2_by_height": bands, "load_avg_1min": round(os.getloadavg()[0], 2)}
    line = record("video_convert", figures, notes="street_1080p.mp4; dlib embeddings of one face, chips cut "
                  "from the full frame vs the 1280-pixel frame")
    print(json.dumps(line))


if __name__ == "__main__":
    main()
