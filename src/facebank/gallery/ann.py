"""Approximate nearest-neighbour search for large galleries, behind the same answers as ``ExactIndex``.

``ExactIndex`` multiplies every query by every stored face: ~1 ms per 10k faces on one core, so a
million faces cost 30+ ms per query face. ``AnnIndex`` keeps the faces in an HNSW graph (hnswlib,
inner-product space on unit vectors) and answers in well under a millisecond:

* ``search(query, k)`` -> the k nearest faces (ids, L2 distances), like ``ExactIndex.search``;
* ``person_distances(queries)`` -> ``PersonDistances``: ``nearest`` is computed from the top
  ``candidates`` neighbours (default 128) of each query: a person with no face among them gets
  ``inf`` (they are farther than every candidate, so never a match); ``mean`` is exact, from the
  per-person mean embeddings (a people x dim matrix), for every person while there are at most
  ``exact_mean_limit`` people (default 20,000), else only for the people among the candidates
  (``inf`` for the others: a person none of whose faces is near has no near mean either);
* ``add(face_ids, vectors, names)`` / ``remove(face_ids)`` keep it in step with the gallery without
  a rebuild (removal marks the faces deleted in the graph).

``build_index(embeddings)`` picks ``ExactIndex`` (as ``MutableExactIndex``) below
``threshold_size`` faces, where it is exact and fast enough, and ``AnnIndex`` above.

Why hnswlib (measured on face-like data, 100k faces, one core, bench/bench_search.py): at equal
graph degree it answered as fast as FAISS HNSW at the same recall, builds faster, and it can delete
and append faces in place (FAISS' HNSW cannot remove).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from facebank.gallery.base import Embeddings
from facebank.gallery.index import ExactIndex, PersonDistances, l2_from_dot, one_blas_thread

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD_SIZE = 50_000


class SearchIndex(Protocol):
    """What the identification code needs of an index (``ExactIndex`` and ``AnnIndex`` have it)."""

    people: tuple[str, ...]

    def __len__(self) -> int: ...
    def person_distances(self, queries: np.ndarray) -> PersonDistances: ...
    def search(self, query: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]: ...
    def add(self, face_ids: Sequence[int] | np.ndarray, vectors: np.ndarray,
            names: Sequence[str]) -> None: ...
    def remove(self, face_ids: Sequence[int] | np.ndarray) -> int: ...


def build_index(data: Embeddings, threshold_size: int = DEFAULT_THRESHOLD_SIZE,
                **ann_options: object) -> MutableExactIndex | AnnIndex:
    """The exact index for galleries below ``threshold_size`` faces, the HNSW index above."""
    if len(data.names) < threshold_size:
        return MutableExactIndex(data)
    return AnnIndex(data, **ann_options)  # type: ignore[arg-type]


class MutableExactIndex(ExactIndex):
    """``ExactIndex`` with ``add``/``remove`` (rebuilds its arrays: cheap at the sizes it is used for)."""

    def _data(self) -> Embeddings:
        if not len(self.vectors):
            return Embeddings(np.zeros((0, 0), np.float32), (), np.zeros(0, np.int64))
        names = tuple(self.people[i] for i in self.labels)
        return Embeddings(self.vectors, names, self.face_ids)

    def add(self, face_ids: Sequence[int] | np.ndarray, vectors: np.ndarray, names: Sequence[str]) -> None:
        ids, vecs, names = _check_new(face_ids, vectors, names, self.vectors.shape[1] if len(self) else None)
        old = self._data()
        if len(old.names):
            vecs = np.concatenate([old.vectors, vecs])
            ids = np.concatenate([old.face_ids, ids])
            names = old.names + names
        self.__init__(Embeddings(vecs, names, ids))  # type: ignore[misc]

    def remove(self, face_ids: Sequence[int] | np.ndarray) -> int:
        old = self._data()
        keep = ~np.isin(old.face_ids, np.asarray(face_ids, np.int64))
        removed = int((~keep).sum())
        if removed:
            names = tuple(n for n, k in zip(old.names, keep, strict=True) if k)
            vecs = old.vectors[keep] if names else np.zeros((0, 0), np.float32)
            self.__init__(Embeddings(vecs, names, old.face_ids[keep]))  # type: ignore[misc]
        return removed


class AnnIndex:
    """HNSW index over unit embeddings (hnswlib, inner product), with per-person answers.

    ``m`` and ``ef_construction`` set the graph (memory ~ n * (4 * dim + 8 * m) bytes, build time);
    ``ef_search`` the breadth of each search (recall vs time); ``candidates`` how many neighbours
    ``person_distances`` looks at. ``threads`` (0 = all cores) is used for building and batches.

    Queries may run from several threads at once; ``add`` and ``remove`` take a lock, so changes
    are made one at a time (a query running meanwhile sees the index before or after a change).
    """

    def __init__(self, data: Embeddings, *, m: int = 32, ef_construction: int = 120, ef_search: int = 128,
                 candidates: int = 128, exact_mean_limit: int = 20_000, threads: int = 0,
                 seed: int = 100) -> None:
        import threading

        import hnswlib

        self._hnswlib = hnswlib
        self._lock = threading.RLock()
        self.m, self.ef_construction, self.ef_search = int(m), int(ef_construction), int(ef_search)
        self.candidates = int(candidates)
        self.exact_mean_limit = int(exact_mean_limit)
        self.threads = int(threads) if threads > 0 else (os.cpu_count() or 1)
        self.seed = int(seed)
        n = len(data.names)
        self.dim: int | None = int(data.vectors.shape[1]) if n else None
        # per stored slot (hnswlib label = slot number)
        self._face_ids = np.zeros(0, np.int64)
        self._person = np.zeros(0, np.int32)
        self._alive = np.zeros(0, bool)
        self._size = 0  # slots used
        self._live = 0  # faces not removed
        # per person (internal id, in order of first appearance)
        self._names: list[str] = []
        self._pid: dict[str, int] = {}
        self._sums = np.zeros((0, self.dim or 0), np.float64)
        self._counts = np.zeros(0, np.int64)
        self._view: tuple[tuple[str, ...], np.ndarray, np.ndarray] | None = None
        self._graph = None
        if n:
            self.add(data.face_ids, data.vectors, data.names)

    # -- size and people --------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._live

    @property
    def people(self) -> tuple[str, ...]:
        return self._people_view()[0]

    def _people_view(self) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
        """(people sorted by name, their mean embeddings, column of each internal person id)."""
        view = self._view
        if view is not None:
            return view
        with self._lock:
            present = [i for i in range(len(self._names)) if self._counts[i] > 0]
            present.sort(key=lambda i: self._names[i])
            column = np.full(len(self._names), -1, np.int64)
            column[present] = np.arange(len(present))
            if present:
                sums = self._sums[present]
                norms = np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
                means = (sums / norms).astype(np.float32)
            else:
                means = np.zeros((0, self.dim or 0), np.float32)
            view = self._view = (tuple(self._names[i] for i in present), means, column)
        return view

    # -- changes ----------------------------------------------------------------------------------
    def add(self, face_ids: Sequence[int] | np.ndarray, vectors: np.ndarray,
            names: Sequence[str]) -> None:
        """Append faces (unit vectors) with their gallery ids and person names."""
        with self._lock:
            self._add(*_check_new(face_ids, vectors, names, self.dim))

    def _add(self, ids: np.ndarray, vecs: np.ndarray, names: tuple[str, ...]) -> None:
        if not len(ids):
            return
        if self.dim is None:
            self.dim = int(vecs.shape[1])
            self._sums = np.zeros((0, self.dim), np.float64)
        if np.isin(ids, self._face_ids[: self._size][self._alive[: self._size]]).any():
            raise ValueError("some face ids are already in the index")
        pids = np.empty(len(ids), np.int32)
        for i, name in enumerate(names):
            pid = self._pid.get(name)
            if pid is None:
                pid = self._pid[name] = len(self._names)
                self._names.append(name)
            pids[i] = pid
        p = len(self._names)
        if self._sums.shape[0] < p:
            grown = np.zeros((max(p, 2 * self._sums.shape[0]), self.dim), np.float64)
            grown[: self._sums.shape[0]] = self._sums
            self._sums = grown
            self._counts = np.concatenate([self._counts, np.zeros(len(grown) - len(self._counts), np.int64)])
        np.add.at(self._sums, pids, vecs.astype(np.float64))
        np.add.at(self._counts, pids, 1)

        start, end = self._size, self._size + len(ids)
        self._reserve(end)
        self._face_ids[start:end] = ids
        self._person[start:end] = pids
        self._alive[start:end] = True
        self._graph.add_items(vecs, np.arange(start, end), num_threads=self.threads)
        self._size = end
        self._live += len(ids)
        self._view = None
        log.debug("ann index: added %d faces (%d stored)", len(ids), len(self))

    def remove(self, face_ids: Sequence[int] | np.ndarray) -> int:
        """Forget faces by gallery id (unknown ids are ignored); returns how many were removed."""
        with self._lock:
            return self._remove(np.asarray(face_ids, np.int64).ravel())

    def _remove(self, ids: np.ndarray) -> int:
        slots = np.flatnonzero(np.isin(self._face_ids[: self._size], ids) & self._alive[: self._size])
        if not len(slots):
            return 0
        vecs = np.asarray(self._graph.get_items(slots), np.float64)
        np.subtract.at(self._sums, self._person[slots], vecs)
        np.subtract.at(self._counts, self._person[slots], 1)
        for s in slots:
            self._graph.mark_deleted(int(s))
        self._alive[slots] = False
        self._live -= len(slots)
        self._view = None
        return len(slots)

    def _reserve(self, needed: int) -> None:
        cap = len(self._face_ids)
        if needed <= cap and self._graph is not None:
            return
        new_cap = max(needed, 2 * cap, 1024)
        for attr, dtype in (("_face_ids", np.int64), ("_person", np.int32), ("_alive", bool)):
            grown = np.zeros(new_cap, dtype)
            old = getattr(self, attr)
            grown[: len(old)] = old
            setattr(self, attr, grown)
        if self._graph is None:
            self._graph = self._hnswlib.Index(space="ip", dim=self.dim)
            self._graph.init_index(max_elements=new_cap, M=self.m, ef_construction=self.ef_construction,
                                   random_seed=self.seed)
            self._graph.set_ef(self.ef_search)
        else:
            self._graph.resize_index(new_cap)

    # -- queries ----------------------------------------------------------------------------------
    def _knn(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Slots and L2 distances of the k nearest live faces for each row of q."""
        ef = max(self.ef_search, k)
        threads = 1 if len(q) < 4 else self.threads
        for _ in range(4):
            self._graph.set_ef(ef)
            try:
                slots, ip_dist = self._graph.knn_query(q, k=k, num_threads=threads)
                break
            except RuntimeError:  # too few live faces reached (many deleted): search wider
                ef *= 4
        else:
            raise RuntimeError(f"HNSW search could not return {k} faces; rebuild the index")
        self._graph.set_ef(self.ef_search)
        return slots.astype(np.int64), np.sqrt(np.clip(2.0 * ip_dist, 0.0, 4.0)).astype(np.float32)

    def _queries(self, queries: np.ndarray) -> np.ndarray:
        q = np.ascontiguousarray(np.asarray(queries, np.float32).reshape(len(queries), -1))
        if self.dim is not None and q.shape[1] != self.dim:
            raise ValueError(f"query dimension {q.shape[1]} != gallery dimension {self.dim}")
        return q

    def person_distances(self, queries: np.ndarray) -> PersonDistances:
        q = self._queries(queries)
        people, means, column = self._people_view()
        if not people:
            empty = np.zeros((len(q), 0), np.float32)
            return PersonDistances((), empty, empty)
        k = min(self.candidates, len(self))
        slots, dist = self._knn(q, k)
        nearest = np.full((len(q), len(people)), np.inf, np.float32)
        rows = np.repeat(np.arange(len(q)), k)
        pids = self._person[slots.ravel()]
        # a face added after this view was taken (another thread) has no column yet: left out
        known = pids < len(column)
        cols = np.where(known, column[np.where(known, pids, 0)], -1)
        rows, cols, dist = rows[cols >= 0], cols[cols >= 0], dist.ravel()[cols >= 0]
        np.minimum.at(nearest, (rows, cols), dist)
        if len(people) <= self.exact_mean_limit:
            with one_blas_thread():
                mean = l2_from_dot(q @ means.T)
        else:  # only the candidates' means: q @ means.T would cost more than the search
            mean = np.full_like(nearest, np.inf)
            dots = np.einsum("ij,ij->i", q[rows], means[cols])
            mean[rows, cols] = l2_from_dot(dots)
        return PersonDistances(people, nearest, mean.astype(np.float32))

    def search(self, query: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest stored faces: (face ids, L2 distances), nearest first."""
        n = len(self)
        if not n:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        slots, dist = self._knn(self._queries(np.asarray(query).reshape(1, -1)), min(k, n))
        return self._face_ids[slots[0]], dist[0]

    def memory_bytes(self) -> int:
        """Rough size of the graph and vectors (hnswlib's own layout) plus the bookkeeping arrays."""
        cap = len(self._face_ids)
        per_item = 4 * (self.dim or 0) + 4 * 2 * self.m + 8 + 8 + 4
        return cap * per_item + self._face_ids.nbytes + self._person.nbytes + self._alive.nbytes \
            + self._sums.nbytes


def _check_new(face_ids: Sequence[int] | np.ndarray, vectors: np.ndarray, names: Sequence[str],
               dim: int | None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    ids = np.asarray(face_ids, np.int64).ravel()
    vecs = np.ascontiguousarray(np.asarray(vectors, np.float32))
    if vecs.ndim == 1:
        vecs = vecs.reshape(1, -1) if len(ids) == 1 else vecs.reshape(0, -1)
    names = tuple(str(n) for n in names)
    if not (len(ids) == len(vecs) == len(names)):
        raise ValueError(f"{len(ids)} ids, {len(vecs)} vectors and {len(names)} names: must be as many")
    if len(np.unique(ids)) != len(ids):
        raise ValueError("face ids must be unique")
    if len(ids) and dim is not None and vecs.shape[1] != dim:
        raise ValueError(f"vector dimension {vecs.shape[1]} != index dimension {dim}")
    return ids, vecs, names
