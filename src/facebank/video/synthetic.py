"""Generated test videos with known ground truth, and how well tracks match it.

A video is a list of shots; each shot shows one, two or three labelled photos on a plain
background, still, panning or zooming, optionally fading in from and out to black. Every shot
change is a cut, also between two shots on the same background (look-alike cuts). The ground truth
knows, for every moment, where each photo is (and, given where the face is in each photo, where each
face is), so each sighting of a track can be traced back to the person on screen. Figures:
``score_tracks`` (seconds named right and wrongly, tracks that switch person), ``mot_metrics``
(IDF1, ID switches, MOTA per reel: CLEAR MOT and identity measures on our own IoU matching) and
``score_cuts`` (cuts found, missed, false). Used by the tests and by bench/bench_video.py; videos
are written with PyAV (H.264), nothing is committed.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from facebank.video.track import Track

Motion = Literal["still", "pan", "zoom"]


@dataclass(frozen=True)
class Shot:
    """``photos[i]`` of ``people[i]`` side by side for ``seconds`` of video."""

    people: tuple[str, ...]
    photos: tuple[Path, ...]
    seconds: float
    motion: Motion = "still"
    background: tuple[int, int, int] = (90, 90, 90)
    fade_s: float = 0.0  # seconds of fade from black at the start and to black at the end


@dataclass(frozen=True)
class Appearance:
    """Ground truth: ``person`` is on screen from ``start_s`` to ``end_s`` (seconds) in slot
    ``slot`` (0 = left or alone, 1 = right) of shot ``shot``."""

    person: str
    start_s: float
    end_s: float
    shot: int
    slot: int


@dataclass(frozen=True)
class SyntheticVideo:
    path: Path
    shots: tuple[Shot, ...]
    fps: int
    width: int
    height: int

    @property
    def starts_s(self) -> list[float]:
        out, t = [], 0.0
        for s in self.shots:
            out.append(t)
            t += s.seconds
        return out

    @property
    def duration_s(self) -> float:
        return sum(s.seconds for s in self.shots)

    def appearances(self) -> list[Appearance]:
        return [Appearance(p, t0, t0 + s.seconds, i, k)
                for i, (s, t0) in enumerate(zip(self.shots, self.starts_s, strict=True))
                for k, p in enumerate(s.people)]

    def shot_at(self, t: float) -> tuple[int, float]:
        """(shot number, seconds into that shot) at ``t`` seconds of video."""
        for i, t0 in reversed(list(enumerate(self.starts_s))):
            if t >= t0 - 1e-9:
                return i, t - t0
        return 0, t

    def rects(self, shot: int, t_rel: float) -> list[tuple[float, float, float, float]]:
        """Where each photo of the shot is at ``t_rel`` seconds into it: (x1, y1, x2, y2) pixels."""
        s = self.shots[shot]
        return [r for r, _ in _layout(s, t_rel, self.width, self.height, _sizes(s))]

    def appearance_of(self, t: float, box: Sequence[float]) -> Appearance | None:
        """The appearance whose photo holds the centre of ``box`` at ``t`` seconds (None: none)."""
        shot, rel = self.shot_at(t)
        cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
        for k, (x1, y1, x2, y2) in enumerate(self.rects(shot, rel)):
            if x1 <= cx <= x2 and y1 <= cy <= y2:
                s = self.shots[shot]
                t0 = self.starts_s[shot]
                return Appearance(s.people[k], t0, t0 + s.seconds, shot, k)
        return None


@dataclass(frozen=True)
class VideoScore:
    """Tracks against the ground truth. Seconds are measured on a grid of ``step_s`` (the sampling
    interval): a moment of an appearance is 'named right' when a track with that person's name has a
    sighting of that photo within half a step. ``switching_tracks``: tracks whose sightings lie on
    more than one appearance (another person or another shot)."""

    appearances: int
    tracks: int
    named_tracks: int
    seconds_on_screen: float
    seconds_named_right: float
    switching_tracks: int
    tracks_on_no_photo: int

    @property
    def share_named_right(self) -> float:
        return self.seconds_named_right / self.seconds_on_screen if self.seconds_on_screen else 0.0

    def as_dict(self) -> dict:
        return {**self.__dict__, "share_named_right": round(self.share_named_right, 4)}


def score_tracks(video: SyntheticVideo, tracks: Sequence[Track], step_s: float) -> VideoScore:
    hits: dict[tuple[int, int], list[float]] = {}  # appearance -> times seen under the right name
    switching = nowhere = 0
    for tr in tracks:
        seen = set()
        for t, box in zip(tr.times_s.tolist(), tr.boxes.tolist(), strict=True):
            app = video.appearance_of(t, box)
            if app is None:
                continue
            seen.add((app.shot, app.slot))
            if tr.name == app.person:
                hits.setdefault((app.shot, app.slot), []).append(t)
        switching += len(seen) > 1
        nowhere += not seen
    total = right = 0.0
    for app in video.appearances():
        times = np.asarray(sorted(hits.get((app.shot, app.slot), [])))
        grid = np.arange(app.start_s, app.end_s - 1e-9, step_s)
        if len(times):
            idx = np.clip(np.searchsorted(times, grid), 1, len(times)) - 1
            near = np.minimum(np.abs(times[idx] - grid),
                              np.abs(times[np.minimum(idx + 1, len(times) - 1)] - grid))
            right += float((near <= step_s / 2 + 1e-6).sum()) * step_s
        total += len(grid) * step_s
    return VideoScore(appearances=len(video.appearances()), tracks=len(tracks),
                      named_tracks=sum(t.name is not None for t in tracks), seconds_on_screen=total,
                      seconds_named_right=right, switching_tracks=switching, tracks_on_no_photo=nowhere)


def make_video(path: str | Path, shots: Sequence[Shot], fps: int = 25, width: int = 1280,
               height: int = 720) -> SyntheticVideo:
    """Render the shots to an H.264 MP4 at ``path`` (frames generated and encoded one at a time)."""
    import av

    path = Path(path)
    video = SyntheticVideo(path, tuple(shots), fps, width, height)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "20"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for shot in video.shots:
            photos = [_load(p) for p in shot.photos]
            for k in range(int(round(shot.seconds * fps))):
                rgb = _render(shot, photos, k / fps, width, height)
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return video


def standard_shots(faces: str | Path, seconds: float = 3.0, seed: int = 0) -> list[Shot]:
    """A test reel from ``faces/<person>/*.jpg`` (e.g. 5celeb/val): every person alone in a still, a
    pan and a zoom shot (a different photo each when there are enough), then pairs side by side."""
    faces = Path(faces)
    rng = random.Random(seed)
    people = sorted(p.name for p in faces.iterdir() if p.is_dir())
    photos = {p: sorted(x for x in (faces / p).iterdir() if x.suffix.lower() in (".jpg", ".jpeg", ".png"))
              for p in people}
    for v in photos.values():
        rng.shuffle(v)
    used = dict.fromkeys(people, 0)

    def take(p: str) -> Path:
        ph = photos[p][used[p] % len(photos[p])]
        used[p] += 1
        return ph

    shots: list[Shot] = []
    motions: tuple[Motion, ...] = ("still", "pan", "zoom")
    for motion in motions:
        order = people[:]
        rng.shuffle(order)
        for p in order:
            shots.append(Shot((p,), (take(p),), seconds, motion, _colour(rng)))
    for i in range(len(people)):
        a, b = people[i], people[(i + 2) % len(people)]
        shots.append(Shot((a, b), (take(a), take(b)), seconds, motions[i % 3], _colour(rng)))
    return shots


def _alike_order(specs: list) -> list:
    """Greedy chain: from the first shot, always on to the most alike remaining one."""
    def key(spec) -> np.ndarray:
        means = [_load(p).reshape(-1, 3).mean(axis=0) for p in spec[1]]
        return np.concatenate([np.mean(means, axis=0), [40.0 * len(spec[1])]])

    keys = [key(s) for s in specs]
    left = list(range(len(specs)))
    order = [left.pop(0)] if left else []
    while left:
        last = keys[order[-1]]
        nxt = min(left, key=lambda i: float(np.linalg.norm(keys[i] - last)))
        left.remove(nxt)
        order.append(nxt)
    return [specs[i] for i in order]


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(20, 236), rng.randrange(20, 236), rng.randrange(20, 236))


def _load(path: Path) -> np.ndarray:
    from facebank.images import load_image

    return load_image(path).rgb


def _sizes(shot: Shot) -> list[tuple[int, int]]:
    return [_oriented_size(p) for p in shot.photos]


@functools.lru_cache(maxsize=1024)
def _oriented_size(path: Path) -> tuple[int, int]:
    """(width, height) of a photo after EXIF orientation, as it is drawn."""
    img = _load(path)
    return img.shape[1], img.shape[0]


def _layout(shot: Shot, t_rel: float, width: int, height: int,
            sizes: Sequence[tuple[int, int]]) -> list[tuple[tuple[float, float, float, float], float]]:
    """(rect, scale) of each photo at ``t_rel`` seconds into the shot."""
    n = len(shot.photos)
    u = min(1.0, max(0.0, t_rel / shot.seconds)) if shot.seconds else 0.0
    zoom = 0.65 + 0.35 * u if shot.motion == "zoom" else 1.0
    pan = (u - 0.5) * (0.3 if n == 1 else 0.08) * width if shot.motion == "pan" else 0.0
    slot_w = width * {1: 0.8, 2: 0.46}.get(n, 0.31)
    out = []
    for k, (w, h) in enumerate(sizes):
        scale = min(slot_w / w, 0.85 * height / h) * zoom
        cx = width / 2.0 if n == 1 else width * ((0.26 + 0.48 * k) if n == 2 else (0.17 + 0.33 * k))
        cx += pan
        cy = height / 2.0
        rw, rh = w * scale, h * scale
        out.append(((cx - rw / 2, cy - rh / 2, cx + rw / 2, cy + rh / 2), scale))
    return out


def _render(shot: Shot, photos: Sequence[np.ndarray], t_rel: float, width: int, height: int) -> np.ndarray:
    import cv2

    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = shot.background
    sizes = [(p.shape[1], p.shape[0]) for p in photos]
    for photo, ((x1, y1, x2, y2), _) in zip(photos, _layout(shot, t_rel, width, height, sizes), strict=True):
        w, h = max(1, int(round(x2 - x1))), max(1, int(round(y2 - y1)))
        interp = cv2.INTER_AREA if w < photo.shape[1] else cv2.INTER_LINEAR
        img = cv2.resize(photo, (w, h), interpolation=interp)
        ox, oy = int(round(x1)), int(round(y1))
        fx1, fy1 = max(0, ox), max(0, oy)
        fx2, fy2 = min(width, ox + w), min(height, oy + h)
        if fx2 > fx1 and fy2 > fy1:
            frame[fy1:fy2, fx1:fx2] = img[fy1 - oy:fy2 - oy, fx1 - ox:fx2 - ox]
    if shot.fade_s > 0:
        light = min(1.0, t_rel / shot.fade_s, (shot.seconds - t_rel) / shot.fade_s)
        if light < 1.0:
            frame = (frame.astype(np.float32) * max(0.0, light)).astype(np.uint8)
    return frame


# --- seconds named right and wrongly, per the definition ------------------------------------

@dataclass(frozen=True)
class SecondsScore:
    """Per appearance and whole second of video: the second is *on screen* when a sampled frame
    found the face in it (a sighting of any track lies on that photo), *named right* when such a
    sighting belongs to a track named as that person, *named wrongly* when one belongs to a track
    named as someone else. Seconds are summed over appearances (two people at once: two seconds).
    ``switching_tracks``: tracks whose sightings lie on more than one appearance."""

    on_screen_s: float
    named_right_s: float
    named_wrong_s: float
    switching_tracks: int
    tracks: int

    @property
    def share_named_right(self) -> float:
        return self.named_right_s / self.on_screen_s if self.on_screen_s else 0.0

    def as_dict(self) -> dict:
        return {**self.__dict__, "share_named_right": round(self.share_named_right, 4)}


def score_seconds(video: SyntheticVideo, tracks: Sequence[Track]) -> SecondsScore:
    seen: dict[tuple[int, int, int], set[str | None]] = {}  # (shot, slot, second) -> names seen there
    switching = 0
    for tr in tracks:
        on = set()
        for t, box in zip(tr.times_s.tolist(), tr.boxes.tolist(), strict=True):
            app = video.appearance_of(t, box)
            if app is None:
                continue
            on.add((app.shot, app.slot))
            seen.setdefault((app.shot, app.slot, int(t)), set()).add(tr.name)
        switching += len(on) > 1
    apps = {(a.shot, a.slot): a for a in video.appearances()}
    on_screen = right = wrong = 0.0
    for (shot, slot, sec), names in seen.items():
        app = apps[(shot, slot)]
        w = max(0.0, min(sec + 1.0, app.end_s) - max(float(sec), app.start_s))
        on_screen += w
        right += w * (app.person in names)
        wrong += w * any(n is not None and n != app.person for n in names)
    return SecondsScore(round(on_screen, 3), round(right, 3), round(wrong, 3), switching, len(tracks))


# --- tracking metrics: CLEAR MOT (MOTA, ID switches) and IDF1, on our own IoU matching --------------

@dataclass(frozen=True)
class MotScore:
    """Tracks against the true face boxes at every sampled frame (IoU >= ``iou``). A true object is
    one appearance (a person in one shot: the tracker ends every track at a cut by design).
    ``mota`` = 1 - (misses + false positives + ID switches) / true boxes; ``idf1`` = 2 IDTP /
    (true boxes + track boxes) under the best one-to-one pairing of true objects and tracks."""

    gt_boxes: int
    track_boxes: int
    matches: int
    misses: int
    false_positives: int
    id_switches: int
    mota: float
    idf1: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def sample_times(video: SyntheticVideo, step_s: float) -> list[float]:
    """The times of the frames a reader samples every ``step_s`` seconds (the first frame at or
    after each multiple of the step)."""
    out: list[float] = []
    for k in range(int(video.duration_s / step_s) + 1):
        t = np.ceil(k * step_s * video.fps - 1e-6) / video.fps
        if t < video.duration_s - 1e-9 and (not out or t > out[-1] + 1e-9):
            out.append(float(t))
    return out


def true_faces(video: SyntheticVideo, t: float,
               face_boxes: dict[Path, tuple[float, float, float, float]]) -> list[tuple[int, tuple]]:
    """[(appearance number, face box in frame pixels)] of the faces on screen at ``t`` whose place
    in their photo is known (``face_boxes``: photo -> the person's face box in its pixels)."""
    shot, rel = video.shot_at(t)
    s = video.shots[shot]
    out = []
    for k, ((x1, y1, _, _), scale) in enumerate(_layout(s, rel, video.width, video.height, _sizes(s))):
        fb = face_boxes.get(s.photos[k])
        if fb is None:
            continue
        box = (x1 + fb[0] * scale, y1 + fb[1] * scale, x1 + fb[2] * scale, y1 + fb[3] * scale)
        out.append((shot * 3 + k, box))
    return out


def mot_metrics(video: SyntheticVideo, tracks: Sequence[Track], step_s: float,
                face_boxes: dict[Path, tuple[float, float, float, float]], iou: float = 0.5) -> MotScore:
    from scipy.optimize import linear_sum_assignment

    gt_n = hyp_n = matches = misses = fps = switches = 0
    last: dict[int, int] = {}  # true object -> the track it was last matched to
    pair_counts: dict[tuple[int, int], int] = {}
    gt_total: dict[int, int] = {}
    for t in sample_times(video, step_s):
        gts = true_faces(video, t, face_boxes)
        hyps = []
        for tr in tracks:
            hit = np.nonzero(np.abs(tr.times_s - t) < 1e-3)[0]
            if len(hit):
                hyps.append((tr.id, tuple(float(x) for x in tr.boxes[hit[0]])))
        gt_n += len(gts)
        hyp_n += len(hyps)
        for g, _ in gts:
            gt_total[g] = gt_total.get(g, 0) + 1
        ious = np.asarray([[box_iou(gb, hb) for _, hb in hyps] for _, gb in gts]).reshape(len(gts), len(hyps))
        for i, (g, _) in enumerate(gts):  # identity measure: every overlapping (object, track) pair
            for j, (h, _) in enumerate(hyps):
                if ious[i, j] >= iou:
                    pair_counts[(g, h)] = pair_counts.get((g, h), 0) + 1
        cost = np.where(ious >= iou, 1.0 - ious, 1e6)
        for i, (g, _) in enumerate(gts):  # CLEAR MOT: keep last frame's pairs that still hold
            for j, (h, _) in enumerate(hyps):
                if last.get(g) == h and ious[i, j] >= iou:
                    cost[i, j] = -1.0
        pairs = []
        if len(gts) and len(hyps):
            rows, cols = linear_sum_assignment(cost)
            pairs = [(int(i), int(j)) for i, j in zip(rows, cols, strict=True) if cost[i, j] < 1e6]
        for i, j in pairs:
            g, h = gts[i][0], hyps[j][0]
            if g in last and last[g] != h:
                switches += 1
            last[g] = h
        matches += len(pairs)
        misses += len(gts) - len(pairs)
        fps += len(hyps) - len(pairs)
    idtp = 0
    if pair_counts:
        gs = sorted({g for g, _ in pair_counts})
        hs = sorted({h for _, h in pair_counts})
        m = np.zeros((len(gs), len(hs)))
        for (g, h), c in pair_counts.items():
            m[gs.index(g), hs.index(h)] = c
        rows, cols = linear_sum_assignment(-m)
        idtp = int(m[rows, cols].sum())
    mota = 1.0 - (misses + fps + switches) / gt_n if gt_n else 0.0
    idf1 = 2.0 * idtp / (gt_n + hyp_n) if gt_n + hyp_n else 0.0
    return MotScore(gt_n, hyp_n, matches, misses, fps, switches, round(mota, 4), round(idf1, 4))


# --- cuts ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CutScore:
    """True cuts (shot changes) found within ``tolerance`` seconds, missed, and cuts found where
    there is none (false)."""

    true_cuts: int
    found: int
    missed: int
    false: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def true_cuts(video: SyntheticVideo) -> list[float]:
    return video.starts_s[1:]


def score_cuts(video: SyntheticVideo, cuts_s: Sequence[float], tolerance_s: float = 0.1) -> CutScore:
    """Each true cut is paired with the nearest unpaired cut found within ``tolerance_s`` (a shot
    that fades: within its fade plus the tolerance)."""
    left = sorted(float(c) for c in cuts_s)
    found = 0
    for i, t in enumerate(true_cuts(video)):
        tol = tolerance_s + max(video.shots[i].fade_s, video.shots[i + 1].fade_s)
        near = [c for c in left if abs(c - t) <= tol]
        if near:
            found += 1
            left.remove(min(near, key=lambda c: abs(c - t)))
    n = len(true_cuts(video))
    return CutScore(n, found, n - found, len(left))


def mixed_shots(photos: dict[str, Sequence[Path]], seconds: float = 2.0, seed: int = 0,
                turned: dict[str, Sequence[Path]] | None = None, fade_every: int = 6) -> list[Shot]:
    """A harder reel: every person alone in a still, a pan and a zoom shot (a turned face for one of
    them when ``turned`` has one), then pairs and threes side by side; shots ordered so that each is
    followed by the one whose photos look most alike (mean colour and brightness, same number of
    people) and backgrounds drawn from a few near-identical greys, so cuts join shots of similar
    colour, brightness and framing; every ``fade_every``-th shot fades from and to black (0: none)."""
    rng = random.Random(seed)
    people = sorted(photos)
    pools = {p: list(photos[p]) for p in people}
    for v in pools.values():
        rng.shuffle(v)
    used = dict.fromkeys(people, 0)
    greys = [(88, 88, 92), (92, 90, 86), (84, 86, 84), (96, 94, 98)]

    def take(p: str) -> Path:
        ph = pools[p][used[p] % len(pools[p])]
        used[p] += 1
        return ph

    specs: list[tuple[tuple[str, ...], tuple[Path, ...], Motion]] = []
    motions: tuple[Motion, ...] = ("still", "pan", "zoom")
    for motion in motions:
        order = people[:]
        rng.shuffle(order)
        for p in order:
            ph = take(p)
            if motion == "pan" and turned and turned.get(p):
                ph = rng.choice(list(turned[p]))
            specs.append(((p,), (ph,), motion))
    for i in range(len(people)):
        a, b = people[i], people[(i + 3) % len(people)]
        specs.append(((a, b), (take(a), take(b)), motions[i % 3]))
    for i in range(0, len(people) - 2, 2):
        trio = (people[i], people[(i + 4) % len(people)], people[(i + 7) % len(people)])
        if len(set(trio)) == 3:
            specs.append((trio, tuple(take(p) for p in trio), motions[i % 3]))
    rng.shuffle(specs)
    specs = _alike_order(specs)
    return [Shot(who, ph, seconds, motion, rng.choice(greys),
                 fade_s=0.5 if fade_every and k % fade_every == fade_every - 1 else 0.0)
            for k, (who, ph, motion) in enumerate(specs)]
