"""Faces of consecutive frames -> tracks: one person followed through one shot, never two people.

A face joins a track only when its embedding is close to the track's recent faces (the nearest of
the last few, within ``link_l2`` of the model's operating points, ``facebank.embed.points``: a face
changes a little from one frame to the next) AND to its anchor (the median of its first faces,
within ``verify_l2``, the model's same-person distance for two photos: a slow drift, or a step onto
someone who looks alike, cannot pass), and when it is near the track's last place with about the
same size. Faces and tracks are paired by the Hungarian algorithm, so two faces of one frame never
join one track. Two gaps: a track unseen for up to ``max_gap_s`` seconds links by place and
appearance; a person who left the picture and comes back within ``reentry_s`` seconds (same shot)
links by appearance alone (both gates at ``verify_l2``). A face whose size jumps (``max_scale``) is
someone else (a person passing in front of another). A cut ends every track; so does a longer
absence. Units: ``*_s`` are seconds of video, ``frames`` counts the sampled frames a track was seen
in, boxes are pixels.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facebank.embed.points import OperatingPoints, points_for
from facebank.types import Box, Face, Match

MAX_EMBEDDINGS = 64  # kept per track (evenly spread over its life): naming cost and memory stay flat
THUMB_SIDE = 128
UNLINKED = 1e6


@dataclass(frozen=True)
class TrackerSettings:
    """How faces are linked (no distance here: the gates are the model's operating points).
    ``max_gap_s``: seconds of video a track may go unseen and still link by place and appearance
    (at least 2.5 sampling steps); ``reentry_s``: seconds within which a person who left the
    picture links again by appearance alone (0: never); ``max_shift``: largest move of the face
    centre between two sightings, in face widths (per second of gap, at least one step);
    ``max_scale``: largest change of the face's size (ratio of box sides) between two sightings in
    sight of each other (one person does not halve in a step; a person passing in front of
    another does); ``recent``: how many of the track's last faces a new face is compared with;
    ``anchor``: how many first faces make its anchor (their median)."""

    max_gap_s: float = 1.0
    reentry_s: float = 3.0
    max_shift: float = 2.0
    max_scale: float = 1.5
    recent: int = 4
    anchor: int = 5


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

    def __init__(self, track_id: int, t: float, face: Face, rgb: np.ndarray, recent: int = 4,
                 anchor: int = 5) -> None:
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
        self.recent: deque[np.ndarray] = deque(maxlen=recent)
        self.first: list[np.ndarray] = []
        self.anchor_size = anchor
        self.anchor = face.embedding.astype(np.float32)
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
        e = face.embedding.astype(np.float32)
        self.recent.append(e)
        if len(self.first) < self.anchor_size:
            self.first.append(e)
            m = np.median(np.stack(self.first), axis=0)
            self.anchor = (m / max(float(np.linalg.norm(m)), 1e-12)).astype(np.float32)
        if self.thumb is None or b.area > self.best.area:
            self.best = b
            self.score = face.detector_score
            self.thumb, self.thumb_box = face_thumbnail(rgb, b)

    def distances(self, e: np.ndarray) -> tuple[float, float]:
        """(L2 to the nearest of the recent faces, L2 to the anchor) of embedding ``e``."""
        recent = min(float(np.linalg.norm(e - r)) for r in self.recent)
        return recent, float(np.linalg.norm(e - self.anchor))

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
    every frame is analysed); ``points``: the embedder's operating points (``link_l2``: a face to
    the track's recent faces; ``verify_l2``: to its anchor, and a return after an absence), by
    default those of the faces' model id.
    """

    def __init__(self, step_s: float, settings: TrackerSettings | None = None,
                 points: OperatingPoints | None = None) -> None:
        self.settings = s = settings or TrackerSettings()
        self.step_s = step_s
        self.max_gap_s = max(s.max_gap_s, 2.5 * step_s)
        self.reentry_s = max(s.reentry_s, self.max_gap_s) if s.reentry_s > 0 else self.max_gap_s
        self.points = points
        self.active: list[_Active] = []
        self.next_id = 0

    def update(self, t: float, faces: Sequence[Face], rgb: np.ndarray, cut: bool = False) -> TrackUpdate:
        ended: list[Track] = []
        if cut:
            ended.extend(a.freeze() for a in self.active)
            self.active = []
        keep = []
        for a in self.active:
            if t - a.last_t <= self.reentry_s + 1e-6:
                keep.append(a)
            else:
                ended.append(a.freeze())
        self.active = keep
        started: list[tuple[int, Box, np.ndarray]] = []
        links = self._link(t, faces)
        for i, face in enumerate(faces):
            linked = links.get(i)
            if linked is None:
                new = _Active(self.next_id, t, face, rgb, self.settings.recent, self.settings.anchor)
                self.next_id += 1
                self.active.append(new)
                started.append((new.id, face.box, face.embedding))
            else:
                linked.add(t, face, rgb)
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

        if self.points is None:
            self.points = points_for(faces[0].model_id)
        link, same = self.points.link_l2, self.points.verify_l2
        s = self.settings
        cost = np.full((len(faces), len(self.active)), UNLINKED)
        for j, a in enumerate(self.active):
            prev = a.last_box
            gap = t - a.last_t
            near = gap <= self.max_gap_s + 1e-6  # else: came back after leaving, appearance only
            gap_steps = max(1.0, gap / max(self.step_s, 1e-6))
            reach = s.max_shift * max(prev.width, prev.height, 1.0) * min(gap_steps, 4.0) ** 0.5
            gate = link if near else min(link, same)
            for i, f in enumerate(faces):
                d, d_anchor = a.distances(f.embedding)
                if d > gate or d_anchor > same:
                    continue
                if near:
                    (fx, fy), (px, py) = f.box.center, prev.center
                    side, prev_side = max(f.box.width, f.box.height, 1.0), max(prev.width, prev.height, 1.0)
                    if ((fx - px) ** 2 + (fy - py) ** 2) ** 0.5 <= reach \
                            and max(side / prev_side, prev_side / side) <= s.max_scale:
                        cost[i, j] = d + 0.1 * (1.0 - f.box.iou(prev))
                else:
                    cost[i, j] = d + 1.0  # a track still in sight is preferred
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
