"""Classifiers behind one interface: fit, rank, say unknown, record training curves, save and load."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from facebank.learn import classifiers
from facebank.learn.classifiers import ClassifierSpec, MlpClassifier, available, create, parse_names
from facebank.learn.models import ModelFileError, ModelMismatch, load_model, read_header, save_model
from facebank.settings import Settings


def _clusters(people: int = 6, per: int = 20, dim: int = 32, spread: float = 0.25, seed: int = 0):
    """Unit vectors around ``people`` random unit centres (noise ``spread`` per coordinate scale)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x, y = [], []
    for k in range(people):
        pts = centres[k] + rng.normal(scale=spread / np.sqrt(dim), size=(per, dim))
        x.append(pts / np.linalg.norm(pts, axis=1, keepdims=True))
        y += [f"person {k}"] * per
    return np.concatenate(x).astype(np.float32), np.array(y, dtype=object), centres


def test_registry_lists_every_classifier_and_rejects_unknown_names():
    assert {"centroid", "knn", "svm", "svm-rbf", "mlp"} <= set(available())
    assert parse_names("all") == available()
    assert parse_names("svm, knn") == ["svm", "knn"]
    with pytest.raises(ValueError, match="unknown classifier"):
        create("forest")
    with pytest.raises(ValueError, match="unknown classifier"):
        parse_names("svm,forest")


@pytest.mark.parametrize("name", ["centroid", "knn", "svm", "svm-rbf", "mlp"])
def test_each_classifier_names_held_out_faces_of_separated_people(name):
    x, y, _ = _clusters(seed=1)
    test = np.arange(len(y)) % 4 == 0
    clf = create(name).fit(x[~test], y[~test])
    preds = clf.predict(x[test])
    acc = np.mean([p.name == t for p, t in zip(preds, y[test], strict=True)])
    assert acc >= 0.95, f"{name}: {acc}"
    assert all(p.ranking[0] == p.candidate and len(p.ranking) == 5 for p in preds)
    assert clf.scores(x[test]).shape == (test.sum(), 6)


@pytest.mark.parametrize("name", ["centroid", "knn", "svm", "mlp"])
def test_faces_far_from_everyone_are_unknown_and_known_faces_are_not(name):
    x, y, centres = _clusters(seed=2)
    clf = create(name, threshold=0.6).fit(x, y)
    rng = np.random.default_rng(3)
    strangers = rng.normal(size=(30, x.shape[1]))  # random directions: far from every centre
    assert all(p.name is None for p in clf.predict(strangers))
    assert all(p.candidate in clf.people for p in clf.predict(strangers))
    known = clf.predict(x[::7])
    assert all(p.name == t for p, t in zip(known, y[::7], strict=True))
    # the threshold argument overrides the classifier's own
    assert all(p.name is not None for p in clf.predict(strangers, threshold=10.0))


def test_distance_gate_is_l2_between_unit_vectors():
    x = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0]], np.float32)
    clf = create("knn", k=1).fit(x, ["a", "a", "b"])
    top, dist = clf.decide(np.array([[0, 0, 1]], np.float32))
    assert dist[0] == pytest.approx(np.sqrt(2), abs=1e-5)  # orthogonal unit vectors
    c = create("centroid").fit(x, ["a", "a", "b"])
    assert c.decide(np.array([[0, 1, 0]], np.float32))[1][0] == pytest.approx(0.0, abs=1e-5)


def test_mlp_records_train_and_validation_curves():
    x, y, _ = _clusters(seed=4)
    clf = MlpClassifier(hidden=(64,), max_epochs=20)
    clf.fit(x, y)
    h = clf.history
    assert [r.epoch for r in h] == list(range(1, len(h) + 1)) and len(h) >= 2
    assert all(r.val_loss is not None and r.val_accuracy is not None for r in h)
    assert h[-1].train_loss < h[0].train_loss
    assert 1 <= clf.best_epoch <= len(h)


def test_mlp_stops_early_when_validation_loss_stops_improving_and_keeps_the_best_epoch():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(200, 16)).astype(np.float32)
    y = rng.choice(["a", "b", "c"], size=200)  # random labels: it can only overfit
    clf = MlpClassifier(hidden=(128,), max_epochs=200, patience=5, learning_rate=1e-2).fit(x, y)
    h = clf.history
    assert len(h) < 200, "early stopping should end training before max_epochs"
    assert clf.best_epoch < len(h)
    assert h[-1].train_loss < h[clf.best_epoch - 1].train_loss  # it went on fitting the noise...
    assert h[-1].val_loss > h[clf.best_epoch - 1].val_loss  # ...while validation got worse


def test_standardisation_is_fit_on_training_data_only():
    x, y, _ = _clusters(seed=5)
    clf = create("svm").fit(x[:60], y[:60])
    scaler = clf.model.steps[0][1]
    np.testing.assert_allclose(scaler.mean_, x[:60].mean(axis=0), atol=1e-5)
    mlp = MlpClassifier(hidden=(16,), max_epochs=5).fit(x, y)
    # the MLP holds a validation part out of its training data: its scaler saw only the rest
    assert not np.allclose(mlp.scaler.mean_, x.mean(axis=0), atol=1e-7)


def test_unfitted_classifier_refuses_to_predict():
    with pytest.raises(RuntimeError, match="not fitted"):
        create("centroid").predict(np.ones((1, 4)))


def test_saved_model_round_trips_and_refuses_other_models(tmp_path):
    x, y, _ = _clusters(seed=6)
    clf = ClassifierSpec("svm").build().fit(x, y)
    clf.threshold = 0.55
    path = tmp_path / "m.model"
    settings = Settings(embedder="dlib", crop_fallback="always")
    header = save_model(path, clf, settings)
    assert header["format_version"] == 2 and header["model_id"] == "dlib-resnet-v1"
    assert read_header(path)["people"] == clf.people
    loaded = load_model(path, model_id="dlib-resnet-v1", pipeline_key=settings.pipeline_key())
    assert loaded.threshold == 0.55
    np.testing.assert_allclose(loaded.classifier.scores(x[:5]), clf.scores(x[:5]))
    with pytest.raises(ModelMismatch, match="trained on"):
        load_model(path, model_id="some-other-net")
    with pytest.raises(ModelMismatch, match="pipeline settings"):
        load_model(path, pipeline_key=Settings(crop_fallback="never").pipeline_key())


def test_files_that_are_not_models_or_of_another_version_are_refused(tmp_path):
    bad = tmp_path / "x.model"
    bad.write_bytes(b"\x80\x04not a model")
    with pytest.raises(ModelFileError, match="not a facebank classifier"):
        load_model(bad)
    x, y, _ = _clusters(people=3, seed=7)
    good = tmp_path / "g.model"
    save_model(good, create("centroid").fit(x, y), Settings())
    data = good.read_bytes().replace(b'"format_version": 2', b'"format_version": 99', 1)
    future = tmp_path / "f.model"
    future.write_bytes(data)
    with pytest.raises(ModelFileError, match="format version 99"):
        load_model(future)


def test_classifier_base_is_the_common_interface():
    for name in available():
        assert isinstance(create(name), classifiers.Classifier)


@pytest.mark.parametrize("name", ["centroid", "knn", "svm", "svm-rbf", "mlp"])
def test_every_classifier_round_trips_through_a_model_file(tmp_path, name):
    x, y, _ = _clusters(people=3, seed=8)
    clf = create(name).fit(x, y)
    path = tmp_path / f"{name}.model"
    save_model(path, clf, Settings())
    loaded = load_model(path).classifier
    assert type(loaded) is type(clf) and loaded.people == clf.people
    np.testing.assert_allclose(loaded.scores(x[:7]), clf.scores(x[:7]), rtol=1e-6)
    assert [p.name for p in loaded.predict(x[:7], threshold=0.8)] == [p.name for p in clf.predict(x[:7], 0.8)]
    assert path.read_bytes().split(b"\n", 2)[2][:2] == b"PK"  # the payload is a skops (zip) archive


class _Evil:
    """Unpickling this writes a file: what an attacker's model file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "pwned"))


def _header(version: int) -> bytes:
    from facebank.learn.models import MAGIC

    header = {"format_version": version, "kind": "facebank-classifier", "model_id": "dlib-resnet-v1",
              "pipeline_key": Settings().pipeline_key(), "pipeline": {}, "classifier": "centroid",
              "people": ["a"], "threshold": 0.5}
    return MAGIC + json.dumps(header).encode() + b"\n"


def test_a_malicious_model_file_runs_nothing(tmp_path):
    marker = tmp_path / "pwned.txt"
    payload = pickle.dumps(_Evil(str(marker)))
    pickle.loads(payload)  # the payload is live: unpickling it does write the marker
    assert marker.read_text() == "pwned"
    marker.unlink()
    for version, match in ((1, "old facebank model.*pickle.*retrain"), (2, "damaged")):
        path = tmp_path / f"evil{version}.model"
        path.write_bytes(_header(version) + payload)
        with pytest.raises(ModelFileError, match=match):
            load_model(path)
        assert not marker.exists(), f"format {version}: loading ran code from the file"
    import joblib  # format 1 files as facebank wrote them (joblib) are refused too
    path = tmp_path / "joblib.model"
    buf = io.BytesIO()
    joblib.dump(_Evil(str(marker)), buf)
    path.write_bytes(_header(1) + buf.getvalue())
    with pytest.raises(ModelFileError, match="retrain"):
        load_model(path)
    assert not marker.exists()


def test_a_skops_payload_naming_a_function_is_refused(tmp_path):
    import skops.io as sio

    payload = sio.dumps({"people": ["a"], "hook": Path.write_text})
    path = tmp_path / "f.model"
    path.write_bytes(_header(2) + payload)
    with pytest.raises(ModelFileError, match="types a facebank model never has"):
        load_model(path)


def test_truncated_and_foreign_model_files_are_refused_with_a_clear_error(tmp_path):
    x, y, _ = _clusters(people=3, seed=9)
    good = tmp_path / "g.model"
    save_model(good, create("svm").fit(x, y), Settings())
    data = good.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, data.index(b"\n") + 5):
        bad = tmp_path / f"cut{cut}.model"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelFileError):
            load_model(bad)
    jpeg = tmp_path / "photo.model"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    with pytest.raises(ModelFileError, match="not a facebank classifier"):
        load_model(jpeg)
    with pytest.raises(ModelFileError, match="folder"):
        load_model(tmp_path)
