"""What only the PostgreSQL gallery does: pgvector column and index, server-side search, runs of
writers on other machines, schema versions, binary reading of the embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from facebank.gallery import open_gallery
from facebank.gallery.base import GalleryError
from facebank.gallery.index import ExactIndex
from facebank.gallery.postgres import SCHEMA_VERSION, PostgresGallery, _redact, vector_literal
from tests.pg_fixtures import new_database_url
from tests.test_gallery_contract import MODEL, photo


@pytest.fixture
def pg() -> PostgresGallery:
    g = open_gallery(new_database_url())
    assert isinstance(g, PostgresGallery)
    yield g
    g.close()


def test_open_gallery_picks_postgres_for_both_url_spellings():
    url = new_database_url()
    for spelling in (url, url.replace("postgresql://", "postgres://", 1)):
        g = open_gallery(spelling)
        try:
            assert isinstance(g, PostgresGallery)
        finally:
            g.close()


def test_the_first_face_types_the_column_and_builds_the_hnsw_index(pg: PostgresGallery):
    def column_type():
        return pg._db.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                              " WHERE attrelid='faces'::regclass AND attname='embedding'").fetchone()[0]

    assert column_type() == "vector"
    pg.add_photos([photo("Ann", 0, faces=0, status="no_face")], MODEL)  # model fixed, dimension not yet
    assert column_type() == "vector"
    pg.add_photos([photo("Ann", 1)], MODEL)
    assert column_type() == "vector(128)"
    indexes = [r[0] for r in pg._db.execute("SELECT indexdef FROM pg_indexes WHERE tablename='faces'")]
    assert any("hnsw" in d and "vector_l2_ops" in d for d in indexes), indexes
    with pytest.raises(GalleryError):
        pg.add_photos([photo("Ann", 2, dim=64)], MODEL)


def test_server_side_search_finds_the_same_faces_as_exact_search(pg: PostgresGallery):
    items = [photo(f"P{i % 20}", i) for i in range(300)]
    pg.add_photos(items, MODEL)
    exact = ExactIndex(pg.embeddings())
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(20):
        q = rng.standard_normal(128).astype(np.float32)
        q /= np.linalg.norm(q)
        ids, dist = pg.search(q, k=5)
        want_ids, want_dist = exact.search(q, k=5)
        assert np.all(np.diff(dist) >= -1e-6)
        hits += len(set(ids.tolist()) & set(want_ids.tolist()))
        if ids[0] == want_ids[0]:
            assert dist[0] == pytest.approx(want_dist[0], abs=1e-5)
    assert hits >= 0.95 * 20 * 5
    # a stored face finds itself at distance 0
    face = items[7][1][0].embedding
    ids, dist = pg.search(face, k=1)
    assert dist[0] == pytest.approx(0.0, abs=1e-6)


def test_a_run_of_a_writer_that_is_gone_is_interrupted_but_a_live_one_is_not():
    url = new_database_url()
    live, gone, me = (open_gallery(url) for _ in range(3))
    try:
        live_run = live.start_run("machine A", MODEL, "")
        gone_run = gone.start_run("machine B", MODEL, "")
        gone.close()  # a crash: the connection ends without finish_run
        mine = me.start_run("machine C", MODEL, "")
        status = {r["id"]: r["status"] for r in me.runs()}
        assert status == {live_run: "running", gone_run: "interrupted", mine: "running"}
        live.finish_run(live_run, "finished", {})
        assert {r["id"]: r["status"] for r in me.runs()}[live_run] == "finished"
    finally:
        live.close()
        me.close()


def test_a_gallery_of_a_newer_schema_is_refused(pg: PostgresGallery):
    pg._db.execute("INSERT INTO schema_migrations(version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(GalleryError, match="newer"):
        PostgresGallery(pg.url)


def test_a_database_without_a_gallery_is_refused_read_only():
    with pytest.raises(GalleryError, match="no facebank gallery"):
        PostgresGallery(new_database_url(), readonly=True)


def test_an_unreachable_server_is_a_gallery_error_without_the_password():
    with pytest.raises(GalleryError) as info:
        PostgresGallery("postgresql://me:s3cret@/nodb?host=/nonexistent-socket-dir&connect_timeout=2")
    assert "s3cret" not in str(info.value)
    assert _redact("postgresql://me:s3cret@db.example:5432/x") == "postgresql://me:***@db.example:5432/x"


def test_vector_literals_round_trip_float32_exactly():
    v = np.random.default_rng(0).standard_normal(512).astype(np.float32)
    parsed = np.asarray([float(x) for x in vector_literal(v)[1:-1].split(",")], np.float32)
    assert np.array_equal(parsed, v)


def test_many_faces_are_read_back_in_one_binary_copy(pg: PostgresGallery):
    items = [photo(f"P{i % 50}", i, faces=2) for i in range(1000)]
    for start in range(0, len(items), 250):
        pg.add_photos(items[start:start + 250], MODEL)
    e = pg.embeddings()
    assert e.vectors.shape == (2000, 128)
    by_id = dict(pg._db.execute("SELECT id, embedding::text FROM faces").fetchall())
    for row in (0, 999, 1999):
        text = by_id[int(e.face_ids[row])]
        stored = np.asarray([float(x) for x in text[1:-1].split(",")], np.float32)
        assert np.array_equal(stored, e.vectors[row])
    assert sorted(set(e.names)) == sorted({f"P{i}" for i in range(50)})


def test_a_version_1_gallery_with_faces_is_migrated_to_unassigned_faces(monkeypatch):
    """Schema 2 lets faces be without a person; a gallery written by schema 1 keeps everything."""
    import facebank.gallery.postgres as pgmod

    url = new_database_url()
    first = pgmod.migrations()[:1]
    monkeypatch.setattr(pgmod, "migrations", lambda: first)
    monkeypatch.setattr(pgmod, "SCHEMA_VERSION", 1)
    old = open_gallery(url)
    old.add_photos([photo("Ann", i) for i in range(3)], MODEL)
    old.close()
    monkeypatch.undo()
    g = open_gallery(url)
    try:
        assert g._schema_version() == SCHEMA_VERSION
        assert [(p.name, p.photos, p.faces) for p in g.people()] == [("Ann", 3, 3)]
        face = g.faces(person="Ann")[0].face_id
        g.move_face(face, None)
        assert g.unassigned_faces().face_ids.tolist() == [face]
        assert len(g.embeddings().names) == 2 and g.integrity() == []
    finally:
        g.close()
