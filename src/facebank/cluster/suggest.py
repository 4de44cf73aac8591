"""Suggestions that appear and stay current: the named person each unnamed cluster and each loose
face most likely is, from all its faces (``facebank.groups``), with its score and how many faces
agree.

Computed on read and cached per gallery state (``Gallery.version()``, which every write of any
process bumps): after a scan, a naming, a merge or a face taken out, the next read has them, no
``facebank cluster`` needed. Only what changed is decided again: a cluster or loose face keeps its
suggestion while its faces, the people it was told it is not, and the named people (their faces
and the decision's threshold) stay the same. The faces of all changed groups are scored against the
gallery in one batch.

A person a face was told it is not (``Gallery.reject``: a rejected suggestion, a face taken out of
a named person) is never suggested for that face, nor for a cluster holding it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from facebank.decide import reorder
from facebank.gallery.base import FaceSet
from facebank.gallery.index import PersonDistances
from facebank.groups import (
    BankLike,
    GroupContext,
    GroupDecision,
    decide_scored,
    distance_table,
    thin,
    unit_rows,
)

log = logging.getLogger(__name__)

BATCH = 4096  # faces scored against the gallery per matrix product
# A suggestion is a question to the user ("looks like X: 9 of 11 faces agree"), not a decision: its
# single-photo threshold is estimated for this false accept rate (the group bound relaxes from it).
# Chosen on LFW people with 5-9 photos only (bench/bench_groups.py suggest), with strangers scanned too.
SUGGEST_FAR = 0.05


@dataclass(frozen=True)
class Suggestion:
    """The person an unnamed cluster (``cluster``) or loose face (``face``) most likely is.

    ``person``: the suggestion (None: nobody is likely enough; ``candidate`` is then the nearest
    person); ``score`` and ``threshold``: the group score and its bound (``unit``: the decision
    rule's, lower = more alike); ``agree`` of ``faces`` independent faces have the person as their
    own best match; ``size``: faces in the group."""

    cluster: int | None
    face: int | None
    person: str | None
    candidate: str | None
    score: float
    threshold: float
    unit: str
    agree: int
    faces: int
    size: int

    def agreement(self) -> str:
        return f"{self.agree} of {self.faces} faces agree"

    def to_json(self) -> dict:
        def num(x: float) -> float | None:
            return round(float(x), 6) if math.isfinite(x) else None

        return {"cluster": self.cluster, "face": self.face, "suggested": self.person,
                "candidate": self.candidate, "score": num(self.score), "threshold": num(self.threshold),
                "unit": self.unit, "agree": self.agree, "faces": self.faces, "size": self.size}


@dataclass(frozen=True)
class Suggestions:
    """Every unnamed cluster's and loose face's suggestion (``clusters``: by cluster id; ``loose``: by
    face id), for gallery version ``version``; ``decided``: groups decided again for this version."""

    clusters: dict[int, Suggestion]
    loose: dict[int, Suggestion]
    version: int
    decided: int

    def for_face(self, face_id: int, cluster: int | None) -> Suggestion | None:
        return self.clusters.get(cluster) if cluster is not None else self.loose.get(face_id)


def _named_key(ctx: GroupContext, index: object) -> str:
    """What the named side of every decision depends on: people, their faces, the thresholds."""
    h = hashlib.sha256()
    h.update("\x00".join(ctx.decision.people).encode())
    h.update(repr((ctx.decision.point.threshold, ctx.decision.rule.key(), ctx.distinct)).encode())
    ids = getattr(index, "face_ids", None)
    h.update(np.asarray(ids, np.int64).tobytes() if ids is not None else str(ctx.version).encode())
    for g in ctx.gallery_groups:
        h.update(np.asarray(g, np.float64).tobytes())
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class _State:
    """One gallery version as the suggestions see it: each group's rows, the people it is barred
    from and its memo key (loose faces looked up on demand: a library holds many)."""

    version: int
    ctx: GroupContext | None
    vectors: np.ndarray
    named: str
    clusters: dict[int, tuple[np.ndarray, frozenset[str], tuple]]
    loose_rows: dict[int, int]  # face id -> row
    rejected: dict[int, frozenset[str]]

    def has(self, k: tuple[str, int]) -> bool:
        return k[1] in self.clusters if k[0] == "c" else k[1] in self.loose_rows

    def keys(self) -> list[tuple[str, int]]:
        return [("c", c) for c in self.clusters] + [("f", f) for f in self.loose_rows]

    def group(self, k: tuple[str, int]) -> tuple[np.ndarray, frozenset[str], tuple]:
        if k[0] == "c":
            return self.clusters[k[1]]
        barred = self.rejected.get(k[1], frozenset())
        return np.asarray([self.loose_rows[k[1]]], np.int64), barred, (self.named, None, (k[1],), barred)


class SuggestionCache:
    """The suggestions of one ``FaceBank``'s gallery, decided again only where something changed, and
    only when asked for (``some``: a page of clusters or faces; ``get``: all of them).
    Thread-safe; ``SuggestionCache.of(bank)`` shares one per bank."""

    def __init__(self, bank: BankLike, far: float = SUGGEST_FAR) -> None:
        self.bank = bank
        self.far = far
        self._lock = threading.Lock()
        self._state: _State | None = None
        self._all: Suggestions | None = None
        self._memo: dict[tuple, Suggestion] = {}  # (named key, cluster, face ids, barred) -> suggestion
        self._todo: FaceSet | None = None  # the unassigned faces last read, and their rejections
        self._rejected: dict[int, frozenset[str]] = {}
        self._todo_version: int | None = None  # ... as of this version of the groups' journal
        self._members: dict[int, tuple[tuple[int, ...], frozenset[str]]] = {}  # cluster -> face ids, barred
        self._affected: set[int] | None = None  # clusters the faces read again left or joined (None: all)
        self.full_reads = 0  # reads of every unassigned face (tests count them)
        self.patched = 0  # faces read again by patches

    @classmethod
    def of(cls, bank: BankLike, far: float = SUGGEST_FAR) -> SuggestionCache:
        with _LOCK:
            cache = _CACHES.get(bank)
            if cache is None or cache.far != far:
                cache = _CACHES[bank] = cls(bank, far)
            return cache

    def get(self) -> Suggestions:
        """Every unnamed cluster's and loose face's suggestion."""
        with self._lock:
            state = self._current()
            if self._all is None or self._all.version != state.version:
                keys = state.keys()
                decided = self._ensure(state, keys)
                self._all = self._collect(state, keys, decided)
                log.info("suggestions for %d clusters and %d loose faces (%d decided again)",
                         len(self._all.clusters), len(self._all.loose), decided)
            return self._all

    def some(self, clusters: Sequence[int] = (), faces: Sequence[int] = ()) -> Suggestions:
        """The suggestions of these clusters and loose faces only (ids that are not unnamed clusters or
        loose faces are left out): what a page of the People view needs."""
        with self._lock:
            state = self._current()
            keys = [k for k in [("c", int(c)) for c in clusters] + [("f", int(f)) for f in faces]
                    if state.has(k)]
            decided = self._ensure(state, keys)
            return self._collect(state, keys, decided)

    def _current(self) -> _State:
        version = self.bank.gallery.version()
        if self._state is not None and self._state.version == version:
            return self._state
        gallery = self.bank.gallery
        todo, rejected = self._read(gallery, version)
        base = GroupContext.of(self.bank) if len(todo) else None  # reused while the named people stay
        if base is None or not base.decision.people:
            self._state = _State(version, None, np.zeros((0, 0), np.float32), "", {}, {}, {})
            self._memo, self._members = {}, {}
            return self._state
        ctx = base.at_far(self.far)
        named = _named_key(ctx, self.bank.index())
        prev = self._state
        same = prev is not None and prev.ctx is not None and prev.vectors is todo.vectors
        if self._affected == set() and prev is not None and same:
            # no face changed (a hide, a cover): the groups of the last state, under the new named key
            reused = prev.clusters if prev.named == named else \
                {c: (r, b, (named, *k[1:])) for c, (r, b, k) in prev.clusters.items()}
            if prev.named != named:
                self._prune(named, reused, prev.loose_rows, len(todo))
            self._state = _State(version, ctx, todo.vectors, named, reused, prev.loose_rows, rejected)
            return self._state
        ids = todo.face_ids
        in_cluster = todo.clusters >= 0
        loose_rows = dict(zip(ids[~in_cluster].tolist(), np.flatnonzero(~in_cluster).tolist(), strict=True))
        clusters: dict[int, tuple[np.ndarray, frozenset[str], tuple]] = {}
        rows_all = np.flatnonzero(in_cluster)
        if len(rows_all):
            order = rows_all[np.argsort(todo.clusters[rows_all], kind="stable")]
            labels = todo.clusters[order]
            cuts = np.flatnonzero(np.diff(labels)) + 1
            firsts = labels[np.concatenate([[0], cuts])].tolist()
            known, kept = self._members, {}
            for c, r in zip(firsts, np.split(order, cuts), strict=True):
                # a cluster no changed face left or joined keeps its members and the people it is barred from
                member = known.get(c) if self._affected is not None and c not in self._affected else None
                if member is None:
                    barred = frozenset().union(*(rejected.get(int(ids[k]), frozenset()) for k in r)) \
                        if rejected else frozenset()
                    member = (tuple(ids[r].tolist()), barred)
                kept[c] = member
                clusters[c] = (r, member[1], (named, c, member[0], member[1]))
            self._members = kept
        if self._state is None or self._state.named != named or len(self._memo) > 2 * len(ids) + 16:
            self._prune(named, clusters, loose_rows, len(ids))
        self._state = _State(version, ctx, todo.vectors, named, clusters, loose_rows, rejected)
        return self._state

    def _prune(self, named: str, clusters: dict[int, tuple[np.ndarray, frozenset[str], tuple]],
               loose_rows: dict[int, int], faces: int) -> None:
        """Forget the suggestions of groups that are gone (or decided under other named people)."""
        keep = {g[2] for g in clusters.values()}
        self._memo = {k: v for k, v in self._memo.items()
                      if k in keep or (k[0] == named and k[1] is None and k[2][0] in loose_rows)}

    def _read(self, gallery: Any, version: int) -> tuple[FaceSet, dict[int, frozenset[str]]]:
        """The unassigned faces and their rejections now: those of the last state with only the faces
        changed since read again, when the People actions since are known (the server's groups
        cache, ``GroupsCache.changed_since``, and a gallery that reads some faces); else all."""
        old, journal = self._todo, getattr(gallery, "groups", None)
        journal = journal if hasattr(journal, "changed_since") else None
        changed = journal.changed_since(self._todo_version) \
            if old is not None and journal is not None and self._todo_version is not None else None
        if old is not None and changed is not None and len(changed) <= max(64, len(old) // 4):
            try:
                fresh = gallery.unassigned_faces(face_ids=sorted(changed))
            except TypeError:  # a gallery that reads them all only
                fresh = None
            if fresh is not None and not changed:  # e.g. a hide or a cover: the faces are as they were
                self._keep(old, self._rejected, version)
                self._affected = set()
                return old, self._rejected
            if fresh is not None:
                self.patched += len(changed)
                keep = ~np.isin(old.face_ids, np.fromiter(changed, np.int64, len(changed)))
                self._affected = set(old.clusters[~keep].tolist()) | set(fresh.clusters.tolist())
                ids, vectors, clusters = old.face_ids[keep], old.vectors[keep], old.clusters[keep]
                if len(fresh):
                    ids = np.concatenate([ids, fresh.face_ids])
                    vectors = np.concatenate([vectors, fresh.vectors]) if len(vectors) else fresh.vectors
                    clusters = np.concatenate([clusters, fresh.clusters])
                    order = np.argsort(ids, kind="stable")
                    ids, vectors, clusters = ids[order], vectors[order], clusters[order]
                rejected = {k: v for k, v in self._rejected.items() if k not in changed}
                rejected.update(gallery.rejections(sorted(changed)))
                self._keep(FaceSet(ids, vectors, clusters), rejected, version)
                return self._todo, rejected  # type: ignore[return-value]
        self.full_reads += 1
        self._affected = None
        todo = gallery.unassigned_faces()
        rejected = gallery.rejections(todo.face_ids.tolist()) if len(todo) else {}
        self._keep(todo, rejected, version)
        return todo, rejected

    def _keep(self, todo: FaceSet, rejected: dict[int, frozenset[str]], version: int) -> None:
        """Keep what was read at (or after) gallery version ``version``."""
        self._todo, self._rejected, self._todo_version = todo, rejected, version

    def _ensure(self, state: _State, keys: list[tuple[str, int]]) -> int:
        """Decide the groups of ``keys`` not decided yet for this state; returns how many."""
        pending = [(k, state.group(k)) for k in keys]
        pending = [(k, g) for k, g in pending if g[2] not in self._memo]
        if pending and state.ctx is not None:
            decided = decide_groups(state.ctx, state.vectors, [(g[0], g[1]) for _, g in pending])
            for (k, (rows, _, key)), d in zip(pending, decided, strict=True):
                self._memo[key] = _suggestion(k[1] if k[0] == "c" else None, k[1] if k[0] == "f" else None,
                                              d, len(rows))
        return len(pending)

    def _collect(self, state: _State, keys: list[tuple[str, int]], decided: int) -> Suggestions:
        clusters: dict[int, Suggestion] = {}
        loose: dict[int, Suggestion] = {}
        for k in keys:
            s = self._memo.get(state.group(k)[2])
            if s is not None:
                (clusters if k[0] == "c" else loose)[k[1]] = s
        return Suggestions(clusters, loose, state.version, decided)


def decide_groups(ctx: GroupContext, vectors: np.ndarray,
                  groups: Sequence[tuple[np.ndarray, frozenset[str]]]) -> list[GroupDecision]:
    """The group decision of each (rows of ``vectors``, people barred) in ``groups``; the faces of
    all groups are scored against the gallery in batches of ``BATCH``."""
    if not groups:
        return []
    cal = ctx.calibration()
    # only the rows these groups hold are made unit (a page of a 100k-face library holds a few hundred)
    need = np.unique(np.concatenate([np.asarray(rows, np.int64) for rows, _ in groups]))
    vectors = unit_rows(np.asarray(vectors)[need])
    groups = [(np.searchsorted(need, np.asarray(rows, np.int64)), barred) for rows, barred in groups]
    used = [rows[thin(vectors[rows], None, ctx.distinct)] for rows, _ in groups]
    flat = np.concatenate(used)
    near, mean = [], []
    people = ctx.decision.people
    for start in range(0, len(flat), BATCH):
        dist = ctx.distances(vectors[flat[start:start + BATCH]])
        if dist.people != people:
            dist = reorder(dist, people)
        near.append(np.asarray(dist.nearest))
        mean.append(np.asarray(dist.mean))
    near_all, mean_all = np.concatenate(near), np.concatenate(mean)
    starts = np.cumsum([0] + [len(u) for u in used])
    out: list[GroupDecision | None] = [None] * len(groups)
    # one face and nobody barred (most loose faces): the single-photo decision, for all at once
    single = [i for i, ((_, barred), u) in enumerate(zip(groups, used, strict=True))
              if len(u) == 1 and not barred]
    if single:
        rows = starts[single]
        d = PersonDistances(people, near_all[rows], mean_all[rows])
        s = np.asarray(ctx.decision.rule.scores(d), np.float64)
        s = np.where(np.isfinite(s), s, np.inf)
        best = np.argmin(s, axis=1)
        score = s[np.arange(len(rows)), best]
        table = distance_table(ctx.decision, d)
        thr = cal.threshold(1)
        for k, i in enumerate(single):
            ok = bool(np.isfinite(score[k]))
            named = ok and bool(score[k] <= thr)
            out[i] = GroupDecision(people[best[k]] if named else None, people[best[k]] if ok else None,
                                   float(score[k]), thr, ctx.decision.rule.unit, (0,), 1, int(ok),
                                   float(table[k, best[k]]), None if named else "no_match")
    # the rest: the rule's scores of all unbarred groups' faces in batches (rows are scored alone)
    plain = [i for i, ((_, barred), g) in enumerate(zip(groups, out, strict=True))
             if g is None and not barred]
    scored: dict[int, np.ndarray] = {}
    for k in range(0, len(plain), max(1, BATCH // 64)):
        part = plain[k:k + max(1, BATCH // 64)]
        rows = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in part])
        s = np.asarray(ctx.decision.rule.scores(PersonDistances(people, near_all[rows], mean_all[rows])),
                       np.float64)
        pos = 0
        for i in part:
            n = starts[i + 1] - starts[i]
            scored[i] = s[pos:pos + n]
            pos += n
    for i, ((_, barred), u) in enumerate(zip(groups, used, strict=True)):
        if out[i] is None:
            d = PersonDistances(people, near_all[starts[i]:starts[i + 1]], mean_all[starts[i]:starts[i + 1]])
            out[i] = decide_scored(vectors[u], d, ctx.decision, cal, np.arange(len(u)), barred,
                                   scores=scored.pop(i, None))
    return [g for g in out if g is not None]


def suggest_clusters(bank: BankLike, face_ids: np.ndarray, vectors: np.ndarray,
                     labels: np.ndarray, far: float = SUGGEST_FAR) -> dict[int, Suggestion]:
    """The suggestion of each cluster of a new clustering (``labels``, -1 = alone) of unassigned faces
    (``facebank cluster`` stores them with the clusters)."""
    if not len(face_ids) or not bank.decision().people:
        return {}
    ctx = GroupContext.of(bank).at_far(far)
    rejected = bank.gallery.rejections(np.asarray(face_ids).tolist())
    groups, names = [], []
    for c in sorted(set(np.asarray(labels).tolist()) - {-1}):
        rows = np.flatnonzero(labels == c)
        barred = frozenset().union(*(rejected.get(int(face_ids[r]), frozenset()) for r in rows))
        groups.append((rows, barred))
        names.append(int(c))
    return {c: _suggestion(c, None, g, len(rows))
            for c, g, (rows, _) in zip(names, decide_groups(ctx, vectors, groups), groups, strict=True)}


def _suggestion(cluster: int | None, face: int | None, g: GroupDecision, size: int) -> Suggestion:
    return Suggestion(cluster, face, g.person, g.candidate, g.score, g.threshold, g.unit, g.agree, g.faces,
                      size)


_CACHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
