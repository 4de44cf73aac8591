"""Video -> named tracks: decode (sampled), find shots, find and embed faces, follow them, name each
track, and sum up who is on screen when.

``analyze_video`` is the whole job for a file (``facebank identify VIDEO``, ``POST /v1/videos``);
``VideoWatcher`` yields track start/end events as a file, stream or camera plays
(``facebank watch``): the same shot, track and naming code. ``VideoResult.people()`` is the
per-person summary (time on screen, each appearance); unknown people are grouped across shots as
"unknown #1", "unknown #2", ... by ``group_unknown``, from all the faces of their tracks
(``facebank.groups``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from facebank.api import FaceBank
from facebank.embed.points import OperatingPoints, points_for
from facebank.types import Box, Face
from facebank.video.decode import Frame, VideoBudget, VideoInfo, VideoReader
from facebank.video.name import embedding_times, name_embeddings, name_track, name_tracks
from facebank.video.shots import ShotSettings
from facebank.video.track import Track, Tracker, TrackerSettings

log = logging.getLogger(__name__)

Progress = Callable[..., Iterable]
FacesHook = Callable[[Frame, list[Face]], None]
DEFAULT_FPS = 2.0


def _no_progress(it: Iterable, **_: object) -> Iterable:
    return it


@dataclass(frozen=True)
class OnScreen:
    """One appearance of a person: on screen from ``start_s`` to ``end_s`` (seconds of video; a
    sighting counts for one sampling step) in the tracks ``tracks``."""

    start_s: float
    end_s: float
    tracks: tuple[int, ...]

    def to_json(self) -> dict:
        return {"start": round(self.start_s, 3), "end": round(self.end_s, 3), "tracks": list(self.tracks)}


@dataclass(frozen=True)
class PersonSummary:
    """A person of the video: ``label`` is the name, or "unknown #k" for the k-th unknown person
    (``name`` None); ``seconds`` the total time on screen; ``appearances`` each stretch on screen."""

    label: str
    name: str | None
    seconds: float
    appearances: tuple[OnScreen, ...]

    def to_json(self) -> dict:
        return {"person": self.label, "name": self.name, "seconds": round(self.seconds, 3),
                "appearances": [a.to_json() for a in self.appearances]}


@dataclass(frozen=True)
class VideoResult:
    """The named tracks of one video, in order of start. ``sample_fps``: frames analysed per second
    of video (None = every frame); ``frames_analysed``: sampled frames; ``seconds``: wall time;
    ``unknown``: track id -> number of the unknown person it shows (1, 2, ...; named tracks absent);
    ``start_s``/``end_s``: the part of the video analysed; ``cuts_s``: the cuts found (seconds)."""

    info: VideoInfo
    tracks: tuple[Track, ...]
    sample_fps: float | None
    frames_analysed: int
    seconds: float
    unknown: Mapping[int, int] = field(default_factory=dict)
    start_s: float = 0.0
    end_s: float | None = None
    cuts_s: tuple[float, ...] = ()

    @property
    def video_seconds(self) -> float:
        return self.info.duration_s or 0.0

    @property
    def step_s(self) -> float:
        """How long one sighting counts for: the sampling interval (seconds of video)."""
        if self.sample_fps:
            return 1.0 / self.sample_fps
        return 1.0 / self.info.fps if self.info.fps else 0.0

    def label(self, track: Track) -> str:
        """The track's person: its name, "unknown #k", or "unknown (brief)" (a track seen too briefly
        to group)."""
        if track.name is not None:
            return track.name
        k = self.unknown.get(track.id)
        return f"unknown #{k}" if k else "unknown (brief)"

    def people(self) -> tuple[PersonSummary, ...]:
        """Who is on screen and when, most seen first: one summary per person (unknown ones too)."""
        return summarize(self.tracks, self.label, self.step_s, self.end_s or self.video_seconds or None)

    def summary_text(self) -> str:
        lines = ["people:"]
        for p in self.people():
            spans = ", ".join(f"{_clock(a.start_s)}-{_clock(a.end_s)}" for a in p.appearances[:12])
            more = f" (+{len(p.appearances) - 12} more)" if len(p.appearances) > 12 else ""
            lines.append(f"  {p.label}: {p.seconds:.1f} s on screen, {len(p.appearances)} appearance(s): "
                         f"{spans}{more}")
        if len(lines) == 1:
            lines.append("  nobody (no face was found)")
        return "\n".join(lines)

    def timeline(self) -> str:
        """A short plain-text timeline: one line per track."""
        lines = [f"{self.info.source}: {self.info.width}x{self.info.height}, "
                 f"{self.video_seconds:.1f} s, {len(self.tracks)} track(s)"]
        for t in self.tracks:
            m = t.match
            label = self.label(t)
            who = label if t.name else (f"{label} (nearest: {m.candidate})" if m and m.candidate else label)
            dist = f" [distance {m.distance:.3f}]" if m and np.isfinite(m.distance) else ""
            lines.append(f"  {_clock(t.start_s)} - {_clock(t.end_s)}  #{t.id} {who}{dist}, "
                         f"{t.frames} frame(s)")
        return "\n".join(lines)


@dataclass(frozen=True)
class TrackEvent:
    """A track started (``kind`` 'start': provisional name from its first face) or ended ('end':
    ``track`` holds the whole track, named from all its embeddings). ``time_s``: seconds of video."""

    kind: Literal["start", "end"]
    time_s: float
    track_id: int
    box: Box
    name: str | None
    distance: float
    track: Track | None = None

    def to_json(self) -> dict:
        if self.track is not None:
            return {"event": self.kind, **self.track.to_json()}
        d = self.distance
        return {"event": self.kind, "track": self.track_id, "name": self.name,
                "distance": round(d, 6) if np.isfinite(d) else None, "time": round(self.time_s, 3),
                "box": self.box.as_list()}


def settings_budget(bank: FaceBank) -> VideoBudget:
    """The budget of a video from the settings (``video_max_frames``, ``video_max_seconds``)."""
    s = bank.settings
    return VideoBudget(max_frames=s.video_max_frames, max_seconds=s.video_max_seconds)


def smallest_face_px(bank: FaceBank) -> int:
    """Frames whose shorter side is below this hold no face any detector looks for: they are
    skipped without calling the detector or the embedder."""
    s = bank.settings
    return max(1, min(s.min_face, s.mtcnn_min_face))


class VideoWatcher:
    """Follows the faces of one source and yields ``TrackEvent``s; ``stop()`` ends open tracks.

    ``budget``: decoded frames and wall time allowed (default: from the settings); ``cancel``: an
    event that stops the decoding at the next frame (``VideoCancelled``)."""

    def __init__(self, bank: FaceBank, source: str | Path, fps: float | None = DEFAULT_FPS,
                 tracker: TrackerSettings | None = None, threshold: float | None = None,
                 name: str | None = None, budget: VideoBudget | None = None,
                 cancel: threading.Event | None = None, start_s: float = 0.0, end_s: float | None = None,
                 shots: ShotSettings | None = None, on_faces: FacesHook | None = None) -> None:
        self.bank = bank
        self.on_faces = on_faces
        self.threshold = threshold
        self.reader = VideoReader(source, fps=fps, max_pixels=bank.settings.max_pixels, name=name,
                                  budget=budget or settings_budget(bank), cancel=cancel,
                                  shots=shots, start_s=start_s, end_s=end_s)
        info = self.reader.info
        step = 1.0 / fps if fps else 1.0 / (info.fps or 25.0)
        self.tracker = Tracker(step, tracker, points_for(bank.pipeline.model_id))
        self.frames_analysed = 0
        self._announced: set[int] = set()  # tracks whose start event was given and end event not yet
        self.last_time_s = 0.0

    @property
    def info(self) -> VideoInfo:
        return self.reader.info

    def events(self, progress: Progress = _no_progress) -> Iterator[TrackEvent]:
        """Start and end events in order of video time; the last tracks end when the video does."""
        bank = self.bank
        pipe = bank.pipeline
        check_model(bank)
        info = self.reader.info
        total = None
        if info.duration_s:
            rate = self.reader.fps or info.fps
            end = min(info.duration_s, self.reader.end_s or info.duration_s)
            span = max(0.0, end - self.reader.start_s)
            total = int(span * rate) + 1 if rate else None
        min_side = smallest_face_px(bank)
        for frame in progress(self.reader.frames(), total=total, desc="video", unit="frame"):
            faces = pipe.faces(frame.rgb) if min(frame.rgb.shape[:2]) >= min_side else []
            if self.on_faces is not None:
                self.on_faces(frame, faces)
            self.frames_analysed += 1
            self.last_time_s = frame.time_s
            update = self.tracker.update(frame.time_s, faces, frame.rgb, frame.cut)
            yield from self._ended(update.ended, frame.time_s)
            for track_id, box, emb in update.started:
                m = name_embeddings(bank, emb[None], self.threshold)
                self._announced.add(track_id)
                yield TrackEvent("start", frame.time_s, track_id, box, m.name, m.distance)
        yield from self.stop()

    def stop(self) -> Iterator[TrackEvent]:
        """End every open track (the video ended, or the watcher is stopped)."""
        yield from self._ended(self.tracker.finish(), self.last_time_s)
        self.reader.close()

    def _ended(self, tracks: Iterable[Track], t: float) -> Iterator[TrackEvent]:
        for tr in tracks:
            if tr.id not in self._announced:  # stopped between its first frame and its start event
                m = name_embeddings(self.bank, tr.embeddings[:1], self.threshold)
                first = Box(*map(float, tr.boxes[0]))
                yield TrackEvent("start", tr.start_s, tr.id, first, m.name, m.distance)
            self._announced.discard(tr.id)
            tr = name_track(self.bank, tr, self.threshold)
            end = tr.match
            assert end is not None
            yield TrackEvent("end", t, tr.id, tr.box, end.name, end.distance, tr)


def analyze_video(bank: FaceBank, source: str | Path, fps: float | None = DEFAULT_FPS,
                  tracker: TrackerSettings | None = None, threshold: float | None = None,
                  progress: Progress = _no_progress, name: str | None = None, start_s: float = 0.0,
                  end_s: float | None = None, shots: ShotSettings | None = None,
                  on_faces: FacesHook | None = None, budget: VideoBudget | None = None,
                  cancel: threading.Event | None = None) -> VideoResult:
    """Every face track of a video file with its name (None = unknown), ordered by start time;
    ``name`` is what messages call the video (default: ``source``); ``start_s``/``end_s``: only
    that part of the video (seconds); ``on_faces(frame, faces)`` sees the faces of every sampled
    frame (benchmarks: the same frames named one by one); ``budget`` and ``cancel`` as for
    ``VideoWatcher``."""
    t0 = time.perf_counter()
    watcher = VideoWatcher(bank, source, fps, tracker, threshold, name, budget, cancel, start_s, end_s,
                           shots, on_faces)
    ended: list[Track] = []
    try:
        for ev in watcher.events(progress):
            if ev.kind == "end" and ev.track is not None:
                ended.append(ev.track)
    finally:
        watcher.reader.close()
    tracks = name_tracks(bank, sorted(ended, key=lambda t: (t.start_s, t.id)), threshold)
    unknown = group_unknown(tracks, points_for(bank.pipeline.model_id),
                            strangers=stranger_faces(bank, tracks))
    cuts = tuple(getattr(watcher.reader.cut_detector, "cuts_s", ()))
    return VideoResult(watcher.info, tracks, fps, watcher.frames_analysed, time.perf_counter() - t0,
                       unknown, start_s, end_s, cuts)


def group_unknown(tracks: Sequence[Track], points: OperatingPoints, min_frames: int = 2,
                  strangers: Sequence[np.ndarray] = ()) -> dict[int, int]:
    """Unknown tracks of one person -> one number: track id -> k of "unknown #k" (numbered by first
    appearance), decided by the group module (``facebank.groups``) from all the faces of each track.

    The unknown people found so far act as a small gallery (each their tracks' faces, the
    ``distance`` rule on the nearest face, single-face threshold the model's ``cluster_l2``: two
    faces linked as one person). Each unknown track in order of start is a group of faces decided
    against it (``decide_group``: faces thinned to independent evidence, the median score over them,
    a bound that relaxes with their number when strangers calibrate it, the single-face majority):
    it joins the person it is named as, else it is a new unknown person. A person with a track on
    screen at the same time is barred (two faces at once are two people). Tracks seen in fewer than
    ``min_frames`` frames stay ungrouped. ``strangers``: faces known to be other people than the
    unknown ones (one array per person: the enrolled people, the named tracks), the cohort that
    calibrates the relaxed bound; the other unknown tracks not yet grouped are added to it (a
    stranger who is in fact the same person only makes the bound stricter)."""
    from facebank.decide import Decision, DistanceRule, GalleryFaces, OperatingPoint
    from facebank.groups import calibrate, cohort_groups, decide_group, distinct_l2, unit_rows

    todo = [t for t in sorted(tracks, key=lambda t: (t.start_s, t.id))
            if t.name is None and t.frames >= min_frames and len(t.embeddings)]
    faces = {t.id: unit_rows(t.embeddings) for t in todo}
    distinct = distinct_l2(points)
    rule = DistanceRule("nearest", points=points)
    members: list[list[Track]] = []
    out: dict[int, int] = {}
    for i, tr in enumerate(todo):
        barred = {str(k + 1) for k, ms in enumerate(members) if any(_overlap(m, tr) for m in ms)}
        person = None
        if len(barred) < len(members):
            people = tuple(str(k + 1) for k in range(len(members)))
            vecs = np.concatenate([faces[m.id] for ms in members for m in ms])
            labels = np.concatenate([np.full(len(faces[m.id]), k, np.int64)
                                     for k, ms in enumerate(members) for m in ms])
            gallery = GalleryFaces(vecs, labels, people)
            point = OperatingPoint(rule.key(), points.cluster_l2, points.far, "default", 0, len(people))
            decision = Decision(rule, point, people)
            later = [faces[t.id] for t in todo[i + 1:]]
            cohort = cohort_groups(decision, gallery.person_distances, [*strangers, *later], distinct)
            cal = calibrate(decision, (), cohort, points)
            g = decide_group(faces[tr.id], decision, gallery.person_distances, cal, embedding_times(tr),
                             distinct, barred)
            person = g.person
            log.debug("unknown track %d: %s (score %.3f, bound %.3f, %d faces)", tr.id,
                      f"unknown #{person}" if person else "a new unknown person", g.score, g.threshold,
                      g.faces)
        if person is None:
            members.append([tr])
            out[tr.id] = len(members)
        else:
            members[int(person) - 1].append(tr)
            out[tr.id] = int(person)
    return out


def stranger_faces(bank: FaceBank, tracks: Sequence[Track], max_people: int = 100,
                   max_faces: int = 8) -> list[np.ndarray]:
    """Faces known to be other people than the video's unknown ones: each named track's and the
    enrolled people's (at most ``max_people`` of them, evenly spread, ``max_faces`` faces each: the
    cohort ``group_unknown`` calibrates with, kept small for a big gallery)."""
    from facebank.groups import GroupContext

    out = [t.embeddings for t in tracks if t.name is not None and len(t.embeddings)]
    g = GroupContext.of(bank).gallery if bank.decision().people else None
    if g is not None:
        people = np.unique(g.labels)
        if len(people) > max_people:
            people = people[np.unique(np.linspace(0, len(people) - 1, max_people).round().astype(np.int64))]
        out += [g.vectors[g.labels == j][:max_faces] for j in people]
    return out


def _overlap(a: Track, b: Track) -> bool:
    return a.start_s <= b.end_s and b.start_s <= a.end_s


def summarize(tracks: Sequence[Track], label: Callable[[Track], str], step_s: float,
              end_s: float | None = None) -> tuple[PersonSummary, ...]:
    """Per person (``label`` of each track): total seconds on screen and each appearance (tracks of
    one person that touch, overlap or are less than half a step apart are one appearance; a
    sighting counts for ``step_s`` seconds, never past ``end_s``). Most seen first."""
    spans: dict[str, list[tuple[float, float, int]]] = {}
    names: dict[str, str | None] = {}
    for tr in tracks:
        who = label(tr)
        end = tr.end_s + step_s
        if end_s is not None:
            end = max(tr.end_s, min(end, end_s))
        spans.setdefault(who, []).append((tr.start_s, end, tr.id))
        names[who] = tr.name
    out = []
    for who, items in spans.items():
        merged: list[list] = []
        for a, b, tid in sorted(items):
            if merged and a <= merged[-1][1] + 0.5 * step_s + 1e-6:  # sampling jitter: still one stretch
                merged[-1][1] = max(merged[-1][1], b)
                merged[-1][2].append(tid)
            else:
                merged.append([a, b, [tid]])
        apps = tuple(OnScreen(a, b, tuple(ids)) for a, b, ids in merged)
        out.append(PersonSummary(who, names[who], sum(x.end_s - x.start_s for x in apps), apps))
    return tuple(sorted(out, key=lambda p: (-p.seconds, p.label)))


def check_model(bank: FaceBank) -> None:
    """The gallery's embeddings must come from the embedder in use."""
    from facebank.gallery.base import ModelMismatch

    stored, used = bank.gallery.model_id, bank.pipeline.model_id
    if stored is not None and stored != used:
        raise ModelMismatch(f"the gallery holds {stored!r} embeddings but the embedder is {used!r}")


def _clock(seconds: float) -> str:
    m, s = divmod(max(0.0, seconds), 60.0)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:04.1f}" if h else f"{m:02d}:{s:04.1f}"
