"""The server against a careless user and a hostile one (issue 10): the README's key steps, key
scopes, folder jobs inside the enroll root only, no server paths in answers, --open-reads, bounded
decoding, cancelled jobs, SIGTERM/SIGINT. Real servers: uvicorn in a thread (LiveServer) or
`facebank serve` in its own process (ServerProcess) on 127.0.0.1."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

import facebank  # noqa: E402
from facebank import images
from facebank.server import ServerConfig
from facebank.server.auth import ApiKeyStore
from facebank.server.limits import PixelBudget
from facebank.server.testing import LiveServer, ServerProcess, free_port
from facebank.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SRC = Path(facebank.__file__).resolve().parents[1]  # the facebank these tests import (and run)


def noise_jpeg(path: Path | None = None, seed: int = 0, size: tuple[int, int] = (640, 480)) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=80)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(out.getvalue())
    return out.getvalue()


def error_of(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    return body["error"]["message"]


def facebank_on_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose `facebank` is this checkout's (the README's commands run as written)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / "facebank"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m facebank "$@"\n')
    exe.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("FACEBANK_GALLERY", None)
    src = str(SRC)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# -- the README's steps ---------------------------------------------------------------------------
def readme_serve_block() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("Serve it (REST")
    block = text[text.index("```", start) + 3: text.index("```", text.index("```", start) + 3)]
    return [line for line in block.strip().splitlines() if line.strip()]


@pytest.mark.slow
def test_the_readme_key_steps_work_pasted_into_a_shell(tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    lines = readme_serve_block()
    assert any("keys create" in line for line in lines) and any("curl" in line for line in lines)
    port = free_port()
    script = []
    for line in lines:  # verbatim, except a free port instead of 8000 (the machine is shared)
        if line.startswith("facebank serve"):
            line = line.replace("facebank serve", f"facebank serve --port {port}", 1)
        script.append(line.replace("localhost:8000", f"localhost:{port}"))
    work = tmp_path / "work"
    person = work / "photos" / "someone"
    person.mkdir(parents=True)
    noise_jpeg(person / "1.jpg", seed=1)
    noise_jpeg(work / "me.jpg", seed=2)
    body = "\n".join(script)
    run = subprocess.run(["bash", "-c", f"set -e\n{body}\necho\nkill %1\nwait || true\n"], cwd=work,
                         env=facebank_on_path(tmp_path), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    answer = run.stdout.strip().splitlines()[-1]
    assert '"faces"' in answer and '"photo"' in answer, run.stdout + run.stderr
    assert (work / "gallery.db").is_file() and not (work / "facebank.db").exists()
    with ApiKeyStore(work / "gallery.db") as keys:
        (kiosk,) = keys.keys()
    assert kiosk.name == "kiosk" and kiosk.scope == "read"


def test_serve_refuses_a_gallery_that_does_not_exist(tmp_path):
    missing = tmp_path / "nowhere" / "x.db"
    run = subprocess.run([sys.executable, "-m", "facebank", "serve", "--gallery", str(missing)],
                         env=facebank_on_path(tmp_path), capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("error: no gallery at") and len(run.stderr.strip().splitlines()) == 1
    assert "Traceback" not in run.stderr
    assert not missing.parent.exists()  # nothing created


def test_keys_create_tells_which_gallery_holds_the_key(tmp_path):
    env = facebank_on_path(tmp_path)
    run = subprocess.run([sys.executable, "-m", "facebank", "keys", "create", "--gallery", "g.db",
                          "--name", "kiosk", "--scope", "read"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "read key" in run.stderr and "g.db" in run.stderr and "facebank serve --gallery g.db" in run.stderr
    bad = subprocess.run([sys.executable, "-m", "facebank", "keys", "create", "--gallery", "g.db", "--scope",
                          "root"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --scope must be one of read, write, admin")


# -- scopes, open reads, paths ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("hardening")
    enroll_root = root / "enroll"
    (enroll_root / "team" / "ada").mkdir(parents=True)
    noise_jpeg(enroll_root / "team" / "ada" / "noise.jpg", seed=3)
    (enroll_root / "team" / "ada" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    settings = Settings(gallery=str(root / "gallery.db"))
    with ApiKeyStore(settings.gallery) as store:
        keys = {scope: store.create(f"{scope} key", scope)[1] for scope in ("read", "write", "admin")}
    config = ServerConfig(settings=settings, enroll_root=enroll_root, open_reads=True)
    with LiveServer(config) as live:
        live.keys = keys
        live.root = root
        yield live


def client(server, scope: str | None) -> httpx.Client:
    headers = {"X-API-Key": server.keys[scope]} if scope else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=120)


def test_a_read_key_reads_but_cannot_write_and_a_write_key_cannot_manage_keys(server):
    photo = {"photo": ("n.jpg", noise_jpeg(seed=4), "image/jpeg")}
    with client(server, "read") as read, client(server, "write") as write, client(server, "admin") as admin:
        assert read.post("/v1/identify", files=photo).status_code == 200
        assert read.get("/v1/people").status_code == 200
        assert read.get("/v1/jobs").status_code == 200
        msg = error_of(read.post("/v1/people", json={"name": "Eve"}), 403, "insufficient_scope")
        assert "'write'" in msg
        error_of(read.post("/v1/jobs", json={"folder": "team"}), 403, "insufficient_scope")
        error_of(read.delete("/v1/people/Anyone"), 403, "insufficient_scope")
        error_of(read.get("/v1/keys"), 403, "insufficient_scope")

        assert write.post("/v1/people", json={"name": "Scoped"}).status_code == 201
        assert write.delete("/v1/people/Scoped").status_code == 200
        error_of(write.get("/v1/keys"), 403, "insufficient_scope")
        error_of(write.post("/v1/keys", json={"name": "more", "scope": "admin"}), 403, "insufficient_scope")

        made = admin.post("/v1/keys", json={"name": "door", "scope": "read"})
        assert made.status_code == 201 and made.json()["scope"] == "read", made.text
        new_key = made.json()["key"]
        listed = admin.get("/v1/keys").json()["keys"]
        assert {k["scope"] for k in listed} >= {"read", "write", "admin"}
        assert all("key" not in k and new_key not in str(k) for k in listed)
        with httpx.Client(base_url=server.url, headers={"X-API-Key": new_key}, timeout=60) as door:
            assert door.get("/v1/people").status_code == 200
            assert admin.delete(f"/v1/keys/{made.json()['id']}").json()["active"] is False
            error_of(door.get("/v1/people"), 401, "invalid_api_key")
        error_of(admin.delete("/v1/keys/00000000"), 404, "key_not_found")


def test_open_reads_keep_photos_face_crops_jobs_and_gallery_counts_behind_a_key(server):
    with client(server, "write") as write:
        r = write.post("/v1/people", json={"name": "Shown"})
        assert r.status_code == 201
        up = write.post("/v1/people/Shown/photos", files=[("photos", ("a.jpg", noise_jpeg(seed=5)))])
        assert up.status_code == 200, up.text
        sha = up.json()["photos"][0]["sha256"]
        assert write.get(f"/v1/people/Shown/photos/{sha}/image").status_code == 200
    with client(server, None) as anon:
        assert anon.get("/v1/people").status_code == 200  # the listing is open...
        assert anon.post("/v1/detect", files={"photo": ("n.jpg", noise_jpeg(seed=6))}).status_code == 200
        for path in (f"/v1/people/Shown/photos/{sha}/image", f"/v1/people/Shown/photos/{sha}/face",
                     "/v1/jobs", "/v1/jobs/abc", "/v1/keys"):
            error_of(anon.get(path), 401, "missing_api_key")  # ...photos, crops, jobs and keys are not
        ready = anon.get("/v1/ready").json()
        assert ready["ready"] is True and ready["people"] is None and ready["faces"] is None
    with client(server, "read") as read:
        assert read.get("/v1/ready").json()["people"] >= 1


def test_open_reads_help_says_what_becomes_public(tmp_path):
    run = subprocess.run([sys.executable, "-m", "facebank", "serve", "--help"],
                         env=facebank_on_path(tmp_path),
                         capture_output=True, text=True, timeout=120)
    text = " ".join(run.stdout.split())
    assert "identify, detect or verify" in text and "stored photos, face crops, jobs, keys" in text


def test_folder_jobs_are_refused_without_an_enroll_root(tmp_path):
    settings = Settings(gallery=str(tmp_path / "g.db"))
    with ApiKeyStore(settings.gallery) as store:
        _, key = store.create("w", "write")
    with LiveServer(ServerConfig(settings=settings)) as live, \
            httpx.Client(base_url=live.url, headers={"X-API-Key": key}, timeout=60) as c:
        for folder in (str(tmp_path), "/", "."):
            msg = error_of(c.post("/v1/jobs", json={"folder": folder}), 403, "folder_jobs_disabled")
            assert "--enroll-root" in msg and str(tmp_path) not in msg


def wait_job(c: httpx.Client, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/v1/jobs/{job_id}").json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s")


SERVER_PATH = re.compile(r"(/tmp/|/home/|/root/|/work/|/srv/|/var/)")


def test_no_answer_shows_a_server_path(server):
    with client(server, "write") as c:
        r = c.post("/v1/jobs", json={"folder": "team", "person": "Ada"})
        assert r.status_code == 202, r.text
        job = wait_job(c, r.json()["id"])
        assert job["state"] == "finished", job
        assert job["folder"] == "team"
        samples = {s["path"]: s["reason"] for s in job["problem_samples"]}
        assert "ada/broken.jpg" in samples, samples
        photos = c.get("/v1/people/Ada").json()["photo_list"]
        answers = [r.text, c.get(f"/v1/jobs/{job['id']}").text, c.get("/v1/jobs").text,
                   c.get("/v1/people/Ada").text, c.get("/v1/model").text, c.get("/v1/ready").text]
        for p in photos:  # job-enrolled photos are served by sha256, never by path
            answers.append(c.get(p["image_url"]).headers.get("content-type", ""))
        answers.append(c.post("/v1/jobs", json={"folder": "../.."}).text)
        answers.append(c.post("/v1/jobs", json={"folder": "nope"}).text)
        answers.append(c.post("/v1/identify", files={"photo": ("x.jpg", b"GIF89a broken")}).text)
        root = str(server.root)
        for text in answers:
            assert root not in text and not SERVER_PATH.search(text), text


# -- input the API cannot parse, HEAD ---------------------------------------------------------------
def test_invalid_json_gets_a_clean_400_and_head_of_the_page_answers(server):
    with client(server, "admin") as c:
        for path, method in (("/v1/people", "POST"), ("/v1/people/x", "PATCH"), ("/v1/jobs", "POST"),
                             ("/v1/keys", "POST")):
            r = c.request(method, path, content=b'{"name": "x",',
                          headers={"Content-Type": "application/json"})
            msg = error_of(r, 400, "invalid_json")
            assert "not valid JSON" in msg
        head = c.head("/")
        assert head.status_code == 200 and head.headers["content-type"].startswith("text/html")


# -- memory ---------------------------------------------------------------------------------------------
def test_big_photos_of_any_format_decode_reduced_with_the_photos_own_size(tmp_path):
    big = Image.new("RGB", (6000, 4000), (120, 110, 100))
    for fmt in ("JPEG", "PNG", "WEBP"):
        out = io.BytesIO()
        big.save(out, format=fmt)
        img = images.load_reduced(out.getvalue(), 1500, any_format=True)
        assert 1500 <= max(img.width, img.height) < 3000, (fmt, img.rgb.shape)
        assert img.photo_size == (6000, 4000)
        assert img.scale == pytest.approx(6000 / img.width)
    grey = io.BytesIO()
    Image.new("L", (8900, 8900), 0).save(grey, format="PNG")
    img = images.load_reduced(grey.getvalue(), 4096, max_pixels=80_000_000, any_format=True)
    assert img.rgb.shape == (4450, 4450, 3) and img.photo_size == (8900, 8900)


def test_the_pixel_budget_holds_photos_back_and_gives_up_with_503():
    import threading

    from facebank.server.errors import ApiError

    budget = PixelBudget(100, wait_s=0.2)
    with budget.hold(60):
        with pytest.raises(ApiError) as err, budget.hold(60):
            pass
        assert err.value.status == 503 and err.value.code == "server_busy"
        done = []
        t = threading.Thread(target=lambda: budget.hold(60).__enter__() and None or done.append(1))
        with budget.hold(40):  # fits beside the 60
            assert budget.used == 100
    t.start()
    t.join(2)
    assert done and budget.peak == 100


def test_a_photo_over_the_server_pixel_limit_is_refused_before_decoding(tmp_path):
    settings = Settings(gallery=str(tmp_path / "g.db"))
    with ApiKeyStore(settings.gallery) as store:
        _, key = store.create("r", "read")
    attack = io.BytesIO()
    Image.new("L", (8900, 8900), 0).save(attack, format="PNG", optimize=True)
    assert len(attack.getvalue()) < 150_000
    with LiveServer(ServerConfig(settings=settings)) as live, \
            httpx.Client(base_url=live.url, headers={"X-API-Key": key}, timeout=60) as c:
        msg = error_of(c.post("/v1/identify", files={"photo": ("bomb.png", attack.getvalue())}), 413,
                       "image_too_large")
        assert "40 megapixels" in msg


# -- stopping -------------------------------------------------------------------------------------------
@pytest.fixture
def busy_folder(tmp_path) -> Path:
    """An enroll root with 200 noise photos (no faces: each one still runs the detector)."""
    root = tmp_path / "root"
    for i in range(200):
        noise_jpeg(root / "crowd" / "x" / f"{i:03d}.jpg", seed=i, size=(320, 240))
    return root


def start_job(proc: ServerProcess, key: str, folder: str) -> str:
    with httpx.Client(base_url=proc.url, headers={"X-API-Key": key}, timeout=60) as c:
        r = c.post("/v1/jobs", json={"folder": folder})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job = c.get(f"/v1/jobs/{job_id}").json()
            if job["state"] == "running" and job["processed"] >= 1:
                return job_id
            time.sleep(0.1)
    raise AssertionError("the job did not start")


def served(tmp_path: Path, root: Path) -> tuple[ServerProcess, str]:
    gallery = tmp_path / "g.db"
    with ApiKeyStore(gallery) as store:
        _, key = store.create("w", "write")
    return ServerProcess(["--gallery", str(gallery), "--enroll-root", str(root)],
                         env={"PYTHONPATH": str(SRC)}), key


def looping_folder(root: Path) -> None:
    """root/loop/p: one photo and two links back to itself (a walker that follows them never ends)."""
    loop = root / "loop" / "p"
    loop.mkdir(parents=True)
    noise_jpeg(loop / "a.jpg")
    (loop / "self").symlink_to(".")
    (loop / "up").symlink_to("../p")


@pytest.mark.slow
def test_a_cancelled_job_stops_while_it_enrolls_and_while_it_lists_its_folder(tmp_path, busy_folder):
    looping_folder(busy_folder)
    proc, key = served(tmp_path, busy_folder)
    with proc, httpx.Client(base_url=proc.url, headers={"X-API-Key": key}, timeout=60) as c:
        job_id = start_job(proc, key, "crowd")
        r = c.delete(f"/v1/jobs/{job_id}")
        assert r.status_code == 200
        job = wait_job(c, job_id, timeout=10)
        assert job["state"] == "cancelled"
        assert job["run_id"] is not None and job["problems"] >= 1  # what it did before the cancel
        seen = job["processed"]
        time.sleep(1.5)
        assert c.get(f"/v1/jobs/{job_id}").json()["processed"] == seen < 200

        r = c.post("/v1/jobs", json={"folder": "loop"})
        assert r.status_code == 202
        time.sleep(1.0)
        c.delete(f"/v1/jobs/{r.json()['id']}")
        assert wait_job(c, r.json()["id"], timeout=10)["state"] in ("cancelled", "finished")


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "folder"), [(signal.SIGTERM, "crowd"), (signal.SIGINT, "crowd"),
                                             (signal.SIGTERM, "loop"), (signal.SIGTERM, "stalled-upload")],
                         ids=["SIGTERM", "SIGINT", "SIGTERM-while-listing-a-folder-that-links-to-itself",
                              "SIGTERM-while-a-client-stalls-mid-upload"])
def test_the_server_stops_on_a_signal_within_seconds_while_a_job_runs(tmp_path, busy_folder, sig, folder):
    looping_folder(busy_folder)
    proc, key = served(tmp_path, busy_folder)
    proc.start()
    try:
        stalled = None
        if folder == "crowd":
            start_job(proc, key, folder)  # running, a photo in flight
        elif folder == "stalled-upload":  # a job runs and a client sends half a photo, then waits
            start_job(proc, key, "crowd")
            stalled = socket.create_connection(("127.0.0.1", proc.port))
            stalled.sendall(b"POST /v1/identify HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key.encode()
                            + b"\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000"
                            b"\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"photo\"; "
                            b"filename=\"a.jpg\"\r\n\r\n\xff\xd8\xff")
            time.sleep(0.5)
        else:
            with httpx.Client(base_url=proc.url, headers={"X-API-Key": key}, timeout=60) as c:
                r = c.post("/v1/jobs", json={"folder": folder})
                assert r.status_code == 202
                time.sleep(1.0)
                assert c.get(f"/v1/jobs/{r.json()['id']}").json()["state"] in ("running", "finished")
        t0 = time.monotonic()
        proc.proc.send_signal(sig)
        code = proc.proc.wait(timeout=60)
        took = time.monotonic() - t0
    finally:
        proc.stop(timeout=5)
        if stalled is not None:
            stalled.close()
    assert took < 10, f"the server needed {took:.1f} s to stop"
    assert code in (0, -sig), proc.log()[-2000:]  # uvicorn re-raises the signal after a clean shutdown
    if folder != "stalled-upload":  # (uvicorn logs the stalled request it cancels, with a traceback)
        assert "Traceback" not in proc.log()
    with sqlite3.connect(tmp_path / "g.db") as db:
        runs = db.execute("SELECT status FROM runs").fetchall()
    assert all(status != "running" for (status,) in runs), runs  # the run was closed, not cut off
