"""Write a copy of a video with a box and a name on every tracked face (``--annotate out.mp4``).

A second pass over the source: every frame is decoded again, the boxes of the tracks on screen at
its time are interpolated between their sightings, drawn, and the frame is encoded (H.264). The
file is written next to the target and renamed into place at the end: nothing half-written.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from facebank.draw import KNOWN, UNKNOWN, label_font, labelled_box
from facebank.progress import no_progress as _no_progress
from facebank.video.analyze import Progress, VideoResult
from facebank.video.decode import VideoReader
from facebank.video.track import Track

log = logging.getLogger(__name__)


class OnScreen:
    """The boxes of the tracks on screen at increasing times (tracks sorted by start once)."""

    def __init__(self, tracks: Iterable[Track], hold_s: float) -> None:
        self.todo = sorted(tracks, key=lambda tr: tr.start_s)
        self.hold_s = hold_s
        self.next = 0
        self.active: list[Track] = []

    def at(self, t: float) -> list[tuple[Track, np.ndarray]]:
        """(track, box x1 y1 x2 y2) of every track on screen at ``t`` seconds (not before the
        previous call's ``t``): interpolated between sightings, held ``hold_s`` after the last."""
        while self.next < len(self.todo) and self.todo[self.next].start_s <= t + 1e-6:
            self.active.append(self.todo[self.next])
            self.next += 1
        self.active = [tr for tr in self.active if t <= tr.end_s + self.hold_s]
        return [(tr, np.array([np.interp(t, tr.times_s, tr.boxes[:, c]) for c in range(4)]))
                for tr in self.active]


def annotate_video(result: VideoResult, out: str | Path, progress: Progress = _no_progress,
                   source: str | Path | None = None) -> Path:
    """Write ``out`` (MP4, H.264): the video of ``result`` (read again from ``source``, default the
    result's own source) with every track's box and name."""
    import av

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    info = result.info
    step = 1.0 / result.sample_fps if result.sample_fps else (1.0 / info.fps if info.fps else 0.04)
    rate = round(info.fps) if info.fps else 25
    side = max(info.width, info.height)
    font = label_font(max(12, side // 45))
    width = max(2, side // 400)
    fd, tmp = tempfile.mkstemp(suffix=out.suffix or ".mp4", dir=out.parent, prefix=".annotate-")
    os.close(fd)
    try:
        with VideoReader(source or info.source, fps=None) as reader, av.open(tmp, "w", format="mp4") as dst:
            stream = None
            on_screen = OnScreen(result.tracks, step)
            total = info.frames or (int(info.duration_s * info.fps) if info.duration_s and info.fps else None)
            for frame in progress(reader.frames(), total=total, desc="annotate", unit="frame"):
                if stream is None:  # sized by the first (upright) frame, even sides for yuv420p
                    h, w = frame.rgb.shape[0] // 2 * 2, frame.rgb.shape[1] // 2 * 2
                    stream = dst.add_stream("libx264", rate=rate, options={"preset": "veryfast", "crf": "23"})
                    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
                im = Image.fromarray(frame.rgb[:h, :w])
                draw = ImageDraw.Draw(im)
                for tr, box in on_screen.at(frame.time_s):
                    labelled_box(draw, box, tr.name or "unknown", KNOWN if tr.name else UNKNOWN, font, width)
                vf = av.VideoFrame.from_ndarray(np.asarray(im), format="rgb24")
                for packet in stream.encode(vf):
                    dst.mux(packet)
            if stream is not None:
                for packet in stream.encode():
                    dst.mux(packet)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the copy is an ordinary file
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
