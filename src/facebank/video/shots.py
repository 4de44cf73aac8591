"""Shots: where a video cuts from one shot to another, found by PySceneDetect on facebank's own frames.

PySceneDetect (``scenedetect-headless``) never opens the video here: ``decode.py`` decodes it
(with its demuxer and protocol checks) and hands every decoded frame, shrunk to ``width`` pixels
(~256) in BGR, to ``ShotDetector.push``. Two of its detectors run side by side:

- ``ContentDetector``: hard cuts, from the mean change of hue, saturation and brightness of each
  pixel between consecutive frames (a cut between two shots of similar colours still moves most
  pixels, which a colour histogram does not see);
- ``ThresholdDetector``: fades to and from black (the cut is placed inside the dark stretch). The
  content detector's cuts at near-black frames (mean below twice ``fade_threshold``), where hue
  and saturation are noise, are left to it: one fade, one cut.

Its flash filter (``min_shot_s``: two cuts closer than that are one) may report a cut up to
``delay_frames`` frames after the frame it happened at; ``decode.py`` holds the sampled frames that
long, so a face tracker never links two faces across a cut that is not known yet. A cut reported
even later (the end of a fade is only known when the picture comes back) is given to the next
frame released. Times are seconds of video; ``index`` is the frame number in decoding order.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShotSettings:
    """How cuts are found. ``threshold``: ContentDetector's score (mean change of H, S and V per
    pixel, 0-255) from which two consecutive frames are a cut; ``min_shot_s``: shortest shot in
    seconds (its flash filter: cuts closer together are merged); ``fade_threshold``: mean pixel
    value (0-255) below which a frame is black, for fades; ``width``: pixels of the frames the
    detectors see (aspect kept). ``threshold`` and ``min_shot_s`` were chosen on development reels by
    bench/bench_video_shots.py (fewest missed cuts with at most one false cut per minute; the
    middle of the best band; PySceneDetect's own default 27 missed 3 of 42 cuts there), see
    docs/video.md."""

    threshold: float = 12.0
    min_shot_s: float = 0.5
    fade_threshold: int = 12
    width: int = 256

    def __post_init__(self) -> None:
        for name in ("threshold", "min_shot_s"):
            v = getattr(self, name)
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"shot settings: {name} must be a finite number >= 0, not {v!r}")
        if not 16 <= self.width <= 4096:
            raise ValueError(f"shot settings: width must be 16-4096 pixels, not {self.width!r}")


class CutDetector(Protocol):
    """What ``decode.py`` needs of a shot detector (swappable: the benchmark runs the old
    colour-histogram test through the same protocol)."""

    delay_frames: int
    width: int

    def push(self, index: int, time_s: float, small_bgr: np.ndarray) -> None:
        """The next decoded frame (every frame, in order), ``width`` pixels wide, BGR uint8."""

    def finish(self) -> None:
        """The video ended: report any cut still held back."""

    def cuts_until(self, time_s: float) -> bool:
        """True (once) when a cut not given out yet happened at or before ``time_s``."""


class ShotDetector:
    """Cuts and fades by PySceneDetect; ``fps`` is the video's frame rate (frames per second)."""

    def __init__(self, fps: float, settings: ShotSettings | None = None) -> None:
        from scenedetect.detectors import ContentDetector, ThresholdDetector

        self.settings = s = settings or ShotSettings()
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else 25.0
        self.width = s.width
        min_frames = max(1, round(s.min_shot_s * self.fps))
        # the minimum shot in frames (of the nominal rate): decoding order is what it counts
        self._content = ContentDetector(threshold=s.threshold, min_scene_len=min_frames)
        self._fade = ThresholdDetector(threshold=s.fade_threshold, min_scene_len=min_frames)
        self.delay_frames = min_frames + 1
        self._times: deque[tuple[int, float]] = deque(maxlen=max(64, 4 * self.delay_frames))
        self._pending: list[float] = []
        self.cuts_s: list[float] = []  # every cut found so far (seconds), for reports and benchmarks
        self._last: object | None = None
        self._first: int | None = None
        self._dark: deque[int] = deque(maxlen=self._times.maxlen)  # recent near-black frames

    def push(self, index: int, time_s: float, small_bgr: np.ndarray) -> None:
        from scenedetect import FrameTimecode

        if self._first is None:
            self._first = index
        self._times.append((index, time_s))
        if float(small_bgr.mean()) < 2.0 * self.settings.fade_threshold:
            self._dark.append(index)
        tc = FrameTimecode(index - self._first, fps=self.fps)
        self._last = tc
        for cut in self._content.process_frame(tc, small_bgr):
            i = int(cut.frame_num) + self._first
            if i not in self._dark and i - 1 not in self._dark:  # near black: hue is noise, fades speak
                self._add(self._time_of(i))
        for cut in self._fade.process_frame(tc, small_bgr):
            self._add(self._time_of(int(cut.frame_num) + self._first))

    def finish(self) -> None:
        if self._last is not None:
            for cut in self._content.post_process(self._last):
                self._add(self._time_of(int(cut.frame_num) + (self._first or 0)))

    def cuts_until(self, time_s: float) -> bool:
        due = [c for c in self._pending if c <= time_s + 1e-6]
        if due:
            self._pending = [c for c in self._pending if c > time_s + 1e-6]
        return bool(due)

    def _add(self, t: float) -> None:
        near = max(self.settings.min_shot_s, 1.5 / self.fps)
        if any(abs(t - c) < near for c in self.cuts_s[-4:]):  # both detectors found it (a cut to black)
            return
        log.debug("cut at %.3f s", t)
        self.cuts_s.append(t)
        self._pending.append(t)

    def _time_of(self, index: int) -> float:
        for i, t in self._times:
            if i == index:
                return t
        i0, t0 = self._times[0]  # older than the frames remembered: estimated from the rate
        return t0 - (i0 - index) / self.fps
