"""Unassigned faces as a person sees them: one group per cluster, largest first, then the faces
left alone (the order of ``facebank cluster --report``, the REST route ``GET /v1/clusters`` and
the web page's People view)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from facebank.gallery.base import FaceInfo, Gallery


@dataclass(frozen=True)
class ClusterGroup:
    """One cluster's faces (ordered as given, e.g. by face id); ``suggested`` = the person the
    cluster looks like (None = nobody under the threshold)."""

    cluster: int
    faces: tuple[FaceInfo, ...]

    @property
    def size(self) -> int:
        return len(self.faces)

    @property
    def suggested(self) -> str | None:
        return self.faces[0].suggested if self.faces else None


@dataclass(frozen=True)
class FaceGroups:
    """``clusters`` largest first (equal sizes by cluster id); ``alone``: faces in no cluster."""

    clusters: tuple[ClusterGroup, ...]
    alone: tuple[FaceInfo, ...]

    @property
    def faces(self) -> int:
        return sum(g.size for g in self.clusters) + len(self.alone)


def group_faces(faces: Iterable[FaceInfo]) -> FaceGroups:
    """Group faces (e.g. ``Gallery.faces(unassigned=True)``) by their cluster."""
    by_cluster: dict[int, list[FaceInfo]] = {}
    alone: list[FaceInfo] = []
    for f in faces:
        if f.cluster is None:
            alone.append(f)
        else:
            by_cluster.setdefault(f.cluster, []).append(f)
    order = sorted(by_cluster, key=lambda c: (-len(by_cluster[c]), c))
    return FaceGroups(tuple(ClusterGroup(c, tuple(by_cluster[c])) for c in order), tuple(alone))


class GroupsCache:
    """``group_faces(gallery.faces(unassigned=True))``, computed again only when the gallery changed
    (``Gallery.version()``: every write, of this process or another). Paging through the clusters
    of a big library then reads the gallery once, not once per page. Thread-safe."""

    def __init__(self, gallery: Gallery) -> None:
        self.gallery = gallery
        self._lock = threading.Lock()
        self._version: int | None = None
        self._groups = FaceGroups((), ())

    def get(self) -> FaceGroups:
        with self._lock:
            version = self.gallery.version()
            if version != self._version:
                self._groups = group_faces(self.gallery.faces(unassigned=True))
                self._version = version
            return self._groups
