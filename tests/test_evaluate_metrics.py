"""Figures of merit on hand-made inputs whose answers are known, and LFW pair parsing."""

from __future__ import annotations

import numpy as np
import pytest

from facebank.evaluate import metrics
from facebank.evaluate.lfw import Pair, evaluate_pairs, read_pairs


def test_top_k_counts_a_hit_only_within_the_first_k_and_misses_empty_rankings():
    truth = ["a", "b", "c", "d"]
    rankings = [("a", "b"), ("c", "b"), ("a", "b", "c"), ()]
    assert metrics.top_k_accuracy(truth, rankings, 1) == 0.25
    assert metrics.top_k_accuracy(truth, rankings, 2) == 0.5
    assert metrics.top_k_accuracy(truth, rankings, 5) == 0.75


def test_confusion_and_per_person_keep_failures_as_their_own_column():
    truth = ["a", "a", "b", "b"]
    pred = ["a", metrics.FAILED, "a", "b"]
    m, cols = metrics.confusion(truth, pred, ["a", "b"])
    assert cols == ["a", "b", metrics.FAILED]
    assert m.tolist() == [[1, 0, 1], [1, 1, 0]]
    pp = {p.name: p for p in metrics.per_person(truth, pred, ["a", "b"])}
    assert pp["a"].precision == 0.5 and pp["a"].recall == 0.5
    assert pp["b"].precision == 1.0 and pp["b"].recall == 0.5


def test_roc_gives_exact_tar_and_threshold_at_far():
    genuine = np.array([0.1, 0.2, 0.3, 0.9])
    impostor = np.linspace(0.5, 1.49, 100)  # 100 impostors: FAR 1% = one accepted
    r = metrics.roc(genuine, impostor)
    assert r.tar_at(0.0) == 0.75  # accept the three genuines below 0.5, no impostor
    assert r.threshold_at(0.01) == pytest.approx(0.5)  # exactly one impostor accepted
    assert r.tar_at(0.01) == 0.75
    assert r.tar_at(1.0) == 1.0
    assert np.all(np.diff(r.far) >= 0) and np.all(np.diff(r.tar) >= 0)


def test_open_set_roc_never_counts_a_wrongly_named_genuine_as_accepted():
    r = metrics.roc(np.array([0.1, 0.2]), np.array([0.9]), genuine_ok=np.array([True, False]))
    assert r.tar_at(1.0) == 0.5


def test_failures_with_infinite_distance_are_never_accepted():
    r = metrics.roc(np.array([0.1, np.inf]), np.array([0.8, np.inf]))
    assert r.tar_at(1.0) == 0.5


def test_best_accuracy_threshold_separates_separable_pairs():
    same = np.array([True, True, True, False, False, False])
    dist = np.array([0.2, 0.3, 0.35, 0.5, 0.6, 0.7])
    t = metrics.best_accuracy_threshold(same, dist)
    assert 0.35 < t < 0.5
    assert np.all((dist <= t) == same)


def test_mean_std_ignores_nan_and_uses_sample_std():
    m, s = metrics.mean_std([1.0, 3.0, float("nan")])
    assert m == 2.0 and s == pytest.approx(np.sqrt(2.0))


def _pairs_file(tmp_path, folds=2, n=2):
    lines = [f"{folds} {n}"]
    for f in range(folds):
        lines += [f"Ann_{f} 1 2" for _ in range(n)]
        lines += [f"Ann_{f} 1 Bob_{f} 3" for _ in range(n)]
    p = tmp_path / "pairs.txt"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_read_pairs_parses_folds_and_photo_paths(tmp_path):
    pairs = read_pairs(_pairs_file(tmp_path))
    assert len(pairs) == 8
    assert pairs[0] == Pair(0, "images/Ann_0/Ann_0_0001.jpg", "images/Ann_0/Ann_0_0002.jpg", True)
    assert pairs[2] == Pair(0, "images/Ann_0/Ann_0_0001.jpg", "images/Bob_0/Bob_0_0003.jpg", False)
    assert [p.fold for p in pairs] == [0] * 4 + [1] * 4
    assert len(read_pairs(_pairs_file(tmp_path), limit_per_fold=1)) == 4


def test_read_pairs_refuses_a_truncated_file(tmp_path):
    p = _pairs_file(tmp_path)
    p.write_text("\n".join(p.read_text().splitlines()[:-1]))
    with pytest.raises(ValueError, match="expected 8 pairs"):
        read_pairs(p)


def test_real_lfw_view2_file_has_ten_folds_of_300_plus_300(faces_dir):
    pairs = read_pairs(faces_dir / "lfw" / "pairs.txt")
    assert len(pairs) == 6000
    for f in range(10):
        fold = [p for p in pairs if p.fold == f]
        assert sum(p.same for p in fold) == 300 and sum(not p.same for p in fold) == 300
    missing = [p.a for p in pairs[:50] if not (faces_dir / "lfw" / p.a).is_file()]
    assert not missing


def test_view2_threshold_is_picked_on_the_other_folds_and_failures_count_as_different():
    rng = np.random.default_rng(0)
    pairs, emb = [], {}
    for f in range(3):
        for k in range(10):
            v = rng.normal(size=8)
            emb[f"s{f}{k}a"] = v / np.linalg.norm(v)
            w = v + rng.normal(scale=0.05, size=8)
            emb[f"s{f}{k}b"] = w / np.linalg.norm(w)
            pairs.append(Pair(f, f"s{f}{k}a", f"s{f}{k}b", True))
            pairs.append(Pair(f, f"s{f}{k}a", f"s{(f + 1) % 3}{k}b", False))
    dist, acc, thr = evaluate_pairs(pairs, emb)
    assert acc.tolist() == [1.0, 1.0, 1.0] and len(thr) == 3
    emb["s00a"] = None  # a photo without a face: its same pair fails, its different pair is right
    dist, acc, _ = evaluate_pairs(pairs, emb)
    assert np.isinf(dist[0]) and acc[0] == pytest.approx(19 / 20)


def test_bcubed_scores_of_known_clusterings():
    from facebank.evaluate.metrics import bcubed

    truth = ["a", "a", "a", "b", "b", "c"]
    perfect = bcubed([0, 0, 0, 1, 1, -1], truth)
    assert (perfect.precision, perfect.recall, perfect.f1) == (1.0, 1.0, 1.0)
    one = bcubed([0] * 6, truth)  # everything together: recall 1, precision (3*3/6 + 2*2/6 + 1/6)/6
    assert one.recall == 1.0 and abs(one.precision - (9 + 4 + 1) / 36) < 1e-12
    alone = bcubed([-1] * 6, truth)  # everyone alone: precision 1, recall (3*(1/3) + 2*(1/2) + 1)/6
    assert alone.precision == 1.0 and abs(alone.recall - 3 / 6) < 1e-12
    assert abs(alone.f1 - 2 * 0.5 / 1.5) < 1e-12
