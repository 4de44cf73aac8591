"""Generated test videos with known ground truth, and how well tracks match it.

A video is a list of shots; each shot shows one or two labelled photos on a plain background
(a new colour per shot, so every shot change is a real cut), still, panning or zooming. The
ground truth knows, for every moment, where each photo is, so each sighting of a track can be
traced back to the person on screen. Used by the tests and by bench/bench_video.py; videos are
written with PyAV (H.264), nothing is committed.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from facebank.video.track import Track

Motion = Literal["still", "pan", "zoom"]


@dataclass(frozen=True)
class Shot:
    """``photos[i]`` of ``people[i]`` side by side for ``seconds`` of video."""

    people: tuple[str, ...]
    photos: tuple[Path, ...]
    seconds: float
    motion: Motion = "still"
    background: tuple[int, int, int] = (90, 90, 90)


@dataclass(frozen=True)
class Appearance:
    """Ground truth: ``person`` is on screen from ``start_s`` to ``end_s`` (seconds) in slot
    ``slot`` (0 = left or alone, 1 = right) of shot ``shot``."""

    person: str
    start_s: float
    end_s: float
    shot: int
    slot: int


@dataclass(frozen=True)
class SyntheticVideo:
    path: Path
    shots: tuple[Shot, ...]
    fps: int
    width: int
    height: int

    @property
    def starts_s(self) -> list[float]:
        out, t = [], 0.0
        for s in self.shots:
            out.append(t)
            t += s.seconds
        return out

    @property
    def duration_s(self) -> float:
        return sum(s.seconds for s in self.shots)

    def appearances(self) -> list[Appearance]:
        return [Appearance(p, t0, t0 + s.seconds, i, k)
                for i, (s, t0) in enumerate(zip(self.shots, self.starts_s, strict=True))
                for k, p in enumerate(s.people)]

    def shot_at(self, t: float) -> tuple[int, float]:
        """(shot number, seconds into that shot) at ``t`` seconds of video."""
        for i, t0 in reversed(list(enumerate(self.starts_s))):
            if t >= t0 - 1e-9:
                return i, t - t0
        return 0, t

    def rects(self, shot: int, t_rel: float) -> list[tuple[float, float, float, float]]:
        """Where each photo of the shot is at ``t_rel`` seconds into it: (x1, y1, x2, y2) pixels."""
        s = self.shots[shot]
        return [r for r, _ in _layout(s, t_rel, self.width, self.height, _sizes(s))]

    def appearance_of(self, t: float, box: Sequence[float]) -> Appearance | None:
        """The appearance whose photo holds the centre of ``box`` at ``t`` seconds (None: none)."""
        shot, rel = self.shot_at(t)
        cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
        for k, (x1, y1, x2, y2) in enumerate(self.rects(shot, rel)):
            if x1 <= cx <= x2 and y1 <= cy <= y2:
                s = self.shots[shot]
                t0 = self.starts_s[shot]
                return Appearance(s.people[k], t0, t0 + s.seconds, shot, k)
        return None


@dataclass(frozen=True)
class VideoScore:
    """Tracks against the ground truth. Seconds are measured on a grid of ``step_s`` (the sampling
    interval): a moment of an appearance is 'named right' when a track with that person's name has a
    sighting of that photo within half a step. ``switching_tracks``: tracks whose sightings lie on
    more than one appearance (another person or another shot)."""

    appearances: int
    tracks: int
    named_tracks: int
    seconds_on_screen: float
    seconds_named_right: float
    switching_tracks: int
    tracks_on_no_photo: int

    @property
    def share_named_right(self) -> float:
        return self.seconds_named_right / self.seconds_on_screen if self.seconds_on_screen else 0.0

    def as_dict(self) -> dict:
        return {**self.__dict__, "share_named_right": round(self.share_named_right, 4)}


def score_tracks(video: SyntheticVideo, tracks: Sequence[Track], step_s: float) -> VideoScore:
    hits: dict[tuple[int, int], list[float]] = {}  # appearance -> times seen under the right name
    switching = nowhere = 0
    for tr in tracks:
        seen = set()
        for t, box in zip(tr.times_s.tolist(), tr.boxes.tolist(), strict=True):
            app = video.appearance_of(t, box)
            if app is None:
                continue
            seen.add((app.shot, app.slot))
            if tr.name == app.person:
                hits.setdefault((app.shot, app.slot), []).append(t)
        switching += len(seen) > 1
        nowhere += not seen
    total = right = 0.0
    for app in video.appearances():
        times = np.asarray(sorted(hits.get((app.shot, app.slot), [])))
        grid = np.arange(app.start_s, app.end_s - 1e-9, step_s)
        if len(times):
            idx = np.clip(np.searchsorted(times, grid), 1, len(times)) - 1
            near = np.minimum(np.abs(times[idx] - grid),
                              np.abs(times[np.minimum(idx + 1, len(times) - 1)] - grid))
            right += float((near <= step_s / 2 + 1e-6).sum()) * step_s
        total += len(grid) * step_s
    return VideoScore(appearances=len(video.appearances()), tracks=len(tracks),
                      named_tracks=sum(t.name is not None for t in tracks), seconds_on_screen=total,
                      seconds_named_right=right, switching_tracks=switching, tracks_on_no_photo=nowhere)


def make_video(path: str | Path, shots: Sequence[Shot], fps: int = 25, width: int = 1280,
               height: int = 720) -> SyntheticVideo:
    """Render the shots to an H.264 MP4 at ``path`` (frames generated and encoded one at a time)."""
    import av

    path = Path(path)
    video = SyntheticVideo(path, tuple(shots), fps, width, height)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "20"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for shot in video.shots:
            photos = [_load(p) for p in shot.photos]
            for k in range(int(round(shot.seconds * fps))):
                rgb = _render(shot, photos, k / fps, width, height)
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return video


def standard_shots(faces: str | Path, seconds: float = 3.0, seed: int = 0) -> list[Shot]:
    """A test reel from ``faces/<person>/*.jpg`` (e.g. 5celeb/val): every person alone in a still, a
    pan and a zoom shot (a different photo each when there are enough), then pairs side by side."""
    faces = Path(faces)
    rng = random.Random(seed)
    people = sorted(p.name for p in faces.iterdir() if p.is_dir())
    photos = {p: sorted(x for x in (faces / p).iterdir() if x.suffix.lower() in (".jpg", ".jpeg", ".png"))
              for p in people}
    for v in photos.values():
        rng.shuffle(v)
    used = dict.fromkeys(people, 0)

    def take(p: str) -> Path:
        ph = photos[p][used[p] % len(photos[p])]
        used[p] += 1
        return ph

    shots: list[Shot] = []
    motions: tuple[Motion, ...] = ("still", "pan", "zoom")
    for motion in motions:
        order = people[:]
        rng.shuffle(order)
        for p in order:
            shots.append(Shot((p,), (take(p),), seconds, motion, _colour(rng)))
    for i in range(len(people)):
        a, b = people[i], people[(i + 2) % len(people)]
        shots.append(Shot((a, b), (take(a), take(b)), seconds, motions[i % 3], _colour(rng)))
    return shots


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(20, 236), rng.randrange(20, 236), rng.randrange(20, 236))


def _load(path: Path) -> np.ndarray:
    from facebank.images import load_image

    return load_image(path).rgb


def _sizes(shot: Shot) -> list[tuple[int, int]]:
    return [_oriented_size(p) for p in shot.photos]


@functools.lru_cache(maxsize=1024)
def _oriented_size(path: Path) -> tuple[int, int]:
    """(width, height) of a photo after EXIF orientation, as it is drawn."""
    img = _load(path)
    return img.shape[1], img.shape[0]


def _layout(shot: Shot, t_rel: float, width: int, height: int,
            sizes: Sequence[tuple[int, int]]) -> list[tuple[tuple[float, float, float, float], float]]:
    """(rect, scale) of each photo at ``t_rel`` seconds into the shot."""
    n = len(shot.photos)
    u = min(1.0, max(0.0, t_rel / shot.seconds)) if shot.seconds else 0.0
    zoom = 0.65 + 0.35 * u if shot.motion == "zoom" else 1.0
    pan = (u - 0.5) * (0.3 if n == 1 else 0.08) * width if shot.motion == "pan" else 0.0
    slot_w = width * (0.8 if n == 1 else 0.46)
    out = []
    for k, (w, h) in enumerate(sizes):
        scale = min(slot_w / w, 0.85 * height / h) * zoom
        cx = width / 2.0 if n == 1 else width * (0.26 + 0.48 * k)
        cx += pan
        cy = height / 2.0
        rw, rh = w * scale, h * scale
        out.append(((cx - rw / 2, cy - rh / 2, cx + rw / 2, cy + rh / 2), scale))
    return out


def _render(shot: Shot, photos: Sequence[np.ndarray], t_rel: float, width: int, height: int) -> np.ndarray:
    import cv2

    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = shot.background
    sizes = [(p.shape[1], p.shape[0]) for p in photos]
    for photo, ((x1, y1, x2, y2), _) in zip(photos, _layout(shot, t_rel, width, height, sizes), strict=True):
        w, h = max(1, int(round(x2 - x1))), max(1, int(round(y2 - y1)))
        interp = cv2.INTER_AREA if w < photo.shape[1] else cv2.INTER_LINEAR
        img = cv2.resize(photo, (w, h), interpolation=interp)
        ox, oy = int(round(x1)), int(round(y1))
        fx1, fy1 = max(0, ox), max(0, oy)
        fx2, fy2 = min(width, ox + w), min(height, oy + h)
        if fx2 > fx1 and fy2 > fy1:
            frame[fy1:fy2, fx1:fx2] = img[fy1 - oy:fy2 - oy, fx1 - ox:fx2 - ox]
    return frame
