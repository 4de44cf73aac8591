"""Which face detector should be the default? Recall, false faces, speed and end-to-end accuracy.

    .venv/bin/python bench/bench_detectors.py [--faces ../shared/faces] [--lfw-sample 300]
        [--lfw-pairs 600] [--mmod-limit 120] [--mmod-lfw] [--mmod-timing 25] [--detectors ...]
        [--cache-dir /tmp/facebank-bench-detectors] [--fresh] [--markdown FILE]

For each detector (HOG upsample 0, HOG upsample 1, MMOD CNN, MTCNN with its default 20 px and with a
40 px smallest face; and ``cascade`` when it is registered) on 5celeb (train + val),
kpop15/unlabeled_raw, detection_edge/{multi_face, no_face, partial_or_odd} and a deterministic
sample of LFW photos:

* faces found per photo (mean) and photos with none: the raw detector on the photo as the pipeline
  gives it (shrunk to ``Settings.detect_max_side``), no crop fallback; on no_face every face is false;
* median ms per photo for that detection (5celeb and the LFW sample), and, on 5celeb resized to
  640 px longer side, the median detect ms and detect + landmarks + align + embed ms
  (``FacePipeline.detections`` + ``faces``);
* top-1 on 5celeb val: a fresh temporary gallery enrolled from 5celeb/train with ``FaceBank``
  (settings ``detector=X``, everything else default), then the largest face of each val photo is
  named by its nearest person (top-1: the nearest person is right; "named": also within the
  threshold); a photo without a face is a miss;
* LFW View 2 accuracy (10 folds: the threshold is picked on 9, tested on the 10th) on the photos of
  ``lfw/pairs.txt``: the face nearest the photo centre, or, when the detector finds none, the
  crop fallback's whole-photo box (counted in "fallback").

Everything runs on ONE core: onnxruntime with one thread (MTCNN and the fast embedder), dlib is
single-threaded. MMOD (seconds per photo) runs on at most ``--mmod-limit`` photos of each set
(default 120: all of 5celeb), ``--mmod-timing`` photos of the 640 px timing set, and on LFW View 2
only with ``--mmod-lfw``.

Detections, timings and LFW embeddings are cached per detector and embedder as pickles in
``--cache-dir`` (default ``$TMPDIR/facebank-bench-detectors``), so a rerun only prints;
``--fresh`` measures again. Prints markdown tables and ends with ONE JSON line.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from facebank import FaceBank, Settings, detect, embed, images  # noqa: E402
from facebank.detect.crop import whole_photo_detection  # noqa: E402
from facebank.pipeline import FacePipeline, choose_face  # noqa: E402
from facebank.types import Detection  # noqa: E402

CACHE_VERSION = 1
SETS = ("5celeb", "kpop15_raw", "multi_face", "no_face", "partial_or_odd", "lfw_sample")


@dataclass(frozen=True)
class Spec:
    """One detector configuration under test."""

    key: str
    label: str
    detector: str
    upsample: int | str = "auto"
    options: tuple[tuple[str, object], ...] = ()  # extra detector options, e.g. MTCNN's min_face_size

    def make_detector(self, settings: Settings) -> detect.Detector:
        return detect.create(self.detector, upsample=settings.upsample, min_face=settings.min_face,
                             **dict(self.options))

    def settings(self, embedder: str, gallery: str = "facebank.db") -> Settings:
        return Settings(detector=self.detector, upsample=self.upsample, embedder=embedder, workers=1,
                        gallery=gallery)


ALL_SPECS = {
    "hog0": Spec("hog0", "HOG up 0", "hog", 0),
    "hog1": Spec("hog1", "HOG up 1", "hog", 1),
    "mmod": Spec("mmod", "MMOD CNN", "mmod", "auto"),
    # MTCNN's own option is min_face_size (default 20 px); Settings.min_face (40) does not reach it
    "mtcnn": Spec("mtcnn", "MTCNN (min face 20 px)", "mtcnn", options=(("min_face_size", 20),)),
    "mtcnn40": Spec("mtcnn40", "MTCNN min face 40 px", "mtcnn", options=(("min_face_size", 40),)),
    "cascade": Spec("cascade", "cascade", "cascade"),
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def digest(image: np.ndarray) -> str:
    h = hashlib.sha1(str(image.shape).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()


# ---- cache ------------------------------------------------------------------------------------
@dataclass
class Cache:
    """Per detector + embedder: detections (by image digest), 640 px timings, LFW embeddings."""

    path: Path
    det: dict[str, tuple[float, list[Detection]]] = field(default_factory=dict)
    t640: dict[str, tuple[float, float, int]] = field(default_factory=dict)
    lfw: dict[str, tuple[np.ndarray, int, bool]] = field(default_factory=dict)
    dirty: int = 0

    @classmethod
    def load(cls, path: Path, fresh: bool) -> Cache:
        c = cls(path)
        if path.exists() and not fresh:
            try:
                data = pickle.loads(path.read_bytes())
                if data.get("version") == CACHE_VERSION:
                    c.det, c.t640, c.lfw = data["det"], data["t640"], data["lfw"]
            except Exception as exc:  # a damaged cache: measure again
                log(f"ignoring unreadable cache {path}: {exc}")
        return c

    def touch(self, every: int = 300) -> None:
        self.dirty += 1
        if self.dirty >= every:
            self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps({"version": CACHE_VERSION, "det": self.det, "t640": self.t640,
                                      "lfw": self.lfw}, protocol=5))
        tmp.replace(self.path)
        self.dirty = 0


class CachingDetector:
    """Wraps a detector: same detections (detectors are deterministic), timed once, then replayed."""

    def __init__(self, inner: detect.Detector, cache: Cache) -> None:
        self.inner = inner
        self.name = inner.name
        self.cache = cache

    def timed(self, image: np.ndarray) -> tuple[float, list[Detection]]:
        key = digest(image)
        hit = self.cache.det.get(key)
        if hit is None:
            t0 = time.perf_counter()
            dets = self.inner.detect(image)
            hit = ((time.perf_counter() - t0) * 1000.0, dets)
            self.cache.det[key] = hit
            self.cache.touch()
        return hit

    def detect(self, image: np.ndarray) -> list[Detection]:
        return self.timed(image)[1]


def one_core_pipeline(spec: Spec, embedder: str) -> FacePipeline:
    pipe = FacePipeline(spec.settings(embedder))
    pipe.detector = spec.make_detector(pipe.settings)
    if embedder == "fast":
        pipe.embedder = embed.create("fast", threads=1)
    return pipe


# ---- data -------------------------------------------------------------------------------------
def photo_sets(faces: Path, lfw_sample: int, seed: int) -> dict[str, list[Path]]:
    def files(*parts: str) -> list[Path]:
        return sorted(images.iter_image_files(faces.joinpath(*parts)))

    edge = ("detection_edge",)
    lfw_all = files("lfw", "images")
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(lfw_all), size=min(lfw_sample, len(lfw_all)), replace=False).tolist())
    return {
        "5celeb": files("5celeb", "train") + files("5celeb", "val"),
        "kpop15_raw": files("kpop15", "unlabeled_raw"),
        "multi_face": files(*edge, "multi_face"),
        "no_face": files(*edge, "no_face"),
        "partial_or_odd": files(*edge, "partial_or_odd"),
        "lfw_sample": [lfw_all[i] for i in pick],
    }


def resized_640(path: Path) -> np.ndarray:
    """The photo with its longer side resized to 640 px (up or down), as bench_pipeline.py does."""
    im = Image.fromarray(images.load_image(path).rgb)
    scale = 640 / max(im.size)
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BILINEAR)
    return np.ascontiguousarray(np.asarray(im))


# ---- measurements -----------------------------------------------------------------------------
@dataclass
class SetStats:
    photos: int = 0
    faces: list[int] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "photos": self.photos,
            "faces_total": int(sum(self.faces)),
            "faces_per_photo": round(float(np.mean(self.faces)), 3) if self.faces else None,
            "photos_without_face": sum(1 for n in self.faces if n == 0),
            "ms_median": round(statistics.median(self.ms), 1) if self.ms else None,
        }


def detection_stats(det: CachingDetector, paths: list[Path], max_side: int, label: str) -> SetStats:
    st = SetStats(photos=len(paths))
    for k, p in enumerate(paths):
        rgb = images.load_image(p).rgb
        small, _ = images.downscale(rgb, max_side)
        ms, dets = det.timed(small)
        st.faces.append(len(dets))
        st.ms.append(ms)
        if not dets:
            st.missed.append(p.name)
        if (k + 1) % 100 == 0:
            log(f"  {label}: {k + 1}/{len(paths)}")
    return st


def timing_640(pipe: FacePipeline, inner: detect.Detector, cache: Cache, photos: list[Path]) -> dict:
    """Median detect ms and detect + embed ms per 5celeb photo at 640 px, live detector, one core."""
    pipe.detector = inner
    det_ms, total_ms, faces = [], [], 0
    warmed = False
    for p in photos:
        rgb = resized_640(p)
        key = digest(rgb)
        hit = cache.t640.get(key)
        if hit is None:
            if not warmed:
                pipe.faces(rgb)
                warmed = True
            t0 = time.perf_counter()
            dets = pipe.detections(rgb)
            t1 = time.perf_counter()
            found = pipe.faces(rgb, dets)
            t2 = time.perf_counter()
            hit = ((t1 - t0) * 1000.0, (t2 - t0) * 1000.0, len(found))
            cache.t640[key] = hit
            cache.touch(20)
        det_ms.append(hit[0])
        total_ms.append(hit[1])
        faces += hit[2]
    return {"photos": len(photos), "faces": faces,
            "detect_ms_median": round(statistics.median(det_ms), 1),
            "detect_embed_ms_median": round(statistics.median(total_ms), 1)}


def top1_5celeb(spec: Spec, embedder: str, det: CachingDetector, faces: Path) -> dict:
    """Enroll 5celeb/train into a fresh temporary gallery, identify 5celeb/val with FaceBank."""
    with tempfile.TemporaryDirectory(prefix="bench-det-") as tmp:
        fb = FaceBank(Path(tmp) / "g.db", settings=spec.settings(embedder))
        try:
            pipe = fb.pipeline
            pipe.detector = det  # the same detector, its detections replayed from the cache
            if embedder == "fast":
                pipe.embedder = embed.create("fast", threads=1)
            report = fb.enroll_folder(faces / "5celeb" / "train")
            n = top1 = named = none = fallback = 0
            for person_dir in sorted((faces / "5celeb" / "val").iterdir()):
                if not person_dir.is_dir():
                    continue
                for p in sorted(images.iter_image_files(person_dir)):
                    n += 1
                    res = fb.identify(p)
                    if not res.faces:
                        none += 1
                        continue
                    main = max(res.faces, key=lambda f: f.face.box.area)
                    fallback += int(main.face.fallback)
                    top1 += int(main.match.candidate == person_dir.name)
                    named += int(main.match.name == person_dir.name)
        finally:
            fb.close()
    return {"val_photos": n, "top1": round(top1 / n, 4) if n else None,
            "named_at_threshold": round(named / n, 4) if n else None,
            "val_no_face": none, "val_fallback": fallback,
            "train_enrolled": report.photos_enrolled, "train_photos": report.photos_seen,
            "train_problems": len(report.problems),
            # photos the whole pipeline (crop fallback for small near-square photos included) used
            "pipeline_with_face": report.photos_enrolled + n - none,
            "pipeline_photos": report.photos_seen + n}


def lfw_view2(pipe: FacePipeline, cache: Cache, lfw_root: Path,
              pairs_per_fold: int | None, embedder: str) -> dict:
    from facebank.evaluate.lfw import evaluate_pairs, read_pairs

    pairs = read_pairs(lfw_root / "pairs.txt", None if pairs_per_fold is None else pairs_per_fold // 2)
    rels = sorted({p.a for p in pairs} | {p.b for p in pairs})
    emb: dict[str, np.ndarray | None] = {}
    fallbacks = 0
    t0 = time.perf_counter()
    for k, rel in enumerate(rels):
        hit = cache.lfw.get(rel)
        if hit is None:
            rgb = images.load_image(lfw_root / rel).rgb
            # the pipeline's detections: shrunk if huge, and for small near-square photos such as
            # LFW's 250x250 the crop fallback's whole-photo box when the detector found nothing
            dets = pipe.detections(rgb)
            found = sum(1 for d in dets if not d.fallback)
            h, w = rgb.shape[:2]
            # choose_face only reads .box: Detections stand in for Faces here
            chosen = choose_face(dets, w, h, "central") if dets else None  # type: ignore[arg-type]
            if chosen is None:
                chosen = whole_photo_detection(rgb)
            face = pipe.faces(rgb, [chosen])[0]
            hit = (face.embedding, found, bool(chosen.fallback))
            cache.lfw[rel] = hit
            cache.touch()
        emb[rel] = hit[0]
        fallbacks += int(hit[2])
        if (k + 1) % 500 == 0:
            rate = (time.perf_counter() - t0) / (k + 1)
            log(f"  lfw view2: {k + 1}/{len(rels)} photos ({rate * 1000:.0f} ms/photo incl. cache hits)")
    _, accs, thrs = evaluate_pairs(pairs, emb)
    return {"pairs": len(pairs), "photos": len(rels), "accuracy": round(float(accs.mean()), 4),
            "std": round(float(accs.std(ddof=1)), 4) if len(accs) > 1 else 0.0,
            "threshold": round(float(thrs.mean()), 4), "fallback_box": fallbacks, "embedder": embedder}


# ---- report -----------------------------------------------------------------------------------
def fmt_set(s: dict | None, *, count_faces: bool = False) -> str:
    if not s:
        return "-"
    if count_faces:
        return f"{s['faces_total']}"
    cell = f"{s['faces_per_photo']:.2f} / {s['photos_without_face']}"
    return cell


def markdown(results: dict, specs: list[Spec], args: argparse.Namespace, command: str) -> str:
    sizes = {name: results["sets"][name] for name in SETS}
    lim = args.mmod_limit

    def n_of(key: str, name: str) -> str:
        s = results["detectors"][key]["sets"].get(name)
        return "" if not s or s["photos"] == sizes[name] else f" (n={s['photos']})"

    lines = [
        "Detection: faces per photo (mean) / photos with none; the raw detector on the photo shrunk to "
        f"{results['detect_max_side']} px, no crop fallback. multi_face: faces found in total; "
        "no_face: false faces in total.",
        "",
        f"| detector | 5celeb ({sizes['5celeb']}) | kpop15 raw ({sizes['kpop15_raw']}) | multi_face "
        f"({sizes['multi_face']}) faces / none | no_face ({sizes['no_face']}) false faces | partial_or_odd "
        f"({sizes['partial_or_odd']}) | LFW sample ({sizes['lfw_sample']}) |",
        "|---|---|---|---|---|---|---|",
    ]
    for spec in specs:
        d = results["detectors"][spec.key]["sets"]
        mf = d.get("multi_face")
        lines.append(
            f"| {spec.label} | {fmt_set(d.get('5celeb'))}{n_of(spec.key, '5celeb')} "
            f"| {fmt_set(d.get('kpop15_raw'))}{n_of(spec.key, 'kpop15_raw')} "
            f"| {mf['faces_total']} / {mf['photos_without_face']}{n_of(spec.key, 'multi_face')} "
            f"| {d['no_face']['faces_total']}{n_of(spec.key, 'no_face')} "
            f"| {fmt_set(d.get('partial_or_odd'))}{n_of(spec.key, 'partial_or_odd')} "
            f"| {fmt_set(d.get('lfw_sample'))}{n_of(spec.key, 'lfw_sample')} |")
    lines += [
        "",
        "Speed (one core, median ms per photo) and accuracy. Detect ms on the photo as the pipeline "
        "gives it to the detector (<= 1280 px side); 640 px: 5celeb resized to 640 px longer side, "
        "detect and detect + landmarks + align + embed "
        f"(embedder `{results['embedder']}`). Top-1: 5celeb val ({results.get('val_photos', '?')} photos) "
        "against a gallery enrolled from train. LFW View 2: 10-fold accuracy +- std "
        f"({results.get('lfw_pairs', '?')} pairs), fallback = photos where the whole-photo box was used. "
        "'with a face, pipeline': 5celeb photos enrolled or identified with a face by FaceBank "
        "(default settings, so the crop fallback for small near-square photos is on).",
        "",
        "| detector | 5celeb detect ms | LFW detect ms | 640 px detect ms | 640 px detect+embed ms "
        "| 5celeb with a face, pipeline | 5celeb val top-1 | LFW View 2 accuracy | LFW fallback |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for spec in specs:
        r = results["detectors"][spec.key]
        d = r["sets"]
        t = r.get("timing_640") or {}
        e = r.get("top1_5celeb") or {}
        lf = r.get("lfw_view2")
        t_note = f" (n={t['photos']})" if t and spec.key == "mmod" else ""
        lines.append(
            f"| {spec.label} | {d['5celeb']['ms_median']} | {d['lfw_sample']['ms_median']} "
            f"| {t.get('detect_ms_median', '-')}{t_note} | {t.get('detect_embed_ms_median', '-')}{t_note} "
            f"| {e.get('pipeline_with_face', '-')}/{e.get('pipeline_photos', '-')} | {e.get('top1', '-')} | "
            + (f"{lf['accuracy']:.4f} +- {lf['std']:.4f}" if lf else "skipped")
            + f" | {lf['fallback_box'] if lf else '-'} |")
    notes = [""]
    if any(spec.key == "mmod" for spec in specs):
        notes.append(
            f"MMOD ran on at most {lim} photos per set (the first of each sorted list), "
            f"{args.mmod_timing} photos for the 640 px timing"
            + (", and on LFW View 2." if args.mmod_lfw
               else "; its LFW View 2 accuracy is skipped (--mmod-lfw)."))
    if args.lfw_pairs is not None:
        notes.append(f"LFW View 2 on the first {args.lfw_pairs // 2} same + {args.lfw_pairs // 2} different "
                     "pairs of each fold (--lfw-pairs), not all 6000.")
    for spec in specs:
        missed = results["detectors"][spec.key].get("missed", {})
        shown = {k: v for k, v in missed.items() if k not in ("no_face", "lfw_sample") and v}
        if shown:
            notes.append(f"{spec.label} found no face in: " + "; ".join(
                f"{k}: {', '.join(v[:3])}" + (f" and {len(v) - 3} more" if len(v) > 3 else "")
                for k, v in shown.items()))
    notes.append(f"Machine: {os.cpu_count()} cores shared with other jobs (1-min load average "
                 f"{results['load_average_start']} at the start, {results['load_average_end']} at the end): "
                 "timings are upper bounds.")
    notes += ["", f"Command: `{command}`"]
    return "\n".join(lines + notes)


def issue6_checks(results: dict, default: str) -> dict:
    r = results["detectors"].get(default)
    if r is None:
        return {}
    c = r["sets"]["5celeb"]
    recall = 1 - c["photos_without_face"] / c["photos"]
    out = {"detector": default, "5celeb_recall": round(recall, 4), "5celeb_recall_ok": recall >= 0.97,
           "no_face_false_faces": r["sets"]["no_face"]["faces_total"],
           "no_face_ok": r["sets"]["no_face"]["faces_total"] <= 1}
    e = r.get("top1_5celeb")
    if e:
        out["5celeb_pipeline_with_face"] = f"{e['pipeline_with_face']}/{e['pipeline_photos']}"
    t = r.get("timing_640")
    if t:
        out["ms_640_detect_embed"] = t["detect_embed_ms_median"]
        out["ms_640_ok"] = t["detect_embed_ms_median"] < 250
    if "hog1" in results["detectors"]:
        mine = r["sets"]["multi_face"]["faces_total"]
        hog1 = results["detectors"]["hog1"]["sets"]["multi_face"]["faces_total"]
        out["multi_face_vs_hog1"] = f"{mine} vs {hog1}"
        out["multi_face_ok"] = mine >= hog1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "faces")
    ap.add_argument("--detectors", nargs="+", default=None,
                    help=f"keys among {', '.join(ALL_SPECS)} (default: all registered)")
    ap.add_argument("--lfw-sample", type=int, default=300, help="LFW photos for the detection stats")
    ap.add_argument("--seed", type=int, default=0, help="seed of the LFW sample")
    ap.add_argument("--lfw-pairs", type=int, default=None,
                    help="pairs per fold for View 2 (half same, half different; default all 600)")
    ap.add_argument("--no-lfw-view2", action="store_true", help="skip LFW View 2 accuracy")
    ap.add_argument("--mmod-limit", type=int, default=120, help="MMOD: at most N photos of each set")
    ap.add_argument("--mmod-timing", type=int, default=25, help="MMOD: photos of the 640 px timing set")
    ap.add_argument("--mmod-lfw", action="store_true", help="also LFW View 2 with MMOD (hours)")
    ap.add_argument("--embedder", default=None, help="default: fast when available, else dlib")
    ap.add_argument("--cache-dir", type=Path,
                    default=Path(tempfile.gettempdir()) / "facebank-bench-detectors")
    ap.add_argument("--fresh", action="store_true", help="ignore cached detections, timings and embeddings")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the tables to this file")
    args = ap.parse_args()
    command = "python bench/bench_detectors.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])

    registered = detect.available()
    keys = args.detectors or [k for k, s in ALL_SPECS.items() if s.detector in registered]
    specs = [ALL_SPECS[k] for k in keys]
    embedder = args.embedder or ("fast" if "fast" in embed.available() else "dlib")
    max_side = Settings().detect_max_side
    sets = photo_sets(args.faces, args.lfw_sample, args.seed)
    results: dict = {"bench": "detectors", "embedder": embedder, "detect_max_side": max_side,
                     "default_detector": Settings().detector, "sets": {k: len(v) for k, v in sets.items()},
                     "mmod_limit": args.mmod_limit, "mmod_timing": args.mmod_timing,
                     "lfw_pairs_per_fold": args.lfw_pairs or 600, "detectors": {}}
    results["load_average_start"] = round(os.getloadavg()[0], 1)
    for spec in specs:
        log(f"{spec.label}: detector {spec.detector!r} upsample={spec.upsample}, embedder {embedder}")
        cache = Cache.load(args.cache_dir / f"{spec.key}-{embedder}.pkl", args.fresh)
        pipe = one_core_pipeline(spec, embedder)
        inner = pipe.detector
        det = CachingDetector(inner, cache)
        pipe.detector = det
        limit = args.mmod_limit if spec.key == "mmod" else None
        out: dict = {"sets": {}, "missed": {}}
        for name in SETS:
            paths = sets[name][:limit]
            st = detection_stats(det, paths, max_side, f"{spec.key} {name}")
            out["sets"][name] = st.summary()
            if name != "no_face":  # there every photo "misses", rightly
                out["missed"][name] = st.missed
        cache.save()
        log(f"{spec.label}: detection stats done")
        timing_set = sets["5celeb"][: args.mmod_timing] if spec.key == "mmod" else sets["5celeb"]
        out["timing_640"] = timing_640(pipe, inner, cache, timing_set)
        pipe.detector = det
        cache.save()
        out["top1_5celeb"] = top1_5celeb(spec, embedder, det, args.faces)
        results["val_photos"] = out["top1_5celeb"]["val_photos"]
        cache.save()
        log(f"{spec.label}: 640 px timing and 5celeb top-1 done")
        if not args.no_lfw_view2 and (spec.key != "mmod" or args.mmod_lfw):
            out["lfw_view2"] = lfw_view2(pipe, cache, args.faces / "lfw", args.lfw_pairs, embedder)
            results["lfw_pairs"] = out["lfw_view2"]["pairs"]
            cache.save()
            log(f"{spec.label}: LFW View 2 done")
        results["detectors"][spec.key] = out

    results["load_average_end"] = round(os.getloadavg()[0], 1)
    results["issue6"] = issue6_checks(results, results["default_detector"])
    md = markdown(results, specs, args, command)
    print(md)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(md + "\n")
    print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    main()
