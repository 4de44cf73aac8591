"""Approximate nearest-neighbour search for large galleries, behind the same answers as ``ExactIndex``.

``ExactIndex`` multiplies every query by every stored face: ~1 ms per 10k faces on one core, so a
million faces cost 30+ ms per query face. ``AnnIndex`` walks an HNSW graph (FAISS) whose nodes hold
the faces compressed to 8 bits per dimension, then re-ranks what it found with the exact
(float32) vectors: ~0.4 ms per query at 100k faces, ~1-1.3 ms at 1M (recall@10 0.99):

* ``search(query, k)`` -> the k nearest faces (ids, exact L2 distances), like ``ExactIndex.search``;
  the graph is asked for ``refine * k`` faces, which are re-ranked exactly;
* ``person_distances(queries)`` -> ``PersonDistances``: ``nearest`` is computed from the top
  ``candidates`` neighbours (default 128) of each query: a person with no face among them gets
  ``inf`` (they are farther than every candidate, so never a match); ``mean`` is exact, from the
  per-person mean embeddings (a people x dim matrix), for every person while there are at most
  ``exact_mean_limit`` people (default 20,000), else only for the people among the candidates
  (``inf`` for the others: a person none of whose faces is near has no near mean either);
* ``add(face_ids, vectors, names)`` / ``remove(face_ids)`` keep it in step with the gallery without
  a rebuild (a removed face stays in the graph as a waypoint but is filtered out of every answer
  by a bitmap of live faces).

``build_index(embeddings)`` picks ``ExactIndex`` (as ``MutableExactIndex``) below
``threshold_size`` faces, where it is exact and fast enough, and ``AnnIndex`` above.

Why FAISS, with 8-bit codes (measured on face-like data, 1M faces, M=32, ef_construction=200, one
query thread, the same machine and hour, load average 0.2-3 on 2 cores): for recall@10 >= 0.99 the
hnswlib graph over float32 vectors needed ef 256 at 1.48-1.60 ms p50; this graph over 8-bit codes,
with 2k candidates re-ranked on the float vectors, needed ef 224 at 1.03-1.13 ms (a code is 128
bytes instead of 512, so each distance is cheaper; re-ranking restores the exact order: without it
recall stalls at 0.966), for the same build time and about the same memory (graph + codes 0.4 GB,
float vectors 0.5 GB; hnswlib 0.84 GB). M=48 reaches 0.99 at a lower ef (~176) but each step costs
more: no faster. IVF with 4-bit PQ fast-scan codes and re-ranking stayed below recall 0.89 here.
FAISS' HNSW cannot delete: removed faces stay in the graph as waypoints, filtered out of answers by
a bitmap of live faces; rebuild after removing a large share (searches then walk further to find k
live faces).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, Unpack, cast

import numpy as np

from facebank.gallery.base import Embeddings
from facebank.gallery.index import ExactIndex, PersonDistances, l2_from_dot, one_blas_thread, top_k

if TYPE_CHECKING:
    import faiss

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD_SIZE = 50_000
CODECS = ("sq8", "fp16", "float")
_TRAIN_MIN = 1_000  # fewer faces in the first batch: 8-bit codes span [-1, 1] instead of the data's range
_TRAIN_MAX = 100_000
_TRAIN_MARGIN = 0.1  # share of each dimension's range added on both sides (later faces fall outside)

__all__ = ["AnnIndex", "AnnOptions", "MutableExactIndex", "SearchIndex", "auto_ef", "build_index",
           "one_blas_thread"]


class SearchIndex(Protocol):
    """What the identification code needs of an index (``ExactIndex`` and ``AnnIndex`` have it)."""

    @property
    def people(self) -> tuple[str, ...]: ...

    def __len__(self) -> int: ...
    def person_distances(self, queries: np.ndarray) -> PersonDistances: ...
    def search(self, query: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]: ...
    def add(self, face_ids: Sequence[int] | np.ndarray, vectors: np.ndarray,
            names: Sequence[str]) -> None: ...
    def remove(self, face_ids: Sequence[int] | np.ndarray) -> int: ...


class AnnOptions(TypedDict, total=False):
    """The keyword options of ``AnnIndex`` (``build_index`` passes them on)."""

    m: int
    ef_construction: int
    ef_search: int | None
    codec: str
    refine: float
    candidates: int
    exact_mean_limit: int
    threads: int
    seed: int


def build_index(data: Embeddings, threshold_size: int = DEFAULT_THRESHOLD_SIZE,
                **ann_options: Unpack[AnnOptions]) -> MutableExactIndex | AnnIndex:
    """The exact index for galleries below ``threshold_size`` faces, the HNSW index above."""
    if len(data.names) < threshold_size:
        return MutableExactIndex(data)
    return AnnIndex(data, **ann_options)


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
        self._load(Embeddings(vecs, names, ids))

    def remove(self, face_ids: Sequence[int] | np.ndarray) -> int:
        old = self._data()
        keep = ~np.isin(old.face_ids, np.asarray(face_ids, np.int64))
        removed = int((~keep).sum())
        if removed:
            names = tuple(n for n, k in zip(old.names, keep, strict=True) if k)
            vecs = old.vectors[keep] if names else np.zeros((0, 0), np.float32)
            self._load(Embeddings(vecs, names, old.face_ids[keep]))
        return removed


class _ReadWriteLock:
    """Many readers at once or one writer; a waiting writer holds back new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    def acquire_read(self) -> None:
        with self._cond:
            while self._writing or self._writers_waiting:
                self._cond.wait()
            self._readers += 1

    def release_read(self) -> None:
        with self._cond:
            self._readers -= 1
            if not self._readers:
                self._cond.notify_all()

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        self.acquire_read()
        try:
            yield
        finally:
            self.release_read()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


def auto_ef(faces: int) -> int:
    """HNSW search breadth for recall@10 ~0.99 (measured on face-like data with m=32, sq8 codes and
    re-ranking, bench/bench_search.py): 128 reaches 0.994 at 100k faces but only ~0.97 at 1M, where
    256 reaches 0.99; in between, ef grows with log(faces)."""
    if faces <= 100_000:
        return 128
    return int(min(256, 128 + 128 * math.log10(faces / 100_000)))


class AnnIndex:
    """HNSW index over unit embeddings (FAISS, inner product), with exact re-ranking and per-person
    answers.

    ``ef_search`` None (the default) grows with the gallery (``auto_ef``: recall@10 ~0.99 on face-like
    data at 100k and 1M faces); a number fixes it.

    ``m`` and ``ef_construction`` set the graph (build time; memory ~ n * (8 * m + code + 4 * dim)
    bytes: links, the graph's codes, the float vectors kept for re-ranking); ``codec`` how the graph
    stores faces ("sq8": 8 bits per dimension, "fp16", or "float"); ``ef_search`` the breadth of each
    search (recall vs time); ``refine`` how many times k faces the graph returns to ``search`` for
    exact re-ranking; ``candidates`` how many neighbours ``person_distances`` looks at. ``threads``
    (0 = all cores) is used for building.

    Queries may run from several threads at once; ``add`` and ``remove`` wait for running queries
    and hold new ones back (a reader-writer lock), so a query sees the index before or after a
    change, never during one.
    """

    def __init__(self, data: Embeddings, *, m: int = 32, ef_construction: int = 200,
                 ef_search: int | None = None, codec: str = "sq8", refine: float = 2.0, candidates: int = 128,
                 exact_mean_limit: int = 20_000, threads: int = 0, seed: int = 100) -> None:
        import faiss

        if codec not in CODECS:
            raise ValueError(f"codec must be one of {CODECS}, not {codec!r}")
        self._faiss = faiss
        self._lock = _ReadWriteLock()
        self.m, self.ef_construction = int(m), int(ef_construction)
        self.ef_search = ef_search
        self.codec, self.refine = codec, max(1.0, float(refine))
        self.candidates = int(candidates)
        self.exact_mean_limit = int(exact_mean_limit)
        self.threads = int(threads) if threads > 0 else (os.cpu_count() or 1)
        self.seed = int(seed)
        n = len(data.names)
        self.dim: int | None = int(data.vectors.shape[1]) if n else None
        # per stored slot (FAISS id = slot number, in order of addition)
        self._face_ids = np.zeros(0, np.int64)
        self._person = np.zeros(0, np.int32)
        self._alive = np.zeros(0, bool)
        self._vectors = np.zeros((0, self.dim or 0), np.float32)  # exact vectors, for re-ranking
        self._bitmap = np.zeros(0, np.uint8)  # _alive packed, read by FAISS' selector
        self._selector: Any = None  # a faiss.IDSelectorBitmap over _bitmap once slots are reserved
        self._size = 0  # slots used
        self._live = 0  # faces not removed
        # per person (internal id, in order of first appearance)
        self._names: list[str] = []
        self._pid: dict[str, int] = {}
        self._sums = np.zeros((0, self.dim or 0), np.float64)
        self._counts = np.zeros(0, np.int64)
        self._view: tuple[tuple[str, ...], np.ndarray, np.ndarray] | None = None
        # the faiss.IndexHNSW, made with the first faces (Any: FAISS' stubs lack search_c and the
        # IndexHNSWSQ constructor taking a quantizer type)
        self._graph: Any = None
        if n:
            self.add(data.face_ids, data.vectors, data.names)

    # -- size and people --------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._live

    @property
    def people(self) -> tuple[str, ...]:
        with self._lock.read():
            return self._people_view()[0]

    def _people_view(self) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
        """(people sorted by name, their mean embeddings, column of each internal person id).
        Called under the read lock (two readers may both compute it: same result)."""
        view = self._view
        if view is not None:
            return view
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
        with self._lock.write():
            self._add(*_check_new(face_ids, vectors, names, self.dim))

    def _add(self, ids: np.ndarray, vecs: np.ndarray, names: tuple[str, ...]) -> None:
        if not len(ids):
            return
        if self.dim is None:
            self.dim = int(vecs.shape[1])
            self._sums = np.zeros((0, self.dim), np.float64)
            self._vectors = np.zeros((0, self.dim), np.float32)
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

        if self._graph is None:
            self._graph = self._new_graph(vecs)
        start, end = self._size, self._size + len(ids)
        self._reserve(end)
        self._face_ids[start:end] = ids
        self._person[start:end] = pids
        self._vectors[start:end] = vecs
        faiss = self._faiss
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(self.threads)
        try:
            self._graph.add(vecs)  # FAISS numbers them start..end-1: the slots
        finally:
            faiss.omp_set_num_threads(threads)
        self._alive[start:end] = True
        self._bitmap[:] = np.packbits(self._alive, bitorder="little")
        self._size = end
        self._live += len(ids)
        self._view = None
        log.debug("ann index: added %d faces (%d stored)", len(ids), len(self))

    @property
    def ef_search(self) -> int:
        """The search breadth in use: the one set, else ``auto_ef`` of the live faces."""
        return self._ef_search if self._ef_search is not None else auto_ef(self._live)

    @ef_search.setter
    def ef_search(self, value: int | None) -> None:
        self._ef_search = None if value is None else int(value)

    def _new_graph(self, first: np.ndarray) -> Any:  # -> a faiss.IndexHNSW
        faiss = self._faiss
        dim = self.dim
        assert dim is not None  # set by _add from the first faces
        ip = faiss.METRIC_INNER_PRODUCT
        if self.codec == "float":
            graph = faiss.IndexHNSWFlat(dim, self.m, ip)
        else:
            kind = faiss.ScalarQuantizer.QT_8bit if self.codec == "sq8" else faiss.ScalarQuantizer.QT_fp16
            graph = faiss.IndexHNSWSQ(dim, kind, self.m, ip)
        graph.hnsw.efConstruction = self.ef_construction
        graph.hnsw.efSearch = self.ef_search
        with contextlib.suppress(AttributeError, TypeError):
            graph.hnsw.rng = faiss.RandomGenerator(self.seed)  # levels drawn from the seed
        if self.codec == "sq8":  # each dimension's range: from the first faces, with a margin
            sq = faiss.downcast_index(graph.storage).sq
            sq.rangestat = faiss.ScalarQuantizer.RS_minmax
            if len(first) >= _TRAIN_MIN:
                sample = first[np.random.default_rng(self.seed).permutation(len(first))[:_TRAIN_MAX]]
                sq.rangestat_arg = _TRAIN_MARGIN
            else:  # too few to tell: all a unit vector can hold
                sample = np.stack([-np.ones(dim, np.float32), np.ones(dim, np.float32)])
                sq.rangestat_arg = 0.0
            graph.train(np.ascontiguousarray(sample))
        return graph

    def remove(self, face_ids: Sequence[int] | np.ndarray) -> int:
        """Forget faces by gallery id (unknown ids are ignored); returns how many were removed."""
        with self._lock.write():
            return self._remove(np.asarray(face_ids, np.int64).ravel())

    def _remove(self, ids: np.ndarray) -> int:
        slots = np.flatnonzero(np.isin(self._face_ids[: self._size], ids) & self._alive[: self._size])
        if not len(slots):
            return 0
        np.subtract.at(self._sums, self._person[slots], self._vectors[slots].astype(np.float64))
        np.subtract.at(self._counts, self._person[slots], 1)
        self._alive[slots] = False
        self._bitmap[:] = np.packbits(self._alive, bitorder="little")
        self._live -= len(slots)
        self._view = None
        return len(slots)

    def _reserve(self, needed: int) -> None:
        cap = len(self._face_ids)
        if needed <= cap:
            return
        new_cap = max(needed, 2 * cap, 1024)
        new_cap += -new_cap % 8  # whole bitmap bytes
        for attr, dtype in (("_face_ids", np.int64), ("_person", np.int32), ("_alive", bool)):
            grown = np.zeros(new_cap, dtype)
            old = getattr(self, attr)
            grown[: len(old)] = old
            setattr(self, attr, grown)
        vectors = np.zeros((new_cap, self.dim or 0), np.float32)
        vectors[: len(self._vectors)] = self._vectors
        self._vectors = vectors
        self._bitmap = np.zeros(new_cap // 8, np.uint8)
        self._selector = self._faiss.IDSelectorBitmap(len(self._bitmap), self._faiss.swig_ptr(self._bitmap))

    # -- queries ----------------------------------------------------------------------------------
    def _knn(self, q: np.ndarray, k: int, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        """Slots and exact L2 distances of the k nearest live faces for each row of q (k <= live):
        the graph's ``fetch`` nearest, re-ranked with the float vectors. Under the read lock."""
        faiss = self._faiss
        fetch = min(max(fetch, k), self._live)
        if self._live <= 4 * fetch:  # a few faces left: exact is cheaper than the graph
            return self._exact_knn(q, k)
        params = faiss.SearchParametersHNSW()
        if self._live < self._size:
            params.sel = self._selector  # removed faces: walked through, never returned
        ef = max(self.ef_search, fetch)
        n = len(q)
        scores = np.empty((n, fetch), np.float32)
        slots = np.empty((n, fetch), np.int64)
        for _ in range(3):
            params.efSearch = ef
            # search_c: FAISS' own call, without its Python wrapper's checks and allocations
            self._graph.search_c(n, faiss.swig_ptr(q), fetch, faiss.swig_ptr(scores), faiss.swig_ptr(slots),
                                 params)
            if slots[0, k - 1] >= 0 and (n == 1 or (slots[:, k - 1] >= 0).all()):
                break
            ef *= 4  # too few live faces reached (many removed): search wider
        else:
            log.warning("HNSW search found fewer than %d live faces: answered exactly (rebuild the index)",
                        k)
            return self._exact_knn(q, k)
        if n == 1:  # the common case, kept short: each numpy call costs microseconds
            found = slots[0] if slots[0, -1] >= 0 else slots[0][slots[0] >= 0]
            dots = self._vectors[found] @ q[0]
            order = np.argsort(dots)[::-1][:k]
            dist = np.sqrt(np.maximum(2.0 - 2.0 * dots[order], 0.0))
            return found[order][None], dist[None]
        found = slots >= 0
        safe = np.where(found, slots, 0)
        dots = np.einsum("ij,ikj->ik", q, self._vectors[safe])
        dots[~found] = -np.inf
        order = np.argsort(-dots, axis=1, kind="stable")[:, :k]
        best = np.take_along_axis(dots, order, 1)
        return np.take_along_axis(safe, order, 1), l2_from_dot(best).astype(np.float32)

    def _exact_knn(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        live = np.flatnonzero(self._alive[: self._size])
        with one_blas_thread():
            dots = q @ self._vectors[live].T
        top = top_k(dots, k)
        return live[top], l2_from_dot(np.take_along_axis(dots, top, 1)).astype(np.float32)

    def _queries(self, queries: np.ndarray) -> np.ndarray:
        q = np.ascontiguousarray(np.asarray(queries, np.float32).reshape(len(queries), -1))
        if self.dim is not None and q.shape[1] != self.dim:
            raise ValueError(f"query dimension {q.shape[1]} != gallery dimension {self.dim}")
        return q

    def person_distances(self, queries: np.ndarray) -> PersonDistances:
        q = self._queries(queries)
        with self._lock.read():
            people, means, column = self._people_view()
            if not people:
                empty = np.zeros((len(q), 0), np.float32)
                return PersonDistances((), empty, empty)
            k = min(self.candidates, len(self))
            slots, dist = self._knn(q, k, k)
            pids = self._person[slots.ravel()]
        nearest = np.full((len(q), len(people)), np.inf, np.float32)
        rows = np.repeat(np.arange(len(q)), k)
        cols = column[pids]
        np.minimum.at(nearest, (rows, cols), dist.ravel())
        if len(people) <= self.exact_mean_limit:
            with one_blas_thread():
                mean = l2_from_dot(q @ means.T)
        else:  # only the candidates' means: q @ means.T would cost more than the search
            mean = np.full_like(nearest, np.inf)
            dots = np.einsum("ij,ij->i", q[rows], means[cols])
            mean[rows, cols] = l2_from_dot(dots)
        return PersonDistances(people, nearest, mean.astype(np.float32))

    def search(self, query: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest stored faces: (face ids, exact L2 distances), nearest first."""
        q = np.ascontiguousarray(query, np.float32).reshape(1, -1)
        if self.dim is not None and q.shape[1] != self.dim:
            raise ValueError(f"query dimension {q.shape[1]} != gallery dimension {self.dim}")
        self._lock.acquire_read()
        try:
            n = self._live
            if not n:
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            k = min(k, n)
            slots, dist = self._knn(q, k, math.ceil(k * self.refine))
            return self._face_ids[slots[0]], dist[0].astype(np.float32)
        finally:
            self._lock.release_read()

    def memory_bytes(self) -> int:
        """Bytes held: the graph (links, levels, offsets), its codes, the float vectors kept for
        re-ranking, and the bookkeeping arrays."""
        total = self._face_ids.nbytes + self._person.nbytes + self._alive.nbytes + self._bitmap.nbytes \
            + self._vectors.nbytes + self._sums.nbytes + self._counts.nbytes
        if self._graph is not None:
            hnsw = self._graph.hnsw
            # IndexFlat or IndexScalarQuantizer: both hold their codes
            storage = cast("faiss.IndexFlatCodes", self._faiss.downcast_index(self._graph.storage))
            total += hnsw.neighbors.size() * 4 + hnsw.offsets.size() * 8 + hnsw.levels.size() * 4
            total += storage.codes.size()
        return int(total)


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
