"""Hostile videos against the CLI and a real `facebank serve` process (issue 17, items 5 and 6).

Figures:
  * cli_peak_rss_mb: `facebank identify` on a 5 MB MJPEG whose header says 64x64 and whose frames
    are 12,000 x 12,000 (peak RSS of the child, from wait4);
  * serve_peak_rss_mb: a `facebank serve` process given two such uploads (VmHWM of the process);
  * cancel_latency_s: a job on a 600,000-frame, 1,000 fps video (16x16 frames) running, then
    DELETE /v1/videos/{id}; seconds until GET says cancelled (polled every 10 ms); median and max
    of --trials.

    .venv/bin/python bench/bench_video_bounds.py [--trials 5] [--src OTHER/src] [--no-record]

``--src`` runs the CLI and the server from another source tree (e.g. an export of main) to
compare; nothing is chosen on these figures (there is no setting to tune here).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from record import record  # noqa: E402

from tests.video_media import lying_mjpeg, many_tiny_frames  # noqa: E402

CLI = "import sys; from facebank.cli import main; sys.argv[0] = 'facebank'; main()"


def _env(src: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(src)}


def _make_gallery(path: Path, src: Path) -> str:
    code = ("import sys; from facebank.gallery.sqlite import SqliteGallery; from facebank.server.auth import "
            "ApiKeyStore; g = SqliteGallery(sys.argv[1]); g.add_person('nobody'); g.close(); "
            "k = ApiKeyStore(sys.argv[1]); print(k.create('bench', 'write')[1]); k.close()")
    out = subprocess.run([sys.executable, "-c", code, str(path)], env=_env(src), capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def cli_peak(video: Path, gallery: Path, src: Path, tmp: Path) -> tuple[float, int, str]:
    """(peak RSS in MB of the child, its exit code, its last line of output)."""
    with (tmp / "cli.log").open("wb") as log:
        cmd = [sys.executable, "-c", CLI, "identify", str(video), "--gallery", str(gallery)]
        proc = subprocess.Popen(cmd, env=_env(src), stdout=log, stderr=subprocess.STDOUT)
        _, raw, usage = os.wait4(proc.pid, 0)
    lines = (tmp / "cli.log").read_text().strip().splitlines()
    return usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(raw), lines[-1][:200] if lines else ""


class Serve:
    def __init__(self, gallery: Path, src: Path, log: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = log.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-c", CLI, "serve", "--gallery", str(gallery), "--port",
                                      str(self.port), "--log-level", "warning"], env=_env(src),
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/v1/ready", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve stopped: see {log}")
            time.sleep(0.2)
        raise TimeoutError("serve not ready")

    def peak_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


def _wait(client: httpx.Client, job_id: str, until, timeout: float, every: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/videos/{job_id}").json()
        if until(job) or time.monotonic() > deadline:
            return job
        time.sleep(every)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--src", type=Path, default=REPO / "src")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    src = args.src.resolve()
    tmp = Path(tempfile.mkdtemp(prefix="bench-video-bounds-"))
    lying = lying_mjpeg(tmp / "lying.avi")
    long = many_tiny_frames(tmp / "long.mkv")
    gallery = tmp / "gallery.db"
    key = _make_gallery(gallery, src)
    figures: dict = {}
    rss, code, line = cli_peak(lying, gallery, src, tmp)
    figures.update(cli_peak_rss_mb=round(rss), cli_exit_code=code)
    print(f"CLI: peak RSS {rss:.0f} MB, exit {code}: {line}")

    serve = Serve(gallery, src, tmp / "serve.log")
    try:
        with httpx.Client(base_url=serve.url, headers={"X-API-Key": key}, timeout=300) as client:
            data = lying.read_bytes()
            ids = [client.post("/v1/videos", files={"video": (f"lying{i}.avi", data)}).json()["id"]
                   for i in range(2)]
            states = [_wait(client, i, lambda j: j["state"] not in ("queued", "running"), 600, 0.2)["state"]
                      for i in ids]
            figures.update(serve_peak_rss_mb=round(serve.peak_mb()), serve_job_states=states)
            print(f"serve: peak RSS {figures['serve_peak_rss_mb']} MB, jobs {states}")
            latencies = []
            payload = long.read_bytes()
            for _ in range(args.trials):
                job = client.post("/v1/videos", files={"video": ("long.mkv", payload)}).json()
                job = _wait(client, job["id"],
                            lambda j: j["state"] == "running" and j["frames_analysed"] >= 2, 600, 0.05)
                t0 = time.monotonic()
                r = client.delete(f"/v1/videos/{job['id']}")
                if r.status_code != 200:
                    figures["cancel_status"] = r.status_code
                    client.delete(f"/v1/jobs/{job['id']}")
                    break
                job = _wait(client, job["id"], lambda j: j["state"] not in ("queued", "running"), 600, 0.01)
                latencies.append(time.monotonic() - t0)
            if latencies:
                figures.update(cancel_latency_s_median=round(statistics.median(latencies), 3),
                               cancel_latency_s_max=round(max(latencies), 3), cancel_trials=len(latencies))
                print(f"cancel latency: median {figures['cancel_latency_s_median']} s, "
                      f"max {figures['cancel_latency_s_max']} s")
    finally:
        serve.close()
    if not args.no_record:
        tree = "this tree" if src == (REPO / "src").resolve() else f"source tree {src.name}"
        record("video_bounds", figures, notes=f"{tree}; 600,000 frames of 16x16 at 1,000 fps "
               "(H.264, 9 MB); MJPEG 64x64 header, 3 frames of 12,000^2 (5 MB)")


if __name__ == "__main__":
    main()
