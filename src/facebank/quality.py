"""Face quality (issue 21): one record per stored face, and the flag that keeps junk out of People.

Each detection gets a ``FaceQuality``: the shorter side of its box, blur of the aligned chip the
embedder sees (``audit.quality.blur_ratio``: 0 sharp .. 1 no detail), head turn from the landmarks
and the detector's score. ``flag_for`` calls a face 'not_face' (likely no face at all: MTCNN's false
faces on textures, fur, fabric) or 'low_quality' (too small or too blurred to recognise anyone).
Flagged faces are kept in the gallery, form no cluster and get no suggestion by default, and the
page shows them collapsed. The floors were chosen on a development half of the negatives and of
pins10 (bench/bench_quality.py), never on the halves it reports.

Size, blur, pose and score catch few false faces: most are small faceless photos that the automatic
crop fallback took whole, and MTCNN's own are sharp and scored high. So each embedding model may
ship a 'not a face' classifier (``faceness/<model id>.json``: logistic regression on its unit
embeddings, plain JSON, trained and its threshold chosen on development data by
``bench/bench_quality.py --write``); ``measure`` flags a face it scores above the threshold.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facebank.types import Detection, FaceQuality, Landmarks

log = logging.getLogger(__name__)

# one JSON file per embedding model id: a linear "not a face" classifier on its unit embeddings
FACENESS_DIR = Path(__file__).resolve().parent / "faceness"

# chosen on dev data by bench/bench_quality.py (grid search on the even halves of the negatives and
# of pins10 plus an LFW sample: most false faces flagged with at most 1.5 % of those real faces
# flagged). Blur no longer flags: on the raw photos of LFW it cost more real faces than it caught
# false ones. Most false faces are caught by the embedding model's classifier (FACENESS_DIR) instead.
MIN_SIDE_PX = 24.0         # shorter side of the box in photo pixels; below: too small to recognise
MAX_BLUR = 1.01            # blur ratio of the face on the chip; above: heavily blurred (1.01: off)
MTCNN_NOT_FACE = 0.90      # MTCNN probability below which a 'face' is likely none
MAX_YAW_NOT_FACE = 70.0    # landmarks that say the head is turned past this are no face's


@dataclass(frozen=True)
class FacenessModel:
    """A linear 'not a face' classifier on one model's unit embeddings: ``score = weights . e + bias``
    (logistic regression, positive = not a face); a face scoring above ``threshold`` is flagged
    'not_face'. Trained and its threshold chosen by bench/bench_quality.py on development data only."""

    model_id: str
    weights: np.ndarray = field(repr=False)
    bias: float
    threshold: float

    def score(self, embedding: np.ndarray) -> float:
        return float(np.dot(self.weights, np.asarray(embedding, np.float64).ravel()) + self.bias)


def faceness_path(model_id: str) -> Path:
    """The JSON file of ``model_id``'s classifier (unsafe characters of the id become '_')."""
    return FACENESS_DIR / (re.sub(r"[^A-Za-z0-9._-]", "_", model_id).lstrip(".") + ".json")


def parse_faceness(text: str, model_id: str) -> FacenessModel:
    """A ``FacenessModel`` from its JSON text; ValueError naming what is wrong."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"faceness file of {model_id!r} is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"faceness file of {model_id!r} is not a JSON object")
    if doc.get("model_id") != model_id:
        raise ValueError(f"faceness file is for model {doc.get('model_id')!r}, not {model_id!r}")
    w, b, t = doc.get("weights"), doc.get("bias"), doc.get("threshold")
    if not isinstance(w, list) or not w or not all(isinstance(x, int | float) for x in w):
        raise ValueError(f"faceness file of {model_id!r}: 'weights' must be a list of numbers")
    for name, x in (("bias", b), ("threshold", t)):
        if not isinstance(x, int | float) or isinstance(x, bool) or not math.isfinite(x):
            raise ValueError(f"faceness file of {model_id!r}: {name!r} must be a finite number")
    weights = np.asarray(w, np.float64)
    if not np.all(np.isfinite(weights)):
        raise ValueError(f"faceness file of {model_id!r}: 'weights' must be finite")
    assert isinstance(b, int | float) and isinstance(t, int | float)  # checked just above
    return FacenessModel(model_id, weights, float(b), float(t))


@functools.cache
def faceness_model(model_id: str) -> FacenessModel | None:
    """``model_id``'s 'not a face' classifier, or None when it has none (its faces are then never
    flagged 'not_face' by the embedding) or its file is damaged (logged once)."""
    path = faceness_path(model_id)
    if not model_id or not path.is_file():
        return None
    try:
        return parse_faceness(path.read_text(encoding="utf-8"), model_id)
    except (OSError, ValueError) as exc:
        log.warning("no 'not a face' check for model %s: %s", model_id, exc)
        return None


def not_face_by_embedding(embedding: np.ndarray | None, model_id: str | None) -> bool:
    """True when ``model_id``'s classifier calls ``embedding`` no face (False without a classifier,
    an embedding of another size or a non-finite one)."""
    if embedding is None or not model_id:
        return False
    model = faceness_model(model_id)
    e = np.asarray(embedding, np.float64).ravel()
    if model is None or e.shape != model.weights.shape or not np.all(np.isfinite(e)):
        return False
    return model.score(e) > model.threshold


def measure(det: Detection, landmarks: Landmarks | None, chip: np.ndarray, padding: float,
            embedding: np.ndarray | None = None, model_id: str | None = None,
            scale: float = 1.0) -> FaceQuality:
    """The quality record of one detection (``chip``: its aligned RGB chip, ``padding`` of the chip;
    ``embedding``: its unit embedding from ``model_id``, for the 'not a face' classifier, which also
    judges whole photos taken as a face by the automatic crop fallback: most false faces of a scan
    are small faceless photos taken whole; ``scale``: photo pixels per pixel of ``det``'s box)."""
    from facebank.face_measures import chip_measures, yaw_degrees

    blur = float(chip_measures(chip, padding)[0])
    yaw = yaw_degrees(landmarks)
    size = float(min(det.box.width, det.box.height)) * scale
    q = FaceQuality(size, blur, yaw, float(det.score))
    flag = flag_for(q, det.detector, det.fallback)
    if flag is None and not_face_by_embedding(embedding, model_id):
        flag = "not_face"
    return FaceQuality(q.size_px, q.blur, q.yaw_deg, q.detector_score, flag)


def flag_for(q: FaceQuality, detector: str, fallback: bool = False) -> str | None:
    """'not_face', 'low_quality' or None. A crop taken whole (``fallback``) is never flagged: the
    user said the photo is a face."""
    if fallback:
        return None
    if detector == "mtcnn" and q.detector_score < MTCNN_NOT_FACE:
        return "not_face"
    if q.yaw_deg is not None and abs(q.yaw_deg) > MAX_YAW_NOT_FACE:
        return "not_face"
    if q.size_px < MIN_SIDE_PX or (q.blur is not None and q.blur > MAX_BLUR):
        return "low_quality"
    return None
