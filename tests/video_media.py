"""Hostile videos for the tests, generated in seconds (nothing is committed).

* ``lying_mjpeg``: an MJPEG AVI whose header says 64x64 but whose later frames are huge JPEGs
  (12,000 x 12,000 by default: 5 MB of file, 432 MB as RGB);
* ``many_tiny_frames``: hundreds of thousands of 16x16 frames at 1,000 fps (H.264, ~15 bytes a frame);
* ``tiny_video``: a few frames of 2x2 pixels.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import numpy as np


def lying_mjpeg(path: Path, side: int = 12_000, big_frames: int = 3, small_frames: int = 3) -> Path:
    import av
    from PIL import Image

    big = Image.new("L", (side, side), 100)
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=50)
    del big
    data = buf.getvalue()
    with av.open(str(path), "w", format="avi") as out:
        stream = out.add_stream("mjpeg", rate=10)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuvj420p"
        img = np.full((64, 64, 3), 90, np.uint8)
        pts = 0
        for _ in range(small_frames):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = pts
            pts += 1
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        for _ in range(big_frames):  # the big JPEG's bytes as packets of the 64x64 stream
            packet = av.Packet(data)
            packet.stream = stream
            packet.pts = packet.dts = pts
            packet.time_base = Fraction(1, 10)
            packet.is_keyframe = True
            pts += 1
            out.mux(packet)
    return path


def many_tiny_frames(path: Path, frames: int = 600_000, fps: int = 1000, side: int = 16) -> Path:
    """``frames`` identical ``side`` x ``side`` frames at ``fps`` (600,000: ~5 s of CPU, 9 MB)."""
    import av

    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "51", "g": "100000",
                          "bframes": "0"}
        stream.codec_context.thread_count = 1
        frame = av.VideoFrame.from_ndarray(np.zeros((side, side, 3), np.uint8), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        for i in range(frames):
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def tiny_video(path: Path, side: int = 2, frames: int = 10, fps: int = 5) -> Path:
    import av

    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("ffv1", rate=fps)
        stream.width = stream.height = side
        stream.pix_fmt = "yuv444p"
        rng = np.random.default_rng(0)
        for i in range(frames):
            pixels = rng.integers(0, 255, (side, side, 3), np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame.reformat(format="yuv444p")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
