"""LFW View 2: 10 folds of 300 same + 300 different pairs; the threshold is picked on 9 folds and
tested on the 10th; mean accuracy +- std over the 10 folds, ROC and TAR at FAR over all pairs.

Pairs file: first line ``10 300``; then per fold 300 lines ``name i j`` (same person) followed by 300
lines ``name1 i name2 j`` (different people); a photo is ``images/<name>/<name>_<iiii>.jpg``.
LFW photos are 250x250 and centred on the person: the face nearest the centre is the one, and when
no detector finds it the known central box is used (``LFW_POLICY``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebank.evaluate import metrics
from facebank.evaluate.cache import LFW_POLICY, EmbeddingCache, FacePolicy, PhotoEmbedding, embed_photos
from facebank.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pair:
    fold: int
    a: str  # path relative to the LFW root
    b: str
    same: bool


def photo_path(name: str, number: int) -> str:
    return f"images/{name}/{name}_{number:04d}.jpg"


def read_pairs(path: str | Path, limit_per_fold: int | None = None) -> list[Pair]:
    """Parse an LFW pairs file (View 2 ``pairs.txt`` with folds, or a View 1 file with one 'fold').

    ``limit_per_fold`` keeps the first N same and first N different pairs of each fold (tests)."""
    lines = [ln.split() for ln in Path(path).read_text().splitlines() if ln.strip()]
    head = lines[0]
    if len(head) == 2:
        folds, n = int(head[0]), int(head[1])
    elif len(head) == 1:
        folds, n = 1, int(head[0])
    else:
        raise ValueError(f"{path}: first line should be 'folds pairs' or 'pairs', got {' '.join(head)!r}")
    body = lines[1:]
    if len(body) != folds * 2 * n:
        raise ValueError(f"{path}: expected {folds * 2 * n} pairs, found {len(body)}")
    out = []
    for f in range(folds):
        block = body[f * 2 * n:(f + 1) * 2 * n]
        for k, parts in enumerate(block):
            if limit_per_fold is not None and (k % n) >= limit_per_fold:
                continue
            if len(parts) == 3:
                a, b, same = photo_path(parts[0], int(parts[1])), photo_path(parts[0], int(parts[2])), True
            elif len(parts) == 4:
                a, b, same = photo_path(parts[0], int(parts[1])), photo_path(parts[2], int(parts[3])), False
            else:
                raise ValueError(f"{path}: bad pair line {' '.join(parts)!r}")
            if same != (k < n):
                raise ValueError(f"{path}: fold {f + 1} pair {k + 1} is in the wrong half: "
                                 f"{' '.join(parts)!r}")
            out.append(Pair(f, a, b, same))
    return out


@dataclass
class LfwResult:
    """View 2 outcome. ``distance`` is L2 between unit embeddings per pair (inf: a photo failed)."""

    pairs: list[Pair]
    distance: np.ndarray
    fold_accuracy: np.ndarray
    fold_threshold: np.ndarray
    failures: list[tuple[str, str]]
    fallbacks: int
    photos: int
    items: dict[str, PhotoEmbedding]

    @property
    def accuracy(self) -> tuple[float, float]:
        return float(self.fold_accuracy.mean()), float(self.fold_accuracy.std(ddof=1)) if len(
            self.fold_accuracy) > 1 else 0.0

    @property
    def same(self) -> np.ndarray:
        return np.array([p.same for p in self.pairs])

    def roc(self) -> metrics.Roc:
        s = self.same
        return metrics.roc(self.distance[s], self.distance[~s])

    def summary(self) -> dict:
        acc, std = self.accuracy
        r = self.roc()
        return {
            "protocol": "lfw-view2", "folds": len(self.fold_accuracy), "pairs": len(self.pairs),
            "accuracy": round(acc, 5), "std": round(std, 5),
            "threshold": round(float(self.fold_threshold.mean()), 4),
            "threshold_std": round(float(self.fold_threshold.std(ddof=1)) if len(self.fold_threshold) > 1
                                   else 0.0, 4),
            "tar_at_far_1%": round(r.tar_at(0.01), 5), "tar_at_far_0_1%": round(r.tar_at(0.001), 5),
            "photos": self.photos, "no_face": len(self.failures), "fallback_box": self.fallbacks,
        }


def evaluate_pairs(pairs: list[Pair], emb: dict[str, np.ndarray | None]) -> tuple[np.ndarray, np.ndarray,
                                                                                    np.ndarray]:
    """Distances, and per fold the accuracy at the threshold picked on the other folds.

    A pair with a failed photo has distance inf: it is answered "different" (right for different
    pairs, wrong for same pairs) and never dropped."""
    dist = np.full(len(pairs), np.inf)
    for k, p in enumerate(pairs):
        a, b = emb.get(p.a), emb.get(p.b)
        if a is not None and b is not None:
            dist[k] = float(np.linalg.norm(a - b))
    same = np.array([p.same for p in pairs])
    fold = np.array([p.fold for p in pairs])
    folds = sorted(set(fold.tolist()))
    accs, thrs = [], []
    for f in folds:
        test = fold == f
        train = ~test if len(folds) > 1 else test
        fin = train & np.isfinite(dist)
        thr = metrics.best_accuracy_threshold(same[fin], dist[fin])
        pred = dist[test] <= thr
        accs.append(float((pred == same[test]).mean()))
        thrs.append(thr)
    return dist, np.array(accs), np.array(thrs)


def run_view2(root: str | Path, settings: Settings, policy: FacePolicy = LFW_POLICY,
              cache: EmbeddingCache | None = None, progress: Callable[..., Iterable] | None = None,
              pairs_file: str = "pairs.txt", limit_per_fold: int | None = None) -> LfwResult:
    root = Path(root)
    pairs = read_pairs(root / pairs_file, limit_per_fold)
    rels = sorted({p.a for p in pairs} | {p.b for p in pairs})
    kwargs = {"progress": progress} if progress is not None else {}
    items = embed_photos([root / r for r in rels], settings, policy, cache, **kwargs)
    by_rel = dict(zip(rels, items, strict=True))
    emb = {r: e.embedding for r, e in by_rel.items()}
    failures = [(e.path, e.error or "no face") for e in items if not e.ok]
    dist, accs, thrs = evaluate_pairs(pairs, emb)
    res = LfwResult(pairs, dist, accs, thrs, failures, sum(e.fallback for e in items), len(items), by_rel)
    log.info("LFW: accuracy %.4f +- %.4f over %d folds", *res.accuracy, len(accs))
    return res


def lfw_settings(settings: Settings) -> Settings:
    """LFW photos are no tight crops: the whole-photo crop fallback is replaced by the central box.

    (``crop_fallback_max_side`` does nothing with ``never``; it is pinned so the cache key is stable.)"""
    return settings.model_copy(update={"crop_fallback": "never", "crop_fallback_max_side": 400})
