"""Classifiers over face embeddings, behind one interface, all able to say "unknown".

Every classifier is fit on unit embeddings (N, D) with person names and ranks the people for new
embeddings (``scores``: higher = more likely). The "unknown" decision is the same for all of them and
in the project's units: a face is named only when its L2 distance to the predicted person (to their
centroid for ``centroid``, to their nearest training face for the others) is at most ``threshold``.
``threshold = None`` means closed-set (always name someone).

Registry: ``create("svm")``, ``available()``; ``register("name")`` adds one.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """The answer for one embedding: ``name`` None = unknown; ``candidate`` is the top-ranked person.

    ``distance`` is the L2 distance between unit embeddings from the face to the candidate (the
    quantity the unknown threshold applies to); ``ranking`` lists people best first.
    """

    name: str | None
    candidate: str
    distance: float
    ranking: tuple[str, ...] = ()


@dataclass
class EpochRecord:
    """One training epoch of an iterative classifier (losses are cross-entropy, accuracies 0-1)."""

    epoch: int
    train_loss: float
    val_loss: float | None
    train_accuracy: float
    val_accuracy: float | None


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if x.ndim == 1:
        x = x[None, :]
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _pairwise_l2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(d2, 0.0))


class Classifier:
    """Base class: subclasses implement ``_fit`` and ``_scores`` (N, n_people), higher = more likely."""

    name = "base"

    def __init__(self, threshold: float | None = None) -> None:
        self.threshold = threshold
        self.people: list[str] = []
        self._train_x: np.ndarray | None = None
        self._train_y: np.ndarray | None = None
        self.history: list[EpochRecord] = []

    # -- public -----------------------------------------------------------------------------------
    def fit(self, x: np.ndarray, y: Sequence[str]) -> Classifier:
        x = _unit(x)
        labels = np.asarray(list(y))
        if len(x) != len(labels):
            raise ValueError(f"{len(x)} embeddings but {len(labels)} labels")
        self.people = sorted(set(labels.tolist()))
        if len(self.people) < 1:
            raise ValueError("no training data")
        idx = {p: i for i, p in enumerate(self.people)}
        self._train_x = x
        self._train_y = np.array([idx[v] for v in labels], np.int64)
        self._fit(x, self._train_y)
        return self

    def scores(self, x: np.ndarray) -> np.ndarray:
        """(N, n_people) ranking scores, higher = more likely; columns follow ``self.people``."""
        self._check_fitted()
        return self._scores(_unit(x))

    def person_distances(self, x: np.ndarray) -> np.ndarray:
        """(N, n_people) L2 distance from each embedding to each person's nearest training face."""
        self._check_fitted()
        assert self._train_x is not None and self._train_y is not None
        d = _pairwise_l2(_unit(x), self._train_x)
        out = np.full((d.shape[0], len(self.people)), np.inf, np.float32)
        for j in range(len(self.people)):
            cols = self._train_y == j
            if cols.any():
                out[:, j] = d[:, cols].min(axis=1)
        return out

    def gate_distances(self, x: np.ndarray) -> np.ndarray:
        """(N, n_people) the distance the unknown threshold is compared with (nearest face by default)."""
        return self.person_distances(x)

    def decide(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(top-1 person index, L2 distance to that person) for each embedding."""
        x = _unit(x)
        top = np.argmax(self.scores(x), axis=1)
        dist = self.gate_distances(x)[np.arange(len(top)), top]
        return top, dist

    def predict(self, x: np.ndarray, threshold: float | None = None, top: int = 5) -> list[Prediction]:
        x = _unit(x)
        if len(x) == 0:
            return []
        thr = self.threshold if threshold is None else threshold
        s = self.scores(x)
        order = np.argsort(-s, axis=1)[:, :top]
        best = order[:, 0]
        dist = self.gate_distances(x)[np.arange(len(best)), best]
        out = []
        for i in range(len(x)):
            cand = self.people[int(best[i])]
            named = thr is None or dist[i] <= thr
            out.append(Prediction(cand if named else None, cand, float(dist[i]),
                                  tuple(self.people[int(j)] for j in order[i])))
        return out

    def params(self) -> dict:
        return {"threshold": self.threshold}

    # -- for subclasses ---------------------------------------------------------------------------
    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _scores(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if self._train_x is None:
            raise RuntimeError(f"the {self.name} classifier is not fitted")


class CentroidClassifier(Classifier):
    """Each person is the (re-normalised) mean of their embeddings; nearest centroid wins."""

    name = "centroid"

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        self.centroids = _unit(np.stack([x[y == j].mean(axis=0) for j in range(len(self.people))]))

    def _scores(self, x: np.ndarray) -> np.ndarray:
        return -_pairwise_l2(x, self.centroids)

    def gate_distances(self, x: np.ndarray) -> np.ndarray:
        return _pairwise_l2(_unit(x), self.centroids)


class KnnClassifier(Classifier):
    """k nearest training faces vote, weighted by 1/distance; ties go to the nearest face."""

    name = "knn"

    def __init__(self, k: int = 3, threshold: float | None = None) -> None:
        super().__init__(threshold)
        self.k = k

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        pass

    def _scores(self, x: np.ndarray) -> np.ndarray:
        assert self._train_x is not None and self._train_y is not None
        d = _pairwise_l2(x, self._train_x)
        k = min(self.k, d.shape[1])
        nn = np.argsort(d, axis=1)[:, :k]
        votes = np.zeros((len(x), len(self.people)), np.float64)
        rows = np.arange(len(x))
        for c in range(k):
            idx = nn[:, c]
            np.add.at(votes, (rows, self._train_y[idx]), 1.0 / (d[rows, idx] + 1e-3))
        # tie-break (and a full ranking of the people who got no vote) by nearest-face distance
        return votes - 1e-3 * self.person_distances(x)

    def params(self) -> dict:
        return {"k": self.k, **super().params()}


class SvmClassifier(Classifier):
    """Support vector machine (linear or RBF) on standardised embeddings (scaler fit on training data)."""

    name = "svm"

    def __init__(self, kernel: str = "linear", c: float = 1.0, gamma: str | float = "scale",
                 threshold: float | None = None) -> None:
        super().__init__(threshold)
        self.kernel, self.c, self.gamma = kernel, c, gamma

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        self._single = len(self.people) == 1
        if self._single:
            return
        self.model = make_pipeline(StandardScaler(),
                                   SVC(kernel=self.kernel, C=self.c, gamma=self.gamma,
                                       decision_function_shape="ovr", class_weight="balanced"))
        self.model.fit(x, y)

    def _scores(self, x: np.ndarray) -> np.ndarray:
        if self._single:
            return np.zeros((len(x), 1))
        s = np.asarray(self.model.decision_function(x), np.float64)
        if s.ndim == 1:  # two people: one signed margin for class 1
            s = np.stack([-s, s], axis=1)
        return s

    def params(self) -> dict:
        return {"kernel": self.kernel, "C": self.c, "gamma": self.gamma, **super().params()}


class RbfSvmClassifier(SvmClassifier):
    name = "svm-rbf"

    def __init__(self, c: float = 10.0, gamma: str | float = "scale", threshold: float | None = None) -> None:
        super().__init__("rbf", c, gamma, threshold)


class MlpClassifier(Classifier):
    """A dense neural network (sklearn MLPClassifier) trained epoch by epoch with ``partial_fit``.

    Embeddings are standardised (scaler fit on the training part only); a stratified validation
    part (``validation_fraction``) gives per-epoch validation loss/accuracy, early stopping after
    ``patience`` epochs without a better validation loss, and the best epoch's weights are kept.
    ``history`` holds one EpochRecord per epoch.
    """

    name = "mlp"

    def __init__(self, hidden: tuple[int, ...] = (256,), alpha: float = 1e-3, solver: str = "adam",
                 learning_rate: float = 1e-3, max_epochs: int = 100, early_stopping: bool = True,
                 patience: int = 10, validation_fraction: float = 0.15, batch_size: int = 32,
                 tol: float = 1e-4, seed: int = 0, threshold: float | None = None) -> None:
        super().__init__(threshold)
        self.hidden = tuple(hidden)
        self.alpha, self.solver, self.learning_rate = alpha, solver, learning_rate
        self.max_epochs, self.early_stopping, self.patience = max_epochs, early_stopping, patience
        self.validation_fraction, self.batch_size, self.seed = validation_fraction, batch_size, seed
        self.tol = tol

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        from sklearn.metrics import log_loss
        from sklearn.neural_network import MLPClassifier
        from sklearn.preprocessing import StandardScaler

        classes = np.arange(len(self.people))
        tr, va = self._split(y)
        self.scaler = StandardScaler().fit(x[tr])
        xtr, ytr = self.scaler.transform(x[tr]), y[tr]
        xva, yva = (self.scaler.transform(x[va]), y[va]) if len(va) else (None, None)
        self.model = MLPClassifier(
            hidden_layer_sizes=self.hidden, alpha=self.alpha, solver=self.solver,
            learning_rate_init=self.learning_rate, batch_size=min(self.batch_size, len(tr)),
            random_state=self.seed, shuffle=True,
        )
        self.history = []
        best_loss, best_state, waited = np.inf, None, 0  # improving = 2% better (and by tol) than best
        for epoch in range(1, self.max_epochs + 1):
            self.model.partial_fit(xtr, ytr, classes=classes)
            ptr = self.model.predict_proba(xtr)
            rec = EpochRecord(epoch, float(log_loss(ytr, ptr, labels=classes)), None,
                              float((ptr.argmax(1) == ytr).mean()), None)
            if xva is not None:
                pva = self.model.predict_proba(xva)
                rec.val_loss = float(log_loss(yva, pva, labels=classes))
                rec.val_accuracy = float((pva.argmax(1) == yva).mean())
            self.history.append(rec)
            monitor = rec.val_loss if rec.val_loss is not None else rec.train_loss
            if not np.isfinite(best_loss) or monitor < best_loss - max(self.tol, 0.02 * best_loss):
                best_loss, best_state, waited = monitor, copy.deepcopy(self.model), 0
            else:
                waited += 1
                if self.early_stopping and waited >= self.patience:
                    break
        if best_state is not None:
            self.model = best_state
        self.best_epoch = int(np.argmin([r.val_loss if r.val_loss is not None else r.train_loss
                                         for r in self.history])) + 1
        log.info("mlp: %d epochs, best epoch %d", len(self.history), self.best_epoch)

    def _split(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(y)
        idx = np.arange(n)
        k = len(self.people)
        counts = np.bincount(y, minlength=k)
        n_val = max(k, int(round(self.validation_fraction * n)))
        if not self.early_stopping or self.validation_fraction <= 0 or counts.min() < 2 or n_val >= n - k:
            return idx, idx[:0]
        from sklearn.model_selection import StratifiedShuffleSplit

        sss = StratifiedShuffleSplit(n_splits=1, test_size=n_val, random_state=self.seed)
        tr, va = next(sss.split(idx, y))
        return tr, va

    def _scores(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(self.scaler.transform(x))

    def params(self) -> dict:
        return {"hidden": list(self.hidden), "alpha": self.alpha, "solver": self.solver,
                "learning_rate": self.learning_rate, "early_stopping": self.early_stopping,
                "patience": self.patience, **super().params()}


# ---- registry ----------------------------------------------------------------------------------------
_REGISTRY: dict[str, Callable[..., Classifier]] = {}


def register(name: str) -> Callable[[Callable[..., Classifier]], Callable[..., Classifier]]:
    def deco(factory: Callable[..., Classifier]) -> Callable[..., Classifier]:
        _REGISTRY[name] = factory
        return factory

    return deco


def available() -> list[str]:
    return list(_REGISTRY)


def create(name: str, **params: object) -> Classifier:
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown classifier {name!r}; choose one of {', '.join(available())}") from None
    return factory(**params)


def parse_names(spec: str) -> list[str]:
    """'all' or a comma-separated list of registered classifier names."""
    if spec.strip() == "all":
        return available()
    names = [s.strip() for s in spec.split(",") if s.strip()]
    for n in names:
        if n not in _REGISTRY:
            raise ValueError(f"unknown classifier {n!r}; choose one of {', '.join(available())} or all")
    return names


register("centroid")(CentroidClassifier)
register("knn")(KnnClassifier)
register("svm")(SvmClassifier)
register("svm-rbf")(RbfSvmClassifier)
register("mlp")(MlpClassifier)


@dataclass(frozen=True)
class ClassifierSpec:
    name: str
    params: dict = field(default_factory=dict)

    def build(self) -> Classifier:
        return create(self.name, **self.params)
