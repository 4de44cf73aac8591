"""Video -> frames: PyAV (FFmpeg in the wheel) decodes a file, URL or camera one frame at a time.

Frames are streamed, never collected: memory stays flat however long the video is. Every decoded
frame is compared with the previous one for a cut (a hard change of shot) on a tiny colour
thumbnail; only the sampled frames (``fps`` per second of video, or all) are converted to full RGB
for the face pipeline. Times are seconds from the start of the video (``*_s``); ``index`` is the
number of the frame in decoding order (0-based), not a timestamp.

Hostile input: FFmpeg only gets the demuxers of plain video containers (no playlists, no
concatenation lists, no image-sequence patterns that would make it open other files) and only the
protocol of the source it was given (``file`` for files); a file that is empty, not a video, has
no video stream, is damaged or ends before its declared length raises ``VideoError`` with a
one-line reason.

Bounded like photos: the pixel limit is checked against the header, given to FFmpeg's decoder
(``max_pixels``: it refuses to allocate a bigger frame, whatever the header said) and checked again
on every decoded frame before it becomes an array. A ``VideoBudget`` caps the decoded frames and
the wall time, checked on every decoded frame (sampled or not), as is a cancel event: a job stops
within one frame's work of being cancelled.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".flv",
    ".wmv", ".asf", ".3gp", ".3g2", ".ogv", ".y4m", ".h264", ".264", ".hevc",
})
# demuxers of plain containers (FFmpeg names; "mov" covers mp4/m4v/3gp). Deliberately absent:
# hls, dash, concat, image2, tee, ... which read other files or URLs named inside the data.
FILE_DEMUXERS = ("mov,matroska,webm,avi,mpeg,mpegts,mpegtsraw,flv,asf,ogg,h264,hevc,m4v,mjpeg,"
                 "yuv4mpegpipe,wav,mp3,aac,flac")
STREAM_PROTOCOLS = {"http": "http,tcp,tls", "https": "https,http,tcp,tls", "rtsp": "rtsp,rtp,udp,tcp",
                    "rtsps": "rtsps,rtsp,rtp,udp,tcp,tls", "rtmp": "rtmp,tcp", "udp": "udp",
                    "tcp": "tcp", "srt": "srt,udp"}
STREAM_DEMUXERS = FILE_DEMUXERS + ",hls,rtsp,sdp,rtp"
CUT_THRESHOLD = 0.3  # share of the colour histogram that moves between consecutive frames: a cut
THUMB = (48, 27)  # thumbnail (width, height) for cut detection


class VideoError(Exception):
    """A video that cannot be read, with a one-line reason naming it."""


class VideoBudgetExceeded(VideoError):
    """The video needs more decoded frames or wall time than its ``VideoBudget`` allows."""

    reason = "budget_exceeded"


class VideoCancelled(Exception):
    """The reader's cancel event was set while it decoded."""


@dataclass(frozen=True)
class VideoBudget:
    """What one video may cost: ``max_frames`` decoded frames (all of them, not only the sampled
    ones) and ``max_seconds`` of wall time from the first frame asked for (the face work on the
    frames included); None = no limit."""

    max_frames: int | None = None
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.max_frames is not None and not self.max_frames >= 1:
            raise ValueError(f"max_frames must be >= 1 (got {self.max_frames})")
        if self.max_seconds is not None and not (0 < self.max_seconds < float("inf")):
            raise ValueError(f"max_seconds must be a positive number (got {self.max_seconds})")


@dataclass(frozen=True)
class VideoInfo:
    """What the container says: ``width`` x ``height`` pixels as stored (frames come upright: a
    display rotation is applied, so a portrait phone video gives ``height`` x ``width`` frames);
    ``fps`` frames per second (0 when unknown), ``duration_s`` seconds (None for live streams),
    ``frames`` the declared frame count (None when unknown)."""

    source: str
    width: int
    height: int
    fps: float
    duration_s: float | None
    frames: int | None
    codec: str

    @property
    def live(self) -> bool:
        return self.duration_s is None


@dataclass(frozen=True, eq=False)
class Frame:
    """One sampled frame: RGB pixels (H, W, 3) uint8, ``time_s`` seconds from the start, ``index``
    its number in decoding order; ``cut`` is True when the shot changed since the previous sampled
    frame (so every face track must end)."""

    index: int
    time_s: float
    rgb: np.ndarray
    cut: bool


def is_video_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def is_stream_url(source: str) -> bool:
    return "://" in source and source.split("://", 1)[0].lower() in STREAM_PROTOCOLS


class VideoReader:
    """An open video: ``info`` at once, then ``frames()`` streams the sampled frames once.

    ``fps``: frames analysed per second of video (None = every frame); ``name``: how messages and
    ``info.source`` call it (default: the source itself). Use as a context manager.
    """

    def __init__(self, source: str | Path, fps: float | None = 2.0, max_pixels: int = 80_000_000,
                 timeout_s: float = 15.0, name: str | None = None, budget: VideoBudget | None = None,
                 cancel: threading.Event | None = None) -> None:
        import av

        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be > 0 (got {fps})")
        if not max_pixels >= 1:
            raise ValueError(f"max_pixels must be >= 1 (got {max_pixels})")
        self.fps = fps
        self.max_pixels = int(max_pixels)
        self.budget = budget or VideoBudget()
        self.cancel = cancel
        src = str(source)
        self.name = name or src
        opts: dict[str, str] = {}
        fmt = None
        if is_stream_url(src):
            opts = {"protocol_whitelist": STREAM_PROTOCOLS[src.split("://", 1)[0].lower()],
                    "format_whitelist": STREAM_DEMUXERS}
        elif src.startswith("/dev/video"):
            fmt = "v4l2"
        else:
            path = Path(src)
            if not path.is_file():
                raise VideoError(f"{self.name}: no such file")
            if path.stat().st_size == 0:
                raise VideoError(f"{self.name}: the file is empty (0 bytes)")
            opts = {"protocol_whitelist": "file", "format_whitelist": FILE_DEMUXERS}
            src = os.fspath(path)
        try:
            self._container = av.open(src, format=fmt, container_options=opts, timeout=timeout_s,
                                      metadata_errors="replace")
        except av.error.FFmpegError as exc:
            raise VideoError(f"{self.name}: not a readable video ({_reason(exc)})") from None
        except OSError as exc:
            raise VideoError(f"{self.name}: cannot open ({exc.strerror or exc})") from None
        try:
            streams = self._container.streams.video
            if not streams:
                raise VideoError(f"{self.name}: the file has no video stream")
            self._stream = stream = streams[0]
            stream.thread_type = "AUTO"
            ctx = stream.codec_context
            width, height = int(ctx.width or 0), int(ctx.height or 0)
            if width <= 0 or height <= 0:
                raise VideoError(f"{self.name}: the video stream has no picture size (damaged header)")
            if width * height > max_pixels:
                raise VideoError(f"{self.name}: frames of {width}x{height} pixels exceed the limit of "
                                 f"{max_pixels} pixels")
            # FFmpeg's own limit: the decoder refuses to allocate a bigger frame (the header may lie)
            ctx.options = {**ctx.options, "max_pixels": str(self.max_pixels)}
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif self._container.duration is not None:
                duration = self._container.duration / 1_000_000
            if fmt == "v4l2" or (is_stream_url(self.name) and not duration):
                duration = None
            self.info = VideoInfo(source=self.name, width=width, height=height,
                                  fps=float(rate) if rate else 0.0, duration_s=duration,
                                  frames=int(stream.frames) or None, codec=ctx.name or "")
        except BaseException:
            self._container.close()
            raise

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def frames(self) -> Iterator[Frame]:
        """The sampled frames in order; raises ``VideoError`` when the data is damaged,
        ``VideoBudgetExceeded`` past the budget, ``VideoCancelled`` once the cancel event is set."""
        import av

        step = None if self.fps is None else 1.0 / self.fps
        next_t = 0.0
        prev_hist: np.ndarray | None = None
        cut_pending = False
        last_t = 0.0
        index = -1
        t0: float | None = None
        deadline = None if self.budget.max_seconds is None else time.monotonic() + self.budget.max_seconds
        try:
            for frame in self._container.decode(self._stream):
                index += 1
                self._check(index, deadline, frame)
                t = _frame_time(frame, index, self.info.fps)
                if t0 is None:
                    t0 = t
                t = max(0.0, t - t0)
                last_t = t
                hist = _histogram(frame)
                if prev_hist is not None and histogram_change(prev_hist, hist) > CUT_THRESHOLD:
                    cut_pending = True
                prev_hist = hist
                if step is not None and t + 1e-6 < next_t:
                    continue
                if step is not None:
                    next_t = (int((t + 1e-6) / step) + 1) * step
                rgb = upright(frame.to_ndarray(format="rgb24"), _rotation(frame))
                yield Frame(index=index, time_s=t, rgb=rgb, cut=cut_pending)
                cut_pending = False
        except av.error.ExitError:  # FFmpeg stopped on a pending Ctrl-C
            raise KeyboardInterrupt from None
        except av.error.ArgumentError as exc:  # EINVAL: mostly FFmpeg's max_pixels refusing a frame
            size = f"{self.info.width}x{self.info.height}"
            raise VideoError(f"{self.name}: a frame after {last_t:.1f} s cannot be decoded within the limit "
                             f"of {self.max_pixels} pixels (frames bigger than the header's {size}, or "
                             f"damaged data: {_reason(exc)})") from None
        except av.error.FFmpegError as exc:
            raise VideoError(f"{self.name}: the video is damaged at {last_t:.1f} s "
                             f"({_reason(exc)})") from None
        if index < 0:
            raise VideoError(f"{self.name}: no frame could be decoded (damaged or truncated video)")
        declared = self.info.duration_s
        frame_s = 1.0 / self.info.fps if self.info.fps else 0.0
        if declared and last_t + frame_s < 0.9 * declared - 0.5:
            raise VideoError(f"{self.name}: the video ends at {last_t:.1f} s of its declared "
                             f"{declared:.1f} s (truncated or damaged)")

    def _check(self, index: int, deadline: float | None, frame) -> None:
        """Every decoded frame, before any work on it: cancel, budget, pixel limit."""
        if self.cancel is not None and self.cancel.is_set():
            raise VideoCancelled(f"{self.name}: cancelled after {index} frames")
        max_frames = self.budget.max_frames
        if max_frames is not None and index >= max_frames:
            raise VideoBudgetExceeded(f"{self.name}: the video has more than {max_frames} frames: it exceeds "
                                      "the frame budget")
        if deadline is not None and time.monotonic() > deadline:
            raise VideoBudgetExceeded(f"{self.name}: stopped after {self.budget.max_seconds:g} s of work "
                                      f"({index} frames decoded): the video exceeds the time budget")
        if frame.width * frame.height > self.max_pixels:
            raise VideoError(f"{self.name}: a frame of {frame.width}x{frame.height} pixels exceeds the "
                             f"limit of {self.max_pixels} pixels (the header said "
                             f"{self.info.width}x{self.info.height})")


def upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """The frame as it is meant to be shown: ``rotation`` degrees counterclockwise (the display
    matrix of phone videos filmed upright), in quarter turns."""
    k = round(rotation / 90.0) % 4
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def _rotation(frame) -> int:
    try:
        return int(frame.rotation or 0)
    except Exception:  # no or odd display matrix: as stored
        return 0


def _frame_time(frame, index: int, fps: float) -> float:
    if frame.pts is not None and frame.time_base is not None:
        return float(frame.pts * frame.time_base)
    return index / fps if fps else float(index)


def _histogram(frame) -> np.ndarray:
    """Normalised 3 x 16-bin colour histogram of a tiny thumbnail of the frame (sums to 3)."""
    small = frame.reformat(width=THUMB[0], height=THUMB[1], format="rgb24").to_ndarray()
    px = small.reshape(-1, 3) >> 4
    counts = np.concatenate([np.bincount(px[:, c], minlength=16) for c in range(3)])
    return counts.astype(np.float32) / float(len(px))


def histogram_change(a: np.ndarray, b: np.ndarray) -> float:
    """Share (0..1) of the pixels whose colour bin changed between two ``_histogram`` results."""
    return float(np.abs(a - b).sum()) / 6.0


def _reason(exc: Exception) -> str:
    msg = getattr(exc, "strerror", None) or str(exc)
    return str(msg).split(":")[0].strip() if msg else type(exc).__name__
