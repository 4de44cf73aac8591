"""Peak memory of the REST server under the decompression attack of issue 10.

    .venv/bin/python bench/bench_server_memory.py             # both runs below, ends with one JSON line
    .venv/bin/python bench/bench_server_memory.py --requests 8

The attack: an 8,900 x 8,900 grayscale PNG of one colour (~77 kB on the wire, 79 megapixels
decoded) sent to POST /v1/identify by four clients at once. Two runs, each against a fresh
`facebank serve` subprocess on 127.0.0.1 (empty gallery, a read key):

  * ``default``: the server's own pixel limit (40 MP): the photo is refused from its header (413);
  * ``accepted``: ``--max-pixels 80000000``, so every request is decoded and run through the face
    pipeline: the worst case the pixel budget and shrunk decoding must hold.

The server's resident memory (RSS) is sampled with psutil every 10 ms from just before the
requests until they are all answered (plus the kernel's own high-water mark, VmHWM, since start),
after one warm-up request with a 3,000 x 2,000 photo (the models' buffers at their working size).
The bench fails (exit 1) when the peak during the attack reaches 1 GB.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import psutil
from PIL import Image

from facebank.server.auth import ApiKeyStore
from facebank.server.testing import ServerProcess

LIMIT_BYTES = 1_000_000_000
SIDE = 8_900


def attack_png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (SIDE, SIDE), 0).save(out, format="PNG", optimize=True)
    return out.getvalue()


def warm_jpeg() -> bytes:
    """A 3,000 x 2,000 photo: the detector runs at its full working size (1,280 px), so the models'
    own buffers are grown before the attack and the attack's figure is the photo's memory."""
    rgb = np.random.default_rng(0).integers(0, 255, (2000, 3000, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=85)
    return out.getvalue()


def vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def run(name: str, extra: list[str], png: bytes, requests: int, concurrency: int, work: Path) -> dict:
    gallery = work / f"{name}.db"
    with ApiKeyStore(gallery) as keys:
        _, key = keys.create("bench", "read")
    with ServerProcess(["--gallery", str(gallery), *extra]) as server:
        proc = psutil.Process(server.proc.pid)
        headers = {"X-API-Key": key}
        with httpx.Client(base_url=server.url, headers=headers, timeout=300) as c:  # warm: models in use
            assert c.post("/v1/identify", files={"photo": ("w.jpg", warm_jpeg())}).status_code == 200
        time.sleep(0.5)
        before = proc.memory_info().rss
        peak = before
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                try:
                    peak = max(peak, proc.memory_info().rss)
                except psutil.Error:
                    return
                time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        def one(_: int) -> tuple[int, str]:
            with httpx.Client(base_url=server.url, headers=headers, timeout=300) as c:
                r = c.post("/v1/identify", files={"photo": ("attack.png", png, "image/png")})
                code = r.json().get("error", {}).get("code", "") if r.status_code != 200 else ""
                return r.status_code, code

        t0 = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            answers = list(pool.map(one, range(requests)))
        seconds = time.perf_counter() - t0
        time.sleep(0.5)
        stop.set()
        sampler.join()
        after = proc.memory_info().rss
        hwm = vm_hwm(server.proc.pid)
    statuses: dict[str, int] = {}
    for status, code in answers:
        label = f"{status} {code}".strip()
        statuses[label] = statuses.get(label, 0) + 1
    return {"run": name, "server_args": " ".join(extra) or "(defaults)", "requests": requests,
            "concurrency": concurrency, "answers": statuses, "seconds": round(seconds, 2),
            "rss_before_mb": round(before / 1e6), "rss_peak_mb": round(peak / 1e6),
            "rss_after_mb": round(after / 1e6), "vm_hwm_mb": round(hwm / 1e6)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()
    png = attack_png()
    print(f"attack photo: {SIDE} x {SIDE} grayscale PNG, {len(png):,} bytes", file=sys.stderr)
    results = []
    with tempfile.TemporaryDirectory(prefix="facebank-bench-mem-") as tmp:
        for name, extra in (("default", []), ("accepted", ["--max-pixels", "80000000"])):
            res = run(name, extra, png, args.requests, args.concurrency, Path(tmp))
            print(f"{name:9s} {res['answers']}  RSS before {res['rss_before_mb']} MB, peak "
                  f"{res['rss_peak_mb']} MB, after {res['rss_after_mb']} MB (VmHWM {res['vm_hwm_mb']} MB), "
                  f"{res['seconds']} s", file=sys.stderr)
            results.append(res)
    ok = all(r["rss_peak_mb"] * 1e6 < LIMIT_BYTES for r in results)
    print(json.dumps({"bench": "server_memory", "png_bytes": len(png), "pixels": SIDE * SIDE,
                      "limit_mb": LIMIT_BYTES // 1_000_000, "ok": ok, "runs": results}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
