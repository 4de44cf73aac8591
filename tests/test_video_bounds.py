"""Videos are bounded like photos (issue 17, items 5 and 6): frames bigger than the header are
refused before they become arrays (FFmpeg's own max_pixels and a check of every decoded frame),
the decoded frames and the wall time are budgeted, a cancel event stops the decoding at the next
frame, and frames too small for a face never reach the embedder."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("av")

from facebank import FaceBank  # noqa: E402
from facebank.gallery.sqlite import SqliteGallery  # noqa: E402
from facebank.settings import Settings  # noqa: E402
from facebank.video import VideoError, VideoReader, analyze_video  # noqa: E402
from facebank.video.decode import VideoBudget, VideoBudgetExceeded, VideoCancelled  # noqa: E402
from tests.video_media import lying_mjpeg, many_tiny_frames, tiny_video  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-videos")
    return {"lying": lying_mjpeg(root / "lying.avi"), "long": many_tiny_frames(root / "long.mkv"),
            "tiny": tiny_video(root / "tiny.mkv"), "root": root}


@pytest.fixture(scope="module")
def gallery(media) -> Path:
    path = media["root"] / "gallery.db"
    with SqliteGallery(path) as g:
        g.add_person("nobody")
    return path


def test_frames_bigger_than_the_header_are_refused_before_they_become_arrays(media):
    with VideoReader(media["lying"], fps=None, max_pixels=40_000_000) as r:
        assert (r.info.width, r.info.height) == (64, 64)
        frames = []
        with pytest.raises(VideoError) as err:
            for f in r.frames():
                frames.append(f.rgb.shape)
    assert frames == [(64, 64, 3)] * 3
    msg = str(err.value)
    assert "40000000 pixels" in msg and "64x64" in msg and "\n" not in msg


# the child writes its own peak memory (VmHWM of its program after exec) when it exits: the rusage of
# a child (RUSAGE_CHILDREN, os.wait4) also counts the pages of the test process it was forked from,
# which is gigabytes after a full test session
PEAK = ("import atexit, os, re, sys\n"
        "def _peak():\n"
        "    kb = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
        "    open(os.environ['FACEBANK_TEST_PEAK_FILE'], 'w').write(kb)\n"
        "atexit.register(_peak)\n"
        "from facebank.cli import main; sys.argv[0] = 'facebank'; main()\n")


def _facebank(*args: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    """Run the CLI in a child process; (result, that child's own peak RSS in MB)."""
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        full_env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "FACEBANK_TEST_PEAK_FILE": str(peak_file),
                    **(env or {})}
        proc = subprocess.run([sys.executable, "-c", PEAK, *args], capture_output=True, text=True,
                              env=full_env, timeout=300)
        peak_mb = int(peak_file.read_text()) / 1024 if peak_file.is_file() else float("nan")
    return proc, peak_mb


def test_identify_a_video_with_frames_bigger_than_its_header_stays_small_and_says_why(media, gallery):
    proc, peak_mb = _facebank("identify", str(media["lying"]), "--gallery", str(gallery))
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "pixels" in lines[0], proc.stderr
    # main decoded the 12,000 x 12,000 frame (432 MB as RGB): 1.03 GB peak; now about 0.2 GB
    assert peak_mb < 500, f"peak RSS {peak_mb:.0f} MB"


def test_identify_a_video_respects_the_frame_budget(media, gallery):
    t0 = time.monotonic()
    proc, _ = _facebank("identify", str(media["long"]), "--gallery", str(gallery),
                        env={"FACEBANK_VIDEO_MAX_FRAMES": "2000"})
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {media['long']}: the video has more than 2000 frames: it exceeds the frame budget"]
    assert time.monotonic() - t0 < 120


def test_the_frame_budget_counts_decoded_frames_not_analysed_ones(media):
    with VideoReader(media["long"], fps=1.0, budget=VideoBudget(max_frames=5000)) as r:
        got = []
        with pytest.raises(VideoBudgetExceeded):
            for f in r.frames():
                got.append(f.index)
    assert got == [0, 1000, 2000, 3000, 4000]  # one analysed frame a second, 5000 decoded


def test_the_time_budget_stops_a_long_video(media):
    t0 = time.monotonic()
    with (VideoReader(media["long"], fps=None, budget=VideoBudget(max_seconds=0.5)) as r,
          pytest.raises(VideoBudgetExceeded) as err):
        for _ in r.frames():
            pass
    assert time.monotonic() - t0 < 3.0
    assert "time budget" in str(err.value)


def test_a_video_within_its_budget_is_read_to_the_end(media):
    with VideoReader(media["tiny"], fps=None, budget=VideoBudget(max_frames=10)) as r:
        assert len(list(r.frames())) == 10


@pytest.mark.parametrize("fps", [None, 2.0])
def test_the_cancel_event_stops_the_decoding_at_the_next_frame(media, fps):
    cancel = threading.Event()
    set_at: list[float] = []

    def cancel_now() -> None:
        set_at.append(time.monotonic())
        cancel.set()

    with VideoReader(media["long"], fps=fps, cancel=cancel) as r:
        frames = r.frames()
        next(frames)
        timer = threading.Timer(0.3, cancel_now)
        timer.start()
        with pytest.raises(VideoCancelled):
            for _ in frames:
                pass
        latency = time.monotonic() - set_at[0]
    timer.join()
    # at fps 2 of a 1,000 fps video 500 frames are decoded between two analysed ones: the event is
    # still seen at the next decoded frame
    assert latency < 0.2, latency


def test_frames_too_small_for_a_face_never_reach_the_embedder(media, gallery):
    # dlib's own embedder raised "get_face_chip(): incompatible function arguments" on 2x2 frames
    settings = Settings(gallery=str(gallery), embedder="dlib")
    with FaceBank(gallery, settings=settings) as fb:
        result = analyze_video(fb, media["tiny"], fps=None)
    assert result.tracks == () and result.frames_analysed == 10


def test_a_budget_must_be_positive():
    with pytest.raises(ValueError):
        VideoBudget(max_frames=0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            VideoBudget(max_seconds=bad)


@pytest.mark.parametrize("flag,value", [
    ("--video-max-frames", "0"), ("--video-max-seconds", "nan"), ("--video-max-seconds", "inf"),
    ("--video-max-seconds", "-3"), ("--max-upload-storage-mb", "-1"), ("--max-upload-storage-mb", "nan")])
def test_serve_refuses_a_budget_or_quota_out_of_range(gallery, flag, value):
    from typer.testing import CliRunner

    from facebank.cli import app

    result = CliRunner().invoke(app, ["serve", "--gallery", str(gallery), flag, value])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {flag}"), result.output
