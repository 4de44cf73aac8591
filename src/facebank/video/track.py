"""Faces of consecutive frames -> tracks: one person followed through one shot.

A face joins the active track whose recent embedding is nearest (L2 between unit vectors) when it
is close enough in both appearance and place; faces and tracks are paired by the Hungarian
algorithm so two faces of one frame never join one track. A cut ends every track; a track unseen
for ``max_gap_s`` seconds of video ends too. Units: ``*_s`` are seconds of video, ``frames`` counts
the sampled frames a track was seen in, boxes are pixels of the frame.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facebank.types import Box, Face, Match

MAX_EMBEDDINGS = 64  # kept per track (evenly spread over its life): naming cost and memory stay flat
THUMB_SIDE = 128
UNLINKED = 1e6


@dataclass(frozen=True)
class TrackerSettings:
    """How faces are linked. ``link_distance``: largest L2 distance between a face's embedding and
    its track's recent embedding (same person in one shot is typically < 0.3, two people > 0.5);
    ``max_gap_s``: seconds of video a track may go unseen (at least 2.5 sampling steps);
    ``max_shift``: largest move of the face centre between two sightings, in face widths (per
    second of gap, at least one step)."""

    link_distance: float = 0.5
    max_gap_s: float = 1.0
    max_shift: float = 2.0


@dataclass(frozen=True, eq=False)
class Track:
    """One face followed through one shot.

    ``start_s``/``end_s``: seconds of video of its first and last sighting; ``frames``: sampled
    frames it was seen in; ``box``: its largest face (pixels); ``times_s`` (n,) and ``boxes``
    (n, 4: x1, y1, x2, y2) every sighting; ``embeddings`` (k <= 64, d) unit vectors spread over its
    life; ``thumbnail`` an RGB crop of the largest face (``thumbnail_box``: the face in the crop's
    pixels; ``detector``/``detector_score``: its detection); ``match`` the name given from all its
    embeddings (None before naming).
    """

    id: int
    start_s: float
    end_s: float
    frames: int
    box: Box
    times_s: np.ndarray = dataclasses.field(repr=False)
    boxes: np.ndarray = dataclasses.field(repr=False)
    embeddings: np.ndarray = dataclasses.field(repr=False)
    thumbnail: np.ndarray | None = dataclasses.field(default=None, repr=False)
    thumbnail_box: Box | None = None
    detector: str = ""
    detector_score: float = 0.0
    match: Match | None = None

    @property
    def name(self) -> str | None:
        return self.match.name if self.match else None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_json(self) -> dict:
        """The public JSON of a track: ``{"track","name","distance","start","end","frames","box","score",
        "faces_used"}`` (``score``: the group score in the decision rule's unit, see ``facebank.groups``)."""
        d = self.match.distance if self.match else float("nan")
        return {
            "track": self.id,
            "name": self.name,
            "distance": round(float(d), 6) if np.isfinite(d) else None,
            "start": round(self.start_s, 3),
            "end": round(self.end_s, 3),
            "frames": self.frames,
            "box": self.box.as_list(),
            "score": _finite(self.match.decision_score if self.match else None),
            "faces_used": self.match.faces_used if self.match else None,
        }


def _finite(x: float | None) -> float | None:
    return round(float(x), 6) if x is not None and np.isfinite(x) else None


class _Active:
    """A track still being followed (mutable while it grows, frozen into ``Track`` at its end)."""

    def __init__(self, track_id: int, t: float, face: Face, rgb: np.ndarray) -> None:
        self.id = track_id
        self.times: list[float] = []
        self.boxes: list[tuple[float, float, float, float]] = []
        self.embeddings: list[np.ndarray] = []
        self.stride = 1
        self.seen = 0
        self.best: Box = face.box
        self.thumb: np.ndarray | None = None
        self.thumb_box: Box | None = None
        self.score = face.detector_score
        self.detector = face.detector
        self.recent: np.ndarray = face.embedding.astype(np.float32)
        self.add(t, face, rgb)

    @property
    def last_t(self) -> float:
        return self.times[-1]

    @property
    def last_box(self) -> Box:
        return Box(*self.boxes[-1])

    def add(self, t: float, face: Face, rgb: np.ndarray) -> None:
        b = face.box
        self.times.append(t)
        self.boxes.append((b.x1, b.y1, b.x2, b.y2))
        if self.seen % self.stride == 0:
            self.embeddings.append(face.embedding.astype(np.float32))
            if len(self.embeddings) > MAX_EMBEDDINGS:
                self.embeddings = self.embeddings[::2]
                self.stride *= 2
        self.seen += 1
        r = 0.5 * self.recent + 0.5 * face.embedding
        self.recent = (r / max(float(np.linalg.norm(r)), 1e-12)).astype(np.float32)
        if self.thumb is None or b.area > self.best.area:
            self.best = b
            self.score = face.detector_score
            self.thumb, self.thumb_box = face_thumbnail(rgb, b)

    def freeze(self) -> Track:
        return Track(
            id=self.id, start_s=self.times[0], end_s=self.times[-1], frames=len(self.times),
            box=self.best, times_s=np.asarray(self.times, np.float64),
            boxes=np.asarray(self.boxes, np.float32), embeddings=np.stack(self.embeddings),
            thumbnail=self.thumb, thumbnail_box=self.thumb_box, detector=self.detector,
            detector_score=self.score,
        )


@dataclass(frozen=True)
class TrackUpdate:
    """What one frame changed: tracks that started (id, first box) and tracks that ended."""

    started: tuple[tuple[int, Box, np.ndarray], ...] = ()  # (track id, box, embedding)
    ended: tuple[Track, ...] = ()


class Tracker:
    """Links the faces of successive sampled frames; feed frames in time order with ``update``.

    ``step_s`` is the sampling interval in seconds of video (1 / fps; the frame interval when
    every frame is analysed).
    """

    def __init__(self, step_s: float, settings: TrackerSettings | None = None) -> None:
        self.settings = s = settings or TrackerSettings()
        self.step_s = step_s
        self.max_gap_s = max(s.max_gap_s, 2.5 * step_s)
        self.active: list[_Active] = []
        self.next_id = 0

    def update(self, t: float, faces: Sequence[Face], rgb: np.ndarray, cut: bool = False) -> TrackUpdate:
        ended: list[Track] = []
        if cut:
            ended.extend(a.freeze() for a in self.active)
            self.active = []
        keep = []
        for a in self.active:
            if t - a.last_t <= self.max_gap_s + 1e-6:
                keep.append(a)
            else:
                ended.append(a.freeze())
        self.active = keep
        started = []
        links = self._link(t, faces)
        for i, face in enumerate(faces):
            a = links.get(i)
            if a is None:
                a = _Active(self.next_id, t, face, rgb)
                self.next_id += 1
                self.active.append(a)
                started.append((a.id, face.box, face.embedding))
            else:
                a.add(t, face, rgb)
        return TrackUpdate(tuple(started), tuple(ended))

    def finish(self) -> tuple[Track, ...]:
        """End every track (the video ended or the watcher stops)."""
        out = tuple(a.freeze() for a in self.active)
        self.active = []
        return out

    def _link(self, t: float, faces: Sequence[Face]) -> dict[int, _Active]:
        if not faces or not self.active:
            return {}
        from scipy.optimize import linear_sum_assignment

        s = self.settings
        cost = np.full((len(faces), len(self.active)), UNLINKED)
        for j, a in enumerate(self.active):
            prev = a.last_box
            gap_steps = max(1.0, (t - a.last_t) / max(self.step_s, 1e-6))
            reach = s.max_shift * max(prev.width, prev.height, 1.0) * min(gap_steps, 4.0) ** 0.5
            for i, f in enumerate(faces):
                d = float(np.linalg.norm(f.embedding - a.recent))
                (fx, fy), (px, py) = f.box.center, prev.center
                shift = ((fx - px) ** 2 + (fy - py) ** 2) ** 0.5
                if d <= s.link_distance and shift <= reach:
                    cost[i, j] = d + 0.1 * (1.0 - f.box.iou(prev))
        rows, cols = linear_sum_assignment(cost)
        return {int(i): self.active[int(j)] for i, j in zip(rows, cols, strict=True) if cost[i, j] < UNLINKED}


def face_thumbnail(rgb: np.ndarray, box: Box, side: int = THUMB_SIDE) -> tuple[np.ndarray, Box]:
    """An RGB crop of the face (``draw.face_crop``: a margin of a quarter of its size), longer side
    at most ``side``, and the face's box in the crop's pixels."""
    from facebank.draw import face_crop
    from facebank.draw import face_thumbnail as crop_face

    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = face_crop((box.x1, box.y1, box.x2, box.y2), w, h)
    if x2 <= x1 or y2 <= y1:
        return np.zeros((1, 1, 3), np.uint8), Box(0, 0, 1, 1)
    im = crop_face(rgb, (box.x1, box.y1, box.x2, box.y2), side)
    f = im.width / (x2 - x1)
    inner = Box((box.x1 - x1) * f, (box.y1 - y1) * f, (box.x2 - x1) * f, (box.y2 - y1) * f)
    return np.asarray(im), inner.clipped(im.width, im.height)
