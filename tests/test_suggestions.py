"""Suggestions appear and stay current (issue 19): every unnamed cluster and loose face gets the
named person it most likely is, after every scan, naming or take-out (no recluster needed), and a
person a face was told it is not never comes back. Real SQLite galleries, the real decision rule,
the real CLI and REST server; embeddings of the geometry of tests/test_groups.py."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from facebank import FaceBank
from facebank.cli import app
from facebank.cluster.engine import method_from_settings, recluster
from facebank.cluster.suggest import SuggestionCache
from facebank.gallery.base import NotFound, PersonNotFound
from facebank.gallery.sqlite import SqliteGallery
from tests.test_groups import MODEL, World, photo

runner = CliRunner()


@pytest.fixture
def setup(tmp_path):
    """40 enrolled people (4 photos each) in a gallery file; ``world`` and ``centres`` to make more."""
    world = World(1)
    path = tmp_path / "g.db"
    g = SqliteGallery(path)
    centres = [world.person() for _ in range(40)]
    items, k = [], 0
    for j, c in enumerate(centres):
        for v in world.faces(c, 4):
            items.append(photo(k, f"person{j:02d}", v[None]))
            k += 1
    g.add_photos(items, MODEL)
    g.close()
    return path, world, centres


def scan(g: SqliteGallery, first: int, vectors: np.ndarray) -> list[int]:
    """What 'facebank scan' stores: photos of nobody, each face unassigned; returns the new face ids."""
    before = set(g.unassigned_faces().face_ids.tolist())
    g.add_photos([photo(first + i, None, v[None]) for i, v in enumerate(vectors)], MODEL)
    return sorted(set(g.unassigned_faces().face_ids.tolist()) - before)


def test_a_loose_face_gets_a_suggestion_after_a_scan_without_a_recluster(setup):
    path, world, centres = setup
    with FaceBank(path) as fb:
        cache = SuggestionCache.of(fb)
        assert cache.get().loose == {}
        (face,) = scan(fb.gallery, 1000, world.faces(centres[7], 1, spread=0.2))
        got = cache.get()
        s = got.loose[face]
        assert s.person == "person07" and s.agree == 1 and s.faces == 1 and s.score <= s.threshold
        # a second scan decides only the new face again
        (other,) = scan(fb.gallery, 2000, world.faces(centres[8], 1, spread=0.2))
        again = cache.get()
        assert again.decided == 1 and again.loose[other].person == "person08"
        assert again.loose[face] == s
        # a stranger's face gets no suggestion
        (stranger,) = scan(fb.gallery, 3000, world.faces(world.person(), 1, spread=0.2))
        assert cache.get().loose[stranger].person is None


def test_cluster_suggestion_says_how_many_faces_agree_and_follows_naming(setup):
    path, world, centres = setup
    with FaceBank(path) as fb:
        ids = scan(fb.gallery, 1000, world.faces(centres[9], 8, spread=0.45))
        fb.gallery.set_clusters({i: 0 for i in ids})
        s = SuggestionCache.of(fb).get().clusters[0]
        assert s.person == "person09" and s.size == 8 and 1 <= s.agree <= s.faces <= 8
        assert s.agreement() == f"{s.agree} of {s.faces} faces agree"
        # a new person named from other faces is suggested for a loose face like them, at once
        newcomer = world.person()
        named = scan(fb.gallery, 2000, world.faces(newcomer, 3, spread=0.2))
        fb.gallery.set_clusters({**{i: 0 for i in ids}, **{i: 1 for i in named}})
        loose = scan(fb.gallery, 3000, world.faces(newcomer, 1, spread=0.2))
        assert SuggestionCache.of(fb).get().loose[loose[0]].person is None
        fb.gallery.name_cluster(1, "Newcomer")
        assert SuggestionCache.of(fb).get().loose[loose[0]].person == "Newcomer"


def test_a_rejected_suggestion_never_returns(setup, tmp_path):
    path, world, centres = setup
    with FaceBank(path) as fb:
        g = fb.gallery
        ids = scan(g, 1000, world.faces(centres[4], 6, spread=0.4))
        g.set_clusters({i: 0 for i in ids})
        assert SuggestionCache.of(fb).get().clusters[0].person == "person04"
    r = runner.invoke(app, ["people", "reject", "0", "person04", "-g", str(path)])
    assert r.exit_code == 0, r.output
    assert "never suggested again" in r.output
    with FaceBank(path) as fb:
        g = fb.gallery
        assert SuggestionCache.of(fb).get().clusters[0].person != "person04"
        # more faces of the same person join, the faces are clustered again: still not suggested
        more = scan(g, 2000, world.faces(centres[4], 4, spread=0.2))
        summary = recluster(g, method_from_settings(fb.settings), bank=fb)
        assert all(s.person != "person04" for s in summary.suggestions if s.cluster in
                   {f.cluster for f in g.faces(face_ids=ids)})
        live = SuggestionCache.of(fb).get()
        for f in g.faces(face_ids=ids):
            s = live.for_face(f.face_id, f.cluster)
            assert s is None or s.person != "person04"
        # a face that was not rejected is still suggested as person04 on its own
        fresh = [f for f in g.faces(face_ids=more) if f.cluster is None]
        for f in fresh:
            assert live.loose[f.face_id].person == "person04"
        # merging person04 into another person carries the rejection over
        g.merge_people("person04", "person05")
        assert g.rejections(ids) == {i: frozenset({"person05"}) for i in ids}
    r = runner.invoke(app, ["cluster", "-g", str(path), "--json"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert rows and all({"path", "box", "cluster", "suggested", "score"} <= set(row) for row in rows)
    by_path = {row["path"]: row for row in rows}
    for i in range(6):
        assert by_path[f"p{1000 + i}.jpg"]["suggested"] not in ("person04", "person05")
    assert any(row["suggested"] is not None and row["score"] is not None for row in rows)


def test_reject_refuses_unknown_faces_clusters_and_people(setup):
    path, world, centres = setup
    with SqliteGallery(path) as g:
        ids = scan(g, 1000, world.faces(centres[2], 2))
        with pytest.raises(NotFound):
            g.reject([ids[0], 999_999], "person02")
        with pytest.raises(PersonNotFound):
            g.reject(ids, "nobody")
        assert g.rejections() == {}
    for args, msg in [(["people", "reject", "77", "person02"], "no cluster 77"),
                      (["people", "reject", "face:abc", "person02"], "bad target"),
                      (["people", "reject", "photo:3", "person02"], "bad target"),
                      (["people", "reject", f"face:{ids[0]}", "nobody"], "no person")]:
        r = runner.invoke(app, [*args, "-g", str(path)])
        assert r.exit_code in (1, 2) and msg in r.output and "Traceback" not in r.output, r.output
    r = runner.invoke(app, ["people", "reject", f"face:{ids[0]}", "person02", "-g", str(path)])
    assert r.exit_code == 0, r.output
    with SqliteGallery(path) as g:
        assert g.rejections([ids[0]]) == {ids[0]: frozenset({"person02"})}


def test_rest_cluster_listing_has_the_live_suggestion_and_reject_route(setup):
    from facebank.server import ServerConfig
    from facebank.server.auth import ApiKeyStore
    from facebank.server.testing import LiveServer
    from facebank.settings import Settings

    path, world, centres = setup
    with SqliteGallery(path) as g:
        ids = scan(g, 1000, world.faces(centres[6], 5, spread=0.4))
        g.set_clusters({i: 3 for i in ids})
    with ApiKeyStore(path) as keys:
        _, key = keys.create("tests", scope="write")
    with LiveServer(ServerConfig(settings=Settings(gallery=str(path)))) as live, \
            httpx.Client(base_url=live.url, headers={"X-API-Key": key}, timeout=60) as client:
        (c,) = client.get("/v1/clusters").json()["clusters"]
        assert c["id"] == 3 and c["suggested"] == "person06"
        assert c["score"] is not None and 1 <= c["agree"] <= c["faces_used"] <= 5
        r = client.post("/v1/clusters/3/reject", json={"name": "person06"})
        assert r.status_code == 200, r.text
        assert r.json() == {"cluster": 3, "person": "person06", "faces": 5}
        (c,) = client.get("/v1/clusters").json()["clusters"]
        assert c["suggested"] != "person06"
        assert client.post("/v1/clusters/99/reject", json={"name": "person06"}).status_code == 404
        assert client.post("/v1/clusters/3/reject", json={"name": "nobody"}).status_code == 404


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_rejections_behave_the_same_on_every_gallery(kind, tmp_path):
    from facebank.gallery import open_gallery
    from tests.pg_fixtures import new_database_url

    world = World(3)
    g = open_gallery(str(tmp_path / "g.db") if kind == "sqlite" else new_database_url())
    try:
        a, b = world.person(), world.person()
        g.add_photos([photo(1, "ann", world.faces(a, 1)), photo(2, "bea", world.faces(b, 1))], MODEL)
        ids = scan(g, 10, world.faces(a, 3))
        assert g.reject(ids, "ann") == 3 and g.reject(ids[:1], "ann") == 0  # twice: recorded once
        assert g.rejections() == {i: frozenset({"ann"}) for i in ids}
        assert g.rejections([ids[0]]) == {ids[0]: frozenset({"ann"})} and g.rejections([]) == {}
        with pytest.raises(NotFound):
            g.reject([10**9], "ann")
        with pytest.raises(PersonNotFound):
            g.reject(ids, "cid")
        g.move_face(ids[0], "ann")  # the user says it IS ann after all: that rejection goes
        assert ids[0] not in g.rejections()
        g.merge_people("ann", "bea")  # rejections follow the person they were about
        assert g.rejections() == {i: frozenset({"bea"}) for i in ids[1:]}
        g.remove_person("bea")
        assert g.rejections() == {}
    finally:
        g.close()


def test_rest_faces_alone_carry_their_own_suggestion(setup):
    from facebank.server import ServerConfig
    from facebank.server.auth import ApiKeyStore
    from facebank.server.testing import LiveServer
    from facebank.settings import Settings

    path, world, centres = setup
    with SqliteGallery(path) as g:
        (face,) = scan(g, 1000, world.faces(centres[11], 1, spread=0.2))
    with ApiKeyStore(path) as keys:
        _, key = keys.create("tests", scope="write")
    with LiveServer(ServerConfig(settings=Settings(gallery=str(path)))) as live, \
            httpx.Client(base_url=live.url, headers={"X-API-Key": key}, timeout=60) as client:
        r = client.get("/v1/faces", params={"alone": "true"})
        assert r.status_code == 200, r.text
        (f,) = r.json()["faces"]
        assert f["id"] == face and f["suggested"] == "person11"
