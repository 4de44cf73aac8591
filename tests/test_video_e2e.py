"""Videos end to end on generated reels of real photos (../shared/faces/5celeb): known ground truth.

The reel (tests make it; no video is committed): every 5celeb/val person alone in a still, a
panning and a zooming shot, then five shots of two people side by side; every shot change is a
cut. The gallery is 5celeb/train, so no photo of the reel was enrolled.
"""

from __future__ import annotations

import http.server
import json
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import pytest

pytest.importorskip("av")

from facebank import FaceBank  # noqa: E402
from facebank.video import analyze_video  # noqa: E402
from facebank.video.synthetic import make_video, score_tracks, standard_shots  # noqa: E402

pytestmark = pytest.mark.shared
SHOT_S = 2.0


@pytest.fixture(scope="module")
def reel(tmp_path_factory, faces_dir):
    folder = tmp_path_factory.mktemp("reel")
    return make_video(folder / "reel.mp4", standard_shots(faces_dir / "5celeb" / "val", seconds=SHOT_S))


@pytest.fixture(scope="module")
def result(reel, celeb_gallery):
    with FaceBank(celeb_gallery) as fb:
        return analyze_video(fb, reel.path, fps=2.0)


def test_the_reel_is_named_right_at_least_95_percent_of_the_time(reel, result):
    score = score_tracks(reel, result.tracks, 0.5)
    assert score.appearances == 25
    assert score.share_named_right >= 0.95, score.as_dict()


def test_no_track_switches_person_or_crosses_a_cut(reel, result):
    score = score_tracks(reel, result.tracks, 0.5)
    assert score.switching_tracks == 0, score.as_dict()
    for t in result.tracks:
        shots = {reel.shot_at(x)[0] for x in t.times_s.tolist()}
        assert len(shots) == 1, t


def test_one_track_per_appearance_plus_a_few_short_extras(reel, result):
    apps = reel.appearances()
    long_tracks = [t for t in result.tracks if t.frames >= 2]
    # every appearance is followed by one track; faces the detector finds only now and then in a
    # photo (background faces) may add short unknown tracks
    assert len(apps) <= len(result.tracks) <= len(apps) + 12, [t.to_json() for t in result.tracks]
    assert len(long_tracks) <= len(apps) + 3
    named = [t for t in result.tracks if t.name]
    assert len(named) <= len(apps)


def test_tracks_are_named_from_many_frames_and_ordered_by_time(reel, result):
    assert [t.start_s for t in result.tracks] == sorted(t.start_s for t in result.tracks)
    assert max(t.frames for t in result.tracks) >= 2 * SHOT_S - 1
    assert result.frames_analysed == pytest.approx(2 * reel.duration_s, abs=2)


def run_cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "facebank", *args], capture_output=True, text=True,
                          timeout=900, **kw)


def test_cli_identify_video_json_report_and_annotated_copy(reel, celeb_gallery, tmp_path):
    import av

    out, rep = tmp_path / "out.mp4", tmp_path / "video.html"
    res = run_cli("identify", str(reel.path), "-g", str(celeb_gallery), "--json", "--annotate", str(out),
                  "--report", str(rep))
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    keys = ["track", "name", "distance", "start", "end", "frames", "box", "score", "faces_used"]
    assert rows and all(list(r) == keys for r in rows)
    people = {"ben_afflek", "elton_john", "jerry_seinfeld", "madonna", "mindy_kaling"}
    assert {r["name"] for r in rows} >= people
    html = rep.read_text()
    assert "Timeline" in html and html.count("data:image/png;base64") == 2 and "madonna" in html
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert (s.codec_context.width, s.codec_context.height) == (1280, 720)
        n = sum(1 for _ in c.decode(s))
    assert n == int(reel.duration_s * reel.fps)
    assert not list(tmp_path.glob(".annotate-*"))
    assert out.stat().st_mode & 0o777 == 0o644


def test_cli_plain_output_is_a_short_timeline(reel, celeb_gallery):
    res = run_cli("identify", str(reel.path), "-g", str(celeb_gallery), "--fps", "1")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "track(s)" in lines[0] and len(lines) >= 1 + 25
    assert any("madonna" in line and " - " in line for line in lines[1:])


@pytest.mark.parametrize("content,expected", [(b"", "the file is empty"),
                                              (b"\x00" * 5000, "not a readable video")])
def test_cli_bad_video_files_get_one_line_errors(tmp_path, celeb_gallery, content, expected):
    p = tmp_path / "clip.mp4"
    p.write_bytes(content)
    res = run_cli("identify", str(p), "-g", str(celeb_gallery))
    assert res.returncode == 1
    assert res.stderr.strip().startswith("error: ") and expected in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_cli_video_flags_are_checked(tmp_path, reel, celeb_gallery, faces_dir):
    photo = next((faces_dir / "5celeb" / "val" / "madonna").iterdir())
    res = run_cli("identify", str(photo), "--fps", "2", "-g", str(celeb_gallery))
    assert res.returncode == 2 and "apply to videos" in res.stderr
    res = run_cli("identify", str(reel.path), "--fps", "2", "--every-frame", "-g", str(celeb_gallery))
    assert res.returncode == 2 and "not both" in res.stderr
    res = run_cli("identify", str(reel.path), str(photo), "-g", str(celeb_gallery))
    assert res.returncode == 2 and "one video at a time" in res.stderr
    res = run_cli("identify", str(reel.path), "--annotate", str(tmp_path), "-g", str(celeb_gallery))
    assert res.returncode == 2 and "is a folder" in res.stderr


@pytest.fixture(scope="module")
def loopback(reel):
    """The reel's folder over http://127.0.0.1 (a threaded server, this test only)."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(reel.path.parent))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def streamable(reel):
    """The first shots of the reel as Matroska (streamable over plain HTTP without range requests)."""
    shots = reel.shots[:4]
    return make_video(reel.path.parent / "short.mkv", shots)


def test_watch_prints_start_and_end_events_of_a_file(streamable, celeb_gallery):
    res = run_cli("watch", str(streamable.path), "-g", str(celeb_gallery), "--json")
    assert res.returncode == 0, res.stderr
    events = [json.loads(line) for line in res.stdout.splitlines()]
    starts = [e for e in events if e["event"] == "start"]
    ends = [e for e in events if e["event"] == "end"]
    assert len(starts) == len(ends) >= 4
    assert {e["track"] for e in starts} == {e["track"] for e in ends}
    assert set(ends[0]) == {"event", "track", "name", "distance", "start", "end", "frames", "box", "score",
                            "faces_used"}
    named = [e["name"] for e in ends if e["frames"] >= 2]
    assert named == [s.people[0] for s in streamable.shots]


def test_watch_reads_a_stream_on_loopback_and_stops_cleanly_on_ctrl_c(streamable, loopback, celeb_gallery):
    url = f"{loopback}/{streamable.path.name}"
    proc = subprocess.Popen([sys.executable, "-m", "facebank", "watch", url, "-g", str(celeb_gallery),
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        assert first["event"] == "start"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    events = [first] + [json.loads(line) for line in out.splitlines()]
    started = {e["track"] for e in events if e["event"] == "start"}
    ended = {e["track"] for e in events if e["event"] == "end"}
    assert started and started == ended  # every open track was ended on Ctrl-C
    assert "Traceback" not in err


def test_watch_of_an_unreachable_url_is_a_clear_error(celeb_gallery):
    res = run_cli("watch", "http://127.0.0.1:9/none.mp4", "-g", str(celeb_gallery))
    assert res.returncode == 1 and res.stderr.strip().startswith("error: ")
    assert "Traceback" not in res.stderr


def test_keep_unknown_stores_one_face_per_unknown_track_as_unassigned(reel, celeb_gallery, tmp_path):
    import hashlib

    from facebank.video.keep import keep_unknown

    gallery = tmp_path / "g.db"
    gallery.write_bytes(celeb_gallery.read_bytes())
    short = make_video(tmp_path / "short.mp4", reel.shots[:5])  # each of the five people once
    with FaceBank(gallery) as fb:
        fb.remove_person("madonna")
        fb.remove_person("elton_john")
        res = analyze_video(fb, short.path, fps=2.0)
        unknown = [t for t in res.tracks if t.name is None and t.frames >= 2]
        assert {short.appearance_of(t.times_s[0], t.boxes[0]).person for t in unknown} >= {
            "madonna", "elton_john"}
        added = keep_unknown(fb, res, folder=tmp_path / "faces")
        assert added == len(unknown)
        assert keep_unknown(fb, res, folder=tmp_path / "faces") == 0  # kept once
        faces = fb.gallery.faces(unassigned=True)
        assert len(faces) == added and all(f.person is None for f in faces)
        for f in faces:
            data = Path(f.path).read_bytes()
            assert hashlib.sha256(data).hexdigest() == f.sha256
            assert Path(f.path).stat().st_mode & 0o777 == 0o644
        assert {p.name for p in fb.people()} == {"ben_afflek", "jerry_seinfeld", "mindy_kaling"}
        again = analyze_video(fb, short.path, fps=2.0)  # unassigned faces never name anyone
        assert not {t.name for t in again.tracks} & {"madonna", "elton_john"}
