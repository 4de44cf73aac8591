"""Evaluation protocols over a folder-per-person photo set: fixed train/test folders, stratified
k-fold, repeated random splits (mean +- std) and open-set (some people held out as unknown).

Embeddings come from the cache (computed once). Photos with no usable face stay in the data: in a
test part they count as failures (wrong answers, shown as "(no face)"); in a training part they are
left out of training (and counted).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facebank.evaluate import metrics
from facebank.evaluate.cache import EmbeddingCache, FacePolicy, PhotoEmbedding, embed_photos, labelled_photos
from facebank.learn.classifiers import ClassifierSpec, EpochRecord
from facebank.settings import Settings

log = logging.getLogger(__name__)

Progress = Callable[..., Iterable]


@dataclass(eq=False)
class Dataset:
    """Photos of a folder-per-person tree with their cached embeddings (zeros where ``ok`` is False)."""

    root: str
    labels: np.ndarray  # person of each photo (object array of str)
    items: list[PhotoEmbedding]
    x: np.ndarray  # (N, D) float32
    ok: np.ndarray  # (N,) bool: a face was found and embedded

    @property
    def people(self) -> list[str]:
        return sorted(set(self.labels.tolist()))

    @property
    def paths(self) -> list[str]:
        return [e.path for e in self.items]

    def failures(self, idx: Iterable[int] | None = None) -> list[tuple[str, str]]:
        rng = range(len(self.items)) if idx is None else idx
        return [(self.items[i].path, self.items[i].error or "no face") for i in rng if not self.ok[i]]

    def counts(self) -> dict[str, int]:
        names, n = np.unique(self.labels, return_counts=True)
        return {str(a): int(b) for a, b in zip(names, n, strict=True)}

    def subset(self, idx: Sequence[int]) -> Dataset:
        rows = np.asarray(idx, np.int64)
        return Dataset(self.root, self.labels[rows], [self.items[i] for i in rows], self.x[rows],
                       self.ok[rows])


def load_dataset(root: str | Path, settings: Settings, policy: FacePolicy | None = None,
                 cache: EmbeddingCache | None = None, progress: Progress | None = None,
                 max_per_person: int | None = None, people: int | None = None) -> Dataset:
    """Every photo of ``root``/<person>/ with its embedding (computed once, then from the cache).

    ``max_per_person`` / ``people`` take the first photos / people in sorted order (small subsets
    for tests)."""
    pairs = labelled_photos(root)
    if people is not None:
        keep = sorted({p for p, _ in pairs})[:people]
        pairs = [(p, f) for p, f in pairs if p in keep]
    if max_per_person is not None:
        seen: dict[str, int] = {}
        sel = []
        for p, f in pairs:
            if seen.get(p, 0) < max_per_person:
                sel.append((p, f))
                seen[p] = seen.get(p, 0) + 1
        pairs = sel
    if not pairs:
        raise ValueError(f"no photos in person folders under {root}")
    kwargs = {"progress": progress} if progress is not None else {}
    items = embed_photos([f for _, f in pairs], settings, policy, cache, **kwargs)
    dim = next((len(e.embedding) for e in items if e.embedding is not None), 128)
    x = np.zeros((len(items), dim), np.float32)
    ok = np.zeros(len(items), bool)
    for i, e in enumerate(items):
        if e.embedding is not None:
            x[i] = e.embedding
            ok[i] = True
    labels = np.asarray([p for p, _ in pairs], dtype=object)
    log.info("%s: %d photos of %d people, %d without a usable face", root, len(items), len(set(labels)),
             int((~ok).sum()))
    return Dataset(str(root), labels, items, x, ok)


# ---- closed-set identification ---------------------------------------------------------------------
@dataclass
class SplitOutcome:
    """One classifier on one train/test split (closed-set: every found face is named)."""

    classifier: str
    test_index: np.ndarray  # indices into the dataset the test part came from
    truth: list[str]
    pred: list[str]  # a name, or metrics.FAILED for photos with no face
    rankings: list[tuple[str, ...]]
    distances: np.ndarray
    train_failures: int
    seconds: float
    history: list[EpochRecord] = field(default_factory=list)

    @property
    def top1(self) -> float:
        return metrics.top_k_accuracy(self.truth, self.rankings, 1)

    @property
    def top5(self) -> float:
        return metrics.top_k_accuracy(self.truth, self.rankings, 5)


@dataclass
class ClassifierResult:
    name: str
    params: dict
    splits: list[SplitOutcome]

    @property
    def top1(self) -> tuple[float, float]:
        return metrics.mean_std([s.top1 for s in self.splits])

    @property
    def top5(self) -> tuple[float, float]:
        return metrics.mean_std([s.top5 for s in self.splits])

    def pooled(self) -> tuple[list[str], list[str]]:
        truth: list[str] = []
        pred: list[str] = []
        for s in self.splits:
            truth += s.truth
            pred += s.pred
        return truth, pred

    def summary(self) -> dict:
        (t1, s1), (t5, s5) = self.top1, self.top5
        return {"top1": round(t1, 5), "top1_std": round(s1, 5),
                "top5": round(t5, 5), "top5_std": round(s5, 5),
                "failures": sum(1 for s in self.splits for p in s.pred if p == metrics.FAILED),
                "seconds": round(sum(s.seconds for s in self.splits), 3)}


@dataclass
class Evaluation:
    """A closed-set protocol run: every classifier over the same splits."""

    protocol: str  # fixed | kfold | repeated
    dataset: str
    train: Dataset
    test: Dataset | None  # the fixed test set; None for splits of ``train``
    splits: int
    results: dict[str, ClassifierResult]
    seed: int = 0

    @property
    def people(self) -> list[str]:
        return self.train.people

    def best(self) -> ClassifierResult:
        return max(self.results.values(), key=lambda r: (r.top1[0], r.top5[0]))

    def data_for(self, split: SplitOutcome) -> Dataset:
        return self.test if self.test is not None else self.train

    def summary(self) -> dict:
        ds = self.test if self.test is not None else self.train
        out = {"protocol": self.protocol, "dataset": self.dataset, "people": len(self.people),
               "photos": len(self.train.items) + (len(self.test.items) if self.test is not None else 0),
               "no_face": int((~self.train.ok).sum()) + (int((~ds.ok).sum()) if self.test is not None else 0)}
        if self.protocol == "kfold":
            out["folds"] = self.splits
        elif self.protocol == "repeated":
            out["repeats"] = self.splits
        out["results"] = {k: v.summary() for k, v in self.results.items()}
        out["best"] = self.best().name
        return out


def run_split(spec: ClassifierSpec, train: Dataset, test: Dataset, test_index: np.ndarray) -> SplitOutcome:
    """Fit ``spec`` on the usable faces of ``train`` and name every photo of ``test`` (closed set)."""
    t0 = time.perf_counter()
    clf = spec.build()
    clf.fit(train.x[train.ok], train.labels[train.ok])
    truth = [str(v) for v in test.labels]
    pred = [metrics.FAILED] * len(truth)
    rankings: list[tuple[str, ...]] = [()] * len(truth)
    dist = np.full(len(truth), np.inf)
    if test.ok.any():
        preds = clf.predict(test.x[test.ok], threshold=None, top=5)
        for j, p in zip(np.flatnonzero(test.ok), preds, strict=True):
            pred[j] = p.candidate
            rankings[j] = p.ranking
            dist[j] = p.distance
    return SplitOutcome(spec.name, np.asarray(test_index), truth, pred, rankings, dist,
                        int((~train.ok).sum()), time.perf_counter() - t0, list(clf.history))


def evaluate_fixed(train: Dataset, test: Dataset, specs: Sequence[ClassifierSpec]) -> Evaluation:
    unknown = sorted(set(test.labels.tolist()) - set(train.labels.tolist()))
    if unknown:
        log.warning("test people not in training (always wrong): %s", ", ".join(unknown))
    every = np.arange(len(test.items))
    results = {s.name: ClassifierResult(s.name, s.build().params(), [run_split(s, train, test, every)])
               for s in specs}
    return Evaluation("fixed", f"{train.root} -> {test.root}", train, test, 1, results)


def _check_split_sizes(ds: Dataset, folds: int) -> None:
    small = {k: v for k, v in ds.counts().items() if v < folds}
    if small:
        raise ValueError(f"{folds} folds need at least {folds} photos per person; too few: "
                         + ", ".join(f"{k} ({v})" for k, v in small.items()))


def evaluate_kfold(ds: Dataset, specs: Sequence[ClassifierSpec], folds: int = 5, seed: int = 0) -> Evaluation:
    from sklearn.model_selection import StratifiedKFold

    _check_split_sizes(ds, folds)
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(skf.split(np.zeros(len(ds.labels)), ds.labels))
    results = {s.name: ClassifierResult(s.name, s.build().params(), []) for s in specs}
    for k, (tr, te) in enumerate(splits):
        log.info("fold %d/%d", k + 1, folds)
        for s in specs:
            results[s.name].splits.append(run_split(s, ds.subset(tr), ds.subset(te), te))
    return Evaluation("kfold", ds.root, ds, None, folds, results, seed)


def evaluate_repeated(ds: Dataset, specs: Sequence[ClassifierSpec], repeats: int = 10,
                      test_fraction: float = 0.25, seed: int = 0) -> Evaluation:
    from sklearn.model_selection import StratifiedShuffleSplit

    _check_split_sizes(ds, 2)
    sss = StratifiedShuffleSplit(n_splits=repeats, test_size=test_fraction, random_state=seed)
    results = {s.name: ClassifierResult(s.name, s.build().params(), []) for s in specs}
    for tr, te in sss.split(np.zeros(len(ds.labels)), ds.labels):
        for s in specs:
            results[s.name].splits.append(run_split(s, ds.subset(tr), ds.subset(te), te))
    return Evaluation("repeated", ds.root, ds, None, repeats, results, seed)


# ---- open set ---------------------------------------------------------------------------------------
@dataclass
class OpenSetRun:
    """One repeat: known people's test faces (genuine) and unknown people's faces (impostor).

    Distances are L2 to the predicted person (inf for photos with no face: never accepted).
    ``genuine_ok``: the top-1 name is right (a wrong name is no true accept at any threshold)."""

    known: list[str]
    unknown: list[str]
    genuine: np.ndarray
    genuine_ok: np.ndarray
    impostor: np.ndarray

    def roc(self) -> metrics.Roc:
        return metrics.roc(self.genuine, self.impostor, self.genuine_ok)


@dataclass
class OpenSetResult:
    classifier: str
    runs: list[OpenSetRun]
    fars: tuple[float, ...] = (0.01, 0.001)

    @property
    def name(self) -> str:
        return self.classifier

    def tar_at(self, far: float) -> tuple[float, float]:
        return metrics.mean_std([r.roc().tar_at(far) for r in self.runs])

    def threshold_at(self, far: float) -> tuple[float, float]:
        return metrics.mean_std([r.roc().threshold_at(far) for r in self.runs])

    def closed_top1(self) -> tuple[float, float]:
        return metrics.mean_std([float(np.mean(r.genuine_ok)) for r in self.runs])

    def pooled_roc(self) -> metrics.Roc:
        return metrics.roc(np.concatenate([r.genuine for r in self.runs]),
                           np.concatenate([r.impostor for r in self.runs]),
                           np.concatenate([r.genuine_ok for r in self.runs]))

    def summary(self) -> dict:
        out: dict = {"closed_top1": round(self.closed_top1()[0], 5)}
        for far in self.fars:
            tag = f"{far * 100:g}%".replace(".", "_")
            m, s = self.tar_at(far)
            t, ts = self.threshold_at(far)
            out[f"tar_at_far_{tag}"] = round(m, 5)
            out[f"tar_at_far_{tag}_std"] = round(s, 5)
            out[f"threshold_at_far_{tag}"] = round(t, 5)
            out[f"threshold_at_far_{tag}_std"] = round(ts, 5)
        out["genuine"] = int(sum(len(r.genuine) for r in self.runs))
        out["impostor"] = int(sum(len(r.impostor) for r in self.runs))
        return out


@dataclass
class OpenSetEvaluation:
    dataset: str
    data: Dataset
    known_people: int
    repeats: int
    results: dict[str, OpenSetResult]

    def best(self) -> OpenSetResult:
        return max(self.results.values(), key=lambda r: r.tar_at(0.01)[0])

    def summary(self) -> dict:
        return {"protocol": "open-set", "dataset": self.dataset, "people": len(self.data.people),
                "known": self.known_people, "unknown": len(self.data.people) - self.known_people,
                "repeats": self.repeats, "photos": len(self.data.items),
                "no_face": int((~self.data.ok).sum()),
                "results": {k: v.summary() for k, v in self.results.items()}, "best": self.best().name}


def evaluate_open_set(ds: Dataset, specs: Sequence[ClassifierSpec], known: int | None = None,
                      repeats: int = 5, train_fraction: float = 0.5, seed: int = 0) -> OpenSetEvaluation:
    """Repeated splits: ``known`` people (default half) are enrolled with ``train_fraction`` of their
    photos; their other photos are genuine probes, every photo of the other people an impostor."""
    people = ds.people
    n_known = known if known is not None else max(1, len(people) // 2)
    if not 1 <= n_known < len(people):
        raise ValueError(f"open set needs 1 <= known < {len(people)} people, got {n_known}")
    rng = np.random.default_rng(seed)
    results = {s.name: OpenSetResult(s.name, []) for s in specs}
    for r in range(repeats):
        chosen = sorted(rng.choice(people, n_known, replace=False).tolist())
        is_known = np.isin(ds.labels, chosen)
        train_idx: list[int] = []
        probe_list: list[int] = []
        for p in chosen:
            idx = np.flatnonzero(ds.labels == p)
            idx = rng.permutation(idx)
            n_tr = max(1, int(round(train_fraction * len(idx))))
            train_idx += idx[:n_tr].tolist()
            probe_list += idx[n_tr:].tolist()
        probe_idx = np.asarray(probe_list, np.int64)
        unknown_idx = np.flatnonzero(~is_known)
        train = ds.subset(train_idx)
        for s in specs:
            clf = s.build()
            clf.fit(train.x[train.ok], train.labels[train.ok])
            g_dist = np.full(len(probe_idx), np.inf)
            g_ok = np.zeros(len(probe_idx), bool)
            okp = ds.ok[probe_idx]
            if okp.any():
                top, d = clf.decide(ds.x[probe_idx[okp]])
                g_dist[okp] = d
                g_ok[okp] = np.asarray(clf.people, dtype=object)[top] == ds.labels[probe_idx[okp]]
            i_dist = np.full(len(unknown_idx), np.inf)
            oku = ds.ok[unknown_idx]
            if oku.any():
                i_dist[oku] = clf.decide(ds.x[unknown_idx[oku]])[1]
            results[s.name].runs.append(OpenSetRun(chosen, sorted(set(people) - set(chosen)), g_dist, g_ok,
                                                   i_dist))
        log.info("open-set repeat %d/%d done", r + 1, repeats)
    return OpenSetEvaluation(ds.root, ds, n_known, repeats, results)
