"""The Gallery protocol: the authoritative store of people, photos, faces and enrollment runs.

A gallery holds embeddings of exactly one model (``model_id``); adding faces of another model
raises ``ModelMismatch``. Implementations: SQLite (embedded default), PostgreSQL + pgvector.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from facebank.types import PersonInfo


class GalleryError(RuntimeError):
    """A gallery operation that cannot be done, with a reason a person can act on."""


class ModelMismatch(GalleryError):
    """Embeddings of a different model than the gallery's."""


class PersonNotFound(GalleryError):
    pass


class PersonExists(GalleryError):
    pass


@dataclass(frozen=True, eq=False)
class FaceRecord:
    """One face to store: box in pixels [x1, y1, x2, y2], unit embedding, provenance."""

    box: tuple[float, float, float, float]
    embedding: np.ndarray
    detector: str
    detector_score: float
    fallback: bool = False
    landmarks: tuple[tuple[float, float], ...] | None = None


@dataclass(frozen=True)
class PhotoRecord:
    """One photo of one person: ``status`` is 'ok', 'no_face', 'multi_face', 'error'."""

    person: str
    path: str
    sha256: str
    size_bytes: int
    width: int
    height: int
    status: str
    reason: str | None = None


@dataclass(frozen=True, eq=False)
class Embeddings:
    """All stored embeddings: matrix (n, dim) float32 unit rows, person name per row, face ids."""

    vectors: np.ndarray
    names: tuple[str, ...]
    face_ids: np.ndarray


@runtime_checkable
class Gallery(Protocol):
    model_id: str | None

    def close(self) -> None: ...

    # people
    def people(self) -> list[PersonInfo]: ...
    def add_person(self, name: str) -> None: ...
    def remove_person(self, name: str) -> int: ...
    def rename_person(self, old: str, new: str) -> None: ...

    # photos and faces
    def has_photo(self, sha256: str, model_id: str) -> bool: ...
    def add_photos(self, items: Sequence[tuple[PhotoRecord, Sequence[FaceRecord]]], model_id: str,
                   run_id: int | None = None) -> int: ...
    def remove_photo(self, person: str, sha256: str) -> int: ...
    def photos(self, person: str) -> list[dict]: ...

    # runs
    def start_run(self, source: str, model_id: str, settings: str) -> int: ...
    def finish_run(self, run_id: int, status: str, counts: dict[str, int]) -> None: ...

    # search data
    def embeddings(self) -> Embeddings: ...
    def version(self) -> int: ...

    def on_change(self, callback: Callable[[], None]) -> None: ...


def validate_name(name: str) -> str:
    """A person's name: any Unicode letters, digits, spaces and punctuation, but no path tricks."""
    import unicodedata

    if not isinstance(name, str):
        raise GalleryError("a name must be text")
    clean = unicodedata.normalize("NFC", name).strip()
    if not clean:
        raise GalleryError("a name cannot be empty")
    if len(clean) > 200:
        raise GalleryError("a name can be at most 200 characters")
    if clean in (".", "..") or any(c in clean for c in "/\\\x00"):
        raise GalleryError(f"invalid name {name!r}: no slashes, backslashes or '.'/'..'")
    if any(unicodedata.category(c).startswith("C") for c in clean):
        raise GalleryError(f"invalid name {name!r}: no control characters")
    return clean
