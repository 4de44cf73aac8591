"""Saved classifiers: versioned files that name the embedder and pipeline settings they need.

File layout: a magic line ``FACEBANK-CLASSIFIER``, one line of JSON (the header: format_version,
model_id, pipeline settings, face policy, classifier, people, threshold, ...), then the fitted
classifier as a joblib payload. The header is read and checked BEFORE the payload is unpickled, so
a file made for another model, another pipeline or another format version is refused without
running any of it. Load only files you trust: the payload is a pickle.
"""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebank.evaluate.cache import FacePolicy, model_id_for
from facebank.learn.classifiers import Classifier
from facebank.settings import Settings

log = logging.getLogger(__name__)

MAGIC = b"FACEBANK-CLASSIFIER\n"
FORMAT_VERSION = 1
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
    import joblib

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
    buf = io.BytesIO()
    joblib.dump(clf, buf, compress=3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(MAGIC)
        f.write(json.dumps(header, ensure_ascii=False).encode() + b"\n")
        f.write(buf.getvalue())
    tmp.replace(path)
    return header


def read_header(path: str | Path) -> dict:
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise ModelFileError(f"{path} is not a facebank classifier file "
                                 "(train one with 'facebank train')")
        try:
            header = json.loads(f.readline())
        except ValueError as exc:
            raise ModelFileError(f"{path}: unreadable header: {exc}") from None
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{path} has format version {version}; this facebank reads version "
                             f"{FORMAT_VERSION}: retrain it with 'facebank train'")
    return header


def load_model(path: str | Path, model_id: str | None = None, pipeline_key: str | None = None) -> SavedModel:
    """Read a classifier file; refuse it when it needs another ``model_id`` or ``pipeline_key``."""
    import joblib

    header = read_header(path)
    if model_id is not None and header["model_id"] != model_id:
        raise ModelMismatch(f"{path} was trained on {header['model_id']!r} embeddings, but the embedder "
                            f"here is {model_id!r}")
    if pipeline_key is not None and header["pipeline_key"] != pipeline_key:
        raise ModelMismatch(f"{path} was trained with pipeline settings {header['pipeline_key']!r}, not "
                            f"{pipeline_key!r}")
    with open(path, "rb") as f:
        f.read(len(MAGIC))
        f.readline()
        clf = joblib.load(f)
    if not isinstance(clf, Classifier) or list(clf.people) != header["people"]:
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
    default_thr = type(fb.settings).model_fields["threshold"].default
    saved.user_threshold = fb.settings.threshold if fb.settings.threshold != default_thr else None
    fb.classifier = saved  # FaceBank.name_faces consults it
    return saved


def name_with_classifier(fb, saved: SavedModel, photo, threshold: float | None = None):
    """PhotoFaces -> PhotoResult named by ``saved``'s classifier (the FaceBank.name_faces contract)."""
    from facebank.identify import cosine_from_l2
    from facebank.types import IdentifiedFace, Match, PhotoResult

    if photo.error is not None:
        return PhotoResult(photo.path, (), photo.error, photo.width, photo.height)
    faces = list(photo.faces)
    if not faces:
        return PhotoResult(photo.path, (), None, photo.width, photo.height)
    if faces[0].model_id and faces[0].model_id != saved.model_id:
        raise ModelMismatch(f"the classifier needs {saved.model_id!r} embeddings, got {faces[0].model_id!r}")
    candidates = (threshold, saved.user_threshold, saved.threshold, fb.settings.threshold)
    thr = next(t for t in candidates if t is not None)
    preds = saved.classifier.predict(np.stack([f.embedding for f in faces]), threshold=thr)
    # one person at most once per photo: the closest face keeps the name
    names = [p.name for p in preds]
    for name in {n for n in names if n is not None}:
        holders = [i for i, n in enumerate(names) if n == name]
        keep = min(holders, key=lambda i: preds[i].distance)
        for i in holders:
            if i != keep:
                names[i] = None
    named = tuple(
        IdentifiedFace(f, Match(name=n, distance=p.distance, score=cosine_from_l2(p.distance),
                                candidate=p.candidate))
        for f, p, n in zip(faces, preds, names, strict=True)
    )
    return PhotoResult(photo.path, named, None, photo.width, photo.height)
