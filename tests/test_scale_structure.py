"""Fast at library scale (issue 21), asserted by structure rather than by time: a People action
(name, move, take out, merge, hide, cover, undo) through the real server re-reads only the faces it
changes for the People view's listing, never every unnamed face; the patched listing is exactly
what reading everything again gives. Rows read are counted on the gallery's ``faces`` calls."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from urllib.parse import quote

import httpx
import numpy as np
import pytest

from facebank.cluster.groups import group_faces
from facebank.cluster.suggest import Suggestion, SuggestionCache
from facebank.gallery import open_gallery
from facebank.gallery.base import FaceRecord, PhotoRecord
from facebank.scale.synthetic import face_like_gallery
from facebank.server import ServerConfig
from facebank.server.auth import ApiKeyStore
from facebank.server.testing import LiveServer
from facebank.settings import Settings

MODEL = "dlib-resnet-v1"  # the synthetic faces are fitted to dlib's embeddings
FACES = 1500
NAMED = 12  # the first people are enrolled, the others scanned and clustered by who they are


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("scale") / "g.db"
    lib = face_like_gallery(FACES, faces_per_person=6.0, seed=3)
    g = open_gallery(path)
    items = []
    for i, (vec, who) in enumerate(zip(lib.vectors, lib.labels, strict=True)):
        sha = hashlib.sha256(f"s{i}".encode()).hexdigest()
        person = f"person {who}" if who < NAMED and i % 2 else None  # their other faces scanned
        items.append((PhotoRecord(person, f"/lib/{i}.jpg", sha, 100, 64, 64, "ok"),
                      [FaceRecord((1.0, 2.0, 30.0, 40.0), vec, "test", 0.99)]))
    g.add_photos(items, MODEL)
    todo = g.unassigned_faces()
    who = lib.labels[todo.face_ids - 1]
    counts = np.bincount(who)
    g.set_clusters({int(f): int(w) if counts[w] > 1 else None
                    for f, w in zip(todo.face_ids, who, strict=True)})
    g.close()
    with ApiKeyStore(path) as keys:
        _, key = keys.create("scale test", scope="admin")
    with LiveServer(ServerConfig(settings=Settings(gallery=str(path)))) as live:
        live.key = key
        yield live


@pytest.fixture
def api(server):
    with httpx.Client(base_url=server.url, headers={"X-API-Key": server.key}, timeout=120) as c:
        yield c


@pytest.fixture
def rows_read(server, monkeypatch):
    """Face rows the gallery's ``faces`` returned since the last look (a counting wrapper)."""
    inner = server.app.state.ctx.gallery.inner
    real = inner.faces
    seen = [0]

    def counting(*args, **kwargs):
        out = real(*args, **kwargs)
        seen[0] += len(out)
        return out

    monkeypatch.setattr(inner, "faces", counting, raising=False)

    def take() -> int:
        n, seen[0] = seen[0], 0
        return n

    return take


def _same(a: Suggestion | None, b: Suggestion | None) -> bool:
    """Equal but for the float32 rounding of scores scored in other batches."""
    if a is None or b is None:
        return a is b
    return replace(a, score=0.0) == replace(b, score=0.0) and abs(a.score - b.score) < 1e-5


def _same_as_a_full_read(server, what: str = '') -> None:
    ctx = server.app.state.ctx
    kept = ctx.face_groups.get()
    fresh = group_faces(ctx.gallery.inner.faces(unassigned=True))
    assert kept == fresh
    clusters = [g.cluster for g in kept.clusters]
    loose = [f.face_id for f in kept.alone]
    live = SuggestionCache.of(ctx.bank).some(clusters=clusters, faces=loose)
    again = SuggestionCache(ctx.bank).some(clusters=clusters, faces=loose)  # reads every face
    for kind, a, b in (("cluster", live.clusters, again.clusters), ("face", live.loose, again.loose)):
        wrong = sorted(k for k in a.keys() | b.keys() if not _same(a.get(k), b.get(k)))
        assert not wrong, f"{what}: {kind}s {wrong[:5]}: {[(a.get(k), b.get(k)) for k in wrong[:2]]}"
    assert any(s.person for s in live.clusters.values())  # there are suggestions to compare


def test_each_people_action_reads_only_the_faces_it_changes(server, api, rows_read):
    listing = "/v1/clusters?limit=20&faces=4"
    page = api.get(listing).json()["clusters"]
    unnamed = api.get(listing).json()["unassigned"]
    assert unnamed > 1000
    rows_read()
    groups = server.app.state.ctx.face_groups
    rebuilds = groups.rebuilds
    suggestions = SuggestionCache.of(server.app.state.ctx.bank)
    people = [p["name"] for p in api.get("/v1/people?limit=50").json()["people"]]
    a, b, d = page[0], page[1], page[-1]
    theirs = api.get(f"/v1/faces?person={quote(people[0], safe='')}&limit=2").json()["faces"]
    actions = [
        ("name new", "POST", f"/v1/clusters/{a['id']}/name", {"name": "Zed New"}, a["size"]),
        ("name existing", "POST", f"/v1/clusters/{b['id']}/name", {"name": people[1]}, b["size"]),
        ("move", "POST", f"/v1/faces/{d['faces'][0]['id']}/move", {"name": people[2]}, 1),
        ("take out", "POST", f"/v1/faces/{d['faces'][1]['id']}/move", {"name": None}, 1),
        ("merge", "POST", "/v1/people/Zed%20New/merge", {"into": people[3]}, 0),  # rejections move
        ("hide", "POST", f"/v1/clusters/{d['id']}/hide", {"hidden": True}, 0),
        ("cover", "POST", f"/v1/people/{quote(people[0], safe='')}/cover", {"face": theirs[-1]["id"]}, 0),
        ("undo cover", "POST", "/v1/undo", {"steps": 1}, 0),
        ("undo hide", "POST", "/v1/undo", {"steps": 1}, 0),
        ("undo merge", "POST", "/v1/undo", {"steps": 1}, a["size"] + b["size"]),
        ("undo take out", "POST", "/v1/undo", {"steps": 1}, 1),
    ]
    # a merge moves rejections of faces it does not touch, its undo brings a person back: the
    # suggestions read all unnamed faces again after those two only
    everything = {"merge", "undo merge"}
    reject = ("reject", "POST", f"/v1/clusters/{page[3]['id']}/reject", {"name": people[4]}, page[3]["size"])
    for what, method, url, body, changed in [*actions[:2], reject, *actions[2:]]:
        full_reads = suggestions.full_reads
        api.request(method, url, json=body).raise_for_status()
        api.get(listing).raise_for_status()
        api.get("/v1/faces?alone=true&limit=10").raise_for_status()
        read = rows_read()
        # the faces it changed (read back after the write and by the route's own look-ups), never all
        assert read <= 2 * changed + 4, f"{what}: {read} face rows read for {changed} changed"
        assert groups.rebuilds == rebuilds, f"{what}: every unnamed face was read again"
        assert suggestions.full_reads == full_reads + (what in everything), f"{what}: suggestions read all"
        _same_as_a_full_read(server, what)
        rows_read()


def test_a_write_the_groups_do_not_know_makes_them_read_everything_again(server, api, rows_read):
    ctx = server.app.state.ctx
    api.get("/v1/clusters?limit=5").raise_for_status()
    before = ctx.face_groups.rebuilds
    people = [p["name"] for p in api.get("/v1/people?limit=50").json()["people"]]
    # another process (or a write the cache is not told of) renames a person
    with open_gallery(ctx.settings.gallery) as other:
        other.rename_person(people[-1], "Renamed Elsewhere")
    api.get("/v1/clusters?limit=5").raise_for_status()
    assert ctx.face_groups.rebuilds == before + 1
    _same_as_a_full_read(server)


def test_unassigned_faces_of_some_ids_and_what_an_undo_would_change(tmp_path):
    lib = face_like_gallery(40, faces_per_person=5.0, seed=5)
    with open_gallery(tmp_path / "g.db") as g:
        g.add_photos([(PhotoRecord(None, f"/lib/{i}.jpg", hashlib.sha256(f"u{i}".encode()).hexdigest(), 100,
                                   64, 64, "ok"), [FaceRecord((1.0, 2.0, 30.0, 40.0), v, "test", 0.99)])
                      for i, v in enumerate(lib.vectors)], MODEL)
        every = g.unassigned_faces()
        some = g.unassigned_faces(face_ids=[int(every.face_ids[3]), int(every.face_ids[1]), 10**9])
        assert some.face_ids.tolist() == [int(every.face_ids[1]), int(every.face_ids[3])]
        assert np.array_equal(some.vectors, every.vectors[[1, 3]])
        assert len(g.unassigned_faces(face_ids=[])) == 0
        g.move_face(int(every.face_ids[0]), "Ann")
        assert g.undo_changes(1) == ([int(every.face_ids[0])], ["Ann"])
        assert len(g.unassigned_faces(face_ids=[int(every.face_ids[0])])) == 0  # Ann's now
