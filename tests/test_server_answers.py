"""No answer names a path of the server, numbers are validated, and a missing person costs nothing
(issue 17). Every JSON answer of this module's server session is collected (an httpx response
hook on every client) and the last test fails if one holds the session's temporary folder, the
enroll root or the home folder's prefix."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from facebank.server import ServerConfig
from facebank.server.auth import ApiKeyStore
from facebank.server.testing import LiveServer
from facebank.settings import Settings

ANSWERS: list[tuple[str, str]] = []  # (method + url, body) of every JSON answer of this module


def noise_jpeg(path: Path | None = None, seed: int = 0, size: tuple[int, int] = (320, 240)) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=80)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(out.getvalue())
    return out.getvalue()


def _collect(response: httpx.Response) -> None:
    if "json" in response.headers.get("content-type", ""):
        response.read()
        ANSWERS.append((f"{response.request.method} {response.request.url.path}", response.text))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("answers")
    root = base / "enroll-root"
    outside = base / "outside-folder"
    (root / "team" / "ada").mkdir(parents=True)
    noise_jpeg(root / "team" / "ada" / "noise.jpg", seed=1)
    (root / "team" / "ada" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    (root / "team" / "ada" / "empty.jpg").write_bytes(b"")
    noise_jpeg(outside / "x.jpg", seed=2)
    (root / "team" / "ada" / "out.jpg").symlink_to(outside / "x.jpg")
    (root / "team" / "bob").symlink_to(outside)
    (root / "team" / "ada" / "dangling.jpg").symlink_to(base / "gone.jpg")
    settings = Settings(gallery=str(base / "gallery.db"))
    with ApiKeyStore(settings.gallery) as store:
        _, key = store.create("tests", "admin")
    with LiveServer(ServerConfig(settings=settings, enroll_root=root)) as live:
        live.key = key
        live.base = base
        live.enroll_root = root
        yield live


@pytest.fixture
def c(server):
    with httpx.Client(base_url=server.url, headers={"X-API-Key": server.key}, timeout=120,
                      event_hooks={"response": [_collect]}) as client:
        yield client


def wait_job(c: httpx.Client, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/v1/jobs/{job_id}").json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s")


# -- numbers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "5", "1e309"])
def test_a_threshold_that_is_no_distance_gets_422(c, value):
    """verify's threshold is an L2 distance: [0, 2]; identify's is in the decision rule's unit (the
    default margin rule: any finite number), so only NaN and the infinities are refused there."""
    photo = {"photo": ("n.jpg", noise_jpeg(seed=3))}
    r = c.post("/v1/identify", params={"threshold": value}, files=photo)
    finite = value in ("-1", "5")
    assert r.status_code == (200 if finite else 422), r.text
    if finite:
        assert r.json()["threshold"] == float(value) and r.json()["decision"].startswith("margin")
    r = c.post("/v1/verify", params={"threshold": value},
               files={"a": ("a.jpg", noise_jpeg(seed=3)), "b": ("b.jpg", noise_jpeg(seed=4))})
    assert r.status_code == 422, r.text


@pytest.mark.parametrize("params", [{"limit": "-1"}, {"limit": "nan"}, {"offset": "-5"}, {"faces": "inf"}])
def test_paging_numbers_out_of_range_get_422(c, params):
    assert c.get("/v1/clusters", params=params).status_code == 422


# -- a person that does not exist ---------------------------------------------------------------------
def test_photos_for_a_person_that_does_not_exist_get_404_before_anything_is_decoded(server, c, monkeypatch):
    ctx = server.app.state.ctx
    decoded: list[str] = []
    original = ctx.load_photo

    def counting(data, label="photo", side=0):
        decoded.append(label)
        return original(data, label, side)

    monkeypatch.setattr(ctx, "load_photo", counting)
    files = [("photos", (f"{i}.jpg", noise_jpeg(seed=10 + i, size=(800, 600)))) for i in range(20)]
    t0 = time.perf_counter()
    r = c.post("/v1/people/Nobody%20Here/photos", files=files)
    seconds = time.perf_counter() - t0
    assert r.status_code == 404 and r.json()["error"]["code"] == "person_not_found", r.text
    assert decoded == [], f"{len(decoded)} photos decoded for a person that does not exist"
    assert seconds < 5, seconds
    assert c.post("/v1/people", json={"name": "Somebody"}).status_code == 201
    r = c.post("/v1/people/Somebody/photos", files=files[:1])
    assert r.status_code == 200 and decoded == ["0.jpg"], r.text


# -- a tour of the routes, then: no answer names a server path -----------------------------------------
def test_a_folder_job_names_its_problems_relative_to_the_root(c):
    r = c.post("/v1/jobs", json={"folder": "team"})
    assert r.status_code == 202, r.text
    job = wait_job(c, r.json()["id"])
    assert job["state"] == "finished", job
    samples = {s["path"]: s["reason"] for s in job["problem_samples"]}
    assert {"ada/broken.jpg", "ada/empty.jpg", "ada/out.jpg", "bob"} <= set(samples), samples
    for path in ("..", "../outside-folder", "/etc", "team/../..", "nope"):
        assert c.post("/v1/jobs", json={"folder": path}).status_code in (403, 422)


def test_the_routes_of_people_faces_and_clusters(c):
    assert c.post("/v1/people", json={"name": "Zed"}).status_code == 201
    up = c.post("/v1/people/Zed/photos", files=[("photos", ("a.jpg", noise_jpeg(seed=20)))])
    assert up.status_code == 200, up.text
    for path in ("/v1/people", "/v1/people/Zed", "/v1/people/Zed/photos", "/v1/people/Nobody",
                 "/v1/clusters", "/v1/faces", "/v1/faces/999999", "/v1/photos?with=Zed", "/v1/jobs",
                 "/v1/model", "/v1/ready", "/v1/health", "/v1/keys", "/v1/jobs/nojob"):
        c.get(path)
    c.post("/v1/identify", files={"photo": ("x.jpg", b"GIF89a broken")})
    c.post("/v1/detect", files={"photo": ("x.jpg", b"")})
    c.post("/v1/identify", files={"photo": ("n.jpg", noise_jpeg(seed=21))})
    c.patch("/v1/people/Nobody", json={"name": "X"})
    c.delete("/v1/people/Zed/photos/" + "0" * 64)


def test_no_answer_of_the_session_names_a_server_path(server):
    assert len(ANSWERS) >= 30, len(ANSWERS)
    secrets = {str(server.base), str(server.base.resolve()), str(server.enroll_root),
               str(server.enroll_root.resolve()), "outside-folder"}
    home = os.path.expanduser("~")
    if home not in ("", "/"):
        secrets.add(home.rstrip("/") + "/")
    leaks = [(where, s, body[:300]) for where, body in ANSWERS for s in secrets if s in body]
    assert not leaks, leaks
