"""The Detector protocol and the registry of detectors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from facebank.types import Detection


@runtime_checkable
class Detector(Protocol):
    """Finds faces in an RGB uint8 image of shape (H, W, 3).

    Returns boxes in pixels of the image it was given, best first. Landmarks are optional: when a
    detector gives none, the pipeline runs dlib's 5-point shape predictor on the box.
    """

    name: str

    def detect(self, image: np.ndarray) -> list[Detection]: ...


_REGISTRY: dict[str, Callable[..., Detector]] = {}


def register(name: str) -> Callable[[Callable[..., Detector]], Callable[..., Detector]]:
    def deco(factory: Callable[..., Detector]) -> Callable[..., Detector]:
        _REGISTRY[name] = factory
        return factory

    return deco


def available() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def create(name: str, **options: Any) -> Detector:
    """Build the detector registered as ``name`` (e.g. 'hog', 'mmod', 'mtcnn', 'crop')."""
    _load_builtin()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(available())}") from None
    return factory(**options)


def _load_builtin() -> None:
    # Importing the modules registers them; each keeps its heavy imports inside.
    import importlib

    for mod in ("hog", "mmod", "crop", "mtcnn"):
        try:
            importlib.import_module(f"facebank.detect.{mod}")
        except ModuleNotFoundError as exc:  # a module not written yet, never a missing dependency
            if exc.name != f"facebank.detect.{mod}":
                raise
