"""Videos: ``identify VIDEO`` (named face tracks, a timeline) and ``watch SOURCE`` (track events)."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import typer

from facebank.cli.app import (
    DetectorOpt,
    EmbedderOpt,
    FlipOpt,
    GalleryOpt,
    OnnxOpt,
    app,
    fail,
    make_settings,
    open_bank,
    progress,
)

FpsOpt = typer.Option(None, "--fps", help="videos: frames analysed per second of video (default 2)")
EveryFrameOpt = typer.Option(False, "--every-frame", help="videos: analyse every frame (slower)")
ReportOpt = typer.Option(None, "--report", help="videos: write an HTML timeline with a face per track here")
KeepUnknownOpt = typer.Option(False, "--keep-unknown", help="videos: store a face of each unknown person's "
                              "track in the gallery, unassigned, to cluster and name later")
StartOpt = typer.Option(None, "--start", help="videos: analyse from this many seconds into the video "
                        "(the file is sought there, not decoded from the start)")
EndOpt = typer.Option(None, "--end", help="videos: analyse up to this many seconds into the video")
SummaryOpt = typer.Option(False, "--summary", help="videos, with --json: one JSON object per person "
                          "(time on screen, each appearance) instead of one per track")


def video_part(start: float | None, end: float | None) -> tuple[float, float | None]:
    """``--start``/``--end`` checked: seconds, 0 <= start < end; exit 2 otherwise."""
    import math

    for flag, v in (("--start", start), ("--end", end)):
        if v is not None and not (math.isfinite(v) and v >= 0):
            raise fail(f"{flag} must be a number of seconds >= 0 (got {v})", 2)
    if start is not None and end is not None and end <= start:
        raise fail(f"--end ({end:g} s) must come after --start ({start:g} s)", 2)
    return start or 0.0, end


def is_video_run(paths: list[Path], fps: float | None, every_frame: bool, report: Path | None,
                 keep_unknown: bool = False, start: float | None = None, end: float | None = None,
                 summary: bool = False) -> bool:
    """True when ``identify`` was given a video; exit 2 on video flags without one or a mix."""
    from facebank.video import is_video_path

    videos = [p for p in paths if is_video_path(p)]
    if not videos:
        if fps is not None or every_frame or report is not None or keep_unknown or start is not None \
                or end is not None or summary:
            raise fail("--fps, --every-frame, --report, --keep-unknown, --start, --end and --summary apply "
                       "to videos (.mp4, .mkv, .mov, ...)", 2)
        return False
    if len(paths) != 1:
        raise fail("identify takes one video at a time, or photos only", 2)
    return True


def sample_rate(fps: float | None, every_frame: bool) -> float | None:
    from facebank.video import DEFAULT_FPS

    if every_frame and fps is not None:
        raise fail("give --fps or --every-frame, not both", 2)
    if fps is not None and not 0 < fps <= 1000:
        raise fail(f"--fps must be above 0 (got {fps})", 2)
    return None if every_frame else (fps or DEFAULT_FPS)


def _bank(gallery: str | None, **flags: object):
    fb = open_bank(make_settings(gallery, **flags), must_exist=True)
    if not fb.people():
        typer.echo(f"warning: the gallery {fb.settings.gallery} is empty; every face will be unknown. "
                   "Run 'facebank enroll FOLDER' first.", err=True)
    return fb


def identify_video(path: Path, *, gallery: str | None, threshold: float | None, as_json: bool,
                   annotate: Path | None, report: Path | None, fps: float | None, every_frame: bool,
                   model: Path | None = None, keep_unknown: bool = False, start: float | None = None,
                   end: float | None = None, summary: bool = False, **flags: object) -> None:
    """``facebank identify VIDEO``: one JSON object per track with --json (per person with
    --summary), else a short timeline and who is on screen how long."""
    from facebank.video import VideoError, analyze_video

    rate = sample_rate(fps, every_frame)
    start_s, end_s = video_part(start, end)
    if summary and not as_json:
        raise fail("--summary goes with --json (the plain output always ends with the summary)", 2)
    if annotate is not None and annotate.is_dir():
        raise fail(f"--annotate {annotate}: is a folder; for a video give the file to write, e.g. out.mp4", 2)
    if model is not None:
        raise fail("--model (a trained classifier) is not supported for videos yet; tracks are named "
                   "against the gallery", 2)
    fb = _bank(gallery, threshold=threshold, **flags)
    try:
        result = analyze_video(fb, path, fps=rate, progress=progress, start_s=start_s, end_s=end_s)
    except VideoError as exc:
        raise fail(str(exc)) from None
    except Exception as exc:
        raise fail(f"{path}: {exc}") from None
    if as_json:
        rows = [p.to_json() for p in result.people()] if summary else [t.to_json() for t in result.tracks]
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        typer.echo(result.timeline())
        typer.echo(result.summary_text())
    try:
        if keep_unknown:
            from facebank.video.keep import keep_unknown as keep

            n = keep(fb, result)
            typer.echo(f"{n} unknown face(s) kept in {fb.settings.gallery} as unassigned faces", err=True)
        if report is not None:
            from facebank.video.report import video_report

            video_report(result).save(report)
            typer.echo(f"report written to {report}", err=True)
        if annotate is not None:
            from facebank.video.annotate import annotate_video

            annotate_video(result, annotate, progress=progress)
            typer.echo(f"annotated video written to {annotate}", err=True)
    except (VideoError, OSError) as exc:
        raise fail(str(exc)) from None


@app.command()
def watch(
    source: str = typer.Argument(..., help="a video file, an http(s):// or rtsp:// URL, or a camera "
                                 "device such as /dev/video0"),
    gallery: str = GalleryOpt,
    threshold: float = typer.Option(None, "--threshold", "-t",
                                    help="max L2 distance (unit embeddings) for a match"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per event per line"),
    fps: float = FpsOpt, every_frame: bool = EveryFrameOpt, start: float = StartOpt, end: float = EndOpt,
    detector: str = DetectorOpt, embedder: str = EmbedderOpt, onnx_model: str = OnnxOpt,
    flip: bool = FlipOpt,
) -> None:
    """Print each face track of SOURCE when it starts (with a first guess of the name) and when it
    ends (named from all its faces). Runs until the source ends; Ctrl-C stops cleanly, ending the
    open tracks. Files are read as fast as they can be analysed, not in real time."""
    from facebank.embed.points import NotCalibrated
    from facebank.video import VideoError, VideoWatcher

    rate = sample_rate(fps, every_frame)
    start_s, end_s = video_part(start, end)
    fb = _bank(gallery, threshold=threshold, detector=detector, embedder=embedder,
               onnx_model=onnx_model, flip=flip)
    try:
        watcher = VideoWatcher(fb, source, fps=rate, start_s=start_s, end_s=end_s)
    except (VideoError, NotCalibrated) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"watching {source} ({watcher.info.width}x{watcher.info.height}); Ctrl-C stops", err=True)
    try:
        try:
            for event in watcher.events():
                _print_event(event, as_json)
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # one Ctrl-C stops; the open tracks still end
            try:
                for event in watcher.stop():
                    _print_event(event, as_json)
            except KeyboardInterrupt:  # PyAV re-raises the Ctrl-C it saw while reading
                watcher.reader.close()
            typer.echo("stopped", err=True)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)  # all is written; a Ctrl-C PyAV stashed must not turn a clean stop into a crash
    except VideoError as exc:
        raise fail(str(exc)) from None


def _print_event(event, as_json: bool) -> None:
    if as_json:
        line = json.dumps(event.to_json(), ensure_ascii=False)
    elif event.kind == "start":
        line = (f"{event.time_s:8.1f} s  start #{event.track_id} {event.name or 'unknown'} "
                f"at {event.box.as_list()}")
    else:
        tr = event.track
        line = (f"{event.time_s:8.1f} s  end   #{event.track_id} {event.name or 'unknown'} "
                f"({tr.start_s:.1f}-{tr.end_s:.1f} s, {tr.frames} frames, distance {event.distance:.3f})")
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
