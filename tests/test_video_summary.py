"""Who is on screen how long: the per-person summary, unknown people grouped across shots, and a
part of a video (--start/--end) read by seeking. Unit tests on made-up tracks; the generated-reel
runs are in tests/test_video_e2e.py."""

from __future__ import annotations

import numpy as np
import pytest

from facebank.embed.points import DLIB_POINTS as POINTS
from facebank.types import Box, Match
from facebank.video.analyze import VideoResult, group_unknown, summarize
from facebank.video.decode import VideoInfo
from facebank.video.track import Track


def unit(seed: int, noise: float = 0.0, base: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = np.random.default_rng(base if base is not None else seed).normal(size=128)
    v = v / np.linalg.norm(v) + noise * rng.normal(size=128) / np.sqrt(128)
    return (v / np.linalg.norm(v)).astype(np.float32)


def track(tid: int, start: float, end: float, emb: np.ndarray, name: str | None = None,
          step: float = 0.5) -> Track:
    times = np.arange(start, end + 1e-9, step)
    boxes = np.tile(np.asarray([[10, 10, 60, 60]], np.float32), (len(times), 1))
    m = Match(name, 0.3 if name else 0.6, 0.9, candidate=name)
    return Track(id=tid, start_s=start, end_s=float(times[-1]), frames=len(times), box=Box(10, 10, 60, 60),
                 times_s=times, boxes=boxes, embeddings=np.stack([emb] * len(times)), match=m)


def test_the_same_unknown_person_in_two_shots_is_one_unknown_and_a_stranger_another():
    a1, a2 = track(0, 0.0, 2.0, unit(1, 0.1, base=1)), track(2, 5.0, 7.0, unit(2, 0.1, base=1))
    b = track(1, 2.5, 4.5, unit(3))
    named = track(3, 0.0, 7.0, unit(4), name="anna")
    groups = group_unknown([a1, b, a2, named], POINTS)
    assert groups == {0: 1, 1: 2, 2: 1}


def test_two_unknown_faces_on_screen_at_once_are_never_one_person():
    a, b = track(0, 0.0, 2.0, unit(1, 0.05, base=1)), track(1, 1.0, 3.0, unit(2, 0.05, base=1))
    assert group_unknown([a, b], POINTS) == {0: 1, 1: 2}


def test_a_one_frame_unknown_track_is_left_out_of_the_groups():
    assert group_unknown([track(0, 1.0, 1.0, unit(1))], POINTS) == {}


def test_summary_sums_time_on_screen_and_merges_touching_tracks():
    t = [track(0, 0.0, 2.0, unit(1), "anna"), track(1, 2.5, 3.0, unit(1), "anna"),
         track(2, 10.0, 11.0, unit(1), "anna"), track(3, 1.0, 1.5, unit(2), "bob")]
    people = summarize(t, lambda x: x.name or "unknown", 0.5, end_s=12.0)
    assert [p.label for p in people] == ["anna", "bob"]
    anna = people[0]
    spans = [(a.start_s, a.end_s, a.tracks) for a in anna.appearances]
    assert spans == [(0.0, 3.5, (0, 1)), (10.0, 11.5, (2,))]
    assert anna.seconds == pytest.approx(5.0)
    assert people[1].seconds == pytest.approx(1.0)
    assert list(anna.to_json()) == ["person", "name", "seconds", "appearances"]


def test_the_result_labels_unknown_people_by_group_in_the_timeline_and_summary():
    info = VideoInfo("clip.mp4", 640, 360, 25.0, 8.0, 200, "h264")
    tracks = (track(0, 0.0, 2.0, unit(1, 0.1, base=1)), track(1, 5.0, 7.0, unit(2, 0.1, base=1)))
    res = VideoResult(info, tracks, 2.0, 16, 1.0, unknown=group_unknown(tracks, POINTS))
    assert [res.label(t) for t in tracks] == ["unknown #1", "unknown #1"]
    text = res.timeline() + "\n" + res.summary_text()
    assert "unknown #1: 5.0 s on screen, 2 appearance(s)" in text
    assert "#1 unknown #1" in text


def test_a_part_of_a_video_is_read_from_its_start_by_seeking(tmp_path):
    av = pytest.importorskip("av")
    from facebank.video import VideoReader

    path = tmp_path / "long.mp4"
    with av.open(str(path), "w") as out:  # 20 s, a key frame every second
        s = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "g": "25"})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for k in range(500):
            rgb = np.full((48, 64, 3), (k * 7) % 255, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    with VideoReader(path, fps=2.0, start_s=15.0, end_s=17.0) as r:
        frames = list(r.frames())
    assert [f.time_s for f in frames] == pytest.approx([15.0, 15.5, 16.0, 16.5], abs=0.03)  # [start, end)
    assert frames[0].index < 100  # sought: not 375 frames decoded to get there
    with pytest.raises(ValueError, match="start < end"):
        VideoReader(path, start_s=5.0, end_s=4.0)
    with pytest.raises(ValueError, match="start < end"):
        VideoReader(path, start_s=float("nan"))


@pytest.mark.parametrize("flags,expected", [
    (["--start", "5", "--end", "4"], "--end (4 s) must come after --start (5 s)"),
    (["--start", "-1"], "--start must be a number of seconds >= 0"),
    (["--end", "nan"], "--end must be a number of seconds >= 0"),
    (["--summary"], "--summary goes with --json"),
])
def test_cli_video_part_and_summary_flags_are_checked(tmp_path, flags, expected):
    from typer.testing import CliRunner

    from facebank.cli import app

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00" * 100)
    res = CliRunner().invoke(app, ["identify", str(video), "-g", str(tmp_path / "g.db"), *flags])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]


def test_cli_part_flags_without_a_video_are_refused(tmp_path):
    from typer.testing import CliRunner

    from facebank.cli import app

    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"\xff\xd8")
    res = CliRunner().invoke(app, ["identify", str(photo), "--start", "3"])
    assert res.exit_code == 2 and "apply to videos" in res.output


def test_frames_for_the_shot_detector_stay_small_even_for_a_needle_thin_video():
    """A 2 x 40,000,000 frame is within the pixel limit; its 256-wide copy must not be 5 billion tall."""
    from facebank.video.decode import small_bgr

    class Thin:  # only what small_bgr reads of a PyAV frame
        width, height = 2, 40_000_000

        def reformat(self, width: int, height: int, format: str):
            self.asked = (width, height, format)
            return self

        def to_ndarray(self):
            return np.zeros((self.asked[1], self.asked[0], 3), np.uint8)

    assert small_bgr(Thin(), 256).shape == (1024, 256, 3)


def test_sightings_a_frame_apart_by_sampling_jitter_are_one_appearance():
    """At 25 fps, --fps 2 samples 10.0, 10.52 (the first frame at or after 10.5): still one stretch."""
    t = [track(0, 10.0, 10.0, unit(1), "anna"), track(1, 10.52, 10.52, unit(1), "anna")]
    (anna,) = summarize(t, lambda x: x.name, 0.5)
    assert len(anna.appearances) == 1 and anna.appearances[0].tracks == (0, 1)


def test_the_report_has_a_people_table_with_unknown_people_grouped(tmp_path):
    from facebank.video.report import video_report

    info = VideoInfo("clip.mp4", 640, 360, 25.0, 8.0, 200, "h264")
    tracks = (track(0, 0.0, 2.0, unit(1, 0.1, base=1)), track(1, 2.5, 3.0, unit(4), name="anna"),
              track(2, 5.0, 7.0, unit(2, 0.1, base=1)))
    res = VideoResult(info, tracks, 2.0, 16, 1.0, unknown=group_unknown(tracks, POINTS))
    video_report(res).save(tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert "People" in html and "unknown #1" in html and "5.0" in html and "anna" in html
