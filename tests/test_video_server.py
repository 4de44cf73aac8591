"""REST video jobs against a real server (uvicorn on loopback, httpx): upload, progress, tracks,
clear errors for bad uploads. The video is generated from ../shared/faces/5celeb/val photos."""

from __future__ import annotations

import time

import httpx
import pytest

pytest.importorskip("av")

from facebank.server import ServerConfig  # noqa: E402
from facebank.server.auth import ApiKeyStore  # noqa: E402
from facebank.server.testing import LiveServer, copy_gallery  # noqa: E402
from facebank.settings import Settings  # noqa: E402
from facebank.video.synthetic import make_video, standard_shots  # noqa: E402

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def server(celeb_gallery, tmp_path_factory):
    root = tmp_path_factory.mktemp("videoserver")
    gallery = copy_gallery(celeb_gallery, root / "gallery.db")
    with ApiKeyStore(gallery) as keys:
        _, key = keys.create("tests")
    with LiveServer(ServerConfig(settings=Settings(gallery=str(gallery)))) as srv:
        srv.key = key
        yield srv


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, headers={"X-API-Key": server.key}, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def clip(tmp_path_factory, faces_dir):
    shots = standard_shots(faces_dir / "5celeb" / "val", seconds=2.0)[:3]
    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", shots)


@pytest.fixture(scope="module")
def finished(server, clip):
    """One clip uploaded and followed to its end: (the first answer, the last answer, progress seen)."""
    with httpx.Client(base_url=server.url, headers={"X-API-Key": server.key}, timeout=120) as c:
        r = c.post("/v1/videos", files={"video": ("clip.mp4", clip.path.read_bytes(), "video/mp4")})
        assert r.status_code == 202, r.text
        job = r.json()
        seen = []
        deadline = time.monotonic() + 600
        while job["state"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.5)
            job = c.get(f"/v1/videos/{job['id']}").json()
            seen.append(job["progress"])
        return r, job, seen


def test_an_uploaded_video_becomes_a_job_with_progress_and_named_tracks(client, clip, finished):
    r, job, seen = finished
    first = r.json()
    assert first["state"] in ("queued", "running") and first["filename"] == "clip.mp4"
    assert (first["width"], first["height"]) == (1280, 720) and first["frames_expected"] >= 12
    assert job["state"] == "finished", job
    assert job["progress"] == 1.0 and seen == sorted(seen)
    keys = ["track", "name", "distance", "start", "end", "frames", "box", "score", "faces_used"]
    assert job["tracks"] and all(list(t) == keys for t in job["tracks"])
    named = [t["name"] for t in job["tracks"] if t["frames"] >= 2]
    assert named == [s.people[0] for s in clip.shots]
    assert "/tmp" not in r.text and "facebank-video-" not in client.get(f"/v1/videos/{job['id']}").text


def test_a_finished_video_job_sums_up_each_person_like_the_cli_summary(finished, clip):
    _, job, _ = finished
    people = job["people"]
    assert people and all(list(p) == ["person", "name", "seconds", "appearances"] for p in people)
    by_name = {p["name"]: p for p in people if p["name"]}
    assert set(by_name) == {s.people[0] for s in clip.shots}
    assert [p["seconds"] for p in people] == sorted((p["seconds"] for p in people), reverse=True)
    tracks = {t["track"]: t for t in job["tracks"]}
    for p in people:
        ids = [i for a in p["appearances"] for i in a["tracks"]]
        assert sorted(ids) == sorted(set(ids)) and set(ids) <= set(tracks)
        assert all(tracks[i]["name"] == p["name"] for i in ids)
        assert all(a["start"] < a["end"] for a in p["appearances"])
        assert p["seconds"] == pytest.approx(sum(a["end"] - a["start"] for a in p["appearances"]), abs=0.01)
    for name, p in by_name.items():  # every track of a person is in their summary
        assert {i for a in p["appearances"] for i in a["tracks"]} == \
            {i for i, t in tracks.items() if t["name"] == name}


@pytest.mark.parametrize("data,code", [(b"", "empty_file"), (b"\x00" * 4000, "invalid_video")])
def test_bad_uploads_are_refused_at_once_with_a_clear_error(client, data, code):
    r = client.post("/v1/videos", files={"video": ("bad.mp4", data, "video/mp4")})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["message"].startswith("bad.mp4: ")
    assert "Traceback" not in r.text and "/tmp" not in r.text


def test_video_routes_need_keys_and_unknown_jobs_are_404(server, clip):
    with httpx.Client(base_url=server.url, timeout=60) as anon:
        r = anon.post("/v1/videos", files={"video": ("clip.mp4", b"x", "video/mp4")})
        assert r.status_code == 401
        assert anon.get("/v1/videos/nope").status_code == 401
    with httpx.Client(base_url=server.url, headers={"X-API-Key": server.key}, timeout=60) as c:
        r = c.get("/v1/videos/nope")
        assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"
