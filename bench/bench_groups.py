"""Groups of faces named from all their evidence (issue 19): strangers' tracks, known people's tracks,
and suggestions for clusters and loose faces. Writes bench/results/groups_*.jsonl.

    .venv/bin/python bench/bench_groups.py suggest  [--faces ../shared/faces] [--seed 0]
    .venv/bin/python bench/bench_groups.py strangers [--tracks 200] [--seconds 8] [--fps 2]
    .venv/bin/python bench/bench_groups.py known    [--seconds-per-photo 2] [--photos-per-track 3]
    .venv/bin/python bench/bench_groups.py scale    [--people 2000] [--clusters 5000] [--unassigned 100000]

Every part but ``scale`` takes ``--embedder`` / ``--onnx-model`` (default: dlib's ResNet, ``fast``), e.g.
``--onnx-model mobilefacenet`` for an installed model (its operating points come from the user's data
folder, ``FACEBANK_DATA_DIR``), and ``--policy``: ``bench`` (default, below) or ``library``: the face
choice the library's evaluations use (LFW: ``LFW_POLICY`` with ``lfw_settings``, the central face, no
whole-photo crop; other sets: the largest face with MTCNN as second chance), which reuses the embeddings
the models work cached when calibrating a model.

Photos are embedded once through the evaluation cache (``facebank.evaluate.cache``: default
settings, MTCNN + dlib's ResNet on onnxruntime with flip; LFW photos where no face is found fall back
to LFW's centred box). Video frames are rendered with ``facebank.video.synthetic`` (a still panned or
zoomed, 640x360) and embedded with the default pipeline (largest face of the frame); their
embeddings are kept in ``~/.cache/facebank/bench_groups_frames.npz`` so a rerun embeds no frame
twice. Every decision is the library's own: a real SQLite gallery, ``FaceBank.decision()``,
``facebank.groups`` and ``facebank.cluster.suggest``.

The gallery of the video parts (``strangers``, ``known``): the LFW people with at least 10 photos,
pins10 and 5celeb (train + val), 3 photos each (fixed seed). Strangers: one still each of LFW people
with fewer than 5 photos (never used to choose anything). Known people: the gallery's people; their
other photos are the reels.

- ``strangers``: each stranger's still as a track of ``--seconds`` x ``--fps`` frames, a pan or a
  zoom (alternating): share of tracks named (anyone) against the share of the same stills named as
  photos and of their frames named one by one.
- ``known``: people whose held-out photos sit between the single-photo threshold and the strangers'
  typical score (chosen on the development half of the people, by name hash; reported on the other
  half): a track is ``--photos-per-track`` of their held-out photos, each panned or zoomed for
  ``--seconds-per-photo`` (a person seen from changing angles). Share of tracks named right against
  the share of their frames named right one by one; tracks and frames named wrongly.
- ``suggest``: pins10, 5celeb (train + val) and LFW people with >= 10 photos; a third of each
  person's photos enrolled (at least one, seed ``--seed``), the rest scanned as unassigned faces and
  clustered (``facebank cluster``'s default method); share of clusters whose suggestion is their
  majority person, share suggested wrongly, share with none; the same for faces left alone. The
  settings (the library defaults) were checked on LFW people with 5-9 photos (``--set lfw-dev``),
  reported on the others.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import random
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import record  # noqa: E402

from facebank import FaceBank  # noqa: E402
from facebank.evaluate.cache import (  # noqa: E402
    LFW_FACE_BOX,
    LFW_POLICY,
    FacePolicy,
    default_retry,
    embed_photos,
    labelled_photos,
    model_id_for,
)
from facebank.evaluate.lfw import lfw_settings  # noqa: E402
from facebank.gallery.base import FaceRecord, PhotoRecord  # noqa: E402
from facebank.gallery.sqlite import SqliteGallery  # noqa: E402
from facebank.settings import Settings  # noqa: E402

log = logging.getLogger("bench_groups")
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Embedding:
    """The embedder of a run: its settings, model id, label for the records, and face-choice policy."""

    settings: Settings
    model_id: str
    label: str
    policy: str = "bench"  # bench: this script's own policies; library: the evaluations' ones

    def photos(self, lfw: bool) -> tuple[Settings, FacePolicy]:
        """Settings and face policy to embed photos of LFW (``lfw``) or of the other sets."""
        if self.policy == "library":
            if lfw:
                return lfw_settings(self.settings), LFW_POLICY
            return self.settings, FacePolicy("largest", retry=default_retry())
        return self.settings, FacePolicy(fallback_box=LFW_FACE_BOX) if lfw else FacePolicy()


EMB = Embedding(Settings(), "dlib-resnet-v1", "dlib ResNet (fast)")  # set by main()


# ---- data ---------------------------------------------------------------------------------------------
def embedded(faces: Path, folder: str, min_photos: int = 1, max_photos: int = 10**9,
             lfw: bool = False) -> dict[str, list[tuple[Path, np.ndarray]]]:
    """person -> [(photo, embedding)] of the photos of ``faces/folder`` with a face."""
    lab = labelled_photos(faces / folder)
    count = Counter(p for p, _ in lab)
    lab = [(p, x) for p, x in lab if min_photos <= count[p] <= max_photos]
    settings, policy = EMB.photos(lfw)
    out: dict[str, list[tuple[Path, np.ndarray]]] = defaultdict(list)
    for (p, x), e in zip(lab, embed_photos([x for _, x in lab], settings, policy), strict=True):
        if e.ok:
            out[p].append((Path(x), np.asarray(e.embedding, np.float32)))
    return dict(out)


def add(g: SqliteGallery, items: list[tuple[str | None, np.ndarray]], start: int) -> None:
    recs = []
    for i, (person, v) in enumerate(items):
        sha = hashlib.sha256(f"{start + i}".encode()).hexdigest()
        recs.append((PhotoRecord(person, f"/bench/{start + i}.jpg", sha, 1, 100, 100, "ok", None),
                     [FaceRecord(box=(0, 0, 10, 10), embedding=v, detector="bench", detector_score=1.0)]))
    for k in range(0, len(recs), 500):
        g.add_photos(recs[k:k + 500], EMB.model_id)


# ---- suggestions ----------------------------------------------------------------------------------------
def suggest_run(name: str, people: dict[str, list[tuple[Path, np.ndarray]]], seed: int, far: float,
                strangers: dict[str, list[tuple[Path, np.ndarray]]] | None = None) -> dict:
    from facebank.cluster.engine import method_from_settings, recluster
    from facebank.cluster.suggest import SuggestionCache

    rng = random.Random(seed)
    enrol, scan = [], []
    for p in sorted(people):
        faces = [v for _, v in people[p]]
        rng.shuffle(faces)
        k = max(1, len(faces) // 3)
        enrol += [(p, v) for v in faces[:k]]
        scan += [(p, v) for v in faces[k:]]
    stranger_names = set(strangers or {})
    for p in sorted(stranger_names):
        scan += [(p, v) for _, v in strangers[p]]  # type: ignore[index]
    with tempfile.TemporaryDirectory() as tmp:
        g = SqliteGallery(Path(tmp) / "g.db")
        add(g, enrol, 0)
        add(g, [(None, v) for _, v in scan], len(enrol))
        truth = {f"/bench/{len(enrol) + i}.jpg": p for i, (p, _) in enumerate(scan)}
        fb = FaceBank(g, EMB.settings)
        recluster(g, method_from_settings(fb.settings, model_id=EMB.model_id), bank=fb)
        live = SuggestionCache.of(fb, far).get()  # the live suggestions, as the CLI and the page show
        faces = g.faces(unassigned=True)
        fb.close()
    by_cluster: dict[int, list[str]] = defaultdict(list)
    alone: list[tuple[int, str]] = []
    for f in faces:
        if f.cluster is None:
            alone.append((f.face_id, truth[f.path]))
        else:
            by_cluster[f.cluster].append(truth[f.path])
    c = Counter()
    for cl, members in by_cluster.items():
        major = Counter(members).most_common(1)[0][0]
        s = live.clusters.get(cl)
        person = s.person if s else None
        kind = "stranger_clusters" if major in stranger_names else "clusters"
        c[kind] += 1
        c[kind + ("_none" if person is None else "_right" if person == major else "_wrong")] += 1
    for fid, p in alone:
        s = live.loose.get(fid)
        person = s.person if s else None
        kind = "stranger_alone" if p in stranger_names else "alone"
        c[kind] += 1
        c[kind + ("_none" if person is None else "_right" if person == p else "_wrong")] += 1
    fig: dict = {"model": EMB.model_id, "policy": EMB.policy, "people": len(people),
                 "enrolled_faces": len(enrol), "scanned_faces": len(scan),
                 "strangers": len(stranger_names), "far": far}
    for kind in ("clusters", "alone", "stranger_clusters", "stranger_alone"):
        n = c[kind]
        fig[kind] = n
        for out in ("right", "wrong", "none"):
            if kind.startswith("stranger") and out == "right":
                continue
            fig[f"{kind}_{out}"] = round(c[f"{kind}_{out}"] / n, 4) if n else None
    print(name, fig, flush=True)
    return fig


def strangers_half(faces: Path, dev: bool) -> dict[str, list[tuple[Path, np.ndarray]]]:
    """LFW people with 2-4 photos (never enrolled): the half of them (by name hash) for dev or report."""
    people = embedded(faces, "lfw/images", 2, 4, lfw=True)
    return {p: v for p, v in people.items()
            if (int(hashlib.sha256(p.encode()).hexdigest(), 16) % 2 == 0) == dev}


def cmd_suggest(args: argparse.Namespace) -> None:
    from facebank.cluster.suggest import SUGGEST_FAR

    faces = Path(args.faces)
    far = args.far if args.far is not None else SUGGEST_FAR
    dev_strangers, report_strangers = strangers_half(faces, True), strangers_half(faces, False)
    if args.dev_only:
        for f in (0.01, 0.02, 0.05, 0.1):
            suggest_run(f"lfw-dev far={f}", embedded(faces, "lfw/images", 5, 9, lfw=True), args.seed, f,
                        dev_strangers)
        return
    sets = {
        "lfw-dev (5-9 photos)": (lambda: embedded(faces, "lfw/images", 5, 9, lfw=True), dev_strangers),
        "pins10": (lambda: embedded(faces, "pins10"), report_strangers),
        "5celeb": (lambda: _merge(embedded(faces, "5celeb/train"), embedded(faces, "5celeb/val")),
                   report_strangers),
        "lfw (>= 10 photos)": (lambda: embedded(faces, "lfw/images", 10, lfw=True), report_strangers),
    }
    figures = {name: suggest_run(name, load(), args.seed, far, st) for name, (load, st) in sets.items()}
    record("groups_suggest", figures, notes="a third of each person's photos enrolled (seed 0), the rest "
           "scanned with the photos of LFW people with 2-4 photos (strangers: never enrolled; dev and report "
           "halves by name hash) and clustered (chinese-whispers defaults). clusters: those whose majority "
           "is an enrolled person, share whose live suggestion is that person (right), another (wrong), "
           "none; stranger_clusters: majority a stranger, share suggested (wrong) or not (none); alone: "
           "faces left alone, the same. Suggestion FAR chosen on lfw-dev only (--dev-only), with dlib. "
           f"{EMB.label}, face policy {EMB.policy}.")


def _merge(a: dict, b: dict) -> dict:
    out = {k: list(v) for k, v in a.items()}
    for k, v in b.items():
        out.setdefault(k, []).extend(v)
    return out


# ---- video tracks ---------------------------------------------------------------------------------------
FRAME_CACHE = Path.home() / ".cache" / "facebank" / "bench_groups_frames.npz"


class Frames:
    """Embeddings of rendered frames (a still panned or zoomed), cached on disk by (photo, motion)."""

    def __init__(self, fps: float, seconds: float, path: Path = FRAME_CACHE) -> None:
        self.fps, self.seconds, self.path = fps, seconds, path
        self.store: dict[str, np.ndarray] = {}
        if path.is_file():
            with np.load(path) as z:
                self.store = {k: z[k] for k in z.files}
        self.pipe = None
        self.dirty = 0

    def key(self, photo: Path, motion: str) -> str:
        h = hashlib.sha256(photo.read_bytes()).hexdigest()[:24]
        model = "" if EMB.model_id == "dlib-resnet-v1" else f"-{EMB.model_id}"  # dlib: the keys of old runs
        return f"{h}-{motion}-{self.fps:g}-{self.seconds:g}{model}"

    def get(self, photo: Path, motion: str) -> np.ndarray:
        """(frames, dim) embeddings of the largest face per frame (rows of NaN: no face found)."""
        k = self.key(photo, motion)
        if k not in self.store:
            self.store[k] = self._embed(photo, motion)
            self.dirty += 1
            if self.dirty % 20 == 0:
                self.save()
        return self.store[k]

    def _embed(self, photo: Path, motion: str) -> np.ndarray:
        from facebank.pipeline import FacePipeline
        from facebank.video.synthetic import Shot, _load, _render

        if self.pipe is None:
            self.pipe = FacePipeline(EMB.settings)
        shot = Shot(("x",), (photo,), self.seconds, motion)  # type: ignore[arg-type]
        img = _load(photo)
        n = int(round(self.seconds * self.fps))
        rows: list[np.ndarray | None] = []
        for i in range(n):
            rgb = _render(shot, [img], i / self.fps, 640, 360)
            faces = self.pipe.faces(rgb)
            best = max(faces, key=lambda x: x.box.area) if faces else None
            rows.append(None if best is None else np.asarray(best.embedding, np.float32))
        dim = next((len(r) for r in rows if r is not None), 128)
        return np.stack([r if r is not None else np.full(dim, np.nan, np.float32) for r in rows])

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, **self.store)
        tmp.replace(self.path)


def video_gallery(faces: Path, tmp: Path, seed: int) -> tuple[FaceBank, dict[str, list]]:
    """The video parts' gallery; returns it and the held-out photos of its people."""
    rng = random.Random(seed)
    lfw = embedded(faces, "lfw/images", 10, lfw=True)
    others = _merge(embedded(faces, "pins10"), _merge(embedded(faces, "5celeb/train"),
                                                      embedded(faces, "5celeb/val")))
    enrol, held = [], {}
    for p in sorted(lfw):
        items = list(lfw[p])
        rng.shuffle(items)
        enrol += [(p, v) for _, v in items[:3]]
        held[p] = items[3:]
    for p in sorted(others):
        items = list(others[p])
        rng.shuffle(items)
        enrol += [(p, v) for _, v in items[:3]]
        held[p] = items[3:]
    g = SqliteGallery(tmp / "video.db")
    add(g, enrol, 0)
    return FaceBank(g, EMB.settings), held


def cmd_strangers(args: argparse.Namespace) -> None:
    from facebank.groups import GroupContext
    from facebank.video.name import name_embeddings

    faces = Path(args.faces)
    lab = labelled_photos(faces / "lfw/images")
    count = Counter(p for p, _ in lab)
    first: dict[str, Path] = {}
    for p, x in lab:
        if count[p] < 5 and p not in first:
            first[p] = Path(x)
    names = sorted(first)
    random.Random(args.seed).shuffle(names)
    frames = Frames(args.fps, args.seconds, Path(args.frame_cache))
    with tempfile.TemporaryDirectory() as tmp:
        fb, _ = video_gallery(faces, Path(tmp), args.seed)
        settings, policy = EMB.photos(lfw=True)
        photos = {e.path: e for e in embed_photos([first[n] for n in names[:args.tracks * 2]], settings,
                                                     policy)}
        tracks = named_tracks = photos_named = frames_seen = frames_named = 0
        used = []
        for i, n in enumerate(names[:args.tracks * 2]):
            if tracks >= args.tracks:
                break
            motion = ("pan", "zoom")[i % 2]
            emb = frames.get(first[n], motion)
            ok = np.isfinite(emb).all(axis=1)
            if ok.sum() < 2:
                continue
            times = np.arange(len(emb))[ok] / args.fps
            m = name_embeddings(fb, emb[ok], times_s=times)
            tracks += 1
            named_tracks += m.name is not None
            used.append(m.faces_used or 0)
            frames_seen += int(ok.sum())
            frames_named += sum(name_embeddings(fb, v[None]).name is not None for v in emb[ok])
            pe = photos.get(str(first[n]))
            if pe is not None and pe.ok:
                photos_named += name_embeddings(fb, np.asarray(pe.embedding)[None]).name is not None
            if tracks % 25 == 0:
                log.info("%d tracks: %d named", tracks, named_tracks)
        frames.save()
        cal = GroupContext.of(fb).calibration()
        fb.close()
    fig = {"model": EMB.model_id, "policy": EMB.policy, "tracks": tracks,
           "frames_per_track": int(args.seconds * args.fps),
           "tracks_named": named_tracks, "track_far": round(named_tracks / max(tracks, 1), 4),
           "photo_far": round(photos_named / max(tracks, 1), 4),
           "frame_far": round(frames_named / max(frames_seen, 1), 4),
           "faces_used_median": float(np.median(used)) if used else 0.0,
           "faces_used_max": int(max(used)) if used else 0, "calibration": cal.summary()}
    print(fig, flush=True)
    record("groups_strangers", fig, notes="LFW people with < 5 photos, one still each as a track (pan or "
           "zoom "
           "alternating, 640x360 frames): share of tracks named (anyone), of the same stills named as "
           "photos and of their frames named one by one. Gallery: LFW >= 10 photos, pins10, 5celeb, "
           f"3 photos each. {EMB.label}, face policy {EMB.policy}.")


def cmd_known(args: argparse.Namespace) -> None:
    from facebank.groups import GroupContext
    from facebank.video.name import name_embeddings

    faces = Path(args.faces)
    frames = Frames(args.fps, args.seconds_per_photo, Path(args.frame_cache))
    with tempfile.TemporaryDirectory() as tmp:
        fb, held = video_gallery(faces, Path(tmp), args.seed)
        cal = GroupContext.of(fb).calibration()
        lo, hi = cal.threshold_1, cal.stranger_score
        figures: dict = {"model": EMB.model_id, "policy": EMB.policy}
        for part in ("dev", "report"):
            people = [p for p in sorted(held)
                      if (int(hashlib.sha256(p.encode()).hexdigest(), 16) % 2 == 0) == (part == "dev")]
            stats = Counter()
            for p in people:
                photos = held[p]
                scores = [name_embeddings(fb, v[None]).decision_score for _, v in photos]
                moderate = [ph for ph, s in zip(photos, scores, strict=True) if s is not None and lo < s < hi]
                # people with held-out photos between the single-photo bound and the strangers' score
                if len(moderate) < args.photos_per_track:
                    continue
                stats["people"] += 1
                for t in range(0, len(moderate) - args.photos_per_track + 1, args.photos_per_track):
                    chunk = moderate[t:t + args.photos_per_track]
                    embs, times = [], []
                    for k, (path, _) in enumerate(chunk):
                        e = frames.get(path, ("pan", "zoom")[k % 2])
                        ok = np.isfinite(e).all(axis=1)
                        embs.append(e[ok])
                        times.append(k * args.seconds_per_photo + np.arange(len(e))[ok] / args.fps)
                    e, tt = np.concatenate(embs), np.concatenate(times)
                    if len(e) < 2:
                        continue
                    m = name_embeddings(fb, e, times_s=tt)
                    stats["tracks"] += 1
                    stats["tracks_right"] += m.name == p
                    stats["tracks_wrong"] += m.name not in (None, p)
                    for v in e:
                        n1 = name_embeddings(fb, v[None]).name
                        stats["frames"] += 1
                        stats["frames_right"] += n1 == p
                        stats["frames_wrong"] += n1 not in (None, p)
            frames.save()
            s = dict(stats)
            s["tracks_right_share"] = round(stats["tracks_right"] / max(stats["tracks"], 1), 4)
            s["frames_right_share"] = round(stats["frames_right"] / max(stats["frames"], 1), 4)
            figures[part] = s
            print(part, s, flush=True)
        figures["band"] = [round(lo, 4), round(hi, 4)]
        fb.close()
    record("groups_known", figures, notes="LFW people with >= 10 photos, pins10, 5celeb (3 enrolled each); "
           "their held-out photos "
           "that score between the single-photo threshold and the strangers' typical score; a track "
           f"= {args.photos_per_track} of their held-out photos, each panned or zoomed for "
           f"{args.seconds_per_photo} s at {args.fps} fps. dev/report: halves of the people by name hash "
           f"(the selection rule was fixed on dev). {EMB.label}, face policy {EMB.policy}.")


def cmd_scale(args: argparse.Namespace) -> None:
    """CPU seconds of the live suggestions at library scale (synthetic unit embeddings of the
    geometry of tests/test_groups.py: two faces of a person ~0.3 apart, two people ~0.6-0.8)."""
    import resource
    import time

    from facebank.cluster.suggest import SuggestionCache

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    rng = np.random.default_rng(0)
    dim = 128

    def unit(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)

    mean = unit(rng.normal(size=dim))

    def person() -> np.ndarray:
        return unit(mean + 0.55 * unit(rng.normal(size=dim)))

    def faces(c: np.ndarray, n: int, spread: float) -> np.ndarray:
        return unit(c + spread * rng.normal(size=(n, dim)) / np.sqrt(dim))

    people, per, clusters, size = args.people, 5, args.clusters, 5
    loose = args.unassigned - clusters * size
    centres = [person() for _ in range(people)]
    with tempfile.TemporaryDirectory() as tmp:
        g = SqliteGallery(Path(tmp) / "g.db")
        named = [(f"p{j}", v) for j, c in enumerate(centres) for v in faces(c, per, 0.22)]
        add(g, named, 0)
        items = [(None, v) for i in range(clusters)
                 for v in faces(centres[i % people] if i % 2 else person(), size, 0.4)]
        items += [(None, v) for v in faces(mean, loose, 6.0)]  # strangers' loose faces
        add(g, items, len(named))
        fs = g.unassigned_faces()
        g.set_clusters({int(f): (i // size if i < clusters * size else None)
                        for i, f in enumerate(fs.face_ids)})
        fb = FaceBank(g)
        cache = SuggestionCache.of(fb)
        t, w = cpu(), time.perf_counter()
        full = cache.get()
        fig = {"named_faces": len(named), "people": people, "unassigned_faces": len(fs),
               "clusters": len(full.clusters), "loose": len(full.loose),
               "full_cpu_s": round(cpu() - t, 2), "full_wall_s": round(time.perf_counter() - w, 2)}
        add(g, [(None, faces(centres[3], 1, 0.2)[0])], 10**7)
        t, w = cpu(), time.perf_counter()
        after = cache.get()
        fig.update({"after_scan_of_one_face_decided": after.decided, "after_scan_cpu_s": round(cpu() - t, 2),
                    "after_scan_wall_s": round(time.perf_counter() - w, 2)})
        c = next(iter(full.clusters))
        g.reject([int(f) for f in fs.face_ids[:size]], "p0")
        t, w = cpu(), time.perf_counter()
        after = cache.get()
        fig.update({"after_reject_decided": after.decided, "after_reject_cpu_s": round(cpu() - t, 2)})
        g.name_cluster(c, "Newcomer")
        page_c = sorted(full.clusters)[:50]
        page_f = sorted(full.loose)[:50]
        t, w = cpu(), time.perf_counter()
        page = cache.some(clusters=page_c, faces=page_f)
        fig.update({"after_naming_page_of_50_clusters_and_50_faces_decided": page.decided,
                    "after_naming_page_cpu_s": round(cpu() - t, 2),
                    "after_naming_page_wall_s": round(time.perf_counter() - w, 2)})
        t, w = cpu(), time.perf_counter()
        after = cache.get()
        fig.update({"after_naming_decided": after.decided, "after_naming_cpu_s": round(cpu() - t, 2),
                    "after_naming_wall_s": round(time.perf_counter() - w, 2)})
        fb.close()
    print(fig, flush=True)
    record("groups_scale", fig, notes="live suggestions (facebank.cluster.suggest) on a synthetic library: "
           "CPU seconds of this process (the machine is shared: wall time is load-dependent) for the first "
           "read of all suggestions, and the next read after a scan of one face, a rejection and a naming "
           "(a page of 50 clusters and 50 loose faces as GET /v1/clusters and /v1/faces?alone=true ask, then "
           "all). A naming changes the named people: every group asked for is decided again.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=["suggest", "strangers", "known", "scale"])
    ap.add_argument("--people", type=int, default=2000)
    ap.add_argument("--clusters", type=int, default=5000)
    ap.add_argument("--unassigned", type=int, default=100_000)
    ap.add_argument("--faces", default=str(REPO.parent / "shared" / "faces"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tracks", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--fps", type=float, default=2.0)
    ap.add_argument("--seconds-per-photo", type=float, default=2.0)
    ap.add_argument("--photos-per-track", type=int, default=3)
    ap.add_argument("--far", type=float, default=None, help="suggest: the suggestions' FAR (default: the "
                    "library's SUGGEST_FAR)")
    ap.add_argument("--dev-only", action="store_true",
                    help="suggest: only the development set, at several FARs")
    ap.add_argument("--embedder", default=None, help="fast (dlib's ResNet, the default), dlib or onnx")
    ap.add_argument("--onnx-model", default=None, help="an .onnx file or an installed model's name "
                    "(implies --embedder onnx)")
    ap.add_argument("--policy", choices=["bench", "library"], default="bench",
                    help="face choice: this script's (bench) or the library evaluations' (library)")
    ap.add_argument("--frame-cache", default=str(FRAME_CACHE), help="strangers, known: the file of the "
                    "frames' embeddings (one per concurrent run: each run rewrites it whole)")
    args = ap.parse_args()
    global EMB
    if args.embedder or args.onnx_model:
        settings = Settings(embedder=args.embedder or "onnx", onnx_model=args.onnx_model)
        EMB = Embedding(settings, model_id_for(settings), args.onnx_model or args.embedder, args.policy)
    else:
        EMB = Embedding(EMB.settings, EMB.model_id, EMB.label, args.policy)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("facebank").setLevel(logging.WARNING)
    parts = {"suggest": cmd_suggest, "strangers": cmd_strangers, "known": cmd_known, "scale": cmd_scale}
    parts[args.part](args)


if __name__ == "__main__":
    main()
