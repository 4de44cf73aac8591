"""Figures of merit: top-k accuracy, per-person precision/recall, confusion matrix, ROC/DET, TAR@FAR.

Conventions: a *genuine* comparison is a known person / same-person pair, an *impostor* one an
unknown person / different-people pair. Acceptance uses L2 distance between unit embeddings:
accepted when ``distance <= threshold``. FAR = impostors accepted / impostors, TAR = genuines
accepted (and, for identification, correctly named) / genuines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

UNKNOWN = "(unknown)"
FAILED = "(no face)"


def top_k_accuracy(truth: Sequence[str], rankings: Sequence[Sequence[str]], k: int) -> float:
    """Share of items whose true name is among the first k of their ranking (empty ranking = miss)."""
    if not truth:
        return float("nan")
    hits = sum(1 for t, r in zip(truth, rankings, strict=True) if t in list(r)[:k])
    return hits / len(truth)


@dataclass(frozen=True)
class PersonScore:
    name: str
    precision: float
    recall: float
    support: int


def per_person(truth: Sequence[str], pred: Sequence[str], people: Sequence[str]) -> list[PersonScore]:
    """Precision and recall per person; ``pred`` may hold UNKNOWN/FAILED (they count as misses)."""
    out = []
    t = np.asarray(truth, dtype=object)
    p = np.asarray(pred, dtype=object)
    for name in people:
        tp = int(np.sum((t == name) & (p == name)))
        predicted = int(np.sum(p == name))
        support = int(np.sum(t == name))
        out.append(PersonScore(name, tp / predicted if predicted else float("nan"),
                               tp / support if support else float("nan"), support))
    return out


def confusion(truth: Sequence[str], pred: Sequence[str],
              people: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Confusion counts (rows = truth, columns = prediction); extra columns for unknown/no face."""
    cols = list(people) + [c for c in (UNKNOWN, FAILED) if c in set(pred)]
    rows = list(people)
    ri = {n: i for i, n in enumerate(rows)}
    ci = {n: i for i, n in enumerate(cols)}
    m = np.zeros((len(rows), len(cols)), np.int64)
    for t, p in zip(truth, pred, strict=True):
        if t in ri and p in ci:
            m[ri[t], ci[p]] += 1
    return m, cols


@dataclass(frozen=True)
class Roc:
    """Acceptance rates over thresholds on L2 distance (ascending thresholds)."""

    thresholds: np.ndarray
    far: np.ndarray
    tar: np.ndarray

    def tar_at(self, far: float) -> float:
        """The best TAR whose FAR does not exceed ``far``."""
        ok = self.far <= far + 1e-12
        return float(self.tar[ok].max()) if ok.any() else 0.0

    def threshold_at(self, far: float) -> float:
        """The largest threshold whose FAR does not exceed ``far``."""
        ok = self.far <= far + 1e-12
        return float(self.thresholds[ok].max()) if ok.any() else float(self.thresholds.min())


def roc(genuine: np.ndarray, impostor: np.ndarray, genuine_ok: np.ndarray | None = None) -> Roc:
    """ROC from genuine and impostor distances (lower = more alike).

    ``genuine_ok`` (bool per genuine) marks genuines that would be correct when accepted (open-set
    identification: the top-1 name is right); the others never count as true accepts. Thresholds
    are every distinct distance, so the curve is exact.
    """
    g = np.asarray(genuine, np.float64)
    im = np.asarray(impostor, np.float64)
    ok = np.ones(len(g), bool) if genuine_ok is None else np.asarray(genuine_ok, bool)
    thr = np.unique(np.concatenate([g, im, [-np.inf]]))
    thr = thr[np.isfinite(thr)]
    gs = np.sort(g[ok & np.isfinite(g)])
    ims = np.sort(im[np.isfinite(im)])
    tar = np.searchsorted(gs, thr, side="right") / max(len(g), 1)
    far = np.searchsorted(ims, thr, side="right") / max(len(im), 1)
    # a threshold below every distance: nothing accepted
    lo = (thr.min() - 1e-6) if len(thr) else 0.0
    return Roc(np.concatenate([[lo], thr]), np.concatenate([[0.0], far]), np.concatenate([[0.0], tar]))


def best_accuracy_threshold(same: np.ndarray, dist: np.ndarray) -> float:
    """The distance threshold that maximises verification accuracy on labelled pairs (midpoints)."""
    d = np.asarray(dist, np.float64)
    s = np.asarray(same, bool)
    cand = np.unique(d)
    if len(cand) == 0:
        return 0.6
    mids = np.concatenate([[cand[0] - 1e-6], (cand[1:] + cand[:-1]) / 2.0, [cand[-1] + 1e-6]])
    order = np.argsort(d)
    ds, ss = d[order], s[order]
    # accepted = d <= t; correct = same & accepted + different & rejected
    idx = np.searchsorted(ds, mids, side="right")
    cum_same = np.concatenate([[0], np.cumsum(ss)])
    n_diff = int((~s).sum())
    cum_diff = np.concatenate([[0], np.cumsum(~ss)])
    correct = cum_same[idx] + (n_diff - cum_diff[idx])
    best = np.flatnonzero(correct == correct.max())
    return float(mids[best[len(best) // 2]])  # the middle of the best plateau


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray([x for x in values if x == x], np.float64)
    if len(v) == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


@dataclass(frozen=True)
class BCubed:
    """B-cubed clustering scores (Bagga & Baldwin 1998), averaged over items: precision = share of
    an item's cluster that has its label, recall = share of its label's items in its cluster."""

    precision: float
    recall: float

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0


def bcubed(clusters: Sequence[int] | np.ndarray, truth: Sequence[object] | np.ndarray) -> BCubed:
    """B-cubed precision and recall of a clustering; cluster -1 = the item is alone (its own cluster)."""
    c = np.asarray(clusters, np.int64).copy()
    n = len(c)
    if n == 0:
        return BCubed(float("nan"), float("nan"))
    alone = c < 0
    c[alone] = c.max(initial=-1) + 1 + np.arange(int(alone.sum()))  # each alone item: its own cluster
    _, t = np.unique(np.asarray(truth, dtype=object).astype(str), return_inverse=True)
    _, ci = np.unique(c, return_inverse=True)
    joint = np.zeros((ci.max() + 1, t.max() + 1), np.int64)
    np.add.at(joint, (ci, t), 1)
    both = joint[ci, t]
    precision = float(np.mean(both / joint.sum(axis=1)[ci]))
    recall = float(np.mean(both / joint.sum(axis=0)[t]))
    return BCubed(precision, recall)
