"""Grouping unassigned faces for people to look at: clusters largest first, then the faces alone."""

from __future__ import annotations

from facebank.cluster.groups import group_faces
from facebank.gallery.base import FaceInfo


def face(face_id: int, cluster: int | None, suggested: str | None = None) -> FaceInfo:
    return FaceInfo(face_id, f"/lib/{face_id}.jpg", f"{face_id:064x}", (0.0, 0.0, 10.0, 10.0), None, cluster,
                    suggested)


def test_clusters_come_largest_first_ties_by_id_and_alone_faces_apart():
    faces = [face(1, 7), face(2, None), face(3, 3, "ann"), face(4, 7), face(5, 3, "ann"), face(6, 9),
             face(7, None), face(8, 1), face(9, 1)]
    groups = group_faces(faces)
    assert [(g.cluster, g.size) for g in groups.clusters] == [(1, 2), (3, 2), (7, 2), (9, 1)]
    assert [f.face_id for f in groups.clusters[0].faces] == [8, 9]  # in the order given
    assert [g.suggested for g in groups.clusters] == [None, "ann", None, None]
    assert [f.face_id for f in groups.alone] == [2, 7]
    assert groups.faces == len(faces)


def test_no_faces_give_no_groups():
    groups = group_faces([])
    assert groups.clusters == () and groups.alone == () and groups.faces == 0


class CountingGallery:
    """Just enough of a gallery for the cache: a version and the unassigned faces (the REST tests
    run the cache on a real gallery)."""

    def __init__(self) -> None:
        self.v, self.reads, self.listed = 1, 0, [face(1, 4), face(2, None)]

    def version(self) -> int:
        return self.v

    def faces(self, *, unassigned: bool = False) -> list[FaceInfo]:
        assert unassigned
        self.reads += 1
        return list(self.listed)


def test_the_groups_cache_reads_the_gallery_again_only_after_a_change():
    from facebank.cluster.groups import GroupsCache

    g = CountingGallery()
    cache = GroupsCache(g)
    first = cache.get()
    assert cache.get() is first and g.reads == 1
    g.listed.append(face(3, 4))
    assert cache.get().clusters[0].size == 1 and g.reads == 1  # no write seen: the kept answer
    g.v += 1
    assert cache.get().clusters[0].size == 2 and g.reads == 2
