"""Video jobs of a real server are bounded (issue 17, items 5 and 6): a 600,000-frame video job is
cancelled within a second (DELETE /v1/videos/{id}, and DELETE /v1/jobs/{id} for video jobs too),
budgets end a job as failed/budget_exceeded, a 64x64-header MJPEG with 12,000 x 12,000 frames fails
cleanly with the server far under 1 GB, and waiting uploads live under the photos folder within
their quota (413 / 507) and are removed when their job ends. No photos of ../shared are needed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("av")

from facebank.gallery.sqlite import SqliteGallery  # noqa: E402
from facebank.server import ServerConfig  # noqa: E402
from facebank.server.auth import ApiKeyStore  # noqa: E402
from facebank.server.testing import LiveServer  # noqa: E402
from facebank.settings import Settings  # noqa: E402
from tests.video_media import lying_mjpeg, many_tiny_frames  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("server-videos")
    return {"long": many_tiny_frames(root / "long.mkv").read_bytes(),
            "short": many_tiny_frames(root / "short.mkv", frames=5000).read_bytes(),
            "lying": lying_mjpeg(root / "lying.avi", big_frames=2).read_bytes()}


def _gallery(root: Path) -> tuple[Path, str]:
    gallery = root / "gallery.db"
    with SqliteGallery(gallery) as g:
        g.add_person("nobody")
    with ApiKeyStore(gallery) as keys:
        _, key = keys.create("tests", "write")
    return gallery, key


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Budgets far above what the tests use; 15 MB of upload storage (one 9 MB video waits at a time)."""
    gallery, key = _gallery(tmp_path_factory.mktemp("bounded"))
    config = ServerConfig(settings=Settings(gallery=str(gallery), video_max_frames=1_000_000),
                          max_upload_storage_bytes=15_000_000, max_upload_bytes=30_000_000)
    with LiveServer(config) as srv, httpx.Client(base_url=srv.url, headers={"X-API-Key": key},
                                                 timeout=120) as client:
        srv.client = client
        srv.videos_dir = config.resolved_videos_dir()
        yield srv


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    """A server with a budget of 2,000 decoded frames."""
    gallery, key = _gallery(tmp_path_factory.mktemp("tight"))
    config = ServerConfig(settings=Settings(gallery=str(gallery), video_max_frames=2000))
    with LiveServer(config) as srv, httpx.Client(base_url=srv.url, headers={"X-API-Key": key},
                                                 timeout=120) as client:
        srv.client = client
        yield srv


def _upload(client: httpx.Client, data: bytes, name: str = "long.mkv", **params) -> httpx.Response:
    return client.post("/v1/videos", files={"video": (name, data, "video/x-matroska")}, params=params)


def _wait(client: httpx.Client, job_id: str, until, timeout: float = 300.0, every: float = 0.05) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if until(job) or time.monotonic() > deadline:
            return job
        time.sleep(every)


def _ended(job: dict) -> bool:
    return job["state"] not in ("queued", "running")


@pytest.mark.parametrize("route", ["/v1/videos/{id}", "/v1/jobs/{id}"])
def test_a_600000_frame_video_job_is_cancelled_within_a_second(server, media, route):
    client = server.client
    r = _upload(client, media["long"])
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["kind"] == "video" and job["frames_expected"] >= 1000
    job = _wait(client, job["id"], lambda j: j["state"] == "running" and j["frames_analysed"] >= 2)
    assert job["state"] == "running", job
    assert [p.name for p in server.videos_dir.iterdir()] == [f"{job['id']}.video"]
    t0 = time.monotonic()
    r = client.delete(route.format(id=job["id"]))
    assert r.status_code == 200, r.text
    job = _wait(client, job["id"], _ended, timeout=30, every=0.01)
    latency = time.monotonic() - t0
    assert job["state"] == "cancelled" and job["reason"] == "cancelled", job
    assert latency < 1.0, f"cancelled after {latency:.2f} s"
    assert list(server.videos_dir.iterdir()) == []  # the upload is gone with its job
    # cancelling again answers the job as it ended
    again = client.delete(route.format(id=job["id"]))
    assert again.status_code == 200 and again.json()["state"] == "cancelled"


def test_uploads_wait_within_their_storage_quota(server, media):
    client = server.client
    first = _upload(client, media["long"])
    assert first.status_code == 202, first.text
    full = _upload(client, media["long"], name="second.mkv")
    assert full.status_code == 507, full.text
    err = full.json()["error"]
    assert err["code"] == "upload_storage_full" and "15 MB" in err["message"]
    assert full.headers.get("retry-after")
    too_big = _upload(client, os.urandom(16_000_000), name="big.mkv")
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "upload_storage_exceeded"
    assert len(list(server.videos_dir.iterdir())) == 1
    client.delete(f"/v1/videos/{first.json()['id']}")
    _wait(client, first.json()["id"], _ended)
    assert list(server.videos_dir.iterdir()) == []
    again = _upload(client, media["short"], name="short.mkv")  # room again
    assert again.status_code == 202, again.text
    done = _wait(client, again.json()["id"], _ended)
    assert done["state"] == "finished" and done["frames_analysed"] >= 5, done


def test_routes_of_one_kind_do_not_answer_for_jobs_of_another(server):
    r = server.client.delete("/v1/videos/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"
    assert server.client.post("/v1/jobs/nope/resume").status_code == 404


def test_a_video_job_past_its_frame_budget_fails_with_budget_exceeded(tight, media):
    client = tight.client
    r = _upload(client, media["short"], name="short.mkv")
    assert r.status_code == 202, r.text
    job = _wait(client, r.json()["id"], _ended)
    assert job["state"] == "failed" and job["reason"] == "budget_exceeded", job
    assert "2000 frames" in job["error"] and "/tmp" not in str(job)
    # a video job cannot be resumed
    r = client.post(f"/v1/jobs/{job['id']}/resume")
    assert r.status_code == 409 and r.json()["error"]["code"] == "job_not_resumable"


def test_frames_bigger_than_the_header_fail_the_job_cleanly(tight, media):
    client = tight.client
    r = _upload(client, media["lying"], name="lying.avi")
    assert r.status_code == 202, r.text
    job = _wait(client, r.json()["id"], _ended)
    assert job["state"] == "failed" and job["reason"] == "invalid_video", job
    assert job["error"].startswith("lying.avi: ") and "pixels" in job["error"]
    assert client.get("/v1/health").status_code == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_the_12000_squared_mjpeg_keeps_a_serve_process_far_under_1_gb(tmp_path, media):
    """From outside, as a user would: `facebank serve` in its own process, two such uploads."""
    gallery, key = _gallery(tmp_path)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    code = "import sys; from facebank.cli import main; sys.argv[0] = 'facebank'; main()"
    cmd = [sys.executable, "-c", code, "serve", "--gallery", str(gallery), "--port", str(port),
           "--log-level", "warning"]
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/v1/ready", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=120) as client:
            ids = [_upload(client, media["lying"], name=f"lying{i}.avi").json()["id"] for i in range(2)]
            jobs = [_wait(client, i, _ended) for i in ids]
        assert [j["state"] for j in jobs] == ["failed", "failed"], jobs
        peak = _peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    # main: 1.56 GB for two such jobs
    assert peak < 700, f"server peak RSS {peak:.0f} MB"
    print(f"serve peak RSS with two 12000^2 MJPEG jobs: {peak:.0f} MB")
