"""Embedding cache and evaluation protocols on small subsets of the real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facebank.evaluate import cache as cache_mod
from facebank.evaluate import metrics
from facebank.evaluate.cache import EmbeddingCache, FacePolicy, embed_photos
from facebank.evaluate.protocols import (
    evaluate_fixed,
    evaluate_kfold,
    evaluate_open_set,
    evaluate_repeated,
    load_dataset,
)
from facebank.evaluate.study import gallery_size_study
from facebank.images import iter_image_files
from facebank.learn.classifiers import ClassifierSpec
from facebank.settings import Settings

pytestmark = pytest.mark.shared

SETTINGS = Settings(workers=1)


@pytest.fixture(scope="module")
def cache_path(tmp_path_factory) -> Path:
    # one file for every learn/evaluate/report test module of the session: photos are embedded once
    return tmp_path_factory.getbasetemp() / "facebank-learn-cache.db"


def subset(root: Path, dest: Path, per_person: int, people: int | None = None,
           extra: dict | None = None) -> Path:
    """A folder-per-person tree of symlinks to the first photos of each person of ``root``."""
    folders = sorted(p for p in root.iterdir() if p.is_dir())[:people]
    for folder in folders:
        (dest / folder.name).mkdir(parents=True, exist_ok=True)
        for photo in list(iter_image_files(folder))[:per_person]:
            (dest / folder.name / photo.name).symlink_to(photo)
    for person, photo in (extra or {}).items():
        (dest / person / photo.name).symlink_to(photo)
    return dest


def test_cache_embeds_each_photo_once_and_keeps_failures(faces_dir, tmp_path, monkeypatch):
    photos = list(iter_image_files(faces_dir / "5celeb" / "val"))[:3]
    no_face = sorted(iter_image_files(faces_dir / "detection_edge" / "no_face"))[:2]
    db = tmp_path / "c.db"
    with EmbeddingCache(db) as c:
        first = embed_photos(photos + no_face, SETTINGS, FacePolicy(), c)
    assert [e.ok for e in first] == [True, True, True, False, False]
    assert all(e.error == "no face found" for e in first[3:])
    assert all(abs(np.linalg.norm(e.embedding) - 1) < 1e-4 for e in first[:3])

    def boom(*a, **k):
        raise AssertionError("a cached photo was embedded again")

    monkeypatch.setattr(cache_mod, "_compute", boom)
    with EmbeddingCache(db) as c:
        again = embed_photos(photos + no_face, SETTINGS, FacePolicy(), c)
        assert c.count() == 5
    for a, b in zip(first, again, strict=True):
        assert a.error == b.error and a.box == b.box
        if a.ok:
            np.testing.assert_array_equal(a.embedding, b.embedding)
    # other pipeline settings or another face policy are other keys: computed, not reused
    with EmbeddingCache(db) as c, pytest.raises(AssertionError, match="embedded again"):
        embed_photos(photos[:1], SETTINGS.model_copy(update={"flip": not SETTINGS.flip}), FacePolicy(), c)
    with EmbeddingCache(db) as c, pytest.raises(AssertionError, match="embedded again"):
        embed_photos(photos[:1], SETTINGS, FacePolicy("central"), c)


def test_cache_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FACEBANK_CACHE_DIR", str(tmp_path / "x"))
    assert cache_mod.default_cache_path() == tmp_path / "x" / "embeddings.db"


def test_fixed_5celeb_split_names_the_validation_photos(faces_dir, cache_path):
    with EmbeddingCache(cache_path) as c:
        train = load_dataset(faces_dir / "5celeb" / "train", SETTINGS, FacePolicy(retry="mtcnn"), c)
        test = load_dataset(faces_dir / "5celeb" / "val", SETTINGS, FacePolicy(retry="mtcnn"), c)
    assert len(train.items) == 93 and len(test.items) == 25
    ev = evaluate_fixed(train, test, [ClassifierSpec("centroid"), ClassifierSpec("svm")])
    for name in ("centroid", "svm"):
        assert ev.results[name].top1[0] >= 0.96, ev.summary()
    s = ev.summary()
    assert s["protocol"] == "fixed" and set(s["results"]) == {"centroid", "svm"}


def test_photos_without_a_face_count_as_failures_not_dropped(faces_dir, tmp_path, cache_path):
    stone = sorted(iter_image_files(faces_dir / "detection_edge" / "no_face"))[0]
    root = subset(faces_dir / "5celeb" / "val", tmp_path / "d", per_person=5, people=2,
                  extra={"ben_afflek": stone})
    with EmbeddingCache(cache_path) as c:
        ds = load_dataset(root, SETTINGS, FacePolicy(), c)
    assert len(ds.items) == 11 and int((~ds.ok).sum()) == 1
    ev = evaluate_kfold(ds, [ClassifierSpec("centroid")], folds=2)
    res = ev.results["centroid"]
    truth, pred = res.pooled()
    assert len(truth) == 11, "every photo is tested once, the one without a face too"
    assert pred.count(metrics.FAILED) == 1
    assert res.summary()["failures"] == 1
    assert sum(t == p for t, p in zip(truth, pred, strict=True)) <= 10


def test_kfold_and_repeated_splits_report_mean_and_std_for_every_classifier(faces_dir, tmp_path, cache_path):
    root = subset(faces_dir / "5celeb" / "train", tmp_path / "d", per_person=9)
    with EmbeddingCache(cache_path) as c:
        ds = load_dataset(root, SETTINGS, FacePolicy(), c)
    specs = [ClassifierSpec("centroid"), ClassifierSpec("knn"), ClassifierSpec("mlp", {"max_epochs": 30})]
    ev = evaluate_kfold(ds, specs, folds=3)
    assert ev.splits == 3 and all(len(r.splits) == 3 for r in ev.results.values())
    assert ev.results["centroid"].top1[0] >= 0.85
    assert ev.results["mlp"].splits[0].history, "the MLP records its epochs"
    test_sets = [set(s.test_index.tolist()) for s in ev.results["centroid"].splits]
    assert set.union(*test_sets) == set(range(len(ds.items))) and sum(map(len, test_sets)) == len(ds.items)
    rep = evaluate_repeated(ds, specs[:1], repeats=3, test_fraction=0.3)
    assert rep.summary()["repeats"] == 3 and 0 <= rep.results["centroid"].top1[1] <= 0.5
    with pytest.raises(ValueError, match="at least 10 photos"):
        evaluate_kfold(ds, specs[:1], folds=10)


def test_open_set_reports_tar_at_far_and_a_threshold(faces_dir, tmp_path, cache_path):
    root = subset(faces_dir / "pins10", tmp_path / "d", per_person=12, people=4)
    with EmbeddingCache(cache_path) as c:
        ds = load_dataset(root, SETTINGS, FacePolicy(), c)
    ev = evaluate_open_set(ds, [ClassifierSpec("centroid"), ClassifierSpec("knn", {"k": 1})], known=2,
                           repeats=2)
    s = ev.summary()
    assert s["known"] == 2 and s["unknown"] == 2
    r = s["results"]["centroid"]
    assert 0.0 < r["threshold_at_far_1%"] < 1.2
    assert r["tar_at_far_1%"] >= 0.7, r
    run = ev.results["centroid"].runs[0]
    assert len(run.impostor) == 24 and len(run.genuine) == 12
    assert not set(run.known) & set(run.unknown)
    # the threshold really keeps the strangers out at that rate
    thr = ev.results["centroid"].runs[0].roc().threshold_at(0.01)
    assert np.mean(run.impostor <= thr) <= 0.01


def test_gallery_size_study_gives_a_curve_per_rule(faces_dir, tmp_path, cache_path):
    root = subset(faces_dir / "pins10", tmp_path / "d", per_person=12, people=4)
    with EmbeddingCache(cache_path) as c:
        ds = load_dataset(root, SETTINGS, FacePolicy(), c)
    study = gallery_size_study(ds, [1, 3, 6], repeats=2, test_per_person=4)
    for rule in ("centroid", "nearest"):
        n, m, s = study.curve(rule)
        assert n.tolist() == [1, 3, 6] and np.all((m >= 0) & (m <= 1)) and np.all(s >= 0)
        assert m[-1] >= 0.75
        assert study.summary()["results"][rule]["6"]["accuracy"] == pytest.approx(m[-1], abs=1e-5)
