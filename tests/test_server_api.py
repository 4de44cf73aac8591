"""The REST API against a real server: uvicorn on a free loopback port, driven over HTTP by httpx."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from facebank import decide
from facebank.gallery.sqlite import SqliteGallery
from facebank.server import ServerConfig
from facebank.server.auth import ApiKeyStore
from facebank.server.testing import LiveServer, copy_gallery, enrolled_gallery
from facebank.settings import Settings

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces"
TRAIN = FACES / "5celeb" / "train"
VAL = FACES / "5celeb" / "val"
SMALL_MAX_PIXELS = 2_000_000  # the bare server's pixel limit


# -- helpers ------------------------------------------------------------------------------------
def jpeg(width: int = 320, height: int = 240, seed: int = 0) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=90)
    return out.getvalue()


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 180, 160)).save(out, format="PNG")
    return out.getvalue()


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert "Traceback" not in r.text and 'File "' not in r.text
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def val_photos(person: str) -> list[Path]:
    return sorted(p for p in (VAL / person).iterdir() if p.is_file())


def need_faces() -> None:
    if not TRAIN.is_dir() or not VAL.is_dir():
        pytest.skip(f"../shared/faces not found: {FACES} has no 5celeb/train and 5celeb/val")


# -- servers ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    """A server on an empty gallery (no real photos needed), small pixel limit, enroll root set."""
    root = tmp_path_factory.mktemp("bare")
    (root / "allowed").mkdir()
    settings = Settings(gallery=str(root / "gallery.db"), max_pixels=SMALL_MAX_PIXELS)
    with ApiKeyStore(settings.gallery) as keys:
        _, key = keys.create("tests")
    config = ServerConfig(settings=settings, enroll_root=root / "allowed")
    with LiveServer(config) as server:
        server.key = key
        server.root = root
        yield server


@pytest.fixture
def bare_client(bare):
    with httpx.Client(base_url=bare.url, headers={"X-API-Key": bare.key}, timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
def train_gallery(tmp_path_factory) -> Path:
    need_faces()
    return enrolled_gallery(tmp_path_factory.getbasetemp() / "5celeb-train.db", TRAIN)


@pytest.fixture(scope="module")
def celeb(train_gallery, tmp_path_factory):
    """A server on a copy of a gallery with 5celeb/train enrolled."""
    root = tmp_path_factory.mktemp("celeb")
    gallery = copy_gallery(train_gallery, root / "gallery.db")
    with ApiKeyStore(gallery) as keys:
        _, key = keys.create("tests")
    with LiveServer(ServerConfig(settings=Settings(gallery=str(gallery)), enroll_root=FACES)) as server:
        server.key = key
        server.gallery = gallery
        yield server


@pytest.fixture
def client(celeb):
    with httpx.Client(base_url=celeb.url, headers={"X-API-Key": celeb.key}, timeout=120) as c:
        yield c


# -- service routes and keys --------------------------------------------------------------------
def test_health_ready_and_model_info_need_no_key(bare):
    with httpx.Client(base_url=bare.url, timeout=30) as anon:
        assert anon.get("/v1/health").json()["status"] == "ok"
        ready = anon.get("/v1/ready")
        assert ready.status_code == 200 and ready.json()["ready"] is True
        assert ready.json()["people"] is None and ready.json()["faces"] is None  # status only
        counted = anon.get("/v1/ready", headers={"X-API-Key": bare.key}).json()
        assert counted["people"] == 0 and counted["faces"] == 0
        info = anon.get("/v1/model").json()
        # an empty gallery cannot estimate its own threshold: the rule's default is used
        default = decide.parse(Settings().decision).default_threshold
        assert info["model_id"] and info["threshold"] == default and info["threshold_source"] == "default"
        assert info["decision"] and info["decision_unit"] and info["target_far"] == Settings().target_far
        assert info["max_upload_bytes"] == 20_000_000 and info["open_reads"] is False
        assert anon.get("/openapi.json").json()["info"]["title"] == "facebank"


ROUTES = [
    ("POST", "/v1/identify", {"files": {"photo": ("a.jpg", b"x", "image/jpeg")}}),
    ("POST", "/v1/detect", {"files": {"photo": ("a.jpg", b"x", "image/jpeg")}}),
    ("GET", "/v1/people", {}),
    ("POST", "/v1/people", {"json": {"name": "Someone"}}),
    ("PATCH", "/v1/people/Someone", {"json": {"name": "Other"}}),
    ("DELETE", "/v1/people/Someone", {}),
    ("GET", "/v1/jobs", {}),
    ("POST", "/v1/jobs", {"json": {"folder": "/tmp"}}),
    ("GET", "/v1/keys", {}),
    ("POST", "/v1/keys", {"json": {"name": "x"}}),
    ("DELETE", "/v1/keys/0123abcd", {}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_routes_refuse_a_missing_or_wrong_key_with_401(bare, method, path, kwargs):
    with httpx.Client(base_url=bare.url, timeout=30) as anon:
        assert_error(anon.request(method, path, **kwargs), 401, "missing_api_key")
        wrong = bare.key[:-4] + ("AAAA" if not bare.key.endswith("AAAA") else "BBBB")
        for bad in (wrong, "not-a-key", "fbk_00000000_secret"):
            r = anon.request(method, path, headers={"X-API-Key": bad}, **kwargs)
            assert_error(r, 401, "invalid_api_key")


def test_a_key_revoked_elsewhere_stops_working_at_once(bare):
    with ApiKeyStore(bare.config.settings.gallery) as keys:
        info, key = keys.create("short-lived")
    with httpx.Client(base_url=bare.url, headers={"X-API-Key": key}, timeout=30) as c:
        assert c.get("/v1/people").status_code == 200
        with ApiKeyStore(bare.config.settings.gallery) as other:  # as 'facebank keys revoke' would
            other.revoke(info.id)
        assert_error(c.get("/v1/people"), 401, "invalid_api_key")


def test_open_reads_lets_reads_through_without_a_key_but_never_writes(tmp_path):
    config = ServerConfig(settings=Settings(gallery=str(tmp_path / "g.db")), open_reads=True)
    with LiveServer(config) as server, httpx.Client(base_url=server.url, timeout=60) as anon:
        assert anon.get("/v1/people").json() == {"people": [], "total": 0}
        r = anon.post("/v1/detect", files={"photo": ("noise.jpg", jpeg(), "image/jpeg")})
        assert r.status_code == 200 and r.json()["photo"]["width"] == 320
        assert_error(anon.post("/v1/people", json={"name": "X"}), 401, "missing_api_key")
        assert_error(anon.get("/v1/people", headers={"X-API-Key": "fbk_00000000_x"}), 401, "invalid_api_key")


# -- hostile and broken uploads -----------------------------------------------------------------
def still_serving(client: httpx.Client) -> None:
    assert client.get("/v1/health").status_code == 200
    r = client.post("/v1/identify", files={"photo": ("noise.jpg", jpeg(seed=7), "image/jpeg")})
    assert r.status_code == 200, r.text
    assert r.json()["photo"]["width"] == 320


def test_a_50_mb_upload_gets_413_and_the_server_keeps_serving(bare_client):
    big = np.random.default_rng(1).integers(0, 255, 50_000_000, dtype=np.uint8).tobytes()
    r = bare_client.post("/v1/identify", files={"photo": ("big.jpg", big, "image/jpeg")})
    assert_error(r, 413, "upload_too_large")
    still_serving(bare_client)

    def chunks():  # no Content-Length: the limit must hold while the body streams in
        yield b'--b\r\nContent-Disposition: form-data; name="photo"; filename="big.jpg"\r\n\r\n'
        for i in range(0, len(big), 1_000_000):
            yield big[i:i + 1_000_000]
        yield b"\r\n--b--\r\n"

    r = bare_client.post("/v1/identify", content=chunks(),
                         headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert_error(r, 413, "upload_too_large")
    still_serving(bare_client)


def test_a_text_file_gets_415_and_the_server_keeps_serving(bare_client):
    text = ("name,age\nAda,36\n" * 100).encode()
    for route in ("/v1/identify", "/v1/detect"):
        r = bare_client.post(route, files={"photo": ("people.jpg", text, "image/jpeg")})
        assert_error(r, 415, "not_an_image")
    still_serving(bare_client)


def test_a_truncated_jpeg_gets_422_and_the_server_keeps_serving(bare_client):
    data = jpeg(640, 480, seed=3)
    r = bare_client.post("/v1/identify", files={"photo": ("cut.jpg", data[: len(data) // 2], "image/jpeg")})
    assert_error(r, 422, "truncated_image")
    still_serving(bare_client)


def test_an_empty_upload_and_a_photo_over_the_pixel_limit_are_refused(bare_client):
    assert_error(bare_client.post("/v1/identify", files={"photo": ("e.jpg", b"", "image/jpeg")}), 422,
                 "empty_file")
    huge = png(2000, 1500)  # 3 megapixels in a few kB: over the server's 2 MP limit
    assert len(huge) < 100_000
    assert_error(bare_client.post("/v1/identify", files={"photo": ("h.png", huge, "image/png")}), 413,
                 "image_too_large")
    still_serving(bare_client)


def test_unknown_routes_wrong_methods_and_invalid_requests_get_json_errors(bare_client):
    assert_error(bare_client.get("/v1/nothing-here"), 404, "not_found")
    assert_error(bare_client.get("/v2/identify"), 404, "not_found")
    assert_error(bare_client.delete("/v1/health"), 405, "method_not_allowed")
    assert_error(bare_client.post("/v1/identify"), 422, "validation_error")  # no photo
    photo = {"photo": ("n.jpg", jpeg(), "image/jpeg")}
    r = bare_client.post("/v1/identify", params={"threshold": "x"}, files=photo)
    assert_error(r, 422, "validation_error")
    for threshold in ("nan", "inf"):  # the decision rule's unit: any finite number for the margin rule
        r = bare_client.post("/v1/identify", params={"threshold": threshold}, files=photo)
        assert_error(r, 422, "bad_threshold")
    r = bare_client.post("/v1/people", content=b"{not json", headers={"Content-Type": "application/json"})
    assert_error(r, 400, "invalid_json")
    assert_error(bare_client.get("/v1/people/Nobody/photos/" + "0" * 64 + "/image"), 404, "person_not_found")
    assert_error(bare_client.get("/v1/people/Nobody/photos/not-a-sha/image"), 422, "validation_error")
    assert_error(bare_client.get("/v1/jobs/nope"), 404, "job_not_found")


def test_an_unexpected_failure_is_a_json_500_without_details_and_not_ready(bare, bare_client, monkeypatch):
    class BrokenGallery:
        model_id = None

        def people(self):
            raise RuntimeError("secret internals at /srv/facebank line 42")

    monkeypatch.setattr(bare.app.state.ctx, "gallery", BrokenGallery())  # beside the real tests above
    err = assert_error(bare_client.get("/v1/people"), 500, "internal_error")
    assert "secret" not in err["message"] and "RuntimeError" not in err["message"]
    assert_error(bare_client.get("/v1/ready"), 503, "not_ready")
    monkeypatch.undo()
    assert bare_client.get("/v1/people").status_code == 200


def test_people_crud_works_with_korean_and_spaced_names(bare_client):
    name = "김지수"
    r = bare_client.post("/v1/people", json={"name": name})
    summary = {"name": name, "photos": 0, "faces": 0, "hidden": False}
    assert r.status_code == 201 and r.json() == summary
    assert_error(bare_client.post("/v1/people", json={"name": name}), 409, "person_exists")
    listed = bare_client.get("/v1/people").json()
    assert summary in listed["people"]
    detail = bare_client.get(f"/v1/people/{name}").json()
    assert detail["name"] == name and detail["photo_list"] == []

    new = "Kim Ji-soo (김지수)"
    r = bare_client.patch(f"/v1/people/{name}", json={"name": new})
    assert r.status_code == 200 and r.json()["name"] == new
    assert_error(bare_client.get(f"/v1/people/{name}"), 404, "person_not_found")
    assert bare_client.get(f"/v1/people/{new}").json()["name"] == new
    r = bare_client.delete(f"/v1/people/{new}")
    assert r.status_code == 200 and r.json() == {"name": new, "faces_removed": 0}
    assert_error(bare_client.delete(f"/v1/people/{new}"), 404, "person_not_found")
    assert all(p["name"] != new for p in bare_client.get("/v1/people").json()["people"])


@pytest.mark.parametrize("bad", ["../etc", "a/b", "back\\slash", "..", "   ", "bell\x07"])
def test_names_with_path_tricks_or_control_characters_are_refused(bare_client, bad):
    r = bare_client.post("/v1/people", json={"name": bad})
    assert_error(r, 422, "invalid_name")
    r = bare_client.patch("/v1/people/Whoever", json={"name": bad})
    assert r.status_code == 422


def test_enrollment_jobs_refuse_folders_outside_the_root_and_missing_folders(bare, bare_client):
    (bare.root / "allowed" / "escape").symlink_to(bare.root)
    for outside in ("/", str(bare.root), "..", "../allowed/..", "escape", "/etc"):
        err = assert_error(bare_client.post("/v1/jobs", json={"folder": outside}), 403, "folder_not_allowed")
        assert str(bare.root) not in err["message"]  # the answer never shows the server's folders
    err = assert_error(bare_client.post("/v1/jobs", json={"folder": "missing"}), 422, "folder_not_found")
    assert str(bare.root) not in err["message"]
    # inside the root, an empty folder (relative, or absolute inside): runs, finishes with nothing to do
    (bare.root / "allowed" / "empty").mkdir()
    for folder in ("empty", str(bare.root / "allowed" / "empty")):
        r = bare_client.post("/v1/jobs", json={"folder": folder})
        assert r.status_code == 202, r.text
        assert r.json()["folder"] == "empty"
        job = wait_for_job(bare_client, r.json()["id"], timeout=60)
        assert job["state"] == "finished" and job["total"] == 0 and job["photos_enrolled"] == 0


def wait_for_job(client: httpx.Client, job_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    states = []
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        states.append(job["state"])
        if job["state"] not in ("queued", "running"):
            job["seen_states"] = states
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {states[-5:]}")


# -- with 5celeb/train enrolled -------------------------------------------------------------------
PEOPLE = ["ben_afflek", "elton_john", "jerry_seinfeld", "madonna", "mindy_kaling"]


@pytest.mark.shared
def test_people_list_counts_what_the_gallery_holds(client, celeb):
    listed = client.get("/v1/people").json()
    with SqliteGallery(celeb.gallery, readonly=True) as g:
        truth = {p.name: (p.photos, p.faces) for p in g.people()}
    got = {p["name"]: (p["photos"], p["faces"]) for p in listed["people"]}
    assert set(PEOPLE) <= set(got)
    assert {n: got[n] for n in PEOPLE} == {n: truth[n] for n in PEOPLE}
    assert all(got[n][0] >= 10 for n in PEOPLE)  # 5celeb/train has 14-22 photos per person


@pytest.mark.shared
def test_identify_names_the_people_of_5celeb_val(client):
    right = wrong = 0
    for person in PEOPLE:
        photo = val_photos(person)[0]
        r = client.post("/v1/identify", files={"photo": (photo.name, photo.read_bytes(), "image/jpeg")})
        assert r.status_code == 200, r.text
        body = r.json()
        info = client.get("/v1/model").json()
        assert body["threshold"] == info["threshold"] and body["decision"] == info["decision"]
        assert info["threshold_source"] == "gallery"  # 5 people: estimated from the gallery
        w, h = body["photo"]["width"], body["photo"]["height"]
        for f in body["faces"]:
            x1, y1, x2, y2 = f["box"]
            assert -w * 0.2 <= x1 < x2 <= w * 1.2 and -h * 0.2 <= y1 < y2 <= h * 1.2
            if f["name"] is not None:
                decided = f["distance"] if f["decision_score"] is None else f["decision_score"]
                assert decided <= body["threshold"] and f["candidate"] == f["name"]
        if body["faces"]:
            main = max(body["faces"], key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))
            right += main["name"] == person
            wrong += main["name"] not in (None, person)
    assert wrong == 0 and right >= 4, (right, wrong)


@pytest.mark.shared
def test_identify_threshold_parameter_controls_unknown(client):
    photo = val_photos("madonna")[0]
    files = {"photo": (photo.name, photo.read_bytes(), "image/jpeg")}
    loose = client.post("/v1/identify", files=files).json()
    assert loose["faces"] and loose["faces"][0]["name"] == "madonna"
    d = loose["faces"][0]["distance"]
    score = loose["faces"][0]["decision_score"]
    t = (d if score is None else score) - 0.05  # just below this face's score: it becomes unknown
    strict = client.post("/v1/identify", params={"threshold": t}, files=files).json()
    assert strict["threshold"] == pytest.approx(t)
    f = strict["faces"][0]
    assert f["name"] is None and f["candidate"] == "madonna" and f["distance"] == pytest.approx(d)


@pytest.mark.shared
def test_detect_gives_boxes_and_landmarks_without_names(client):
    photo = val_photos("jerry_seinfeld")[0]
    r = client.post("/v1/detect", files={"photo": (photo.name, photo.read_bytes(), "image/jpeg")})
    body = r.json()
    assert r.status_code == 200 and len(body["faces"]) >= 1
    assert body["photo"]["sha256"] == hashlib.sha256(photo.read_bytes()).hexdigest()
    for f in body["faces"]:
        assert "name" not in f and len(f["box"]) == 4
        assert f["landmarks"] and len(f["landmarks"]) >= 5


@pytest.mark.shared
def test_verify_tells_same_from_different_people(client):
    a, b = val_photos("mindy_kaling")[:2]
    c = val_photos("jerry_seinfeld")[0]

    def verify(x: Path, y: Path) -> dict:
        files = {"photo_a": (x.name, x.read_bytes()), "photo_b": (y.name, y.read_bytes())}
        r = client.post("/v1/verify", files=files)
        assert r.status_code == 200, r.text
        return r.json()

    same, different = verify(a, b), verify(a, c)
    assert same["same"] is True and different["same"] is False
    assert same["distance"] < different["distance"]
    assert same["score"] == pytest.approx(1 - same["distance"] ** 2 / 2, abs=1e-5)
    no_face = {"photo_a": ("a.jpg", a.read_bytes()), "photo_b": ("noise.jpg", jpeg(seed=11))}
    assert_error(client.post("/v1/verify", files=no_face), 422, "no_face")


@pytest.mark.shared
def test_added_photos_are_identified_at_once_shown_and_forgotten_on_delete(client, celeb):
    name = "제리 테스트"
    p1, p2 = val_photos("jerry_seinfeld")[:2]
    sha1 = hashlib.sha256(p1.read_bytes()).hexdigest()
    assert client.post("/v1/people", json={"name": name}).status_code == 201
    photos_dir = Path(str(celeb.gallery) + ".photos")

    # all or nothing: a text file among the photos stores nothing
    r = client.post(f"/v1/people/{name}/photos", files=[("photos", (p1.name, p1.read_bytes())),
                                                        ("photos", ("notes.jpg", b"not a photo"))])
    assert_error(r, 415, "not_an_image")
    assert client.get(f"/v1/people/{name}").json()["photos"] == 0
    assert not photos_dir.exists() or not any(photos_dir.iterdir())

    r = client.post(f"/v1/people/{name}/photos", files=[("photos", (p1.name, p1.read_bytes())),
                                                        ("photos", (p2.name, p2.read_bytes())),
                                                        ("photos", ("again.jpg", p1.read_bytes()))])
    assert r.status_code == 200, r.text
    added = r.json()
    assert [p["outcome"] for p in added["photos"]] == ["enrolled", "enrolled", "already_known"]
    assert added["faces_added"] == 2 and added["person"]["photos"] == 2
    assert sorted(f.name for f in photos_dir.iterdir()) == sorted(
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}.jpg" for p in (p1, p2))

    # the index follows the write at once: the photo itself is now the nearest face
    hit = client.post("/v1/identify", files={"photo": (p1.name, p1.read_bytes())}).json()["faces"]
    assert hit[0]["name"] == name and hit[0]["distance"] < 1e-3

    # browse: stored photo and face thumbnail
    detail = client.get(f"/v1/people/{name}").json()
    assert {p["sha256"] for p in detail["photo_list"]} >= {sha1}
    photo = next(p for p in detail["photo_list"] if p["sha256"] == sha1)
    img = client.get(photo["image_url"])
    assert img.status_code == 200 and hashlib.sha256(img.content).hexdigest() == sha1
    thumb = client.get(photo["face_url"], params={"size": 96})
    assert thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 96
    # CLI-enrolled photos are served from where they were enrolled
    madonna = client.get("/v1/people/madonna").json()["photo_list"][0]
    assert client.get(madonna["face_url"]).status_code == 200

    # remove one photo: its file goes, and the photo is no longer its own match
    r = client.delete(f"/v1/people/{name}/photos/{sha1}")
    assert r.status_code == 200 and r.json()["faces_removed"] == 1
    assert not (photos_dir / f"{sha1}.jpg").exists()
    assert_error(client.delete(f"/v1/people/{name}/photos/{sha1}"), 404, "photo_not_found")
    again = client.post("/v1/identify", files={"photo": (p1.name, p1.read_bytes())}).json()["faces"]
    assert again[0]["distance"] > 1e-3

    assert client.delete(f"/v1/people/{name}").json()["faces_removed"] == 1
    assert not any(photos_dir.iterdir())
    last = client.post("/v1/identify", files={"photo": (p1.name, p1.read_bytes())}).json()["faces"]
    assert last[0]["name"] != name and last[0]["candidate"] != name


@pytest.mark.shared
def test_enrollment_job_reports_progress_and_enrolls_the_folder(client):
    folder = VAL / "elton_john"
    name = "Elton (job)"
    r = client.post("/v1/jobs", json={"folder": "5celeb/val/elton_john", "person": name})
    assert r.status_code == 202, r.text
    assert r.json()["folder"] == "5celeb/val/elton_john"
    assert r.json()["state"] in ("queued", "running")
    job = wait_for_job(client, r.json()["id"], timeout=180)
    assert job["state"] == "finished", job
    total = len([p for p in folder.iterdir() if p.is_file()])
    assert job["total"] == total and job["seen"] == total and job["progress"] == 1.0
    assert job["photos_enrolled"] + job["problems"] == total and job["photos_enrolled"] >= 3
    person = client.get(f"/v1/people/{name}").json()
    assert person["photos"] == job["photos_enrolled"] == job["faces_added"]
    assert any(j["id"] == job["id"] for j in client.get("/v1/jobs").json()["jobs"])

    again = client.post("/v1/jobs", json={"folder": "5celeb/val/elton_john", "person": name})
    rerun = wait_for_job(client, again.json()["id"], timeout=60)
    assert rerun["state"] == "finished" and rerun["photos_skipped_known"] == total
    assert rerun["photos_enrolled"] == 0
    client.delete(f"/v1/people/{name}")


@pytest.mark.shared
def test_concurrent_identify_requests_all_succeed_during_writes(client, celeb):
    photos = [val_photos(p)[1] for p in ("madonna", "mindy_kaling", "ben_afflek", "jerry_seinfeld")]
    expected = {}
    for p in photos:
        r = client.post("/v1/identify", files={"photo": (p.name, p.read_bytes())})
        expected[p] = [f["name"] for f in r.json()["faces"]]
    results: list[tuple[Path, int, list]] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        with httpx.Client(base_url=celeb.url, headers={"X-API-Key": celeb.key}, timeout=120) as c:
            for j in range(2):
                p = photos[(i + j) % len(photos)]
                r = c.post("/v1/identify", files={"photo": (p.name, p.read_bytes())})
                names = [f["name"] for f in r.json()["faces"]] if r.status_code == 200 else []
                with lock:
                    results.append((p, r.status_code, names))

    writes: list[int] = []

    def writer() -> None:
        with httpx.Client(base_url=celeb.url, headers={"X-API-Key": celeb.key}, timeout=120) as c:
            for k in range(5):
                writes.append(c.post("/v1/people", json={"name": f"Temp {k}"}).status_code)
                writes.append(c.delete(f"/v1/people/Temp {k}").status_code)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert len(results) == 16
    assert writes == [201, 200] * 5
    assert all(status == 200 for _, status, _ in results), [s for _, s, _ in results]
    assert all(names == expected[p] for p, _, names in results)
    assert all(p["name"] != "Temp 0" for p in client.get("/v1/people").json()["people"])


@pytest.mark.shared
def test_gallery_written_by_the_server_is_consistent(client, celeb):
    with sqlite3.connect(celeb.gallery) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA user_version").fetchone()[0] >= 2
    with SqliteGallery(celeb.gallery, readonly=True) as g:
        assert g.integrity() == []
    assert json.loads(client.get("/v1/ready").text)["ready"] is True


def test_an_enrollment_job_on_a_folder_with_symlink_loops_ends_and_reports_the_links(bare, bare_client):
    folder = bare.root / "allowed" / "loops"
    (folder / "p").mkdir(parents=True)
    (folder / "p" / "x.jpg").write_bytes(b"not a photo")
    (folder / "p" / "self").symlink_to(".")
    (folder / "p" / "up").symlink_to("../p")
    r = bare_client.post("/v1/jobs", json={"folder": str(folder)})
    assert r.status_code == 202, r.text
    job = wait_for_job(bare_client, r.json()["id"], timeout=60)
    assert job["state"] == "finished" and job["total"] == 1 and job["seen"] == 1, job
    reasons = [s["reason"] for s in job["problem_samples"]]
    assert job["problems"] == 3 and sum("link not followed" in r for r in reasons) == 2, job
