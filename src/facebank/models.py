"""Where the shipped model files are, found without importing their packages.

``face_recognition_models`` imports the deprecated ``pkg_resources`` at import time and ``mtcnn``
imports TensorFlow, so neither is imported: ``importlib.util.find_spec`` gives the package folder
without running its ``__init__``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path


class ModelFileMissing(RuntimeError):
    """A model file that should ship inside an installed package is not there."""


def package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileMissing(
            f"The package {package!r} is not installed; install facebank with its dependencies "
            f"(pip install facebank) to get the model files it ships."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def dlib_model(name: str) -> Path:
    """Path of a file in face_recognition_models/models, e.g. 'shape_predictor_5_face_landmarks.dat'."""
    path = package_dir("face_recognition_models") / "models" / name
    if not path.is_file():
        raise ModelFileMissing(f"{path} is missing: reinstall face_recognition_models")
    return path


def mtcnn_weights(stage: str) -> Path:
    """Path of the MTCNN weights for 'pnet', 'rnet' or 'onet' shipped by the mtcnn package."""
    path = package_dir("mtcnn") / "assets" / "weights" / f"{stage}.lz4"
    if not path.is_file():
        raise ModelFileMissing(f"{path} is missing: reinstall mtcnn")
    return path


RESNET = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE5 = "shape_predictor_5_face_landmarks.dat"
MMOD = "mmod_human_face_detector.dat"


@functools.lru_cache(maxsize=16)
def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
