"""Small frozen result types shared by every stage.

Units are spelled out: boxes and landmarks are in pixels of the ORIGINAL photo (after EXIF
orientation), embeddings are L2-normalised float32 vectors, `distance` is always the Euclidean
(L2) distance between unit vectors (0 = identical, 2 = opposite) and `score` is always the cosine
similarity (1 = identical, -1 = opposite). For unit vectors ``score = 1 - distance**2 / 2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

Point = tuple[float, float]


@dataclass(frozen=True)
class Box:
    """Axis-aligned face box in pixels: (x1, y1) top-left inclusive, (x2, y2) bottom-right exclusive."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> Point:
        return ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)

    def scaled(self, factor: float) -> Box:
        """The box with every coordinate multiplied by ``factor`` (maps between image scales)."""
        return Box(self.x1 * factor, self.y1 * factor, self.x2 * factor, self.y2 * factor)

    def clipped(self, width: int, height: int) -> Box:
        return Box(
            min(max(self.x1, 0.0), width),
            min(max(self.y1, 0.0), height),
            min(max(self.x2, 0.0), width),
            min(max(self.y2, 0.0), height),
        )

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def as_list(self) -> list[int]:
        return [round(self.x1), round(self.y1), round(self.x2), round(self.y2)]


@dataclass(frozen=True)
class Landmarks:
    """Facial landmarks in pixels of the original photo.

    ``scheme`` names the point layout:
      * ``"dlib5"``: dlib's 5-point model (two corners of each eye, then the base of the nose).
      * ``"mtcnn5"``: left eye centre, right eye centre, nose tip, left and right mouth corner
        (left/right as seen in the image).
    """

    points: tuple[Point, ...]
    scheme: str

    def as_array(self) -> np.ndarray:
        return np.asarray(self.points, dtype=np.float64)


@dataclass(frozen=True)
class Detection:
    """One face found by a detector.

    ``score`` is the detector's own confidence (HOG/MMOD: SVM/CNN margin, MTCNN: probability);
    scores of different detectors are not comparable. ``fallback`` is True when no detector ran
    and the whole photo was taken as the face (the crop fallback for pre-cropped photos).
    """

    box: Box
    score: float
    detector: str
    landmarks: Landmarks | None = None
    fallback: bool = False


@dataclass(frozen=True)
class FaceQuality:
    """How good a picture of a face a detection is (issue 21): ``size_px`` the shorter side of its
    box in photo pixels, ``blur`` 0 (sharp) .. 1 (no detail) on the aligned chip, ``yaw_deg`` the head
    turn from the landmarks (0 frontal; None when the landmarks cannot tell), ``detector_score`` as
    the detector gave it, ``flag`` None (fine), 'low_quality' or 'not_face' (facebank.quality)."""

    size_px: float
    blur: float | None
    yaw_deg: float | None
    detector_score: float
    flag: str | None = None


@dataclass(frozen=True, eq=False)
class Face:
    """A detected face with its embedding (unit L2 norm, float32) from the model ``model_id``."""

    box: Box
    landmarks: Landmarks | None
    detector_score: float
    embedding: np.ndarray = field(repr=False)
    model_id: str = ""
    detector: str = ""
    fallback: bool = False
    quality: FaceQuality | None = None


@dataclass(frozen=True)
class Match:
    """The answer for one face.

    ``name`` is None for "unknown". ``distance`` is the L2 distance between unit embeddings to the
    chosen person (lower is closer; the decision is ``distance <= threshold``) and ``score`` the
    cosine similarity to that person (higher is closer). ``candidate`` is the nearest person even
    when the face was declared unknown. ``reason`` says why a face is unknown (None when named):
    ``empty_gallery`` (nobody to compare with: distance is infinite), ``no_match`` (the nearest
    person is farther than the threshold) or ``taken`` (the nearest person is within the threshold
    but was given to another face of the same photo, which is closer to them: one person appears
    once per photo).
    ``decision_score`` is the decision rule's own score (its
    unit depends on the rule, see ``facebank.decide``; lower = more alike; the face is named when it
    is at most the rule's threshold); None when the raw distance decided. ``faces_used``: for a group
    of faces (a video track, see ``facebank.groups``), the independent faces its name comes from.
    """

    name: str | None
    distance: float
    score: float
    candidate: str | None = None
    nearest_face_distance: float | None = None
    mean_distance: float | None = None
    decision_score: float | None = None
    reason: str | None = None
    faces_used: int | None = None  # a group of faces (video track): independent faces it was named from

    def explain(self) -> str:
        """Why the face is unknown, in words ('' when it is named)."""
        if self.reason == "empty_gallery":
            return "gallery is empty"
        if self.reason == "taken":
            return f"{self.candidate} is given to another face of this photo, closer to them"
        if self.reason == "no_match":
            return f"nearest: {self.candidate}, farther than the threshold"
        return ""


@dataclass(frozen=True, eq=False)
class IdentifiedFace:
    face: Face
    match: Match


@dataclass(frozen=True)
class PhotoResult:
    """What one photo yielded: its faces (possibly none) or a clear per-file error."""

    path: str
    faces: tuple[IdentifiedFace, ...] = ()
    error: str | None = None
    width: int = 0
    height: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "faces": [
                {
                    "box": f.face.box.as_list(),
                    "name": f.match.name,
                    "distance": _finite(f.match.distance),  # null when there is nobody to compare with
                    "score": _finite(f.match.score) if math.isfinite(f.match.distance) else None,
                    "candidate": f.match.candidate,
                    "reason": f.match.reason,
                    "decision_score": _rounded(f.match.decision_score),
                    "fallback": f.face.fallback,
                }
                for f in self.faces
            ],
            "error": self.error,
        }


def _rounded(x: float | None) -> float | None:
    """A finite number rounded for JSON, else None."""
    return round(float(x), 6) if x is not None and math.isfinite(x) else None


@dataclass(frozen=True)
class Verification:
    """Are two photos the same person? ``distance`` is L2 between unit embeddings, ``score`` cosine."""

    same: bool
    distance: float
    score: float
    threshold: float


@dataclass(frozen=True)
class EnrollReport:
    """Outcome of one enrollment run over a folder."""

    run_id: int
    people: int
    photos_seen: int
    photos_enrolled: int
    photos_skipped_known: int
    faces_added: int
    problems: tuple[tuple[str, str], ...] = ()  # (path, reason)
    seconds: float = 0.0
    photos_processed: int = 0  # run through detection and embedding in this run (not known, no copy)
    duplicates: tuple[tuple[str, str], ...] = ()  # (path, path of the same photo enrolled in this run)
    interrupted: bool = False  # stopped early (Ctrl-C): what was enrolled is saved, a rerun finishes
    merged_names: tuple[tuple[str, str], ...] = ()  # (name given, person enrolled as): differ by case

    @property
    def photos_duplicate(self) -> int:
        return len(self.duplicates)

    @property
    def photos_per_second(self) -> float:
        """Photos processed per second: photos already known and copies are not counted."""
        return self.photos_processed / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class PersonInfo:
    name: str
    photos: int
    faces: int


def _finite(x: float) -> float | None:
    """A number for JSON: rounded, or None when it is not finite (JSON has no Infinity)."""
    x = float(x)
    return round(x, 6) if math.isfinite(x) else None


def as_path(p: str | Path) -> Path:
    return p if isinstance(p, Path) else Path(p)
