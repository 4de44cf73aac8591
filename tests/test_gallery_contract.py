"""The Gallery protocol's behaviour, checked the same way on every backend (SQLite and PostgreSQL).

PostgreSQL comes from the ``pgserver`` package (see pg_fixtures.py): skipped without it, except in
CI where a missing PostgreSQL fails.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import unicodedata

import numpy as np
import pytest

from facebank.gallery import open_gallery
from facebank.gallery.base import (
    FaceRecord,
    Gallery,
    GalleryError,
    ModelMismatch,
    PersonExists,
    PersonNotFound,
    PhotoRecord,
)
from tests.pg_fixtures import new_database_url

MODEL = "test-model-v1"
DIM = 128


def _location(kind: str, tmp_path) -> str:
    if kind == "sqlite":
        return str(tmp_path / "gallery.db")
    return new_database_url()


@pytest.fixture(params=["sqlite", "postgres"])
def location(request, tmp_path) -> str:
    return _location(request.param, tmp_path)


@pytest.fixture
def gallery(location):
    g = open_gallery(location)
    yield g
    g.close()


def unit(seed: int, dim: int = DIM) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def photo(person: str, n: int, faces: int = 1, status: str = "ok", dim: int = DIM, tag: str = "p"):
    """A photo record with a unique sha256 per (tag, person, n) and ``faces`` random faces."""
    sha = hashlib.sha256(f"{tag}|{person}|{n}".encode()).hexdigest()
    rec = PhotoRecord(person, f"/photos/{person}/{n}.jpg", sha, 1000 + n, 640, 480, status,
                      None if status == "ok" else "no face found")
    seed = int(sha[:8], 16)
    recs = [FaceRecord((10.0 + i, 20.0, 110.0, 140.0), unit(seed + i, dim), "hog", 1.25, False,
                       ((30.0, 40.0), (50.0, 40.0), (40.0, 60.0), (35.0, 75.0), (45.0, 75.0)))
            for i in range(faces)]
    return rec, recs


def test_a_new_gallery_is_empty(gallery: Gallery):
    assert isinstance(gallery, Gallery)
    assert gallery.people() == []
    assert gallery.model_id is None
    e = gallery.embeddings()
    assert len(e.names) == 0 and len(e.face_ids) == 0
    assert gallery.version() == gallery.version()
    assert gallery.integrity() == []
    assert gallery.add_photos([], MODEL) == 0


def test_people_are_added_listed_renamed_and_removed(gallery: Gallery):
    gallery.add_person("Alice")
    gallery.add_person("Bob")
    assert [p.name for p in gallery.people()] == ["Alice", "Bob"]
    assert all(p.photos == 0 and p.faces == 0 for p in gallery.people())
    with pytest.raises(PersonExists):
        gallery.add_person("Alice")
    gallery.rename_person("Bob", "Robert")
    assert [p.name for p in gallery.people()] == ["Alice", "Robert"]
    with pytest.raises(PersonExists):
        gallery.rename_person("Robert", "Alice")
    with pytest.raises(PersonExists):
        gallery.rename_person("Robert", "Robert")
    with pytest.raises(PersonNotFound):
        gallery.rename_person("Nobody", "Somebody")
    assert gallery.remove_person("Alice") == 0
    with pytest.raises(PersonNotFound):
        gallery.remove_person("Alice")
    assert [p.name for p in gallery.people()] == ["Robert"]


def test_removing_a_person_removes_their_photos_and_faces(gallery: Gallery):
    gallery.add_photos([photo("Ann", i, faces=2) for i in range(3)] + [photo("Ben", 0)], MODEL)
    assert gallery.remove_person("Ann") == 6
    e = gallery.embeddings()
    assert set(e.names) == {"Ben"} and len(e.names) == 1
    assert not gallery.has_photo(photo("Ann", 0)[0].sha256, MODEL)
    assert gallery.integrity() == []


def test_adding_the_same_photo_again_adds_nothing(gallery: Gallery):
    items = [photo("Ann", i) for i in range(4)]
    assert gallery.add_photos(items, MODEL) == 4
    assert gallery.add_photos(items, MODEL) == 0
    # the same bytes filed under another person are still the same photo
    again = [(PhotoRecord("Other", p.path, p.sha256, p.size_bytes, 1, 1, "ok"), f) for p, f in items[:2]]
    assert gallery.add_photos(again, MODEL) == 0
    # and a batch holding one photo twice stores it once
    dup = photo("Ann", 9)
    assert gallery.add_photos([dup, dup], MODEL) == 1
    assert all(gallery.has_photo(p.sha256, MODEL) for p, _ in items)
    assert not gallery.has_photo(items[0][0].sha256, "another-model")
    assert len(gallery.embeddings().names) == 5
    info = {p.name: p for p in gallery.people()}
    assert info["Ann"].photos == 5 and info["Ann"].faces == 5


def test_embeddings_of_another_model_are_refused(gallery: Gallery):
    gallery.add_photos([photo("Ann", 0)], MODEL)
    assert gallery.model_id == MODEL
    before = gallery.version()
    with pytest.raises(ModelMismatch):
        gallery.add_photos([photo("Ann", 1)], "other-model")
    with pytest.raises(ModelMismatch):
        gallery.start_run("folder", "other-model", "")
    assert gallery.version() == before
    assert len(gallery.embeddings().names) == 1
    assert gallery.model_id == MODEL


def test_a_failing_batch_leaves_no_half_written_photo(gallery: Gallery):
    good = photo("Ann", 0)
    bad_rec, bad_faces = photo("Ann", 1)
    broken = [FaceRecord(("not", "a", "box", 0), f.embedding, f.detector, f.detector_score)
              for f in bad_faces]
    with pytest.raises((ValueError, TypeError)):
        gallery.add_photos([good, (bad_rec, broken)], MODEL)
    assert not gallery.has_photo(good[0].sha256, MODEL)
    assert gallery.people() == []
    assert len(gallery.embeddings().names) == 0
    assert gallery.model_id is None  # the failed first batch did not fix the model
    assert gallery.add_photos([good], MODEL) == 1
    assert gallery.integrity() == []


def test_embeddings_round_trip_exactly(gallery: Gallery):
    items = [photo(name, i, faces=1 + i % 2) for name in ("Ann", "Ben", "Cy") for i in range(3)]
    gallery.add_photos(items, MODEL)
    e = gallery.embeddings()
    stored = {tuple(v.view(np.uint32)): n for v, n in zip(e.vectors, e.names, strict=True)}
    sent = {tuple(f.embedding.view(np.uint32)): p.person for p, faces in items for f in faces}
    assert stored == sent  # bit for bit, each under its person
    assert e.vectors.dtype == np.float32 and e.vectors.shape == (len(sent), DIM)
    assert len(set(e.face_ids.tolist())) == len(sent)
    assert list(e.face_ids) == sorted(e.face_ids)


def test_unicode_names_are_kept_normalised_and_in_codepoint_order(gallery: Gallery):
    decomposed = unicodedata.normalize("NFD", "Zoë Müller")
    for name in ("김지수", "Ólafur Arnalds", decomposed, "王菲", "Beyoncé", "O'Brien, Jr."):
        gallery.add_person(name)
    names = [p.name for p in gallery.people()]
    assert "Zoë Müller" in names and decomposed not in names  # stored NFC
    assert names == sorted(names)  # Python's order = code points, the same on every backend
    with pytest.raises(PersonExists):
        gallery.add_person("Zoë Müller")
    gallery.add_photos([photo("김지수", 0)], MODEL)
    assert gallery.embeddings().names == ("김지수",)
    assert gallery.photos("김지수")[0]["faces"] == 1


@pytest.mark.parametrize("bad", ["", "   ", ".", "..", "a/b", "..\\x", "nul\x00l", "new\nline", "x" * 201])
def test_invalid_names_are_refused(gallery: Gallery, bad: str):
    with pytest.raises(GalleryError):
        gallery.add_person(bad)
    gallery.add_person("Fine")
    with pytest.raises(GalleryError):
        gallery.rename_person("Fine", bad)
    with pytest.raises(GalleryError):
        gallery.add_photos([photo(bad, 0)], MODEL)
    assert [p.name for p in gallery.people()] == ["Fine"]


def test_photos_problems_and_photo_removal(gallery: Gallery):
    gallery.add_photos([photo("Ann", 0, faces=2), photo("Ann", 1, faces=0, status="no_face")], MODEL)
    listed = gallery.photos("Ann")
    assert [p["faces"] for p in listed] == [2, 0] or [p["faces"] for p in listed] == [0, 2]
    assert {p["status"] for p in listed} == {"ok", "no_face"}
    problems = gallery.problems()
    assert len(problems) == 1 and problems[0]["person"] == "Ann" and problems[0]["status"] == "no_face"
    info = gallery.people()[0]
    assert (info.photos, info.faces) == (1, 2)
    sha = next(p["sha256"] for p in listed if p["faces"] == 2)
    assert gallery.remove_photo("Ann", sha) == 2
    assert not gallery.has_photo(sha, MODEL)
    with pytest.raises(GalleryError):
        gallery.remove_photo("Ann", sha)
    with pytest.raises(PersonNotFound):
        gallery.photos("Nobody")
    assert len(gallery.embeddings().names) == 0


def test_runs_are_recorded_and_a_stale_one_is_marked_interrupted(gallery: Gallery):
    first = gallery.start_run("folder A", MODEL, "hog")
    second = gallery.start_run("folder B", MODEL, "hog")  # the first never finished
    gallery.add_photos([photo("Ann", 0)], MODEL, run_id=second)
    gallery.finish_run(second, "finished", {"photos_seen": 3, "photos_enrolled": 1, "faces_added": 1})
    runs = {r["id"]: r for r in gallery.runs()}
    assert runs[first]["status"] == "interrupted"
    assert runs[second]["status"] == "finished"
    counts = tuple(runs[second][k] for k in ("photos_seen", "photos_enrolled", "faces_added"))
    assert counts == (3, 1, 1)
    assert runs[second]["source"] == "folder B" and runs[second]["model_id"] == MODEL
    assert runs[second]["finished_at"] and runs[second]["started_at"] <= runs[second]["finished_at"]


def test_every_change_changes_the_version_and_calls_back(gallery: Gallery):
    calls = []
    gallery.on_change(lambda: calls.append(1))
    last = gallery.version()
    steps = [
        lambda: gallery.add_person("Ann"),
        lambda: gallery.add_photos([photo("Ann", 0)], MODEL),
        lambda: gallery.rename_person("Ann", "Anne"),
        lambda: gallery.add_photos([photo("Anne", 1)], MODEL),
        lambda: gallery.remove_photo("Anne", photo("Anne", 1)[0].sha256),
        lambda: gallery.remove_person("Anne"),
    ]
    for step in steps:
        step()
        v = gallery.version()
        assert v != last
        last = v
    assert len(calls) == len(steps)


def test_replacing_a_removed_photo_by_another_changes_the_version(location: str):
    """An index cached at version v must not be reused when the faces differ, even if their count
    and largest id came back to what they were (SQLite reuses the id of a deleted last row)."""
    g = open_gallery(location)
    try:
        g.add_photos([photo("Ann", 0), photo("Ann", 1)], MODEL)
        cached = g.version()
        g.remove_photo("Ann", photo("Ann", 1)[0].sha256)
        g.add_photos([photo("Ann", 2)], MODEL)
        assert g.version() != cached
    finally:
        g.close()


def test_the_gallery_is_there_after_reopening(location: str):
    g = open_gallery(location)
    g.add_photos([photo("Ann", i) for i in range(3)], MODEL)
    vectors = g.embeddings().vectors.copy()
    g.close()
    g = open_gallery(location)  # migrations run again: nothing to do
    try:
        assert g.model_id == MODEL
        assert [(p.name, p.faces) for p in g.people()] == [("Ann", 3)]
        assert np.array_equal(g.embeddings().vectors, vectors)
        assert g.integrity() == []
    finally:
        g.close()


def _writer(location: str, worker: int, out) -> None:
    """Enroll 3 people x 12 photos in batches of 4, in an order of its own; overlaps the other writer."""
    g = open_gallery(location)
    try:
        items = [photo(name, i, tag="shared") for name in ("Ann", "Ben", "Cy") for i in range(12)]
        items += [photo(f"Solo {worker}", i, tag=f"w{worker}") for i in range(6)]
        order = np.random.default_rng(worker).permutation(len(items))
        added = 0
        for start in range(0, len(order), 4):
            added += g.add_photos([items[j] for j in order[start:start + 4]], MODEL)
        out.put(added)
    except BaseException as exc:
        out.put(repr(exc))
        raise
    finally:
        g.close()


@pytest.mark.slow
def test_two_processes_writing_at_once_neither_lose_nor_duplicate_photos(location: str):
    open_gallery(location).close()  # schema in place before the race (opening concurrently is tested below)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(location, w, out)) for w in (1, 2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert all(isinstance(r, int) for r in results), results
    g = open_gallery(location)
    try:
        counts = {p.name: (p.photos, p.faces) for p in g.people()}
        assert counts == {"Ann": (12, 12), "Ben": (12, 12), "Cy": (12, 12),
                          "Solo 1": (6, 6), "Solo 2": (6, 6)}
        assert sum(results) == 48  # each shared photo added by exactly one of the two
        assert len(g.embeddings().names) == 48
        assert g.integrity() == []
    finally:
        g.close()


def _opener(location: str, out) -> None:
    try:
        g = open_gallery(location)
        g.add_photos([photo("Ann", 0, tag="open")], MODEL)
        g.close()
        out.put("ok")
    except BaseException as exc:
        out.put(repr(exc))


@pytest.mark.slow
def test_two_processes_creating_the_same_new_gallery_both_succeed(location: str):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_opener, args=(location, out)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert results == ["ok", "ok"]
    g = open_gallery(location)
    try:
        assert [(p.name, p.faces) for p in g.people()] == [("Ann", 1)]
    finally:
        g.close()


# -- unassigned faces (scanned photos), clusters, naming, merging ---------------------------------
def scanned(n: int, faces: int = 2, tag: str = "scan"):
    """A scanned photo: no person, ``faces`` unassigned faces."""
    rec, recs = photo("x", n, faces=faces, tag=tag)
    return PhotoRecord(None, f"/library/{n}.jpg", rec.sha256, rec.size_bytes, 640, 480, "ok"), recs


def test_scanned_faces_are_unassigned_and_never_name_anyone(gallery: Gallery):
    gallery.add_photos([photo("Ann", 0)], MODEL)
    assert gallery.add_photos([scanned(i) for i in range(3)], MODEL) == 6
    assert gallery.add_photos([scanned(0)], MODEL) == 0  # a rescan adds nothing
    assert gallery.embeddings().names == ("Ann",)  # only faces with a person name people
    assert [(p.name, p.photos, p.faces) for p in gallery.people()] == [("Ann", 1, 1)]
    todo = gallery.unassigned_faces()
    assert len(todo) == 6 and todo.vectors.shape == (6, DIM) and set(todo.clusters.tolist()) == {-1}
    infos = gallery.faces(unassigned=True)
    assert [f.face_id for f in infos] == todo.face_ids.tolist()
    assert {f.path for f in infos} == {f"/library/{i}.jpg" for i in range(3)}
    assert all(f.person is None and f.cluster is None and f.suggested is None for f in infos)
    assert infos[0].box == (10.0, 20.0, 110.0, 140.0)
    assert gallery.add_photos([(PhotoRecord(None, "/library/bad.jpg", "ab" * 32, 5, 0, 0, "error",
                                            "cannot decode"), [])], MODEL) == 0
    assert any(p["path"] == "/library/bad.jpg" and p["person"] is None for p in gallery.problems())
    assert gallery.integrity() == []


def test_clusters_are_replaced_as_a_whole_with_suggestions(gallery: Gallery):
    gallery.add_photos([photo("Ann", 0)] + [scanned(i) for i in range(3)], MODEL)
    ids = gallery.unassigned_faces().face_ids.tolist()
    assert gallery.set_clusters({ids[0]: 7, ids[1]: 7, ids[2]: 9, ids[3]: None},
                                {7: ("Ann", 0.21)}) == 3
    by_id = {f.face_id: f for f in gallery.faces(unassigned=True)}
    assert [by_id[i].cluster for i in ids] == [7, 7, 9, None, None, None]
    assert [by_id[i].suggested for i in ids] == ["Ann", "Ann", None, None, None, None]
    assert [f.face_id for f in gallery.faces(cluster=7)] == ids[:2]
    assert gallery.unassigned_faces().clusters.tolist() == [7, 7, 9, -1, -1, -1]
    before = gallery.version()
    gallery.set_clusters({ids[5]: 1})  # a new clustering replaces the old one
    assert gallery.version() != before
    assert [f.cluster for f in gallery.faces(unassigned=True)] == [None] * 5 + [1]
    with pytest.raises(PersonNotFound):
        gallery.set_clusters({ids[0]: 1}, {1: ("Nobody", 0.1)})
    assert [f.cluster for f in gallery.faces(unassigned=True)] == [None] * 5 + [1]  # unchanged


def test_naming_a_cluster_makes_a_new_person_or_joins_an_existing_one(gallery: Gallery):
    gallery.add_photos([photo("Ann", 0)] + [scanned(i) for i in range(3)], MODEL)
    ids = gallery.unassigned_faces().face_ids.tolist()
    gallery.set_clusters({ids[0]: 1, ids[2]: 1, ids[4]: 1, ids[1]: 2, ids[3]: 2})
    assert gallery.name_cluster(1, "Bea") == 3
    assert gallery.name_cluster(2, "Ann") == 2  # merged into the enrolled Ann
    info = {p.name: (p.photos, p.faces) for p in gallery.people()}
    assert info == {"Ann": (3, 3), "Bea": (3, 3)}
    assert sorted(gallery.embeddings().names) == ["Ann"] * 3 + ["Bea"] * 3
    assert [f.face_id for f in gallery.faces(unassigned=True)] == [ids[5]]
    assert {f.person for f in gallery.faces(face_ids=ids[:2])} == {"Bea", "Ann"}
    with pytest.raises(GalleryError):  # named already: the cluster is gone
        gallery.name_cluster(1, "Cy")
    with pytest.raises(GalleryError):
        gallery.name_cluster(99, "Cy")
    gallery.set_clusters({ids[5]: 3})
    with pytest.raises(GalleryError):  # a bad name changes nothing
        gallery.name_cluster(3, "a/b")
    assert gallery.faces(cluster=3)[0].person is None
    assert len(gallery.photos("Bea")) == 3
    assert gallery.integrity() == []


def test_moving_a_face_and_taking_it_out(gallery: Gallery):
    gallery.add_photos([photo("Ann", 0), scanned(1)], MODEL)
    ann_face = gallery.faces(person="Ann")[0].face_id
    a, b = gallery.unassigned_faces().face_ids.tolist()
    gallery.move_face(a, "Cy")  # a new person
    gallery.move_face(b, "Ann")
    assert [f.face_id for f in gallery.faces(person="Ann")] == [ann_face, b]
    gallery.move_face(ann_face, "Cy")  # the enrolled photo was not Ann's after all
    assert {p.name: p.faces for p in gallery.people()} == {"Ann": 1, "Cy": 2}
    gallery.move_face(a, None)  # taken out: unassigned again
    assert [f.face_id for f in gallery.faces(unassigned=True)] == [a]
    with pytest.raises(GalleryError):
        gallery.move_face(123456, "Ann")
    with pytest.raises(GalleryError):
        gallery.move_face(a, "")
    with pytest.raises(PersonNotFound):
        gallery.faces(person="Nobody")
    assert gallery.integrity() == []


def test_merging_people_moves_photos_and_faces_in_one_step(gallery: Gallery):
    gallery.add_photos([photo("Ann", i) for i in range(2)] + [photo("Anne", 5), scanned(1)], MODEL)
    b = gallery.unassigned_faces().face_ids.tolist()[1]
    gallery.move_face(b, "Anne")
    assert gallery.merge_people("Anne", "Ann") == 2
    assert [(p.name, p.photos, p.faces) for p in gallery.people()] == [("Ann", 4, 4)]
    assert len(gallery.photos("Ann")) == 4
    with pytest.raises(PersonNotFound):
        gallery.merge_people("Anne", "Ann")
    with pytest.raises(PersonNotFound):
        gallery.merge_people("Ann", "Nobody")
    with pytest.raises(GalleryError):
        gallery.merge_people("Ann", "Ann")
    assert gallery.integrity() == []


def test_photos_with_all_of_the_given_people(gallery: Gallery):
    gallery.add_photos([scanned(i, faces=3) for i in range(3)] + [photo("Ann", 9)], MODEL)
    f = {x.face_id: x for x in gallery.faces(unassigned=True)}
    ids = sorted(f)
    for k in (0, 3, 6):  # Ann in every scanned photo, Bob in photos 0 and 1
        gallery.move_face(ids[k], "Ann")
    for k in (1, 4):
        gallery.move_face(ids[k], "Bob")
    gallery.move_face(ids[2], "Bob")  # Bob twice in photo 0 counts once
    both = gallery.photos_with(["Ann", "Bob"])
    assert [p["path"] for p in both] == ["/library/0.jpg", "/library/1.jpg"]
    assert both[0]["faces"] == 3
    assert len(gallery.photos_with(["Ann"])) == 4
    assert gallery.photos_with(["Ann", "Bob", "Ann"]) == both
    with pytest.raises(PersonNotFound):
        gallery.photos_with(["Ann", "Nobody"])
    with pytest.raises(GalleryError):
        gallery.photos_with([])


def test_a_stored_photo_says_whose_it_is_and_how_it_went(gallery: Gallery):
    good, bad = photo("Ann", 0), photo("Ann", 1)
    bad = (PhotoRecord("Ann", "x/bad.jpg", bad[0].sha256, 10, 1, 1, "no_face", "no face found"), [])
    gallery.add_photos([good, bad], MODEL)
    stored = gallery.stored_photo(good[0].sha256, MODEL)
    assert (stored.person, stored.path, stored.status) == ("Ann", good[0].path, "ok")
    stored = gallery.stored_photo(bad[0].sha256, MODEL)
    assert (stored.status, stored.reason) == ("no_face", "no face found")
    assert gallery.stored_photo(good[0].sha256, "another-model") is None
    assert gallery.stored_photo("0" * 64, MODEL) is None


def test_a_stored_scanned_photo_has_no_person(gallery: Gallery):
    rec, _ = scanned(3)
    gallery.add_photos([(rec, [])], MODEL)
    assert gallery.stored_photo(rec.sha256, MODEL).person is None


@pytest.mark.parametrize("name", ["علی\u200cرضا", "नम\u200dस्ते", "👨\u200d👩\u200d👧 family"])
def test_zero_width_joiners_belong_to_names(gallery: Gallery, name: str):
    gallery.add_person(name)
    assert [p.name for p in gallery.people()] == [name]


@pytest.mark.parametrize("bad", ["a\u200bb", "evil\u202etxt.jpg", "\u200d", "\u200c \u200d"])
def test_invisible_formatting_characters_are_refused(gallery: Gallery, bad: str):
    with pytest.raises(GalleryError):
        gallery.add_person(bad)


def test_names_that_differ_only_by_case_are_one_person(gallery: Gallery):
    gallery.add_photos([photo("Alice", 0)], MODEL)
    with pytest.raises(PersonExists, match="'Alice'.*differ only by case"):
        gallery.add_person("alice")
    gallery.add_person("Bob")
    with pytest.raises(PersonExists, match="'Bob'"):
        gallery.rename_person("Alice", "BOB")
    gallery.rename_person("Alice", "ALICE")  # the same person, spelt anew
    gallery.add_photos([photo("alice", 1)], MODEL)  # joins ALICE
    assert [(p.name, p.photos) for p in gallery.people()] == [("ALICE", 2), ("Bob", 0)]
    gallery.remove_person("alice")
    assert [p.name for p in gallery.people()] == ["Bob"]


def test_naming_and_merging_find_people_whatever_the_case(gallery: Gallery):
    gallery.add_photos([photo("Ann", 0), photo("Bob", 0), scanned(1)], MODEL)
    a, b = gallery.unassigned_faces().face_ids.tolist()
    gallery.set_clusters({a: 1})
    assert gallery.name_cluster(1, "ann") == 1  # joins Ann, no second person
    gallery.move_face(b, "BOB")
    assert {p.name: p.faces for p in gallery.people()} == {"Ann": 2, "Bob": 2}
    assert gallery.merge_people("bob", "ANN") == 2
    assert [(p.name, p.faces) for p in gallery.people()] == [("Ann", 4)]
    assert len(gallery.photos_with(["aNN"])) == 3
