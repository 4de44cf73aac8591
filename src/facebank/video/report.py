"""A self-contained HTML report of one video: timeline (who is on screen when), tracks, thumbnails."""

from __future__ import annotations

import math
from pathlib import Path

from facebank.report import plots
from facebank.report.html import Report
from facebank.video.analyze import VideoResult

MAX_THUMBNAILS = 400


def video_report(result: VideoResult) -> Report:
    info = result.info
    rep = Report(f"facebank video: {Path(info.source).name}")
    sampled = f"{result.sample_fps:g} frames per second" if result.sample_fps else "every frame"
    end = "the end" if result.end_s is None else f"{result.end_s:.1f} s"
    part = "" if not result.start_s and result.end_s is None else \
        f" (analysed from {result.start_s:.1f} s to {end})"
    rep.text(f"{info.source}: {info.width}x{info.height}, {info.fps:.2f} fps{part}, "
             f"{result.video_seconds:.1f} s of video; {result.frames_analysed} frames analysed ({sampled}) "
             f"in {result.seconds:.1f} s; {len(result.cuts_s)} cuts; {len(result.tracks)} face tracks, "
             f"{sum(t.name is not None for t in result.tracks)} named.")
    step = 1.0 / result.sample_fps if result.sample_fps else (1.0 / info.fps if info.fps else 0.0)
    rows = [(result.label(t) if result.unknown.get(t.id) or t.name else f"unknown (track {t.id})",
             t.start_s, t.end_s + step, t.name is not None) for t in result.tracks]
    rep.heading("Timeline")
    if rows:
        rep.image(plots.timeline(rows, result.video_seconds or max(r[2] for r in rows)),
                  "one line per person (unknown tracks in red, one line each); a bar per track")
    else:
        rep.text("no face was found in the video")
    rep.heading("People")
    rep.table(["person", "seconds on screen", "appearances", "each appearance (s)"], [
        (p.label, f"{p.seconds:.1f}", len(p.appearances),
         ", ".join(f"{a.start_s:.1f}-{a.end_s:.1f}" for a in p.appearances[:30])
         + (" ..." if len(p.appearances) > 30 else ""))
        for p in result.people()])
    rep.heading("Tracks")
    rep.table(["track", "name", "nearest person", "L2 distance", "start (s)", "end (s)", "frames", "box"], [
        (t.id, result.label(t), t.match.candidate if t.match else "",
         t.match.distance if t.match and math.isfinite(t.match.distance) else float("nan"),
         f"{t.start_s:.2f}", f"{t.end_s:.2f}", t.frames, t.box.as_list())
        for t in result.tracks])
    thumbs = [(t.thumbnail, f"#{t.id} {(t.name or 'unknown')[:16]}\n{t.start_s:.1f}-{t.end_s:.1f} s",
               t.name is not None) for t in result.tracks[:MAX_THUMBNAILS] if t.thumbnail is not None]
    if thumbs:
        rep.heading("A face of each track (its largest)")
        rep.image(plots.image_grid(thumbs), "" if len(result.tracks) <= MAX_THUMBNAILS
                  else f"the first {MAX_THUMBNAILS} tracks")
    return rep
