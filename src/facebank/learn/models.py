"""Saved classifiers: versioned files that name the embedder and pipeline settings they need.

A model file is data, never code. Layout: a magic line ``FACEBANK-CLASSIFIER``, one line of JSON
(the header: format_version, model_id, pipeline settings, face policy, classifier, people,
threshold, ...), then the fitted state as a skops archive: NumPy arrays, plain values and
scikit-learn estimators, loaded with skops' safe loader and an explicit list of trusted types
(``TRUSTED_TYPES``, on top of skops' defaults); nothing in the file names a class to build or a
function to call. The classifier object is built from facebank's own registry by the header's
``classifier`` name and given that state. The header is checked first, so a file made for another
model, pipeline or format version is refused before its payload is read.

Format 1 (facebank before this change) was a pickle, which runs code when loaded: such files are
refused, with how to retrain them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebank.evaluate.cache import FacePolicy, model_id_for
from facebank.learn.classifiers import Classifier, EpochRecord, create
from facebank.settings import Settings

log = logging.getLogger(__name__)

MAGIC = b"FACEBANK-CLASSIFIER\n"
FORMAT_VERSION = 2
PICKLE_FORMAT_VERSION = 1  # joblib pickles: refused
MAX_HEADER_BYTES = 1 << 20
# types a payload may hold beyond skops' defaults (builtins, NumPy, scikit-learn estimators):
# the optimiser state that scikit-learn's MLPClassifier keeps after training
TRUSTED_TYPES = (
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
)
RETRAIN = "retrain it with 'facebank train FOLDER --out FILE'"
# the settings that change the embedding of a photo: a model needs exactly these at identify time
PIPELINE_FIELDS = tuple(f for f in ("detector", "upsample", "min_face", "mtcnn_min_face", "crop_fallback",
                                    "crop_fallback_max_side", "detect_max_side", "flip")
                        if f in Settings.model_fields)


class ModelFileError(ValueError):
    """Not a facebank classifier file, or one of an unsupported format version."""


class ModelMismatch(ValueError):
    """The classifier was trained on embeddings of another model or another pipeline."""


@dataclass
class SavedModel:
    header: dict
    classifier: Classifier
    user_threshold: float | None = None  # a threshold the user set, overriding the calibrated one

    @property
    def model_id(self) -> str:
        return self.header["model_id"]

    @property
    def pipeline_key(self) -> str:
        return self.header["pipeline_key"]

    @property
    def threshold(self) -> float | None:
        return self.header.get("threshold")

    def settings(self, base: Settings | None = None) -> Settings:
        """``base`` with the pipeline settings this model was trained with."""
        return (base or Settings()).model_copy(update=self.header["pipeline"])


def save_model(path: str | Path, clf: Classifier, settings: Settings, policy: FacePolicy | None = None,
               extra: dict | None = None) -> dict:
    """Write ``clf`` with its header; returns the header."""
    import skops.io as sio

    from facebank import __version__ as version

    policy = policy or FacePolicy()
    header = {
        "format_version": FORMAT_VERSION,
        "kind": "facebank-classifier",
        "model_id": model_id_for(settings),
        "pipeline_key": settings.pipeline_key(),
        "pipeline": {k: getattr(settings, k) for k in PIPELINE_FIELDS},
        "face_policy": {"choose": policy.choose, "fallback_box": policy.fallback_box, "retry": policy.retry,
                        "landmarks": policy.landmarks, "jitter": policy.jitter},
        "classifier": clf.name,
        "params": clf.params(),
        "people": list(clf.people),
        "threshold": clf.threshold,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "facebank_version": version,
        **(extra or {}),
    }
    payload = sio.dumps(classifier_state(clf), compression=zipfile.ZIP_DEFLATED)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(MAGIC)
        f.write(json.dumps(header, ensure_ascii=False).encode() + b"\n")
        f.write(payload)
    tmp.replace(path)
    return header


def classifier_state(clf: Classifier) -> dict:
    """The fitted state of ``clf`` as plain data (what a model file stores)."""
    state = dict(vars(clf))
    state["history"] = [dataclasses.asdict(h) for h in clf.history]
    return state


def classifier_from_state(name: str, state: dict) -> Classifier:
    """A classifier of the registered kind ``name`` with ``state`` (from ``classifier_state``)."""
    clf = create(name)
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise ModelFileError("the payload is not a classifier state")
    state = dict(state)
    state["history"] = [EpochRecord(**h) for h in state.get("history") or []]
    unknown = set(state) - set(vars(clf)) - _fitted_attributes(clf)
    if unknown:
        raise ModelFileError(f"the payload has fields a {name} classifier does not: {sorted(unknown)}")
    people, x, y = state.get("people"), state.get("_train_x"), state.get("_train_y")
    if not (isinstance(people, list) and all(isinstance(p, str) for p in people)
            and isinstance(x, np.ndarray) and x.ndim == 2 and isinstance(y, np.ndarray)
            and y.shape == (x.shape[0],) and y.dtype.kind in "iu" and len(people) > 0
            and (len(y) == 0 or (int(y.min()) >= 0 and int(y.max()) < len(people)))):
        raise ModelFileError("the payload's people and training faces are not a fitted classifier's")
    vars(clf).update(state)
    return clf


def _fitted_attributes(clf: Classifier) -> set[str]:
    return {"centroids", "model", "scaler", "best_epoch", "_single"}


def read_header(path: str | Path) -> dict:
    """The JSON header of a model file; ModelFileError for anything else (FileNotFoundError when
    there is no file)."""
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a facebank model file")
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise ModelFileError(f"{path} is not a facebank classifier file "
                                 "(train one with 'facebank train FOLDER --out FILE')")
        line = f.readline(MAX_HEADER_BYTES)
    try:
        header = json.loads(line)
    except ValueError as exc:
        raise ModelFileError(f"{path}: unreadable header ({exc}); the file is damaged: {RETRAIN}") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: unreadable header; the file is damaged: {RETRAIN}")
    version = header.get("format_version")
    if version == PICKLE_FORMAT_VERSION:
        raise ModelFileError(f"{path} is an old facebank model (format 1, a pickle: loading it could run "
                             f"code from the file), so it is not loaded; {RETRAIN}")
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{path} has format version {version}; this facebank reads version "
                             f"{FORMAT_VERSION}: {RETRAIN}")
    for key in ("model_id", "pipeline_key", "pipeline", "classifier", "people"):
        if key not in header:
            raise ModelFileError(f"{path}: the header has no {key!r}; {RETRAIN}")
    if not isinstance(header["pipeline"], dict) or not set(header["pipeline"]) <= set(PIPELINE_FIELDS):
        raise ModelFileError(f"{path}: the header's pipeline settings are not facebank's; {RETRAIN}")
    return header


def load_model(path: str | Path, model_id: str | None = None, pipeline_key: str | None = None) -> SavedModel:
    """Read a classifier file; refuse it when it needs another ``model_id`` or ``pipeline_key``.

    Never runs code from the file (see the module's doc)."""
    import skops.io as sio

    header = read_header(path)
    if model_id is not None and header["model_id"] != model_id:
        raise ModelMismatch(f"{path} was trained on {header['model_id']!r} embeddings, but the embedder "
                            f"here is {model_id!r}")
    if pipeline_key is not None and header["pipeline_key"] != pipeline_key:
        raise ModelMismatch(f"{path} was trained with pipeline settings {header['pipeline_key']!r}, not "
                            f"{pipeline_key!r}")
    with open(path, "rb") as f:
        f.read(len(MAGIC))
        f.readline(MAX_HEADER_BYTES)
        payload = f.read()
    try:
        untrusted = sio.get_untrusted_types(data=payload)
        refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
        if refused:
            raise ModelFileError(f"{path}: the payload holds types a facebank model never has "
                                 f"({', '.join(refused)}); not loaded")
        state = sio.loads(payload, trusted=list(untrusted))
        clf = classifier_from_state(str(header["classifier"]), state)
    except ModelFileError:
        raise
    except Exception as exc:  # a damaged or foreign payload: skops and zipfile raise many kinds
        raise ModelFileError(f"{path}: the model data is damaged or not facebank's "
                             f"({type(exc).__name__}: {exc}); {RETRAIN}") from None
    if list(clf.people) != header["people"]:
        raise ModelFileError(f"{path}: the payload does not match its header")
    return SavedModel(header, clf)


def attach_classifier(fb, path: str | Path) -> SavedModel:
    """Make ``fb`` (a FaceBank) name faces with the classifier in ``path`` instead of its gallery.

    The FaceBank takes the model's pipeline settings (a model only works on embeddings made the way
    it was trained), unless its pipeline is already built with other ones (then ModelMismatch).
    The unknown threshold is, in order: an explicit ``threshold`` argument, a non-default
    ``settings.threshold``, the model's calibrated threshold, the default ``settings.threshold``.
    """
    header = read_header(path)
    wanted = {k: header["pipeline"].get(k, getattr(fb.settings, k)) for k in PIPELINE_FIELDS}
    current = {k: getattr(fb.settings, k) for k in PIPELINE_FIELDS}
    if wanted != current:
        if getattr(fb, "_pipeline", None) is not None:
            raise ModelMismatch(f"{path} needs pipeline settings {wanted}, the running pipeline has "
                                f"{current}")
        changed = {k: v for k, v in wanted.items() if current[k] != v}
        log.info("using the model's pipeline settings %s", changed)
        fb.settings = fb.settings.model_copy(update=wanted)
    saved = load_model(path, model_id=model_id_for(fb.settings), pipeline_key=fb.settings.pipeline_key())
    saved.user_threshold = fb.settings.threshold  # None unless the user set one
    fb.classifier = saved  # FaceBank.name_faces consults it
    return saved


def name_with_classifier(fb, saved: SavedModel, photo, threshold: float | None = None):
    """PhotoFaces -> PhotoResult named by ``saved``'s classifier (the FaceBank.name_faces contract)."""
    from facebank.embed.points import points_for
    from facebank.identify import cosine_from_l2
    from facebank.types import IdentifiedFace, Match, PhotoResult

    if photo.error is not None:
        return PhotoResult(photo.path, (), photo.error, photo.width, photo.height)
    faces = list(photo.faces)
    if not faces:
        return PhotoResult(photo.path, (), None, photo.width, photo.height)
    if faces[0].model_id and faces[0].model_id != saved.model_id:
        raise ModelMismatch(f"the classifier needs {saved.model_id!r} embeddings, got {faces[0].model_id!r}")
    candidates = (threshold, saved.user_threshold, saved.threshold)
    thr = next((t for t in candidates if t is not None), None)
    if thr is None:  # the model's own threshold for the nearest-face distance
        thr = points_for(saved.model_id).identify_l2
    preds = saved.classifier.predict(np.stack([f.embedding for f in faces]), threshold=thr)
    # one person at most once per photo: the closest face keeps the name
    names = [p.name for p in preds]
    for name in {n for n in names if n is not None}:
        holders = [i for i, n in enumerate(names) if n == name]
        keep = min(holders, key=lambda i: preds[i].distance)
        for i in holders:
            if i != keep:
                names[i] = None
    def reason(p, n: str | None) -> str | None:
        return None if n is not None else "no_match" if p.name is None else "taken"

    named = tuple(
        IdentifiedFace(f, Match(name=n, distance=p.distance, score=cosine_from_l2(p.distance),
                                candidate=p.candidate, reason=reason(p, n)))
        for f, p, n in zip(faces, preds, names, strict=True)
    )
    return PhotoResult(photo.path, named, None, photo.width, photo.height)
