"""The Embedder protocol and the registry of embedders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class ChipSpec:
    """How the aligned face chip an embedder expects is cut (dlib's get_face_chip convention).

    ``size`` is the chip's side in pixels and ``padding`` the fraction of the face's width added on
    each side (dlib's default 0.25 for its ResNet).
    """

    size: int = 150
    padding: float = 0.25
    # where the five points (left eye, right eye, nose tip, left and right mouth corner, as seen in the
    # photo) land, in chip pixels; None = the dlib chip layout (``padding`` applies then)
    template: tuple[tuple[float, float], ...] | None = None


# the 112x112 five-point template of ArcFace (insightface), also used by SFace and MobileFaceNet models
ARCFACE_TEMPLATE_112 = (
    (38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (41.5493, 92.3655), (70.7299, 92.2041),
)


def arcface_template(size: int) -> tuple[tuple[float, float], ...]:
    """The ArcFace template scaled to a ``size`` x ``size`` chip."""
    f = size / 112.0
    return tuple((x * f, y * f) for x, y in ARCFACE_TEMPLATE_112)


@runtime_checkable
class Embedder(Protocol):
    """Turns aligned face chips (N, size, size, 3) RGB uint8 into unit vectors (N, dim) float32.

    ``model_id`` names the model and its weights; embeddings of different ``model_id`` are never
    compared or stored together.
    """

    model_id: str
    dim: int
    chip: ChipSpec

    def embed(self, chips: np.ndarray) -> np.ndarray: ...


_REGISTRY: dict[str, Callable[..., Embedder]] = {}


def register(name: str) -> Callable[[Callable[..., Embedder]], Callable[..., Embedder]]:
    def deco(factory: Callable[..., Embedder]) -> Callable[..., Embedder]:
        _REGISTRY[name] = factory
        return factory

    return deco


def available() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def create(name: str, **options: Any) -> Embedder:
    """Build the embedder registered as ``name`` ('dlib', 'fast', 'onnx')."""
    _load_builtin()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown embedder {name!r}; choose one of {', '.join(available())}") from None
    return factory(**options)


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit: np.ndarray = x / np.maximum(norms, 1e-12)
    return unit


def embed_raw(raw: Callable[[np.ndarray], np.ndarray], chips: np.ndarray, flip: bool) -> np.ndarray:
    """Unit vectors from a model's raw descriptors; with ``flip``, the descriptors of the chip and
    of its mirror image are summed first (test-time augmentation)."""
    chips = np.asarray(chips)
    vecs = raw(chips)
    if flip and len(chips):
        vecs = vecs + raw(chips[:, :, ::-1, :])
    return l2_normalise(vecs)


def _load_builtin() -> None:
    import importlib

    for mod in ("dlib", "fast", "onnx"):
        try:
            importlib.import_module(f"facebank.embed.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name != f"facebank.embed.{mod}":
                raise
