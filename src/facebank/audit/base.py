"""What an audit works with: the facts of every photo, the findings, and the registry of checks.

A check is anything with a ``kind`` family name and ``run(folder) -> Iterable[Finding]``; each module
of this package registers the checks of one family of findings (faces, duplicates, identity,
quality). ``audit_folder`` (in ``run.py``) computes the facts once and runs every registered check.

Units: face sizes in pixels of the photo; distances are L2 between unit embeddings (0 = identical,
2 = opposite); yaw in degrees; luma 0-255 (Rec. 601); confidence is 0-1 (how sure the audit is
that the finding is real, not a probability calibrated on any data set).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

import numpy as np

from facebank.embed.points import OperatingPoints
from facebank.types import Box, Landmarks

# every kind of finding, in the order reports list them
KINDS = (
    "unreadable", "duplicate", "label_conflict", "no_face", "multi_face", "mislabeled", "outlier",
    "small_face", "blurry", "dark", "bright", "profile", "cut",
)


@dataclass(frozen=True)
class Finding:
    """One thing worth a look in a labelled folder.

    ``path``: the photo (as found under the audited folder). ``kind``: one of ``KINDS``.
    ``detail``: one sentence a person can act on. ``confidence``: 0-1, how sure the audit is.
    ``person``: the folder (label) the photo is in; ``suggestion``: for ``mislabeled`` the likely
    person; ``related``: other photos the finding is about (the other copies of a duplicate).
    """

    path: str
    kind: str
    detail: str
    confidence: float
    person: str | None = None
    suggestion: str | None = None
    related: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"path": self.path, "kind": self.kind, "detail": self.detail,
                "confidence": round(float(self.confidence), 3)}


@dataclass(frozen=True)
class AuditConfig:
    """Thresholds of the audit. None was fitted on the data the README reports: each default comes
    from a rule stated beside it (see the README section "Audit a labelled folder")."""

    # duplicates: pHash (64 bits) Hamming distance at most this AND embeddings this close
    dup_hash_bits: int = 8            # 1/8 of the bits: the usual near-duplicate bound for pHash
    dup_distance: float | None = None  # None = the model's duplicate_l2 (its verify threshold). Not
    #   "near 0": a copy at half size or JPEG quality 35 moves a small face's embedding by up to
    #   0.35 (measured on 5celeb, see the README); the hash says "the same picture"
    dup_hash_bits_no_face: int = 4    # photos without a face: the hash alone, stricter
    dup_correlation: float = 0.95     # and their 32x32 grey thumbnails agree pixel for pixel: copies
    #   measured >= 0.999 (5celeb, LFW, kpop15 at 40-90 % size, JPEG 20-60), other photos of one person
    #   with close hashes <= 0.72; face crops share a layout, so the hash alone is not enough
    # faces
    multi_face_ratio: float = 0.5     # a second face at least half the side of the largest counts
    small_face_px: int = 50           # the 150 px chip (face = 100 px of it) is upsampled > 2x below this
    blur_threshold: float = 0.59      # re-blur ratio (Crete et al. 2007) of the chip: the equal-error
    #   point between faces as they are and blurred by 2 px, on 5celeb + LFW (calibrate_audit_blur.py)
    # exposure from the face's own highlights and shadows, not its mean (which is skin tone as much
    # as light): dark = even its brightest 5 % (forehead, nose) under 90, below middle grey (118);
    # bright = even its darkest 5 % (eyes, brows, nostrils) over 170, a stop above middle grey
    dark_luma: float = 90.0
    bright_luma: float = 170.0
    profile_yaw_deg: float = 45.0     # beyond half-way to a full profile
    cut_fraction: float = 0.10        # more than a tenth of the face square outside the photo
    # identity (leave-one-out against the other photos of the folder)
    neighbours: int = 7               # k nearest other photos that vote for a face's person
    same_person: float | None = None  # None = the model's same_person_l2 (its verify threshold)
    outlier_distance: float | None = None  # None = the model's outlier_l2: farther is nobody's face here
    # no_face is a claim that a photo shows nobody: before making it, look again where MTCNN found
    # nothing (Settings.second_look) with dlib's MMOD on the shrunk photo, the default second look of
    # scan and enroll too (bench/bench_cascade.py); "" keeps the user's setting as it is
    second_look: str = "mmod"

    def with_points(self, points: OperatingPoints) -> AuditConfig:
        """This config with every distance left unset taken from a model's operating points."""
        return replace(
            self, dup_distance=points.duplicate_l2 if self.dup_distance is None else self.dup_distance,
            same_person=points.same_person_l2 if self.same_person is None else self.same_person,
            outlier_distance=points.outlier_l2 if self.outlier_distance is None else self.outlier_distance)

    @property
    def resolved(self) -> bool:
        return None not in (self.dup_distance, self.same_person, self.outlier_distance)


@dataclass(frozen=True, eq=False)
class FaceFacts:
    """One detected face: where it is, its embedding and how good a picture of a face it is."""

    box: Box
    landmarks: Landmarks | None
    detector_score: float
    embedding: np.ndarray = field(repr=False)
    fallback: bool = False
    sharpness: float = 0.0        # re-blur ratio, 0 = sharp .. 1 = flat (see quality.blur_ratio)
    luma: float = 0.0             # mean luma of the face, 0-255
    yaw_deg: float | None = None  # estimated from the landmarks; None without them
    outside: float = 0.0          # fraction of the face square outside the photo
    luma_low: float = 0.0         # its 5th percentile (the shadows of the face)
    luma_high: float = 255.0      # its 95th percentile (the highlights of the face)

    @property
    def side(self) -> float:
        return min(self.box.width, self.box.height)


@dataclass(frozen=True, eq=False)
class PhotoFacts:
    """Everything the checks need to know about one photo, computed once (and cached)."""

    path: str
    person: str
    sha256: str = ""
    width: int = 0
    height: int = 0
    phash: int | None = None          # 64-bit perceptual hash of the whole photo
    faces: tuple[FaceFacts, ...] = ()
    error: str | None = None
    size_bytes: int = 0
    thumb: bytes | None = field(default=None, repr=False)  # 32x32 grey uint8 of the whole photo


@dataclass(eq=False)
class AuditFolder:
    """The facts of every photo of a labelled folder plus what the checks derive from them once.

    ``main[i]`` is the index of the face of photo i taken to show its person (None: no usable face);
    ``embeddings`` holds one row per photo with a main face (``rows[i]`` is that row, or -1).
    """

    root: str
    photos: list[PhotoFacts]
    config: AuditConfig
    main: list[int | None] = field(default_factory=list)
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 128), np.float32))
    people: list[str] = field(default_factory=list)
    copies: dict[int, set[int]] = field(default_factory=dict)  # photo -> photos that are copies of it
    # photos whose only "face" is the whole photo (crop fallback) and that look like nobody of their
    # folder: photo -> L2 distance to the nearest photo of its person (they count as no face)
    rejected_fallback: dict[int, float] = field(default_factory=dict)

    def main_face(self, i: int) -> FaceFacts | None:
        k = self.main[i] if i < len(self.main) else None
        return None if k is None else self.photos[i].faces[k]


@runtime_checkable
class Check(Protocol):
    """A family of findings. ``kinds`` lists what it can report (for --help and the report)."""

    name: str
    kinds: tuple[str, ...]

    def run(self, folder: AuditFolder) -> Iterable[Finding]: ...


_REGISTRY: dict[str, Callable[[], Check]] = {}


def register(name: str) -> Callable[[Callable[[], Check]], Callable[[], Check]]:
    def deco(factory: Callable[[], Check]) -> Callable[[], Check]:
        _REGISTRY[name] = factory
        return factory

    return deco


def checks() -> list[Check]:
    """Every registered check, in a stable order."""
    import importlib

    for mod in ("faces", "duplicates", "identity", "quality"):
        importlib.import_module(f"facebank.audit.{mod}")
    return [_REGISTRY[n]() for n in sorted(_REGISTRY)]
