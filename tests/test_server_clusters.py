"""REST routes of unsorted photos (issue 11) against a real server and a real gallery: 5celeb/train
enrolled, then 5celeb/val and a photo of two people scanned as unlabelled faces and clustered with
real embeddings. Clusters are listed, named, merged; faces moved and taken out; photos found by
the people in them."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import httpx
import pytest
from PIL import Image

from facebank.gallery.sqlite import SqliteGallery
from facebank.server import ServerConfig
from facebank.server.auth import ApiKeyStore
from facebank.server.testing import LiveServer, copy_gallery, enrolled_gallery, scanned_gallery
from facebank.settings import Settings

# ../shared/faces beside the repo; FACEBANK_SHARED_FACES points elsewhere (e.g. from a git worktree)
FACES = Path(os.environ.get("FACEBANK_SHARED_FACES") or Path(__file__).resolve().parents[2] / "shared/faces")
TRAIN = FACES / "5celeb" / "train"
VAL = FACES / "5celeb" / "val"
TWO_PEOPLE = FACES / "detection_edge" / "multi_face" / "face_recognition_obama_and_biden.jpg"
CELEBS = {"ben_afflek", "elton_john", "jerry_seinfeld", "madonna", "mindy_kaling"}
pytestmark = [pytest.mark.shared, pytest.mark.slow]


def need_faces() -> None:
    if not TRAIN.is_dir() or not VAL.is_dir() or not TWO_PEOPLE.is_file():
        pytest.skip(f"../shared/faces not found: {FACES} needs 5celeb/train, 5celeb/val and "
                    f"detection_edge/multi_face/{TWO_PEOPLE.name}")


def assert_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.text


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """An unsorted library: the val photos (their person folders do not matter to a scan) and one
    photo of two people, nested."""
    need_faces()
    root = tmp_path_factory.mktemp("library")
    for p in sorted(VAL.glob("*/*")):
        (root / "val").mkdir(exist_ok=True)
        (root / "val" / f"{p.parent.name}-{p.name}").write_bytes(p.read_bytes())
    (root / "misc" / "2024").mkdir(parents=True)
    (root / "misc" / "2024" / TWO_PEOPLE.name).write_bytes(TWO_PEOPLE.read_bytes())
    return root


@pytest.fixture(scope="module")
def server(library, tmp_path_factory):
    trained = enrolled_gallery(tmp_path_factory.getbasetemp() / "5celeb-train.db", TRAIN)
    scanned = scanned_gallery(tmp_path_factory.getbasetemp() / "5celeb-scanned.db", trained, library)
    gallery = copy_gallery(scanned, tmp_path_factory.mktemp("clusters") / "gallery.db")
    with ApiKeyStore(gallery) as keys:
        _, key = keys.create("tests", scope="write")
        _, read_key = keys.create("read only", scope="read")
    # open reads: faces and photos must still need a key
    with LiveServer(ServerConfig(settings=Settings(gallery=str(gallery)), open_reads=True)) as live:
        live.key = key
        live.read_key = read_key
        live.gallery = gallery
        yield live


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, headers={"X-API-Key": server.key}, timeout=120) as c:
        yield c


def clusters(client: httpx.Client, **params) -> dict:
    r = client.get("/v1/clusters", params={"limit": 500, "faces": 200, **params})
    assert r.status_code == 200, r.text
    return r.json()


def person(client: httpx.Client, name: str) -> dict | None:
    return next((p for p in client.get("/v1/people").json()["people"] if p["name"] == name), None)


def test_clusters_are_listed_largest_first_with_suggestions_and_no_server_paths(client, library):
    body = clusters(client)
    sizes = [c["size"] for c in body["clusters"]]
    assert body["total"] == len(sizes) >= 4, body
    assert sizes == sorted(sizes, reverse=True)
    assert sum(sizes) + body["alone"] + body["flagged"] == body["unassigned"]
    assert all(len(c["faces"]) == c["size"] for c in body["clusters"])
    # the val faces look like the enrolled train people: most clusters get one of them suggested
    suggested = [c["suggested"] for c in body["clusters"] if c["suggested"]]
    assert set(suggested) <= CELEBS and len(set(suggested)) >= 3, suggested
    text = json.dumps(body)
    assert str(library) not in text and str(FACES) not in text and "/tmp" not in text
    # paging: the same order, one page at a time
    first = clusters(client, limit=2, offset=0, faces=1)
    second = clusters(client, limit=2, offset=2, faces=1)
    paged = [c["id"] for c in first["clusters"] + second["clusters"]]
    assert paged == [c["id"] for c in body["clusters"][:4]]
    assert all(len(c["faces"]) == 1 for c in first["clusters"])


def test_a_face_thumbnail_is_a_jpeg_of_the_face(client):
    face = clusters(client)["clusters"][0]["faces"][0]
    r = client.get(face["image_url"], params={"size": 96})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    img = Image.open(io.BytesIO(r.content))
    assert max(img.size) == 96
    x1, y1, x2, y2 = face["box"]
    assert abs(img.size[0] / img.size[1] - (x2 - x1) / (y2 - y1)) < 0.35  # the face's crop, not the photo
    detail = client.get(f"/v1/faces/{face['id']}").json()
    assert detail["person"] is None and detail["box"] == face["box"] and "path" not in detail
    assert_error(client.get("/v1/faces/987654321/image"), 404, "face_not_found")
    assert_error(client.get("/v1/faces/987654321"), 404, "face_not_found")


def test_naming_a_cluster_makes_a_new_person_who_is_then_identified(client, library):
    target = next(c for c in clusters(client)["clusters"] if c["suggested"])
    name = "새 사람 (cluster)"
    r = client.post(f"/v1/clusters/{target['id']}/name", json={"name": name})
    assert r.status_code == 200, r.text
    named = r.json()
    assert named["created"] is True and named["faces_named"] == target["size"]
    assert named["person"] == person(client, name) and named["person"]["faces"] == target["size"]
    assert all(c["id"] != target["id"] for c in clusters(client)["clusters"])
    faces = client.get("/v1/faces", params={"person": name}).json()
    assert faces["total"] == target["size"] and {f["id"] for f in faces["faces"]} == {
        f["id"] for f in target["faces"]}
    # the named faces now name people: a photo of the cluster is identified as the new person
    sha = target["faces"][0]["photo_sha256"]
    photo = next(p for p in library.rglob("*") if p.is_file() and _sha(p) == sha)
    found = client.post("/v1/identify", files={"photo": (photo.name, photo.read_bytes())}).json()["faces"]
    assert any(f["name"] == name and f["distance"] < 1e-3 for f in found), found
    again = client.post(f"/v1/clusters/{target['id']}/name", json={"name": name})
    assert_error(again, 404, "cluster_not_found")


def test_naming_a_cluster_with_an_existing_name_merges_it_into_that_person(client):
    target = next(c for c in clusters(client)["clusters"] if c["suggested"])
    before = person(client, target["suggested"])
    r = client.post(f"/v1/clusters/{target['id']}/name", json={"name": target["suggested"]})
    assert r.status_code == 200, r.text
    assert r.json()["created"] is False
    after = person(client, target["suggested"])
    assert after["faces"] == before["faces"] + target["size"] == r.json()["person"]["faces"]


def test_taking_a_face_out_of_a_cluster_leaves_it_alone_and_unnamed(client):
    before = clusters(client)
    target = before["clusters"][0]
    face = target["faces"][-1]
    r = client.post(f"/v1/faces/{face['id']}/move", json={"name": None})
    assert r.status_code == 200, r.text
    assert r.json()["person"] is None and r.json()["cluster"] is None
    after = clusters(client)
    rest = next((c for c in after["clusters"] if c["id"] == target["id"]), None)
    assert (rest["size"] if rest else 0) == target["size"] - 1
    assert face["id"] not in {f["id"] for c in after["clusters"] for f in c["faces"]}
    assert after["alone"] == before["alone"] + 1 and after["unassigned"] == before["unassigned"]


def test_moving_faces_to_people_and_merging_people(client):
    face = clusters(client)["clusters"][0]["faces"][0]
    r = client.post(f"/v1/faces/{face['id']}/move", json={"name": "Moved Person"})
    assert r.status_code == 200 and r.json()["person"] == "Moved Person"
    assert person(client, "Moved Person")["faces"] == 1
    into = person(client, "madonna")
    r = client.post("/v1/people/Moved Person/merge", json={"into": "madonna"})
    assert r.status_code == 200, r.text
    assert r.json() == {"merged": "Moved Person", "faces_moved": 1,
                        "person": {**into, "faces": into["faces"] + 1,
                                   "photos": r.json()["person"]["photos"]}}
    assert person(client, "Moved Person") is None
    assert client.get(f"/v1/faces/{face['id']}").json()["person"] == "madonna"
    merge = "/v1/people/{}/merge".format
    assert_error(client.post(merge("Moved Person"), json={"into": "madonna"}), 404, "person_not_found")
    assert_error(client.post(merge("madonna"), json={"into": "nobody here"}), 404, "person_not_found")
    assert_error(client.post("/v1/people/madonna/merge", json={"into": "madonna"}), 422, "same_person")
    assert_error(client.post("/v1/faces/987654321/move", json={"name": "x"}), 404, "face_not_found")
    assert_error(client.post(f"/v1/faces/{face['id']}/move", json={"name": "a/b"}), 422, "invalid_name")
    assert person(client, "madonna")["faces"] == into["faces"] + 1  # nothing half-done by the refusals


def test_photos_with_two_people_lists_only_photos_where_both_appear(client):
    sha = _sha(TWO_PEOPLE)  # the photo of two people, named one face each
    found = [f for f in _unassigned_faces(client) if f["photo_sha256"] == sha]
    assert len(found) >= 2, "the detector should find both faces of the photo of two people"
    area = lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1])  # noqa: E731
    pair = sorted(found, key=area)[-2:]  # the two people (a detector may add a small false face)
    for f, name in zip(pair, ("Barack", "Joe"), strict=True):
        assert client.post(f"/v1/faces/{f['id']}/move", json={"name": name}).status_code == 200
    # the person's photo (a scanned one: the photo has no person, the face has) shows their face
    photo = client.get("/v1/people/Barack").json()["photo_list"][0]
    thumb = client.get(photo["face_url"], params={"size": 128})
    assert thumb.content == client.get(f"/v1/faces/{pair[0]['id']}/image", params={"size": 128}).content
    r = client.get("/v1/photos", params=[("with", "Barack"), ("with", "Joe")])
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 1 and r.json()["photos"][0]["sha256"] == sha
    photo = r.json()["photos"][0]
    img = client.get(photo["image_url"])
    assert img.status_code == 200 and _sha_bytes(img.content) == sha
    assert client.get(photo["face_url"]).headers["content-type"] == "image/jpeg"
    assert client.get("/v1/photos", params=[("with", "Barack"), ("with", "madonna")]).json()["total"] == 0
    assert client.get("/v1/photos", params=[("with", "madonna")]).json()["total"] >= 1
    assert_error(client.get("/v1/photos", params=[("with", "Barack"), ("with", "nobody here")]), 404,
                 "person_not_found")
    assert_error(client.get("/v1/photos"), 422, "validation_error")


def test_faces_need_a_key_even_with_open_reads_and_changes_need_a_write_key(server):
    listed = httpx.get(server.url + "/v1/clusters", headers={"X-API-Key": server.read_key}, timeout=60)
    assert listed.status_code == 200 and listed.json()["total"] >= 1
    cluster = listed.json()["clusters"][0]
    face = cluster["faces"][0]["id"]
    with httpx.Client(base_url=server.url, timeout=60) as anon:
        assert anon.get("/v1/people").status_code == 200  # open reads: the people listing is public...
        for path in ("/v1/clusters", f"/v1/faces/{face}", f"/v1/faces/{face}/image", "/v1/faces?alone=true",
                     "/v1/faces?person=madonna", "/v1/photos?with=madonna"):
            assert_error(anon.get(path), 401, "missing_api_key")  # ...faces and photos are not
        for path, body in [(f"/v1/clusters/{cluster['id']}/name", {"name": "x"}),
                           (f"/v1/faces/{face}/move", {"name": None}),
                           ("/v1/people/madonna/merge", {"into": "elton_john"})]:
            assert_error(anon.post(path, json=body), 401, "missing_api_key")
    with httpx.Client(base_url=server.url, headers={"X-API-Key": server.read_key}, timeout=60) as read:
        assert read.get(f"/v1/faces/{face}/image").status_code == 200
        for path, body in [(f"/v1/clusters/{cluster['id']}/name", {"name": "x"}),
                           (f"/v1/faces/{face}/move", {"name": None}),
                           ("/v1/people/madonna/merge", {"into": "elton_john"})]:
            assert_error(read.post(path, json=body), 403, "insufficient_scope")
        assert read.get(f"/v1/faces/{face}").json()["cluster"] == cluster["id"]  # nothing changed
        assert any(p["name"] == "madonna" for p in read.get("/v1/people").json()["people"])
    with httpx.Client(base_url=server.url, headers={"X-API-Key": server.key}, timeout=60) as write:
        bad = write.post(f"/v1/faces/{face}/move", content=b"{not json",
                         headers={"Content-Type": "application/json"})
        assert_error(bad, 400, "invalid_json")


def test_the_gallery_stays_consistent_after_the_writes(client, server):
    with SqliteGallery(server.gallery, readonly=True) as g:
        assert g.integrity() == []


# -- helpers ------------------------------------------------------------------------------------
def _sha_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _sha(path: Path) -> str:
    return _sha_bytes(path.read_bytes())


def _unassigned_faces(client: httpx.Client) -> list[dict]:
    """Every unnamed face: the clustered ones and the ones alone."""
    listed = clusters(client)
    alone = client.get("/v1/faces", params={"alone": "true", "limit": 1000}).json()
    assert alone["total"] == listed["alone"] == len(alone["faces"])
    return [f for c in listed["clusters"] for f in c["faces"]] + alone["faces"]
