"""Video decoding: sampling, cuts, flat memory, and a clear one-line error for every bad file."""

from __future__ import annotations

import wave

import numpy as np
import pytest

av = pytest.importorskip("av")

from facebank.video import VideoError, VideoReader  # noqa: E402


def write_colour_video(path, shots, fps=25, size=(160, 96), noise=0):
    """Shots of plain colour: [(seconds, (r, g, b)), ...]; a moving bar so frames differ a little."""
    w, h = size
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        k = 0
        for seconds, colour in shots:
            for _ in range(int(round(seconds * fps))):
                rgb = np.empty((h, w, 3), np.uint8)
                rgb[:] = colour
                x = (k * 3) % (w - 10)
                rgb[:, x:x + 10] = 255 - np.asarray(colour, np.uint8)
                if noise:
                    rgb = np.clip(rgb + rng.integers(-noise, noise + 1, rgb.shape), 0, 255).astype(np.uint8)
                k += 1
                for p in s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def test_two_frames_per_second_are_sampled_in_time_order(tmp_path):
    path = write_colour_video(tmp_path / "a.mp4", [(4.0, (200, 30, 30))])
    with VideoReader(path, fps=2.0) as r:
        assert r.info.width == 160 and r.info.height == 96
        assert r.info.fps == pytest.approx(25.0)
        assert r.info.duration_s == pytest.approx(4.0, abs=0.1)
        times = [f.time_s for f in r.frames()]
    assert len(times) == 8
    assert np.allclose(times, np.arange(8) * 0.5, atol=0.05)


def test_every_frame_is_returned_without_fps(tmp_path):
    path = write_colour_video(tmp_path / "a.mp4", [(2.0, (10, 200, 30))])
    with VideoReader(path, fps=None) as r:
        frames = list(r.frames())
    assert len(frames) == 50
    assert [f.index for f in frames] == list(range(50))
    assert frames[0].rgb.shape == (96, 160, 3) and frames[0].rgb.dtype == np.uint8


def test_a_change_of_shot_is_a_cut_and_motion_is_not(tmp_path):
    path = write_colour_video(tmp_path / "a.mp4", [(2.0, (200, 30, 30)), (2.0, (20, 40, 220)),
                                                   (2.0, (240, 240, 40))])
    with VideoReader(path, fps=None) as r:
        cuts = [f.time_s for f in r.frames() if f.cut]
    assert cuts == pytest.approx([2.0, 4.0], abs=0.05)


def test_a_cut_between_sampled_frames_is_reported_on_the_next_sample(tmp_path):
    path = write_colour_video(tmp_path / "a.mp4", [(1.3, (200, 30, 30)), (1.7, (20, 40, 220))])
    with VideoReader(path, fps=1.0) as r:
        frames = [(round(f.time_s, 2), f.cut) for f in r.frames()]
    assert frames == [(0.0, False), (1.0, False), (2.0, True)]


def test_an_empty_file_is_a_clear_error(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(VideoError, match=r"empty.mp4: the file is empty \(0 bytes\)"):
        VideoReader(p)


def test_random_bytes_are_not_a_video(tmp_path):
    p = tmp_path / "noise.mp4"
    p.write_bytes(np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError, match="noise.mp4: not a readable video"):
        VideoReader(p)


def test_a_file_with_sound_only_has_no_video_stream(tmp_path):
    p = tmp_path / "sound.wav"
    with wave.open(str(p), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(8000, np.int16).tobytes())
    with pytest.raises(VideoError, match="sound.wav: the file has no video stream"):
        VideoReader(p)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_truncated_video_is_a_clear_error(tmp_path, suffix):
    full = write_colour_video(tmp_path / f"full{suffix}", [(6.0, (200, 30, 30))], noise=40)
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError) as err, VideoReader(cut, fps=2.0) as r:
        for _ in r.frames():
            pass
    msg = str(err.value)
    assert msg.startswith(str(cut)) and "\n" not in msg
    assert "truncated" in msg or "damaged" in msg or "not a readable video" in msg


def test_a_playlist_pointing_at_other_files_is_refused(tmp_path):
    secret = write_colour_video(tmp_path / "secret.mp4", [(1.0, (1, 2, 3))])
    p = tmp_path / "list.mp4"
    p.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{secret}\n#EXT-X-ENDLIST\n")
    with pytest.raises(VideoError, match="not a readable video"):
        VideoReader(p)


def test_a_missing_file_and_a_bad_rate_are_clear_errors(tmp_path):
    with pytest.raises(VideoError, match="no such file"):
        VideoReader(tmp_path / "nope.mp4")
    path = write_colour_video(tmp_path / "a.mp4", [(0.5, (1, 2, 3))])
    with pytest.raises(ValueError, match="fps must be > 0"):
        VideoReader(path, fps=0)


def test_a_long_video_is_streamed_in_flat_memory(tmp_path):
    psutil = pytest.importorskip("psutil")
    path = write_colour_video(tmp_path / "long.mp4", [(60.0, (90, 120, 200))], size=(640, 360))
    proc = psutil.Process()
    rss = []
    with VideoReader(path, fps=None) as r:
        for f in r.frames():
            if f.index in (100, 1499):
                rss.append(proc.memory_info().rss)
    assert len(rss) == 2
    # 1,400 more frames of 640x360 RGB would be ~970 MB if they were kept
    assert rss[1] - rss[0] < 40_000_000, rss


def _rotated_video(path, rotation):
    """64x32 stored frames, left half red, with a display rotation (as phones write portrait video)."""
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = 64, 32, "yuv420p"
        s.set_display_rotation(rotation)
        for _ in range(25):
            rgb = np.zeros((32, 64, 3), np.uint8)
            rgb[:, :32] = (255, 0, 0)
            for p in s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


@pytest.mark.parametrize("rotation,red_side", [(90, "bottom"), (-90, "top"), (180, "right"), (0, "left")])
def test_frames_come_upright_when_the_video_carries_a_display_rotation(tmp_path, rotation, red_side):
    path = _rotated_video(tmp_path / "phone.mp4", rotation)
    with VideoReader(path, fps=2.0) as r:
        rgb = next(iter(r.frames())).rgb
    assert rgb.shape[:2] == ((64, 32) if rotation in (90, -90) else (32, 64))
    h, w = rgb.shape[:2]
    halves = {"top": rgb[: h // 2], "bottom": rgb[h // 2:],
              "left": rgb[:, : w // 2], "right": rgb[:, w // 2:]}
    assert halves[red_side][..., 0].mean() > 200 and halves[red_side][..., 1].mean() < 60


def test_an_annotated_copy_of_a_rotated_video_is_upright(tmp_path):
    from facebank.video.analyze import VideoResult
    from facebank.video.annotate import annotate_video

    path = _rotated_video(tmp_path / "phone.mp4", 90)
    with VideoReader(path) as r:
        info = r.info
    out = annotate_video(VideoResult(info, (), 2.0, 0, 0.0), tmp_path / "out.mp4")
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0))
        assert (frame.width, frame.height) == (32, 64)
