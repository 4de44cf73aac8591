"""Video -> named tracks: decode (sampled), find and embed faces, follow them, name each track.

``analyze_video`` is the whole job for a file (``facebank identify VIDEO``); ``VideoWatcher``
yields track start/end events as a file, stream or camera plays (``facebank watch``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from facebank.api import FaceBank
from facebank.types import Box
from facebank.video.decode import VideoBudget, VideoInfo, VideoReader
from facebank.video.name import name_embeddings, name_track, name_tracks
from facebank.video.track import Track, Tracker, TrackerSettings

log = logging.getLogger(__name__)

Progress = Callable[..., Iterable]
DEFAULT_FPS = 2.0


def _no_progress(it: Iterable, **_: object) -> Iterable:
    return it


@dataclass(frozen=True)
class VideoResult:
    """The named tracks of one video, in order of start. ``sample_fps``: frames analysed per second
    of video (None = every frame); ``frames_analysed``: sampled frames; ``seconds``: wall time."""

    info: VideoInfo
    tracks: tuple[Track, ...]
    sample_fps: float | None
    frames_analysed: int
    seconds: float

    @property
    def video_seconds(self) -> float:
        return self.info.duration_s or 0.0

    def timeline(self) -> str:
        """A short plain-text timeline: one line per track."""
        lines = [f"{self.info.source}: {self.info.width}x{self.info.height}, "
                 f"{self.video_seconds:.1f} s, {len(self.tracks)} track(s)"]
        for t in self.tracks:
            m = t.match
            who = t.name or (f"unknown (nearest: {m.candidate})" if m and m.candidate else "unknown")
            dist = f" [distance {m.distance:.3f}]" if m and np.isfinite(m.distance) else ""
            lines.append(f"  {_clock(t.start_s)} - {_clock(t.end_s)}  #{t.id} {who}{dist}, "
                         f"{t.frames} frame(s)")
        return "\n".join(lines)


@dataclass(frozen=True)
class TrackEvent:
    """A track started (``kind`` 'start': provisional name from its first face) or ended ('end':
    ``track`` holds the whole track, named from all its embeddings). ``time_s``: seconds of video."""

    kind: Literal["start", "end"]
    time_s: float
    track_id: int
    box: Box
    name: str | None
    distance: float
    track: Track | None = None

    def to_json(self) -> dict:
        if self.track is not None:
            return {"event": self.kind, **self.track.to_json()}
        d = self.distance
        return {"event": self.kind, "track": self.track_id, "name": self.name,
                "distance": round(d, 6) if np.isfinite(d) else None, "time": round(self.time_s, 3),
                "box": self.box.as_list()}


def settings_budget(bank: FaceBank) -> VideoBudget:
    """The budget of a video from the settings (``video_max_frames``, ``video_max_seconds``)."""
    s = bank.settings
    return VideoBudget(max_frames=s.video_max_frames, max_seconds=s.video_max_seconds)


def smallest_face_px(bank: FaceBank) -> int:
    """Frames whose shorter side is below this hold no face any detector looks for: they are
    skipped without calling the detector or the embedder."""
    s = bank.settings
    return max(1, min(s.min_face, s.mtcnn_min_face))


class VideoWatcher:
    """Follows the faces of one source and yields ``TrackEvent``s; ``stop()`` ends open tracks.

    ``budget``: decoded frames and wall time allowed (default: from the settings); ``cancel``: an
    event that stops the decoding at the next frame (``VideoCancelled``)."""

    def __init__(self, bank: FaceBank, source: str | Path, fps: float | None = DEFAULT_FPS,
                 tracker: TrackerSettings | None = None, threshold: float | None = None,
                 name: str | None = None, budget: VideoBudget | None = None,
                 cancel: threading.Event | None = None) -> None:
        self.bank = bank
        self.threshold = threshold
        self.reader = VideoReader(source, fps=fps, max_pixels=bank.settings.max_pixels, name=name,
                                  budget=budget or settings_budget(bank), cancel=cancel)
        info = self.reader.info
        step = 1.0 / fps if fps else 1.0 / (info.fps or 25.0)
        self.tracker = Tracker(step, tracker)
        self.frames_analysed = 0
        self._announced: set[int] = set()  # tracks whose start event was given and end event not yet
        self.last_time_s = 0.0

    @property
    def info(self) -> VideoInfo:
        return self.reader.info

    def events(self, progress: Progress = _no_progress) -> Iterator[TrackEvent]:
        """Start and end events in order of video time; the last tracks end when the video does."""
        bank = self.bank
        pipe = bank.pipeline
        check_model(bank)
        info = self.reader.info
        total = None
        if info.duration_s:
            rate = self.reader.fps or info.fps
            total = int(info.duration_s * rate) + 1 if rate else None
        min_side = smallest_face_px(bank)
        for frame in progress(self.reader.frames(), total=total, desc="video", unit="frame"):
            faces = pipe.faces(frame.rgb) if min(frame.rgb.shape[:2]) >= min_side else []
            self.frames_analysed += 1
            self.last_time_s = frame.time_s
            update = self.tracker.update(frame.time_s, faces, frame.rgb, frame.cut)
            yield from self._ended(update.ended, frame.time_s)
            for track_id, box, emb in update.started:
                m = name_embeddings(bank, emb[None], self.threshold)
                self._announced.add(track_id)
                yield TrackEvent("start", frame.time_s, track_id, box, m.name, m.distance)
        yield from self.stop()

    def stop(self) -> Iterator[TrackEvent]:
        """End every open track (the video ended, or the watcher is stopped)."""
        yield from self._ended(self.tracker.finish(), self.last_time_s)
        self.reader.close()

    def _ended(self, tracks: Iterable[Track], t: float) -> Iterator[TrackEvent]:
        for tr in tracks:
            if tr.id not in self._announced:  # stopped between its first frame and its start event
                m = name_embeddings(self.bank, tr.embeddings[:1], self.threshold)
                first = Box(*map(float, tr.boxes[0]))
                yield TrackEvent("start", tr.start_s, tr.id, first, m.name, m.distance)
            self._announced.discard(tr.id)
            tr = name_track(self.bank, tr, self.threshold)
            m = tr.match
            assert m is not None
            yield TrackEvent("end", t, tr.id, tr.box, m.name, m.distance, tr)


def analyze_video(bank: FaceBank, source: str | Path, fps: float | None = DEFAULT_FPS,
                  tracker: TrackerSettings | None = None, threshold: float | None = None,
                  progress: Progress = _no_progress, name: str | None = None,
                  budget: VideoBudget | None = None, cancel: threading.Event | None = None) -> VideoResult:
    """Every face track of a video file with its name (None = unknown), ordered by start time;
    ``name`` is what messages call the video (default: ``source``); ``budget`` and ``cancel`` as
    for ``VideoWatcher``."""
    t0 = time.perf_counter()
    watcher = VideoWatcher(bank, source, fps, tracker, threshold, name, budget, cancel)
    ended: list[Track] = []
    try:
        for ev in watcher.events(progress):
            if ev.kind == "end" and ev.track is not None:
                ended.append(ev.track)
    finally:
        watcher.reader.close()
    tracks = name_tracks(bank, sorted(ended, key=lambda t: (t.start_s, t.id)), threshold)
    return VideoResult(watcher.info, tracks, fps, watcher.frames_analysed, time.perf_counter() - t0)


def check_model(bank: FaceBank) -> None:
    """The gallery's embeddings must come from the embedder in use."""
    from facebank.gallery.base import ModelMismatch

    stored, used = bank.gallery.model_id, bank.pipeline.model_id
    if stored is not None and stored != used:
        raise ModelMismatch(f"the gallery holds {stored!r} embeddings but the embedder is {used!r}")


def _clock(seconds: float) -> str:
    m, s = divmod(max(0.0, seconds), 60.0)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:04.1f}" if h else f"{m:02d}:{s:04.1f}"
