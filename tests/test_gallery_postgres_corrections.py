"""The corrections kept (issue 21) on a PostgreSQL gallery: the same tests as the SQLite gallery's
(tests/test_library_constraints.py, collected here again with a PostgreSQL ``lib``): take out ->
recluster -> still out, a face taken out of a person never goes back, a name survives a rescan,
merge then recluster, undo of every kind and an undo that conflicts; plus hide, "not a face",
flagged faces, covers and the timeline on PostgreSQL."""

from __future__ import annotations

import pytest

from facebank.cluster.engine import recluster
from facebank.gallery import open_gallery
from facebank.gallery.postgres import PostgresGallery
from facebank.types import FaceQuality
from tests.pg_fixtures import new_database_url
from tests.test_cluster import MODEL, blobs
from tests.test_library_constraints import (  # noqa: F401 - collected again with the lib below
    CW,
    _photo,
    test_a_face_taken_out_of_a_cluster_stays_out_after_reclustering,
    test_a_face_taken_out_of_a_person_never_goes_back_to_them,
    test_a_name_survives_a_rescan_and_its_cluster_id_is_never_reused,
    test_merge_then_recluster_is_one_person,
    test_undo_puts_back_a_name_a_take_out_a_merge_a_hide_and_a_cover,
)


@pytest.fixture
def pg() -> PostgresGallery:
    g = open_gallery(new_database_url())
    assert isinstance(g, PostgresGallery)
    yield g
    g.close()


@pytest.fixture
def lib(pg):
    """Two people's faces scanned (8 + 6, one face per photo) and clustered, on PostgreSQL."""
    x, y = blobs([8, 6], seed=5)
    pg.add_photos([_photo(i, x[i:i + 1]) for i in range(len(x))], MODEL)
    recluster(pg, CW)
    return pg, x


def test_hide_a_person_and_a_cluster_and_undo_it_on_postgres(lib):
    g, _ = lib
    c = g.faces(unassigned=True)[0].cluster
    g.name_cluster(c, "Ann")
    other = next(f.cluster for f in g.faces(unassigned=True) if f.cluster is not None)
    g.hide_person("Ann")
    g.hide_cluster(other)
    assert g.hidden() == ({"Ann"}, {other})
    with pytest.raises(Exception, match="no cluster"):
        g.hide_cluster(10**9)
    assert g.undo() == [f"hide group #{other}"]
    assert g.hidden() == ({"Ann"}, set())
    g.hide_person("Ann", hidden=False)
    assert g.hidden() == (set(), set())
    # still recognised while hidden: hiding changes no face
    assert len(g.faces(person="Ann")) > 0


def test_an_undo_a_later_change_conflicts_with_is_refused_and_changes_nothing_on_postgres(lib):
    from facebank.gallery.sqlite_corrections import UndoConflict

    g, _ = lib
    c = g.faces(unassigned=True)[0].cluster
    g.name_cluster(c, "Ann")
    face = g.faces(person="Ann")[0].face_id
    with g._tx() as db:  # another client, without a log (an older facebank)
        db.execute("UPDATE faces SET person_id=NULL WHERE id=%s", (face,))
    before = (g.people(), g.faces(), g.actions())
    with pytest.raises(UndoConflict, match=f"face {face} was changed"):
        g.undo()
    assert (g.people(), g.faces(), g.actions()) == before


def test_not_a_face_and_flagged_faces_on_postgres(pg):
    x, _ = blobs([6], seed=2)
    blurred = FaceQuality(40.0, 0.9, 0.0, 0.99, "low_quality")
    pg.add_photos([_photo(i, x[i:i + 1]) for i in range(3)], MODEL)
    pg.add_photos([_photo(10 + i, x[3 + i:4 + i], quality=blurred) for i in range(2)], MODEL)
    pg.add_photos([_photo(20, x[5:6])], MODEL)
    recluster(pg, CW)
    flagged = pg.flagged_faces()
    assert len(flagged) == 2 and set(flagged.values()) == {"low_quality"}
    assert all(f.cluster is None for f in pg.faces(unassigned=True) if f.face_id in flagged)
    assert pg.quality(next(iter(flagged)))["blur"] == pytest.approx(0.9)
    bad = pg.faces()[-1]
    pg.not_a_face(bad.face_id)
    assert bad.face_id not in {f.face_id for f in pg.faces()}
    with pg._tx() as db:  # the photo comes back: the box stays out
        db.execute("DELETE FROM photos WHERE sha256=%s", (bad.sha256,))
    pg.add_photos([_photo(20, x[5:6])], MODEL)
    assert bad.sha256 not in {f.sha256 for f in pg.faces()}


def test_cover_bulk_move_and_timeline_on_postgres(lib):
    g, _ = lib
    c = g.faces(unassigned=True)[0].cluster
    g.name_cluster(c, "Ann")
    faces = [f.face_id for f in g.faces(person="Ann")]
    assert g.cover_face("Ann") in faces
    g.set_cover("Ann", faces[-1])
    assert g.cover_face("Ann") == faces[-1]
    assert g.move_faces(faces[:2], "Bea") == 2
    assert {f.face_id for f in g.faces(person="Bea")} == set(faces[:2])
    with pytest.raises(Exception, match="no face with id"):
        g.move_faces([faces[2], 10**9], "Bea")
    assert len(g.faces(person="Bea")) == 2  # all or nothing
    g.set_photo_dates([(1, "2020-01-02T03:04:05", "exif")])
    t = g.timeline("Ann")
    assert len(t) == len(faces) - 2 and all(p["source"] in ("exif", "none") for p in t)
    assert g.undo() == ["2 faces to Bea"]
    assert len(g.faces(person="Ann")) == len(faces)
