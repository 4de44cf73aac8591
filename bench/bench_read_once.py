"""One read per photo (issue 21): `facebank enroll` of a folder with this checkout and with another
one (e.g. main, exported with `git archive main src | tar -x -C /tmp/main-src`), in alternation,
measuring the CPU time of the whole command (parent + worker processes, so the load of the shared
machine does not enter much) and its wall time. That each photo is read and hashed once is
asserted by tests/test_enroll_once.py; this measures what it saves.

    .venv/bin/python bench/bench_read_once.py --other /tmp/main-src/src --folder ../shared/faces/5celeb/train
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import record  # noqa: E402

HERE = Path(__file__).resolve().parents[1] / "src"


def photo_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


SNIPPET = r"""
import json, sys, time
from facebank import FaceBank
from facebank.pipeline import FacePipeline
from facebank.settings import Settings

def rchar():
    with open("/proc/self/io") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("rchar"))

pipe = FacePipeline(Settings(workers=1))  # the models are read before the count starts
with FaceBank(sys.argv[2], pipeline=pipe, workers=1) as fb:
    r0, c0, t0 = rchar(), time.process_time(), time.perf_counter()
    report = fb.enroll_folder(sys.argv[1])
    print(json.dumps({"read": rchar() - r0, "cpu": time.process_time() - c0,
                      "wall": time.perf_counter() - t0, "photos": report.photos_processed}))
"""


def run(src: Path, folder: Path) -> dict:
    """Bytes read (rchar), CPU and wall seconds of one enrollment into a new gallery, in one process."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(src)}
        out = subprocess.run([sys.executable, "-c", SNIPPET, str(folder), f"{tmp}/g.db"], env=env, check=True,
                             capture_output=True, text=True, timeout=3600).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--other", type=Path, required=True, help="the src/ folder to compare with (e.g. main)")
    ap.add_argument("--folder", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    results: dict[str, list[dict]] = {"this": [], "other": []}
    for _ in range(args.rounds):
        for name, src in (("other", args.other), ("this", HERE)):
            results[name].append(run(src, args.folder))
    size = photo_bytes(args.folder)
    figures: dict[str, float] = {"photos": results["this"][0]["photos"], "photo_mb": round(size / 1e6, 2)}
    for name, runs in results.items():
        figures[f"bytes_read_per_photo_byte_{name}"] = round(min(r["read"] for r in runs) / size, 3)
        figures[f"cpu_s_{name}"] = round(min(r["cpu"] for r in runs), 2)
        figures[f"wall_s_{name}"] = round(min(r["wall"] for r in runs), 2)
    print(figures)
    record("read_once", figures, notes=f"FaceBank.enroll_folder({args.folder}) in one process (workers=1), "
           f"this checkout vs {args.other}; best of {args.rounds} rounds each, in alternation; bytes read "
           "= the process's rchar (files and the gallery) over the photos' bytes; CPU seconds of the "
           "process (the machine is shared: wall time is loaded)")


if __name__ == "__main__":
    main()
