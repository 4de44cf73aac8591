"""Load test of the REST server: N identify requests at concurrency C, from a second process.

    .venv/bin/python bench/bench_load.py                       # 2000 requests, concurrency 8
    .venv/bin/python bench/bench_load.py --requests 200 --gallery my.db

Starts `facebank serve` as a subprocess on 127.0.0.1 (free port) over a copy of a gallery (by
default a fresh one with ../shared/faces/5celeb/train enrolled), makes an API key, then a client
process sends the identify requests (threads, one httpx client each) with one small photo (a group
photo shrunk to 640 px). Reports throughput, latency percentiles, errors (non-200 answers and
answers that differ from the first one) and the server's peak memory (VmHWM), and ends with one
JSON line. Where the time goes, measured in the same run: the server's CPU seconds per request
(server process and children, psutil), the bound the cores set (cores / CPU seconds per request),
throughput against that bound, the cores the server actually used, and the CPU of the same
identify in this process on one thread (the pipeline's share; the rest of the server's CPU is the
HTTP side). On a machine shared with other jobs the server cannot get every core: read the
bound together with ``load_avg_1m``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "faces"
DEFAULT_PHOTO = FACES / "detection_edge" / "multi_face" / "face_recognition_two_people.jpg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def small_photo(path: Path, side: int) -> bytes:
    from PIL import Image

    im = Image.open(path).convert("RGB")
    im.thumbnail((side, side))
    out = io.BytesIO()
    im.save(out, format="JPEG", quality=90)
    return out.getvalue()


def facebank_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "from facebank.cli import main; main()", *args]


def peak_kb(pid: int, field: str = "VmHWM") -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def server_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of the server process and its children (worker processes)."""
    try:
        import psutil

        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        return sum(sum(p.cpu_times()[:2]) for p in procs)
    except Exception:  # psutil missing or a process gone: the bound is then not reported
        return None


def identify_cpu_ms(gallery: Path, photo: bytes, args) -> float:
    """CPU milliseconds of one ``FaceBank.identify`` of the photo in this process, one thread (the
    pipeline's own cost; the server's CPU per request minus this is the HTTP side)."""
    import time as _time

    from facebank import FaceBank, Settings

    over = {k: v for k, v in (("embedder", args.embedder), ("detector", args.detector)) if v}
    with FaceBank(gallery, settings=Settings(**over, threads=1, workers=1)) as fb:
        fb.identify(photo)
        times = []
        for _ in range(20):
            c = _time.process_time()
            fb.identify(photo)
            times.append(_time.process_time() - c)
    return round(1000 * sorted(times)[len(times) // 2], 1)


def run_load(url: str, key: str, photo: bytes, requests: int, concurrency: int) -> dict:
    """In the client process: send ``requests`` identify calls from ``concurrency`` threads."""
    counter = iter(range(requests))
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    answers: dict[str, int] = {}

    def worker() -> None:
        with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=120) as client:
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                t0 = time.perf_counter()
                try:
                    r = client.post("/v1/identify", files={"photo": ("bench.jpg", photo, "image/jpeg")})
                    status = str(r.status_code)
                    answer = ""
                    if r.status_code == 200:
                        answer = json.dumps([f["name"] for f in r.json()["faces"]])
                except Exception as exc:  # a failed request is a counted error, not the end of the bench
                    status, answer = type(exc).__name__, ""
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    statuses[status] = statuses.get(status, 0) + 1
                    if answer:
                        answers[answer] = answers.get(answer, 0) + 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for f in [pool.submit(worker) for _ in range(concurrency)]:
            f.result()
    return {"seconds": time.perf_counter() - t0, "latencies": latencies, "statuses": statuses,
            "answers": answers}


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--gallery", type=Path, help="gallery to copy (default: enroll 5celeb/train afresh)")
    ap.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    ap.add_argument("--side", type=int, default=640, help="the photo's longer side in pixels")
    ap.add_argument("--warmup", type=int, default=8)
    ap.add_argument("--pipelines", type=int, default=1)
    ap.add_argument("--embedder", default=None, help="server embedder (default: the settings' default)")
    ap.add_argument("--detector", default=None, help="server detector (default: the settings' default)")
    ap.add_argument("--no-baseline", dest="baseline", action="store_false",
                    help="skip timing the same identify in this process after the load")
    args = ap.parse_args()

    from facebank.server.auth import ApiKeyStore

    work = Path(tempfile.mkdtemp(prefix="facebank-load-"))
    server = None
    try:
        gallery = work / "gallery.db"
        if args.gallery:
            from facebank.server.testing import copy_gallery

            copy_gallery(args.gallery, gallery)
        else:
            train = FACES / "5celeb" / "train"
            if not train.is_dir():
                print(f"no {train}: pass --gallery", file=sys.stderr)
                return 2
            print(f"enrolling {train} ...", file=sys.stderr)
            subprocess.run(facebank_cmd("enroll", str(train), "--gallery", str(gallery)), check=True,
                           stdout=subprocess.DEVNULL)
        with ApiKeyStore(gallery) as keys:
            _, key = keys.create("bench_load")
        photo = small_photo(args.photo, args.side)

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = facebank_cmd("serve", "--gallery", str(gallery), "--host", "127.0.0.1", "--port", str(port),
                           "--log-level", "warning", "--pipelines", str(args.pipelines))
        for flag, value in (("--embedder", args.embedder), ("--detector", args.detector)):
            if value:
                cmd += [flag, value]
        log_file = (work / "server.log").open("w")
        server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log_file)
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                print((work / "server.log").read_text(), file=sys.stderr)
                raise RuntimeError("the server exited during start-up")
            try:
                if httpx.get(url + "/v1/ready", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the server was not ready in 180 s")
            time.sleep(0.2)
        model = httpx.get(url + "/v1/model").json()
        with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=120) as c:
            first = c.post("/v1/identify", files={"photo": ("bench.jpg", photo, "image/jpeg")}).json()
            for _ in range(max(0, args.warmup - 1)):
                c.post("/v1/identify", files={"photo": ("bench.jpg", photo, "image/jpeg")})
        expected = json.dumps([f["name"] for f in first["faces"]])
        size = f"{first['photo']['width']}x{first['photo']['height']}"
        print(f"server ready (pid {server.pid}); photo {size} with "
              f"{len(first['faces'])} faces {expected}; {args.requests} requests at concurrency "
              f"{args.concurrency} ...", file=sys.stderr)

        rss_peak = [0]
        stop = threading.Event()

        def sample() -> None:  # VmHWM is the kernel's own peak; this is a cross-check
            try:
                import psutil
            except ImportError:
                return

            proc = psutil.Process(server.pid)
            while not stop.wait(0.25):
                try:
                    rss_peak[0] = max(rss_peak[0], proc.memory_info().rss)
                except psutil.Error:
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        import multiprocessing as mp

        cpu0 = server_cpu_seconds(server.pid)
        with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as client_process:
            out = client_process.submit(run_load, url, key, photo, args.requests, args.concurrency).result()
        cpu1 = server_cpu_seconds(server.pid)
        stop.set()
        hwm = peak_kb(server.pid)

        lat = out["latencies"]
        ok = out["statuses"].get("200", 0)
        wrong = sum(n for a, n in out["answers"].items() if a != expected)
        errors = len(lat) - ok + wrong
        result = {
            "bench": "load_identify", "requests": len(lat), "concurrency": args.concurrency,
            "errors": errors, "non_200": len(lat) - ok, "wrong_answers": wrong, "statuses": out["statuses"],
            "seconds": round(out["seconds"], 2), "throughput_rps": round(len(lat) / out["seconds"], 2),
            "p50_ms": round(1000 * percentile(lat, 0.50), 1),
            "p95_ms": round(1000 * percentile(lat, 0.95), 1),
            "p99_ms": round(1000 * percentile(lat, 0.99), 1), "max_ms": round(1000 * max(lat), 1),
            "server_peak_rss_mb": round(hwm / 1024, 1) if hwm else round(rss_peak[0] / 2**20, 1),
            "server_peak_rss_sampled_mb": round(rss_peak[0] / 2**20, 1),
            "photo": {"name": args.photo.name, "width": first["photo"]["width"],
                      "height": first["photo"]["height"], "faces": len(first["faces"])},
            "detector": model["detector"], "embedder": model["embedder"], "pipelines": args.pipelines,
            "cpu_count": os.cpu_count(),
        }
        if cpu0 is not None and cpu1 is not None and lat:
            # what the cores could do if every CPU second of the server went into requests
            per_request = (cpu1 - cpu0) / len(lat)
            bound = (os.cpu_count() or 1) / per_request
            result.update({"server_cpu_ms_per_request": round(1000 * per_request, 1),
                           "cores_bound_rps": round(bound, 2),
                           "throughput_vs_cores_bound": round(result["throughput_rps"] / bound, 3),
                           "server_cores_used": round((cpu1 - cpu0) / out["seconds"], 2)})
        if args.baseline:
            result["identify_cpu_ms_in_process"] = identify_cpu_ms(gallery, photo, args)
        result["load_avg_1m"] = round(os.getloadavg()[0], 2)
        print(f"{result['requests']} requests in {result['seconds']} s: {result['throughput_rps']} req/s, "
              f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, max {result['max_ms']} ms, "
              f"{errors} errors; server peak memory {result['server_peak_rss_mb']} MB; server CPU "
              f"{result.get('server_cpu_ms_per_request')} ms/request, cores' bound "
              f"{result.get('cores_bound_rps')} req/s", file=sys.stderr)
        print(json.dumps(result))
        return 0 if errors == 0 else 1
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
        if server is not None:
            log_file.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
