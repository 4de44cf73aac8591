"""Clustering methods for unit face embeddings: one small Protocol, a registry, and the k-NN graph.

Every method answers ``labels(vectors)``: one integer per face, ``-1`` for a face that stays alone
(seen once, or too far from everyone). Distances are L2 between unit embeddings (0 = identical,
2 = opposite; the identification threshold is on the same scale).

* ``chinese-whispers`` (default): a k-nearest-neighbour graph whose edges are the neighbours within
  ``threshold``, clustered by dlib's Chinese whispers (a label-propagation graph clustering; dlib's
  own face clustering example), edges weighted by cosine similarity; optionally a second pass that
  joins clusters whose mean embeddings are close (``merge``) and one that attaches faces left alone
  to a near cluster mean (``attach``). Exact k-NN below 50k faces, the ANN
  index (FAISS HNSW) above.
* ``components``: connected components of the same graph (single linkage; one wrong edge merges two
  people).
* ``agglomerative``: average- (or ``linkage="complete"``) linkage agglomerative clustering cut at
  ``threshold`` (scikit-learn; all pairs, so at most ``MAX_ALL_PAIRS`` faces).
* ``hdbscan``: scikit-learn's HDBSCAN, ``min_size`` faces per cluster (its own density levels; a
  face farther than ``threshold`` from the rest of its cluster is then left alone).
* ``dbscan``: DBSCAN with ``eps = threshold`` and ``min_samples = min_size``; with
  ``threshold=1.0, min_size=3`` it is Immich's default face clustering (maximum recognition
  distance 0.5 cosine = 1.0 L2, at least 3 recognized faces).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np

from facebank.gallery.index import l2_from_dot, one_blas_thread, top_k

log = logging.getLogger(__name__)

EXACT_KNN_MAX = 50_000  # above this many faces the k-NN graph comes from the ANN index
MAX_ALL_PAIRS = 30_000  # agglomerative clustering keeps all pairwise distances in memory
_BLOCK = 2048


class ClusterMethod(Protocol):
    @property
    def name(self) -> str: ...

    def labels(self, vectors: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Knn:
    """The k nearest other faces of each face: indices (n, k) and L2 distances (n, k), nearest
    first; -1 / inf where a face has fewer than k others."""

    index: np.ndarray
    distance: np.ndarray


def knn(vectors: np.ndarray, k: int) -> Knn:
    """Each face's k nearest other faces: exact (blocked matrix products) up to ``EXACT_KNN_MAX``
    faces, else from the ANN index (FAISS HNSW with exact re-ranking)."""
    x = np.ascontiguousarray(vectors, np.float32)
    n = len(x)
    k = max(0, min(k, n - 1))
    if k == 0:
        return Knn(np.full((n, 0), -1, np.int64), np.zeros((n, 0), np.float32))
    if n > EXACT_KNN_MAX:
        return _ann_knn(x, k)
    idx = np.empty((n, k), np.int64)
    dist = np.empty((n, k), np.float32)
    with one_blas_thread():  # BLAS threads spinning against the worker processes cost more than they give
        for start in range(0, n, _BLOCK):
            dots = x[start:start + _BLOCK] @ x.T
            rows = np.arange(len(dots))
            dots[rows, rows + start] = -np.inf  # not its own neighbour
            top = top_k(dots, k)
            idx[start:start + len(dots)] = top
            dist[start:start + len(dots)] = l2_from_dot(np.take_along_axis(dots, top, 1))
    return Knn(idx, dist)


def _ann_knn(x: np.ndarray, k: int) -> Knn:
    from facebank.gallery.ann import AnnIndex
    from facebank.gallery.base import Embeddings

    n = len(x)
    index = AnnIndex(Embeddings(x, ("",) * n, np.arange(n, dtype=np.int64)))
    idx = np.full((n, k), -1, np.int64)
    dist = np.full((n, k), np.inf, np.float32)
    with one_blas_thread():
        for i in range(n):
            ids, d = index.search(x[i], k + 1)
            keep = ids != i
            ids, d = ids[keep][:k], d[keep][:k]
            idx[i, :len(ids)] = ids
            dist[i, :len(ids)] = d
    return Knn(idx, dist)


def edges_within(graph: Knn, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edges (i < j) of the k-NN graph no longer than ``threshold`` (L2), each once."""
    rows = np.repeat(np.arange(len(graph.index)), graph.index.shape[1])
    cols = graph.index.ravel()
    ok = (graph.distance.ravel() <= threshold) & (cols >= 0)
    a, b = np.minimum(rows[ok], cols[ok]), np.maximum(rows[ok], cols[ok])
    pairs = np.unique(np.stack([a, b], 1), axis=0) if len(a) else np.zeros((0, 2), np.int64)
    return pairs[:, 0], pairs[:, 1]


def singletons_alone(labels: np.ndarray, min_size: int = 2) -> np.ndarray:
    """Labels 0..m-1 numbered by decreasing cluster size; clusters under ``min_size`` -> -1."""
    labels = np.asarray(labels, np.int64)
    out = np.full(len(labels), -1, np.int64)
    valid = labels >= 0
    if not valid.any():
        return out
    uniq, inverse, counts = np.unique(labels[valid], return_inverse=True, return_counts=True)
    order = sorted(range(len(uniq)), key=lambda c: (-counts[c], c))
    new = np.full(len(uniq), -1, np.int64)
    next_id = 0
    for c in order:
        if counts[c] >= min_size:
            new[c] = next_id
            next_id += 1
    out[valid] = new[inverse]
    return out


@dataclass(frozen=True)
class ChineseWhispers:
    """dlib's Chinese whispers on the k-NN graph cut at ``edge_scale * threshold`` (L2); with
    ``weighted`` each edge votes with the cosine similarity of its two faces (else every edge counts 1).

    With ``merge > 0`` a second pass joins the clusters (a face alone counts as a cluster of one) whose
    mean embeddings are within ``merge * threshold`` of each other (on the k-NN graph of the means, so
    it scales like the first pass): people split by pose or light come back together. With
    ``attach > 0`` each face of a cluster under ``min_size`` (a face left alone) joins the cluster
    whose mean embedding is nearest when that is within ``attach * threshold``.

    The defaults (``k=10``, ``edge_scale=1.0``, no merge or attach pass) are today's: the best grid
    point on the development libraries (LFW people with 5-9 photos, plain and made harder;
    ``bench/bench_cluster.py --study recall``) over dlib and MobileFaceNet raised the mean dev F1 only
    with precision under 0.97 on the harder ones, so it was not taken (docs/benchmarks/cluster.md)."""

    threshold: float
    k: int = 10
    weighted: bool = True
    min_size: int = 2
    edge_scale: float = 1.0
    merge: float = 0.0
    attach: float = 0.0
    name: str = "chinese-whispers"

    def __post_init__(self) -> None:
        for field_name in ("threshold", "edge_scale", "merge", "attach"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.number) \
                    or not np.isfinite(value) or value < 0:
                raise ValueError(f"chinese-whispers: {field_name} must be a finite number >= 0, "
                                 f"not {value!r}")
        if isinstance(self.k, bool) or not isinstance(self.k, int | np.integer) or self.k < 1:
            raise ValueError(f"chinese-whispers: k must be a whole number >= 1, not {self.k!r}")

    def labels(self, vectors: np.ndarray) -> np.ndarray:
        n = len(vectors)
        if n == 0:
            return np.zeros(0, np.int64)
        raw = whispers(vectors, self.k, self.edge_scale * self.threshold, self.weighted)
        if self.merge > 0:
            raw = merge_by_means(vectors, raw, self.merge * self.threshold, self.k)
        if self.attach > 0:
            raw = attach_to_means(vectors, raw, self.attach * self.threshold, self.min_size)
        return singletons_alone(raw, self.min_size)


def whispers(vectors: np.ndarray, k: int, edge_l2: float, weighted: bool = True) -> np.ndarray:
    """dlib's Chinese whispers labels (0..c-1, every face labelled) of the k-NN graph cut at ``edge_l2``."""
    import dlib

    n = len(vectors)
    a, b = edges_within(knn(vectors, k), edge_l2)
    # every face is a vertex (a self edge), plus the graph's edges; dlib's labels are 0..c-1
    if weighted:
        x = np.asarray(vectors, np.float32)
        cos = np.einsum("ij,ij->i", x[a], x[b]).astype(float)
        edges = [(i, i, 1e-6) for i in range(n)] + list(zip(a.tolist(), b.tolist(), cos.tolist(),
                                                           strict=True))
    else:
        edges = [(i, i) for i in range(n)] + list(zip(a.tolist(), b.tolist(), strict=True))
    return np.asarray(dlib.chinese_whispers(edges), np.int64)


def attach_to_means(vectors: np.ndarray, labels: np.ndarray, attach_l2: float,
                    min_size: int = 2) -> np.ndarray:
    """``labels`` (every face labelled) with each face of a cluster under ``min_size`` moved to the
    cluster of at least ``min_size`` faces whose unit mean embedding is nearest, if within ``attach_l2``."""
    labels = np.asarray(labels, np.int64).copy()
    uniq, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    big = np.flatnonzero(counts >= max(1, min_size))
    loose = np.flatnonzero(counts[inverse] < max(1, min_size))
    if len(big) == 0 or len(loose) == 0:
        return labels
    x = np.asarray(vectors, np.float32)
    means = np.zeros((len(big), x.shape[1]), np.float64)
    slot = np.full(len(uniq), -1, np.int64)
    slot[big] = np.arange(len(big))
    members = slot[inverse] >= 0
    np.add.at(means, slot[inverse[members]], x[members])
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    means32 = means.astype(np.float32)
    with one_blas_thread():
        for start in range(0, len(loose), _BLOCK):
            rows = loose[start:start + _BLOCK]
            dots = x[rows] @ means32.T
            best = dots.argmax(axis=1)
            near = l2_from_dot(dots[np.arange(len(rows)), best]) <= attach_l2
            labels[rows[near]] = uniq[big[best[near]]]
    return labels


def merge_by_means(vectors: np.ndarray, labels: np.ndarray, merge_l2: float, k: int = 10) -> np.ndarray:
    """``labels`` (every face labelled, 0..c-1) with the clusters whose unit mean embeddings are within
    ``merge_l2`` joined (connected components of the k-NN graph of the means cut there)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    labels = np.asarray(labels, np.int64)
    uniq, inverse = np.unique(labels, return_inverse=True)
    c = len(uniq)
    if c < 2:
        return labels
    x = np.asarray(vectors, np.float64)
    means = np.zeros((c, x.shape[1]))
    np.add.at(means, inverse, x)
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    means = (means / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    a, b = edges_within(knn(means, k), merge_l2)
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(c, c))
    _, joined = connected_components(graph, directed=False)
    return joined[inverse].astype(np.int64)


@dataclass(frozen=True)
class Components:
    """Connected components of the k-NN graph cut at ``threshold`` (single linkage)."""

    threshold: float
    k: int = 30
    min_size: int = 2
    name: str = "components"

    def labels(self, vectors: np.ndarray) -> np.ndarray:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        n = len(vectors)
        if n == 0:
            return np.zeros(0, np.int64)
        a, b = edges_within(knn(vectors, self.k), self.threshold)
        graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
        _, comp = connected_components(graph, directed=False)
        return singletons_alone(comp, self.min_size)


@dataclass(frozen=True)
class Agglomerative:
    """Average-linkage agglomerative clustering, merged while the mean L2 distance <= threshold."""

    threshold: float
    linkage: str = "average"
    min_size: int = 2
    name: str = "agglomerative"

    def labels(self, vectors: np.ndarray) -> np.ndarray:
        from sklearn.cluster import AgglomerativeClustering

        n = len(vectors)
        if n < 2:
            return np.full(n, -1, np.int64)
        if n > MAX_ALL_PAIRS:
            raise ValueError(f"agglomerative clustering keeps all {n}x{n} distances in memory; "
                             f"use it for at most {MAX_ALL_PAIRS} faces (or chinese-whispers)")
        model = AgglomerativeClustering(n_clusters=None, distance_threshold=self.threshold,
                                        linkage=self.linkage, metric="euclidean")
        return singletons_alone(model.fit_predict(np.asarray(vectors, np.float64)), self.min_size)


@dataclass(frozen=True)
class Hdbscan:
    """scikit-learn's HDBSCAN (clusters of at least ``min_size`` faces, no distance threshold);
    then a face farther than ``threshold`` from every other face of its cluster goes alone (HDBSCAN
    attaches far outliers of small sets to a cluster)."""

    threshold: float = 0.5
    min_size: int = 3
    name: str = "hdbscan"

    def labels(self, vectors: np.ndarray) -> np.ndarray:
        from sklearn.cluster import HDBSCAN

        n = len(vectors)
        if n < max(2, self.min_size):
            return np.full(n, -1, np.int64)
        x = np.asarray(vectors, np.float64)
        labels = HDBSCAN(min_cluster_size=max(2, self.min_size), metric="euclidean", copy=True).fit_predict(x)
        return singletons_alone(detach_far(x, labels, self.threshold), 2)


def detach_far(vectors: np.ndarray, labels: np.ndarray, threshold: float) -> np.ndarray:
    """``labels`` with -1 for each face whose nearest face of its own cluster is beyond ``threshold``."""
    out = np.asarray(labels, np.int64).copy()
    for c in set(out.tolist()) - {-1}:
        members = np.flatnonzero(out == c)
        x = vectors[members]
        dots = x @ x.T
        np.fill_diagonal(dots, -np.inf)
        nearest = l2_from_dot(dots.max(axis=1))
        out[members[nearest > threshold]] = -1
    return out


@dataclass(frozen=True)
class Dbscan:
    """DBSCAN: a face with ``min_size`` faces (itself included) within ``threshold`` is a core."""

    threshold: float
    min_size: int = 3
    name: str = "dbscan"

    def labels(self, vectors: np.ndarray) -> np.ndarray:
        from sklearn.cluster import DBSCAN

        n = len(vectors)
        if n == 0:
            return np.zeros(0, np.int64)
        model = DBSCAN(eps=self.threshold, min_samples=self.min_size, metric="euclidean")
        return singletons_alone(model.fit_predict(np.asarray(vectors, np.float32)), 2)


METHODS: dict[str, Callable[..., ClusterMethod]] = {
    "chinese-whispers": ChineseWhispers,
    "components": Components,
    "agglomerative": Agglomerative,
    "hdbscan": Hdbscan,
    "dbscan": Dbscan,
}


def available() -> list[str]:
    return list(METHODS)


def create(name: str, **params: object) -> ClusterMethod:
    """A clustering method by name with its parameters (``threshold`` L2, ``min_size``, ``k``)."""
    try:
        factory = METHODS[name]
    except KeyError:
        raise ValueError(f"unknown clustering method {name!r}: one of {', '.join(METHODS)}") from None
    allowed = {f.name for f in fields(factory)} - {"name"}  # type: ignore[arg-type]
    return factory(**{k: v for k, v in params.items() if v is not None and k in allowed})
