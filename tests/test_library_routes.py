"""REST routes of the People view for a photo library (issue 21), against a real server and a real
SQLite gallery: flagged faces listed apart and "not a face", covers, hiding, people search, and
hostile ids (a face or cluster that does not exist, a hide of something gone)."""

from __future__ import annotations

import hashlib

import httpx
import numpy as np
import pytest

from facebank.cluster.engine import recluster
from facebank.cluster.methods import create
from facebank.gallery import open_gallery
from facebank.gallery.base import FaceRecord, PhotoRecord
from facebank.server import ServerConfig
from facebank.server.auth import ApiKeyStore
from facebank.server.testing import LiveServer
from facebank.settings import Settings
from facebank.types import FaceQuality
from tests.test_cluster import MODEL, blobs


def _photo(n, vecs, person=None, quality=None):
    sha = hashlib.sha256(f"r{n}".encode()).hexdigest()
    faces = [FaceRecord((10.0 * i, 0.0, 10.0 * i + 8, 9.0), v, "test", 1.0, quality=quality)
             for i, v in enumerate(vecs)]
    return PhotoRecord(person, f"/lib/r{n}.jpg", sha, 100, 64, 64, "ok"), faces


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("routes") / "g.db"
    x, _ = blobs([6, 5, 4], seed=7)
    g = open_gallery(path)
    g.add_photos([_photo(i, x[i:i + 1], "Ann" if i < 3 else None) for i in range(11)], MODEL)
    junk = FaceQuality(12.0, 0.9, 0.0, 0.9, "not_face")
    g.add_photos([_photo(20 + i, x[11 + i:12 + i], quality=junk) for i in range(4)], MODEL)
    recluster(g, create("chinese-whispers", threshold=0.5))
    g.close()
    with ApiKeyStore(path) as keys:
        _, key = keys.create("routes test")
    with LiveServer(ServerConfig(settings=Settings(gallery=str(path)))) as live:
        live.key = key
        yield live


@pytest.fixture
def api(server):
    with httpx.Client(base_url=server.url, headers={"X-API-Key": server.key}, timeout=60) as c:
        yield c


def test_flagged_faces_are_listed_apart_and_not_a_face_deletes_one(api):
    listed = api.get("/v1/clusters").json()
    assert listed["flagged"] == 4
    alone = api.get("/v1/faces", params={"alone": "true"}).json()
    flagged = api.get("/v1/flagged-faces").json()
    assert flagged["total"] == 4 and {f["flag"] for f in flagged["faces"]} == {"not_face"}
    assert not {f["id"] for f in flagged["faces"]} & {f["id"] for f in alone["faces"]}
    gone = flagged["faces"][0]["id"]
    assert api.post(f"/v1/faces/{gone}/not-a-face").json() == {"deleted": gone}
    assert api.get(f"/v1/faces/{gone}").status_code == 404
    again = api.post(f"/v1/faces/{gone}/not-a-face")
    assert again.status_code == 404 and "no face" in again.json()["error"]["message"]
    assert api.get("/v1/flagged-faces").json()["total"] == 3


def test_a_cover_is_chosen_and_a_face_of_someone_else_is_refused(api):
    default = api.get("/v1/people/Ann/cover").json()
    assert default["person"] == "Ann"
    ann = [f["id"] for f in api.get("/v1/faces", params={"person": "Ann"}).json()["faces"]]
    other = next(i for i in ann if i != default["id"])
    assert api.post("/v1/people/Ann/cover", json={"face": other}).json()["id"] == other
    assert api.get("/v1/people/Ann/cover").json()["id"] == other
    stranger = api.get("/v1/clusters").json()["clusters"][0]["faces"][0]["id"]
    assert api.post("/v1/people/Ann/cover", json={"face": stranger}).status_code == 409
    assert api.post("/v1/people/Ann/cover", json={"face": 10**9}).status_code == 404
    assert api.post("/v1/people/Nobody/cover", json={"face": other}).status_code == 404
    assert api.post("/v1/people/Ann/cover", json={"face": None}).json()["id"] == default["id"]


def test_hide_and_show_a_person_and_a_cluster_and_search_by_name(api):
    assert api.post("/v1/people/Ann/hide", json={"hidden": True}).json() == {"hidden": True}
    assert [p["name"] for p in api.get("/v1/people").json()["people"]] == []
    everyone = api.get("/v1/people", params={"hidden": "true"}).json()["people"]
    assert [(p["name"], p["hidden"]) for p in everyone] == [("Ann", True)]
    assert api.post("/v1/people/Ann/hide", json={"hidden": False}).json() == {"hidden": False}
    assert [p["name"] for p in api.get("/v1/people", params={"name": "an"}).json()["people"]] == ["Ann"]
    assert api.get("/v1/people", params={"name": "zed"}).json()["people"] == []
    before = api.get("/v1/clusters").json()
    c = before["clusters"][0]["id"]
    assert api.post(f"/v1/clusters/{c}/hide", json={"hidden": True}).status_code == 200
    after = api.get("/v1/clusters").json()
    assert after["total"] == before["total"] - 1 and after["hidden"] == 1
    assert c not in [x["id"] for x in after["clusters"]]
    shown = api.get("/v1/clusters", params={"hidden": "true"}).json()
    assert any(x["id"] == c and x["hidden"] for x in shown["clusters"])
    api.post(f"/v1/clusters/{c}/hide", json={"hidden": False})
    assert api.get("/v1/clusters").json()["total"] == before["total"]


def test_hostile_ids_are_clear_4xx_and_change_nothing(api):
    before = api.get("/v1/clusters").json()
    for path, body in [("/v1/clusters/999999/hide", {"hidden": True}), ("/v1/people/Nobody/hide", {}),
                       ("/v1/faces/999999/not-a-face", None), ("/v1/clusters/999999/name", {"name": "X"}),
                       ("/v1/faces/999999/move", {"name": "X"})]:
        r = api.post(path, json=body)
        assert r.status_code == 404, (path, r.text)
        assert "/lib/" not in r.text and "error" in r.json()
    assert api.post("/v1/clusters/-1/hide", json={"hidden": True}).status_code == 422
    assert api.post("/v1/faces/1/not-a-face", headers={"X-API-Key": "wrong"}).status_code == 401
    assert api.get("/v1/clusters").json() == before
    assert [p["name"] for p in api.get("/v1/people").json()["people"]] == ["Ann"]


def test_two_clients_naming_one_cluster_one_wins_the_other_gets_404(api, server):
    c = api.get("/v1/clusters").json()["clusters"][-1]["id"]
    with httpx.Client(base_url=server.url, headers={"X-API-Key": server.key}, timeout=60) as other:
        first = api.post(f"/v1/clusters/{c}/name", json={"name": "Bea"})
        second = other.post(f"/v1/clusters/{c}/name", json={"name": "Cy"})
    assert first.status_code == 200 and second.status_code == 404
    assert "Cy" not in [p["name"] for p in api.get("/v1/people").json()["people"]]
    assert np.isfinite(first.json()["faces_named"])


def test_undo_takes_back_the_last_actions_and_answers_409_on_a_conflict(api):
    actions = api.get("/v1/actions").json()["actions"]
    assert actions and actions[0]["kind"] in {"name", "hide", "cover", "take_out", "move", "merge"}
    c = api.get("/v1/clusters").json()["clusters"][0]
    assert api.post(f"/v1/clusters/{c['id']}/name", json={"name": "Dee"}).status_code == 200
    assert api.get("/v1/actions").json()["actions"][0]["summary"] == f"name group #{c['id']} Dee"
    r = api.post("/v1/undo", json={"steps": 1})
    assert r.status_code == 200 and r.json() == {"undone": [f"name group #{c['id']} Dee"]}
    assert "Dee" not in [p["name"] for p in api.get("/v1/people").json()["people"]]
    listed = api.get("/v1/clusters").json()["clusters"]
    assert any(x["id"] == c["id"] and x["size"] == c["size"] for x in listed)
    assert api.post("/v1/undo", json={"steps": 0}).status_code == 422
    assert api.post("/v1/undo", json={"steps": 100}).status_code == 404
    # a conflict: name, then delete the person (not an undoable action): the undo is refused
    api.post(f"/v1/clusters/{c['id']}/name", json={"name": "Dee"})
    assert api.delete("/v1/people/Dee").status_code in (200, 204)
    before = api.get("/v1/clusters").json()
    r = api.post("/v1/undo", json={})
    assert r.status_code == 409 and r.json()["error"]["code"] == "undo_conflict"
    assert api.get("/v1/clusters").json() == before


def test_bulk_move_is_all_or_nothing(api):
    ids = [f["id"] for f in api.get("/v1/faces", params={"person": "Ann"}).json()["faces"]][:2]
    assert len(ids) == 2
    before = api.get("/v1/faces", params={"person": "Ann"}).json()
    r = api.post("/v1/faces/move", json={"faces": [*ids, 999999], "name": "Eve"})
    assert r.status_code == 404 and "999999" in r.json()["error"]["message"]
    assert api.get("/v1/faces", params={"person": "Ann"}).json() == before
    assert api.post("/v1/faces/move", json={"faces": [-1], "name": "Eve"}).status_code == 422
    assert api.post("/v1/faces/move", json={"faces": [], "name": "Eve"}).status_code == 422
    r = api.post("/v1/faces/move", json={"faces": ids, "name": "Eve"})
    assert r.json() == {"moved": 2}
    eve = api.get("/v1/faces", params={"person": "Eve"}).json()["faces"]
    assert sorted(f["id"] for f in eve) == sorted(ids)
    assert api.post("/v1/undo", json={}).json() == {"undone": ["2 faces to Eve"]}
    assert "Eve" not in [p["name"] for p in api.get("/v1/people").json()["people"]]
    assert api.get("/v1/faces", params={"person": "Ann"}).json() == before


def test_a_persons_timeline_is_paged_and_an_unknown_person_is_404(api):
    first = api.get("/v1/people/Ann/timeline", params={"limit": 1}).json()
    assert first["total"] >= 1 and len(first["photos"]) == 1
    ph = first["photos"][0]
    assert ph["taken_at"] is None and ph["year"] is None and ph["source"] == "none"  # never dated here
    assert ph["face_url"] == f"/v1/people/Ann/photos/{ph['sha256']}/face"
    assert "/lib/" not in str(first)
    assert api.get("/v1/people/Nobody/timeline").status_code == 404
    assert api.get("/v1/people/Ann/timeline", params={"limit": 0}).status_code == 422
