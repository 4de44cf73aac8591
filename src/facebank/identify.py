"""Who is this face? Nearest person under a distance threshold, one person per photo at most once."""

from __future__ import annotations

import numpy as np

from facebank.gallery.index import PersonDistances
from facebank.types import Match

UNKNOWN_COST = 1e6


def cosine_from_l2(distance: float) -> float:
    """Cosine similarity of two unit vectors from their L2 distance."""
    return float(1.0 - distance * distance / 2.0)


def assign(dist: PersonDistances, threshold: float, rule: str = "nearest",
           scores: np.ndarray | None = None) -> list[Match]:
    """Name each query face; no two faces of one photo get the same person.

    Faces and people are paired by the Hungarian algorithm on the rule's distance (``nearest``:
    distance to the person's nearest enrolled face, ``mean``: to their mean embedding), only among
    pairs within ``threshold``. Faces left over are unknown, with their nearest candidate named.
    ``scores`` (same shape, lower = more alike): a decision rule's scores (``facebank.decide``) used
    instead of the distance for pairing and for ``threshold``; ``Match.decision_score`` holds them.
    """
    from scipy.optimize import linear_sum_assignment

    table = dist.nearest if rule == "nearest" else dist.mean
    m = table.shape[0]
    if m == 0:
        return []
    if table.shape[1] == 0:
        return [Match(None, float("inf"), -1.0, reason="empty_gallery") for _ in range(m)]
    decide = table if scores is None else np.asarray(scores, np.float64)
    finite = np.isfinite(decide)
    # the Hungarian solver needs finite costs >= 0 ordered like the scores: shift them
    low = float(decide[finite].min()) if finite.any() else 0.0
    cost = np.where(finite & (decide <= threshold), decide - min(low, 0.0), UNKNOWN_COST)
    rows, cols = linear_sum_assignment(cost)
    chosen = dict(zip(rows.tolist(), cols.tolist(), strict=True))
    out = []
    for i in range(m):
        j = chosen.get(i)
        best = int(np.argmin(np.where(np.isfinite(decide[i]), decide[i], np.inf)))
        named = j is not None and cost[i, j] < UNKNOWN_COST
        k = j if j is not None and named else best
        d = float(table[i, k])
        reason = None if named else "taken" if decide[i, best] <= threshold else "no_match"
        out.append(Match(
            name=dist.people[k] if named else None,
            distance=d,
            score=cosine_from_l2(d),
            candidate=dist.people[k],
            nearest_face_distance=float(dist.nearest[i, k]),
            mean_distance=float(dist.mean[i, k]),
            reason=reason,
            decision_score=None if scores is None else float(decide[i, k]),
        ))
    return out
