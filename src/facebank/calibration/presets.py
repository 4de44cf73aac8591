"""Guess the card of an unknown face model from a labelled folder (``facebank models check --folder``).

The common face model families cut and normalise faces in a few standard ways; each preset below is
tried on the folder's photos (the same detected faces, aligned per preset) and the one with the
best verification accuracy over all pairs of photos wins. When no preset beats chance clearly
(``MIN_ACCURACY``), the card's fields stay unknown.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MIN_ACCURACY = 0.75
IMAGENET_MEAN = [123.675, 116.28, 103.53]
IMAGENET_STD = [58.395, 57.12, 57.375]
# family -> card fields (mean/std in 0-255 pixel units, per channel in ``channels`` order)
PRESETS: dict[str, dict] = {
    "arcface-insightface": {"mean": [127.5] * 3, "std": [127.5] * 3, "channels": "RGB",
                            "template": "arcface"},
    "arcface-insightface-bgr": {"mean": [127.5] * 3, "std": [127.5] * 3, "channels": "BGR",
                                "template": "arcface"},
    "arcface-imagenet": {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "channels": "RGB",
                         "template": "arcface"},
    "arcface-imagenet-bgr": {"mean": IMAGENET_MEAN[::-1], "std": IMAGENET_STD[::-1], "channels": "BGR",
                             "template": "arcface"},
    "sface": {"mean": [0.0] * 3, "std": [1.0] * 3, "channels": "BGR", "template": "arcface"},
    "facenet": {"mean": [127.5] * 3, "std": [128.0] * 3, "channels": "RGB", "padding": 0.1},
    "facenet-bgr": {"mean": [127.5] * 3, "std": [128.0] * 3, "channels": "BGR", "padding": 0.1},
}


@dataclass(frozen=True)
class PresetChoice:
    """The winning preset (None = unknown), its card fields and every preset's accuracy."""

    preset: str | None
    fields: dict
    accuracy: dict[str, float]
    faces: int


def _faces(folder: Path, limit: int) -> tuple[list, list[str]]:
    from facebank import detect, images
    from facebank.calibration.points import subset
    from facebank.evaluate.cache import labelled_photos

    det = detect.create("mtcnn")
    out, labels = [], []
    for person, path in subset(labelled_photos(folder), limit):
        try:
            img = images.load_image(path)
        except images.ImageError:
            continue
        found = [d for d in det.detect(img.rgb) if d.landmarks is not None]
        if found:
            best = max(found, key=lambda d: d.box.area)
            out.append((img.rgb, best))
            labels.append(person)
    return out, labels


def choose_preset(model: str | Path, folder: str | Path, graph_fields: dict,
                  limit: int = 200) -> PresetChoice:
    """Try every preset on up to ``limit`` photos of ``folder``; the best verification accuracy wins."""
    from facebank.align import align
    from facebank.embed.onnx import ModelCard, OnnxEmbedder
    from facebank.evaluate.metrics import best_accuracy_threshold

    faces, labels = _faces(Path(folder), limit)
    lab = np.asarray(labels, dtype=object)
    if len(set(labels)) < 2 or len(faces) < 4:
        raise ValueError(f"{folder}: need faces of two people or more to compare presets")
    a, b = np.triu_indices(len(faces), 1)
    same = lab[a] == lab[b]
    acc: dict[str, float] = {}
    for name, fields in PRESETS.items():
        card = ModelCard.from_dict({**graph_fields, **fields}, f"preset {name}")
        try:
            emb = OnnxEmbedder(model, card=card)
            chips = np.stack([align(rgb, d.box, d.landmarks, emb.chip) for rgb, d in faces])
            x = emb.embed(chips)
        except Exception as exc:  # noqa: BLE001 - a preset the model cannot take scores nothing
            log.info("preset %s failed: %s", name, exc)
            continue
        d = np.sqrt(np.maximum(2 - 2 * np.einsum("ij,ij->i", x[a], x[b]), 0))
        thr = best_accuracy_threshold(same, d)
        acc[name] = 0.5 * (float((d[same] <= thr).mean()) + float((d[~same] > thr).mean()))
    best = max(acc, key=acc.__getitem__) if acc else None
    if best is None or acc[best] < MIN_ACCURACY:
        return PresetChoice(None, {}, acc, len(faces))
    return PresetChoice(best, dict(PRESETS[best]), acc, len(faces))
