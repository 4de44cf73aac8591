"""The Gallery protocol: the authoritative store of people, photos, faces and enrollment runs.

A gallery holds embeddings of exactly one model (``model_id``); adding faces of another model
raises ``ModelMismatch``. Implementations: SQLite (embedded default), PostgreSQL + pgvector.

People, photos and faces are one model. An enrolled photo is labelled with its person (its faces
belong to that person); a scanned photo (``PhotoRecord.person`` None) has no person and its faces
are *unassigned* until they are named (``name_cluster``, ``move_face``). Unassigned faces carry
the label of the last clustering (``set_clusters``); they are not in ``embeddings()`` (the faces
that name people), so they never name a face in ``identify``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from facebank.types import Face, FaceQuality, PersonInfo


class GalleryError(RuntimeError):
    """A gallery operation that cannot be done, with a reason a person can act on."""


class GalleryStorageError(GalleryError):
    """The disk refused a gallery operation (full, read-only, an I/O error, locked for too long); the
    transaction was rolled back and the gallery holds what it held before. The message names the
    gallery file, never its folder."""


class ModelMismatch(GalleryError):
    """Embeddings of a different model than the gallery's."""


class PersonNotFound(GalleryError):
    pass


class PersonExists(GalleryError):
    pass


class NotFound(GalleryError):
    """No face or cluster with that id."""


@dataclass(frozen=True, eq=False)
class FaceRecord:
    """One face to store: box in pixels [x1, y1, x2, y2], unit embedding, provenance."""

    box: tuple[float, float, float, float]
    embedding: np.ndarray
    detector: str
    detector_score: float
    fallback: bool = False
    landmarks: tuple[tuple[float, float], ...] | None = None
    quality: FaceQuality | None = None

    @classmethod
    def from_face(cls, face: Face) -> FaceRecord:
        """The record of a face found by the pipeline."""
        b = face.box
        return cls(box=(b.x1, b.y1, b.x2, b.y2), embedding=face.embedding, detector=face.detector,
                   detector_score=face.detector_score, fallback=face.fallback,
                   landmarks=face.landmarks.points if face.landmarks else None, quality=face.quality)


@dataclass(frozen=True)
class PhotoRecord:
    """One photo of one person (``person`` None: a scanned photo, its faces unassigned);
    ``status`` is 'ok', 'no_face', 'multi_face', 'error'."""

    person: str | None
    path: str
    sha256: str
    size_bytes: int
    width: int
    height: int
    status: str
    reason: str | None = None


@dataclass(frozen=True)
class StoredPhoto:
    """What the gallery remembers of a photo (by sha256): whose it is (None: a scanned photo of
    no one yet), where it was, how it went."""

    person: str | None
    path: str
    status: str
    reason: str | None = None
    run_id: int | None = None  # the enrollment run that stored it (None: unknown, or its run was removed)


@dataclass(frozen=True, eq=False)
class Embeddings:
    """All stored embeddings: matrix (n, dim) float32 unit rows, person name per row, face ids."""

    vectors: np.ndarray
    names: tuple[str, ...]
    face_ids: np.ndarray


@dataclass(frozen=True, eq=False)
class FaceSet:
    """Unassigned faces for clustering: ids (n,), unit embeddings (n, dim) float32, and the
    cluster of each from the last clustering (-1 = alone or not clustered yet)."""

    face_ids: np.ndarray
    vectors: np.ndarray
    clusters: np.ndarray

    def __len__(self) -> int:
        return len(self.face_ids)


@dataclass(frozen=True)
class FaceInfo:
    """One stored face with its photo: box in photo pixels [x1, y1, x2, y2]; ``person`` None =
    unassigned; ``cluster`` None = alone or not clustered; ``suggested`` = the person its cluster
    looks like (None = nobody under the threshold)."""

    face_id: int
    path: str
    sha256: str
    box: tuple[float, float, float, float]
    person: str | None
    cluster: int | None
    suggested: str | None


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
    def stored_photo(self, sha256: str, model_id: str) -> StoredPhoto | None: ...
    def add_photos(self, items: Sequence[tuple[PhotoRecord, Sequence[FaceRecord]]], model_id: str,
                   run_id: int | None = None) -> int: ...
    def remove_photo(self, person: str, sha256: str) -> int: ...
    def photos(self, person: str) -> list[dict[str, Any]]: ...

    # unassigned faces, clusters and naming (facebank.cluster); each change is ONE transaction
    def unassigned_faces(self) -> FaceSet: ...
    def set_clusters(self, labels: Mapping[int, int | None],
                     suggestions: Mapping[int, tuple[str, float]] | None = None) -> int: ...
    def faces(self, *, person: str | None = None, cluster: int | None = None, unassigned: bool = False,
              face_ids: Sequence[int] | None = None) -> list[FaceInfo]: ...
    def name_cluster(self, cluster: int, name: str) -> int: ...
    def move_face(self, face_id: int, name: str | None) -> None: ...
    def merge_people(self, source: str, target: str) -> int: ...
    def photos_with(self, names: Sequence[str]) -> list[dict[str, Any]]: ...

    # "this face is not that person" (a rejected suggestion): never suggested again
    def reject(self, face_ids: Sequence[int], name: str) -> int: ...
    def rejections(self, face_ids: Sequence[int] | None = None) -> dict[int, frozenset[str]]: ...

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
    if any(unicodedata.category(c).startswith("C") and c not in NAME_JOINERS for c in clean):
        raise GalleryError(f"invalid name {name!r}: no control or invisible formatting characters")
    if not any(unicodedata.category(c)[0] in "LNSP" for c in clean):
        raise GalleryError(f"invalid name {name!r}: it has no visible character")
    return clean


# zero-width non-joiner and joiner: part of Persian, Urdu, Indic spelling and of emoji sequences
NAME_JOINERS = frozenset({"\u200c", "\u200d"})


def name_key(name: str) -> str:
    """What makes two names the same person: equal after NFC normalisation and case folding."""
    import unicodedata

    return unicodedata.normalize("NFC", name).casefold()


def taken_message(other: str) -> str:
    return f"{other!r} is already in the gallery (names that differ only by case are one person)"
