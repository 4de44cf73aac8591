"""In-memory search over the gallery's embeddings (disposable: always rebuilt from the store).

``ExactIndex`` answers per-person distances with one matrix product; it is exact and fast up to
~100k faces. Larger galleries plug an ANN index in behind the same ``PersonDistances`` answer.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from facebank.gallery.base import Embeddings


@dataclass(frozen=True, eq=False)
class PersonDistances:
    """For m query faces and p people: L2 distances between unit vectors, shape (m, p)."""

    people: tuple[str, ...]
    nearest: np.ndarray  # distance to each person's nearest enrolled face
    mean: np.ndarray  # distance to each person's mean embedding (re-normalised)


_BLAS: Any = None  # a threadpoolctl.ThreadpoolController once looked up; False without threadpoolctl


def one_blas_thread() -> contextlib.AbstractContextManager[object]:
    """Run a small matrix product on one BLAS thread: OpenBLAS wakes its other threads even for a
    (1 x 128) @ (128 x 10k) product, which then costs ~10 ms instead of ~0.1 ms on a busy machine
    (measured here). A no-op context without threadpoolctl."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController()
        except ImportError:
            _BLAS = False
    if _BLAS is False:
        return contextlib.nullcontext()
    limited: contextlib.AbstractContextManager[object] = _BLAS.limit(limits=1, user_api="blas")
    return limited


def _few(n_queries: int) -> contextlib.AbstractContextManager[object]:
    """One BLAS thread for a few query faces (the identify path), all threads for big batches."""
    return one_blas_thread() if n_queries <= 16 else contextlib.nullcontext()


def l2_from_dot(dot: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(2.0 - 2.0 * dot, 0.0, 4.0))


def top_k(dots: np.ndarray, k: int) -> np.ndarray:
    """Column numbers of the ``k`` largest values of each row of ``dots``, largest first."""
    k = min(k, dots.shape[1])
    part = np.argpartition(-dots, k - 1, axis=1)[:, :k] if k < dots.shape[1] else \
        np.tile(np.arange(dots.shape[1]), (len(dots), 1))
    order = np.argsort(-np.take_along_axis(dots, part, 1), axis=1, kind="stable")
    return np.take_along_axis(part, order, 1)


class ExactIndex:
    def __init__(self, data: Embeddings) -> None:
        self._load(data)

    def _load(self, data: Embeddings) -> None:
        """(Re)build every array from ``data``."""
        names = np.asarray(data.names, dtype=object)
        order = np.argsort(names, kind="stable") if len(names) else np.zeros(0, int)
        self.vectors = np.ascontiguousarray(data.vectors[order], dtype=np.float32) if len(order) else \
            np.zeros((0, 0), np.float32)
        sorted_names = names[order]
        self.face_ids = data.face_ids[order] if len(order) else np.zeros(0, np.int64)
        if len(sorted_names):
            uniq, starts = np.unique(sorted_names, return_index=True)
        else:
            uniq, starts = np.array([], dtype=object), np.array([], dtype=int)
        self.people: tuple[str, ...] = tuple(str(u) for u in uniq)
        self.starts = starts
        self.labels = np.repeat(np.arange(len(uniq)), np.diff(np.append(starts, len(sorted_names))))
        if len(uniq):
            sums = np.add.reduceat(self.vectors, starts, axis=0)
            self.means = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        else:
            self.means = np.zeros((0, 0), np.float32)

    def __len__(self) -> int:
        return len(self.vectors)

    def person_distances(self, queries: np.ndarray) -> PersonDistances:
        q = np.asarray(queries, np.float32).reshape(len(queries), -1)
        if not self.people:
            empty = np.zeros((len(q), 0), np.float32)
            return PersonDistances((), empty, empty)
        if q.shape[1] != self.vectors.shape[1]:
            raise ValueError(f"query dimension {q.shape[1]} != gallery dimension {self.vectors.shape[1]}")
        with _few(len(q)):
            best_dot = np.maximum.reduceat(q @ self.vectors.T, self.starts, axis=1)
            mean_dot = q @ self.means.T
        return PersonDistances(self.people, l2_from_dot(best_dot), l2_from_dot(mean_dot))

    def search(self, query: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest stored faces: (face ids, L2 distances), nearest first."""
        if not len(self.vectors):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        with one_blas_thread():
            dot = self.vectors @ np.asarray(query, np.float32).ravel()
        top = top_k(dot[None], k)[0]
        return self.face_ids[top], l2_from_dot(dot[top])
