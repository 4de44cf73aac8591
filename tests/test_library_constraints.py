"""Remember the user (issue 21): every correction is a constraint a later clustering or scan keeps.
Take out, recluster, still out; name, rescan, name kept; merge, recluster, one person; named
cluster ids never reused; "not a face" survives a rescan; flagged faces form no cluster."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from facebank.cluster.engine import keep_apart, recluster, stable_ids
from facebank.cluster.methods import create
from facebank.gallery import open_gallery
from facebank.gallery.base import FaceRecord, PhotoRecord
from facebank.types import FaceQuality
from tests.test_cluster import MODEL, blobs

CW = create("chinese-whispers", threshold=0.5)


def _photo(n: int, vecs: np.ndarray, person: str | None = None, quality=None):
    sha = hashlib.sha256(f"p{n}".encode()).hexdigest()
    faces = [FaceRecord((10.0 * i, 0.0, 10.0 * i + 8, 9.0), v, "test", 1.0, quality=quality)
             for i, v in enumerate(vecs)]
    return PhotoRecord(person, f"/lib/p{n}.jpg", sha, 100, 64, 64, "ok"), faces


@pytest.fixture
def lib(tmp_path):
    """Two people's faces scanned (8 + 6, one face per photo) and clustered."""
    x, y = blobs([8, 6], seed=5)
    g = open_gallery(tmp_path / "g.db")
    g.add_photos([_photo(i, x[i:i + 1]) for i in range(len(x))], MODEL)
    recluster(g, CW)
    yield g, x
    g.close()


def _cluster_of(g, face_id):
    return g.faces(face_ids=[face_id])[0].cluster


def _rescan(g, x, start=100):
    """More photos of the same two people arrive (a rescan of a grown library) and are clustered."""
    g.add_photos([_photo(start + i, x[i:i + 1] * 0.999 + 0.001) for i in range(3)], MODEL)
    recluster(g, CW)


def test_a_face_taken_out_of_a_cluster_stays_out_after_reclustering(lib):
    g, x = lib
    faces = g.faces(unassigned=True)
    first = faces[0]
    mates = [f.face_id for f in faces if f.cluster == first.cluster and f.face_id != first.face_id]
    g.move_face(first.face_id, None)
    recluster(g, CW)
    again = _cluster_of(g, first.face_id)
    assert again is None or not any(_cluster_of(g, m) == again for m in mates)
    _rescan(g, x)
    again = _cluster_of(g, first.face_id)
    assert again is None or not any(_cluster_of(g, m) == again for m in mates)


def test_a_face_taken_out_of_a_person_never_goes_back_to_them(lib):
    g, x = lib
    c = g.faces(unassigned=True)[0].cluster
    n = g.name_cluster(c, "Ann")
    ann = g.faces(person="Ann")
    out = ann[0].face_id
    g.move_face(out, None)  # the x button
    assert g.barred(out) == ["Ann"]
    assert g.faces(face_ids=[out])[0].person is None  # back in the unnamed pool
    recluster(g, CW)
    # the face clusters again, and naming its new cluster Ann leaves it out
    c2 = _cluster_of(g, out)
    if c2 is not None:
        g.name_cluster(c2, "Ann")
    assert g.faces(face_ids=[out])[0].person is None
    assert out not in {f.face_id for f in g.faces(person="Ann")}
    assert len(g.faces(person="Ann")) >= n - 1
    # the user's own word lifts the bar
    g.move_face(out, "Ann")
    assert g.faces(face_ids=[out])[0].person == "Ann" and g.barred(out) == []


def test_a_name_survives_a_rescan_and_its_cluster_id_is_never_reused(lib):
    g, x = lib
    c = g.faces(unassigned=True)[0].cluster
    n = g.name_cluster(c, "Ann")
    assert g.named_cluster_ids() == {c: "Ann"}
    with pytest.raises(Exception, match=f"cluster {c} was named Ann"):
        g.name_cluster(c, "Bea")  # the id the user saw still means something
    _rescan(g, x)
    assert len(g.faces(person="Ann")) == n
    assert c not in {f.cluster for f in g.faces(unassigned=True)}


def test_merge_then_recluster_is_one_person(lib):
    g, x = lib
    faces = g.faces(unassigned=True)
    ca = faces[0].cluster
    g.name_cluster(ca, "Ann")
    cb = next(f.cluster for f in g.faces(unassigned=True) if f.cluster is not None)
    g.name_cluster(cb, "Anne")
    g.merge_people("Anne", "Ann")
    recluster(g, CW)
    assert [p.name for p in g.people()] == ["Ann"]
    assert len(g.faces(person="Ann")) == len(x)


def test_not_a_face_is_deleted_for_good_and_survives_a_rescan(tmp_path):
    x, _ = blobs([3], seed=1)
    g = open_gallery(tmp_path / "g.db")
    g.add_photos([_photo(0, x)], MODEL)
    bad = g.faces()[1]
    g.not_a_face(bad.face_id)
    assert [f.face_id for f in g.faces()] == [f.face_id for f in g.faces() if f.face_id != bad.face_id]
    assert len(g.faces()) == 2
    # the photo comes back (removed and scanned again, or another model run): the box stays out
    with g._tx() as db:
        db.execute("DELETE FROM photos")
    g.add_photos([_photo(0, x)], MODEL)
    boxes = sorted(f.box for f in g.faces())
    assert boxes == [(0.0, 0.0, 8.0, 9.0), (20.0, 0.0, 28.0, 9.0)]
    assert g.integrity() == []
    with pytest.raises(Exception, match="no face with id"):
        g.not_a_face(10**6)
    g.close()


def test_flagged_faces_are_kept_but_form_no_cluster(tmp_path):
    x, _ = blobs([6], seed=2)
    g = open_gallery(tmp_path / "g.db")
    blurred = FaceQuality(40.0, 0.9, 0.0, 0.99, "low_quality")
    g.add_photos([_photo(i, x[i:i + 1]) for i in range(4)], MODEL)
    g.add_photos([_photo(10 + i, x[4 + i:5 + i], quality=blurred) for i in range(2)], MODEL)
    recluster(g, CW)
    faces = g.faces(unassigned=True)
    assert len(faces) == 6
    flagged = g.flagged_faces()
    assert len(flagged) == 2 and set(flagged.values()) == {"low_quality"}
    assert all(f.cluster is None for f in faces if f.face_id in flagged)
    assert len({f.cluster for f in faces if f.face_id not in flagged}) == 1
    assert g.quality(next(iter(flagged)))["blur"] == pytest.approx(0.9)
    g.close()


def test_keep_apart_and_reserved_ids_unit():
    ids = np.array([1, 2, 3, 4])
    assert keep_apart(ids, np.array([0, 0, 0, 1]), [(2, 1), (4, 1)]).tolist() == [0, -1, 0, 1]
    assert stable_ids(np.array([0, 1]), np.array([-1, -1]), reserved=[5]).tolist() == [6, 7]


def test_undo_puts_back_a_name_a_take_out_a_merge_a_hide_and_a_cover(lib):
    g, x = lib
    first = g.faces(unassigned=True)
    c = first[0].cluster
    members = sorted(f.face_id for f in first if f.cluster == c)
    g.name_cluster(c, "Ann")
    g.move_face(members[0], None)
    assert g.barred(members[0]) == ["Ann"]
    cb = next(f.cluster for f in g.faces(unassigned=True) if f.cluster is not None)
    g.name_cluster(cb, "Bea")
    g.merge_people("Bea", "Ann")
    g.hide_person("Ann")
    default = g.cover_face("Ann")
    g.set_cover("Ann", members[1])
    assert [a["kind"] for a in g.actions()] == ["cover", "hide", "merge", "name", "take_out", "name"]
    assert g.undo(2) == [f"cover of Ann: face {members[1]}", "hide Ann"]
    assert g.hidden()[0] == set() and g.cover_face("Ann") == default
    g.undo()  # the merge: Bea is back with her faces
    assert sorted(p.name for p in g.people()) == ["Ann", "Bea"]
    g.undo(2)  # Bea's naming, then the take-out: the face is Ann's again and no longer barred
    assert [p.name for p in g.people()] == ["Ann"]
    assert g.faces(face_ids=[members[0]])[0].person == "Ann" and g.barred(members[0]) == []
    g.undo()  # the first naming: the group is back, unnamed, with its id
    assert g.people() == []
    assert sorted(f.face_id for f in g.faces(cluster=c, unassigned=True)) == members
    with pytest.raises(Exception, match="nothing to undo"):
        g.undo()


def test_an_undo_a_later_action_conflicts_with_is_refused_and_changes_nothing(lib):
    from facebank.gallery.sqlite_corrections import UndoConflict

    g, x = lib
    c = g.faces(unassigned=True)[0].cluster
    g.name_cluster(c, "Ann")
    face = g.faces(person="Ann")[0].face_id
    # another client changes a named face behind this one's back (no log: e.g. an older facebank)
    with g._tx() as db:
        db.execute("UPDATE faces SET person_id=NULL WHERE id=?", (face,))
    before = (g.people(), g.faces(), g.actions())
    with pytest.raises(UndoConflict, match=f"face {face} was changed"):
        g.undo()
    assert (g.people(), g.faces(), g.actions()) == before
    g.remove_person("Ann")  # removing is not undone: the naming's faces are gone
    with pytest.raises(UndoConflict, match="cannot undo .name group"):
        g.undo()
