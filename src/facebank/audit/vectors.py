"""Vector helpers the audit's checks share: robust person centres, nearest neighbours with copies
left out, and bit counts of perceptual hashes."""

from __future__ import annotations

import numpy as np

from facebank.audit.base import AuditFolder
from facebank.gallery.index import l2_from_dot, top_k


def robust_centroid(vecs: np.ndarray, keep: float = 0.8) -> np.ndarray:
    """The unit mean of the ``keep`` share of ``vecs`` nearest their mean (a few wrong photos in
    a person's folder barely move it)."""
    if len(vecs) == 0:
        raise ValueError("no embeddings")
    c = vecs.mean(axis=0)
    c /= max(float(np.linalg.norm(c)), 1e-12)
    if len(vecs) >= 5:
        d = np.linalg.norm(vecs - c, axis=1)
        kept = vecs[d <= np.quantile(d, keep)]
        c = kept.mean(axis=0)
        c /= max(float(np.linalg.norm(c)), 1e-12)
    return c


_BYTE_BITS = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def popcount64(x: np.ndarray) -> np.ndarray:
    """Set bits of every uint64 of ``x`` (NumPy 2's bitwise_count, or a byte table before it)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.int64)
    return _BYTE_BITS[x.view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1, dtype=np.int64)


def neighbours(folder: AuditFolder, k: int, block: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """For every embedding row: the rows of its ``k`` nearest other rows (copies of the same photo
    left out: they are no independent evidence) and their L2 distances; -1 / inf where fewer."""
    e = folder.embeddings
    n = len(e)
    photo_of = np.flatnonzero(folder.rows >= 0)
    idx = np.full((n, k), -1, np.int64)
    dist = np.full((n, k), np.inf, np.float64)
    for s in range(0, n, block):
        dots = e[s:s + block] @ e.T
        for r in range(dots.shape[0]):
            dots[r, s + r] = -np.inf
            for j in folder.copies.get(int(photo_of[s + r]), ()):
                if folder.rows[j] >= 0:
                    dots[r, folder.rows[j]] = -np.inf
        kk = min(k, max(0, n - 1))
        if kk == 0:
            continue
        top = top_k(dots, kk)
        vals = np.take_along_axis(dots, top, 1)
        ok = np.isfinite(vals)
        idx[s:s + block, :kk] = np.where(ok, top, -1)
        dist[s:s + block, :kk] = np.where(ok, l2_from_dot(np.where(ok, vals, 0.0)), np.inf)
    return idx, dist
