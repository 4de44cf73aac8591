"""Gallery-size study: identification accuracy vs photos enrolled per person.

For each repeat a fixed test part is held out per person (``test_per_person`` photos); from the rest,
galleries of n = 1, 3, 5, ... photos per person are drawn and the test faces are named by the
``centroid`` rule (nearest mean embedding) and the ``nearest`` rule (nearest enrolled face).
Photos with no face in the test part count as wrong; in a gallery they are skipped (the gallery is
drawn from photos that have a face, as an enrollment would keep).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from facebank.evaluate.metrics import mean_std
from facebank.evaluate.protocols import Dataset
from facebank.learn.classifiers import CentroidClassifier, KnnClassifier

log = logging.getLogger(__name__)

RULES = ("centroid", "nearest")


@dataclass
class GallerySizeStudy:
    dataset: str
    per_person: list[int]
    repeats: int
    test_per_person: int
    accuracy: dict[str, dict[int, list[float]]] = field(default_factory=dict)  # rule -> n -> per repeat

    def curve(self, rule: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ns = np.array(self.per_person)
        ms = np.array([mean_std(self.accuracy[rule][n])[0] for n in self.per_person])
        ss = np.array([mean_std(self.accuracy[rule][n])[1] for n in self.per_person])
        return ns, ms, ss

    def summary(self) -> dict:
        out: dict = {"protocol": "gallery-size", "dataset": self.dataset, "repeats": self.repeats,
                     "test_per_person": self.test_per_person, "results": {}}
        for rule in RULES:
            out["results"][rule] = {
                str(n): {"accuracy": round(mean_std(self.accuracy[rule][n])[0], 5),
                         "std": round(mean_std(self.accuracy[rule][n])[1], 5)}
                for n in self.per_person
            }
        return out


def gallery_size_study(ds: Dataset, per_person: Sequence[int], repeats: int = 5,
                       test_per_person: int | None = None, seed: int = 0) -> GallerySizeStudy:
    counts = ds.counts()
    smallest = min(counts.values())
    biggest_n = max(per_person)
    if test_per_person is None:
        test_per_person = max(1, min(smallest - biggest_n, smallest // 3))
    if smallest - test_per_person < 1:
        raise ValueError(f"a person has only {smallest} photos: too few for a test part of {test_per_person}")
    usable = [n for n in sorted(set(per_person)) if n >= 1]
    study = GallerySizeStudy(ds.root, usable, repeats, test_per_person,
                             {r: {n: [] for n in usable} for r in RULES})
    rng = np.random.default_rng(seed)
    people = ds.people
    for r in range(repeats):
        test_idx: list[int] = []
        pools: dict[str, np.ndarray] = {}
        for p in people:
            idx = rng.permutation(np.flatnonzero(ds.labels == p))
            test_idx += idx[:test_per_person].tolist()
            rest = idx[test_per_person:]
            pools[p] = rest[ds.ok[rest]]
        test = ds.subset(test_idx)
        for n in usable:
            gal = np.concatenate([pools[p][:n] for p in people])
            short = [p for p in people if len(pools[p]) < n]
            if short:
                log.warning("n=%d: %d people have fewer usable photos (%s); they enroll all they have",
                            n, len(short), ", ".join(short[:3]))
            for rule, clf in (("centroid", CentroidClassifier()), ("nearest", KnnClassifier(k=1))):
                clf.fit(ds.x[gal], ds.labels[gal])
                correct = 0
                if test.ok.any():
                    top, _ = clf.decide(test.x[test.ok])
                    names = np.asarray(clf.people, dtype=object)[top]
                    correct = int((names == test.labels[test.ok]).sum())
                study.accuracy[rule][n].append(correct / len(test_idx))
        log.info("gallery-size repeat %d/%d done", r + 1, repeats)
    return study
