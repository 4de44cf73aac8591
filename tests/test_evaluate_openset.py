"""Open-set protocols of decision rules: who is known, who is a stranger, and honest figures."""

from __future__ import annotations

import numpy as np
import pytest

from facebank import decide
from facebank.evaluate.cache import PhotoEmbedding
from facebank.evaluate.openset import (
    lfw_splits,
    people_splits,
    person_part,
    rules_for,
    run_rules,
    study_text,
)
from facebank.evaluate.protocols import Dataset


def synthetic_dataset(counts: dict[str, int], dim: int = 16, spread: float = 0.3, seed: int = 0,
                      fail: set[int] = frozenset()) -> Dataset:
    rng = np.random.default_rng(seed)
    labels, xs = [], []
    for name, n in counts.items():
        c = rng.normal(size=dim)
        for _ in range(n):
            v = c / np.linalg.norm(c) + spread * rng.normal(size=dim) / np.sqrt(dim)
            xs.append(v / np.linalg.norm(v))
            labels.append(name)
    x = np.asarray(xs, np.float32)
    ok = np.ones(len(x), bool)
    for i in fail:
        ok[i] = False
        x[i] = 0
    items = [PhotoEmbedding(f"{lab}/{i}.jpg", str(i), x[i] if ok[i] else None)
             for i, lab in enumerate(labels)]
    return Dataset("synthetic", np.asarray(labels, dtype=object), items, x, ok)


def test_lfw_splits_know_people_with_two_photos_and_keep_parts_apart():
    counts = {f"p{i:03d}": (1 if i % 3 == 0 else 2 + i % 4) for i in range(90)}
    ds = synthetic_dataset(counts)
    for part in ("dev", "test"):
        (sp,) = lfw_splits(ds, 1, part=part)
        known = set(ds.labels[sp.gallery])
        assert known == set(ds.labels[sp.probes])
        assert all(counts[p] >= 2 and person_part(p) == part for p in known)
        assert all(counts[p] == 1 and person_part(p) == part for p in ds.labels[sp.strangers])
        for p in known:  # at least one photo enrolled and one probe per known person
            assert 1 <= int((ds.labels[sp.gallery] == p).sum()) < counts[p]
    dev, test = lfw_splits(ds, 1, part="dev")[0], lfw_splits(ds, 1, part="test")[0]
    assert not set(ds.labels[dev.gallery]) & set(ds.labels[test.gallery])
    assert not set(dev.strangers) & set(test.strangers)
    with pytest.raises(ValueError, match="unknown part"):
        lfw_splits(ds, 1, part="train")


def test_people_splits_draw_the_same_people_as_the_classifier_open_set():
    from facebank.evaluate.protocols import evaluate_open_set
    from facebank.learn.classifiers import ClassifierSpec

    ds = synthetic_dataset({f"p{i}": 8 for i in range(6)})
    sp = people_splits(ds, known=3, splits=2, seed=4)
    ev = evaluate_open_set(ds, [ClassifierSpec("knn")], known=3, repeats=2, seed=4)
    for s, run in zip(sp, ev.results["knn"].runs, strict=True):
        assert sorted(set(ds.labels[s.gallery])) == run.known
        assert len(s.probes) == len(run.genuine) and len(s.strangers) == len(run.impostor)


def test_run_rules_counts_photos_without_a_face_as_misses_and_measures_the_auto_threshold():
    ds = synthetic_dataset({f"p{i:02d}": 6 for i in range(30)}, fail={1, 2, 3})
    splits = people_splits(ds, known=15, splits=3, seed=0)
    study = run_rules(ds, splits, rules_for("distance;margin", "distance"), target_far=0.05,
                      fixed={"distance:nearest": 0.35})
    res = study.results["distance:nearest"]
    assert len(res.runs) == 3 and len(res.auto) == 3 and len(res.fixed) == 3
    for run, sp in zip(res.runs, splits, strict=True):
        failed = ~ds.ok[sp.probes]
        assert not run.genuine_ok[failed].any() and np.isinf(run.genuine[failed]).all()
    s = study.summary()["results"]["distance:nearest"]
    assert 0 <= s["dir_at_far_1%"] <= s["rank1"] <= 1
    assert s["auto"]["miss"] == pytest.approx(1 - s["auto"]["dir"])
    assert "margin:nearest:w=0.5" in study_text(study)


def test_rules_for_all_measures_the_default_rule_too():
    keys = [r.key() for r in rules_for("all", "margin:weight=2")]
    assert "distance:nearest" in keys and "margin:nearest:w=2" in keys and len(keys) == len(set(keys))
    with pytest.raises(ValueError):
        rules_for("distance;bogus", "distance")
    assert decide.available()
