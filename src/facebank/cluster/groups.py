"""Unassigned faces as a person sees them: one group per cluster, largest first, then the faces
left alone (the order of ``facebank cluster --report``, the REST route ``GET /v1/clusters`` and
the web page's People view)."""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from facebank.gallery.base import FaceInfo, Gallery

log = logging.getLogger(__name__)


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


# The gallery writes whose changed faces are known before they run (``GroupsCache.write``); any other
# change of the gallery (a scan, a clustering, another process) makes the next read group it again.
UNCHANGED_GROUPS = frozenset({"reject", "hide_person", "hide_cluster", "set_cover", "add_person"})
KNOWN_WRITES = frozenset({"name_cluster", "move_face", "move_faces", "merge_people", "not_a_face",
                          "undo"}) | UNCHANGED_GROUPS
JOURNAL = 64  # the last People actions remembered for ``GroupsCache.changed_since``


class GroupsCache:
    """``group_faces(gallery.faces(unassigned=True))``, kept per gallery version (``Gallery.version()``:
    every write, of this process or another). Paging through the clusters of a big library then reads
    the gallery once, not once per page; a write made through ``write`` (the People actions: name,
    move, take out, merge, hide, cover, undo) re-reads only the faces it changes and patches the
    groups, when it was the only change of the gallery (its version moved by one). Thread-safe."""

    def __init__(self, gallery: Gallery) -> None:
        self.gallery = gallery
        self._lock = threading.RLock()
        self._version: int | None = None
        self._groups = FaceGroups((), ())
        self._by_cluster: dict[int, ClusterGroup] = {}
        self._cluster_of: dict[int, int | None] = {}  # face id -> its cluster (None: alone)
        self._alone: list[FaceInfo] = []
        self._alone_ids: list[int] = []
        self._journal: list[tuple[int, frozenset[int] | None]] = []
        self._undo_people = False  # (version after a write, faces it changed)
        self.rebuilds = 0  # full reads of the unassigned faces (tests count them)
        self.patched = 0  # faces read again by patches

    def get(self) -> FaceGroups:
        with self._lock:
            version = self.gallery.version()
            if version != self._version:
                self._rebuild(self.gallery.faces(unassigned=True))
                self._version = version
            return self._groups

    def write(self, method: str, call: Callable[[], Any], args: Sequence[Any]) -> Any:
        """Run the gallery write ``call`` (``method`` with ``args``) and patch the groups with the
        faces it changed, when they are known (``KNOWN_WRITES``) and nothing else changed the gallery
        meanwhile; otherwise the next ``get`` groups all faces again."""
        with self._lock:
            before = self.gallery.version() if self._version is not None and method in KNOWN_WRITES \
                else None
            touched = self._touched(method, args) if before == self._version else None
            result = call()
            after = self.gallery.version()
            if touched is None or before is None or after != before + 1:
                return result
            if touched:
                self._patch(touched)
            self._version = after
            if method == "reject" and args:  # no group changes, but these faces' suggestions do
                touched = {int(i) for i in args[0]}
            # a merge moves the rejections of the source to the target, an undo may make or remove a
            # person: faces other than the touched ones may change there (suggestions: read all again)
            known = method != "merge_people" and not (method == "undo" and self._undo_people)
            self._journal = [*self._journal[-(JOURNAL - 1):], (after, frozenset(touched) if known else None)]
            return result

    def changed_since(self, version: int) -> set[int] | None:
        """The faces the People actions changed from gallery version ``version`` to now (the groups'
        version), or None when that is not known (another write came in between, or too long ago)."""
        with self._lock:
            if self._version is None or self.gallery.version() != self._version:
                return None
            if version == self._version:
                return set()
            steps = [(v, faces) for v, faces in self._journal if v > version]
            # one step per version, none missing (a gallery whose version is no counter, PostgreSQL's,
            # journals nothing: ``write`` only records a write that moved the version by one)
            if not steps or steps[0][0] != version + 1 or steps[-1][0] != self._version or any(
                    b[0] != a[0] + 1 for a, b in zip(steps, steps[1:], strict=False)):
                return None
            out: set[int] = set()
            for _, faces in steps:
                if faces is None:
                    return None
                out |= faces
            return out

    def _touched(self, method: str, args: Sequence[Any]) -> set[int] | None:
        """Face ids ``method(*args)`` may change, read before it runs (None: not known)."""
        if method in UNCHANGED_GROUPS:
            return set()
        if method == "name_cluster" and args:
            g = self._by_cluster.get(int(args[0]))
            return {f.face_id for f in g.faces} if g is not None else set()
        if method in ("move_face", "not_a_face") and args:
            return {int(args[0])}
        if method == "move_faces" and args:
            return {int(i) for i in args[0]}
        if method == "merge_people" and args:
            # named faces stay named; clusters suggested as the source are suggested as the target now
            return {f.face_id for g in self._by_cluster.values() if g.suggested == args[0] for f in g.faces}
        if method == "undo":
            changes = getattr(self.gallery, "undo_changes", None)
            if changes is None:
                return None
            faces, people = changes(int(args[0]) if args else 1)
            self._undo_people = bool(people)
            # a person made or removed again: clusters suggested as them are read again too
            return set(faces) | {f.face_id for g in self._by_cluster.values() if g.suggested in people
                                 for f in g.faces}
        return None

    def _rebuild(self, faces: list[FaceInfo]) -> None:
        self.rebuilds += 1
        by_cluster: dict[int, list[FaceInfo]] = {}
        self._alone = []
        self._cluster_of = {}
        for f in faces:
            self._cluster_of[f.face_id] = f.cluster
            if f.cluster is None:
                self._alone.append(f)
            else:
                by_cluster.setdefault(f.cluster, []).append(f)
        self._alone.sort(key=lambda f: f.face_id)
        self._alone_ids = [f.face_id for f in self._alone]
        self._by_cluster = {c: ClusterGroup(c, tuple(sorted(fs, key=lambda f: f.face_id)))
                            for c, fs in by_cluster.items()}
        self._publish()

    def _patch(self, touched: set[int]) -> None:
        fresh = {f.face_id: f for f in self.gallery.faces(face_ids=sorted(touched))}
        self.patched += len(touched)
        changed: dict[int, dict[int, FaceInfo]] = {}
        for fid in touched:  # out of their old group
            if fid not in self._cluster_of:
                continue
            old = self._cluster_of.pop(fid)
            if old is None:
                k = bisect.bisect_left(self._alone_ids, fid)
                del self._alone_ids[k], self._alone[k]
            else:
                members = changed.setdefault(old, {f.face_id: f for f in self._by_cluster[old].faces})
                members.pop(fid, None)
        for fid, f in fresh.items():  # into their new one, when still unnamed
            if f.person is not None:
                continue
            self._cluster_of[fid] = f.cluster
            if f.cluster is None:
                k = bisect.bisect_left(self._alone_ids, fid)
                self._alone_ids.insert(k, fid)
                self._alone.insert(k, f)
            else:
                g = self._by_cluster.get(f.cluster)
                members = changed.setdefault(f.cluster, {m.face_id: m for m in g.faces} if g else {})
                members[fid] = f
        for c, members in changed.items():
            if members:
                self._by_cluster[c] = ClusterGroup(c, tuple(members[i] for i in sorted(members)))
            else:
                self._by_cluster.pop(c, None)
        self._publish()
        log.debug("groups patched: %d faces read again", len(touched))

    def _publish(self) -> None:
        order = sorted(self._by_cluster.values(), key=lambda g: (-g.size, g.cluster))
        self._groups = FaceGroups(tuple(order), tuple(self._alone))
