"""Embeddings computed once: a SQLite cache of "the one face of this photo" per model and settings.

Key: (photo sha256, embedder model_id, ``Settings.pipeline_key()`` + face-choice policy). Value: the
chosen face's embedding, box, detector and fallback flag, or the reason the photo gave no face.
An evaluation never re-embeds a photo it has seen with the same model, pipeline and policy.

The cache file is ``--cache PATH``, else ``$FACEBANK_CACHE_DIR/embeddings.db``, else
``platformdirs.user_cache_dir("facebank")/embeddings.db``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebank import images
from facebank.detect.base import Detector
from facebank.folders import FolderWalk
from facebank.settings import Settings
from facebank.types import Box, Detection

log = logging.getLogger(__name__)

CACHE_ENV = "FACEBANK_CACHE_DIR"
CACHE_FILE = "embeddings.db"
SCHEMA_VERSION = 1

# Where LFW deep-funneled 250x250 photos hold the face (fractions of width/height): the median HOG
# box of a sample of LFW photos. Used as the face when no detector finds one.
LFW_FACE_BOX = (0.27, 0.32, 0.71, 0.75)

Progress = Callable[..., Iterable]


def _no_progress(it: Iterable, **_: object) -> Iterable:
    return it


@dataclass(frozen=True)
class FacePolicy:
    """Which face of a photo showing one person is kept, and what to do when none is found.

    ``choose``: ``largest`` box or the box nearest the photo's ``central`` point.
    ``retry``: a second detector (e.g. ``mtcnn``) tried only on photos where the pipeline's detector
    found nothing (small or odd faces that HOG misses).
    ``fallback_box``: when no detector finds a face, take this box (fractions x1, y1, x2, y2 of the
    photo's width and height) as the face, flagged ``fallback``; None = the photo is a failure.
    """

    choose: str = "largest"
    fallback_box: tuple[float, float, float, float] | None = None
    retry: str | None = None
    landmarks: str = "detector"
    jitter: int = 0

    # ``landmarks``: ``detector`` aligns with the detector's own landmarks (MTCNN's five points),
    # ``dlib5`` always runs dlib's 5-point shape predictor on the box (the alignment dlib's ResNet
    # was trained with). ``jitter``: that many extra, slightly rotated/scaled/shifted copies of the
    # aligned chip are embedded too and all embeddings averaged (test-time augmentation, like dlib's
    # num_jitters; deterministic).

    def __post_init__(self) -> None:
        if self.landmarks not in ("detector", "dlib5"):
            raise ValueError(f"unknown landmarks {self.landmarks!r}: detector or dlib5")
        if self.choose not in ("largest", "central"):
            raise ValueError(f"unknown face choice {self.choose!r}: largest or central")

    def key(self) -> str:
        fb = "none" if self.fallback_box is None else ",".join(f"{v:.3f}" for v in self.fallback_box)
        return (f"choose={self.choose}|fallbox={fb}" + (f"|retry={self.retry}" if self.retry else "")
                + (f"|lm={self.landmarks}" if self.landmarks != "detector" else "")
                + (f"|jitter={self.jitter}" if self.jitter else ""))

    def pick(self, dets: Sequence[Detection], width: int, height: int) -> Detection | None:
        if not dets:
            return None
        if self.choose == "largest":
            return max(dets, key=lambda d: d.box.area)
        cx, cy = width / 2.0, height / 2.0
        return min(dets, key=lambda d: (d.box.center[0] - cx) ** 2 + (d.box.center[1] - cy) ** 2)

    def fallback(self, width: int, height: int) -> Detection | None:
        if self.fallback_box is None:
            return None
        x1, y1, x2, y2 = self.fallback_box
        return Detection(Box(x1 * width, y1 * height, x2 * width, y2 * height), 0.0, "center-box",
                         fallback=True)


LFW_POLICY = FacePolicy("central", LFW_FACE_BOX)


def default_retry() -> str | None:
    """``mtcnn`` as the second-chance detector when it is installed, else none."""
    from facebank import detect

    return "mtcnn" if "mtcnn" in detect.available() else None


@dataclass(frozen=True, eq=False)
class PhotoEmbedding:
    """The one face of one photo, or why there is none (``error``: a failure, never dropped)."""

    path: str
    sha256: str
    embedding: np.ndarray | None
    box: Box | None = None
    detector: str = ""
    fallback: bool = False
    faces_found: int = 0
    width: int = 0
    height: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.embedding is not None


def default_cache_path() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env) / CACHE_FILE
    import platformdirs

    return Path(platformdirs.user_cache_dir("facebank")) / CACHE_FILE


def model_id_for(settings: Settings) -> str:
    """The embedder's model id without loading the model when it is known (dlib and fast)."""
    if settings.embedder in ("dlib", "fast"):
        from facebank.embed.dlib import DLIB_MODEL_ID

        return DLIB_MODEL_ID
    from facebank.embed import create

    return create(settings.embedder, model=settings.onnx_model).model_id


def prefer_fast(settings: Settings) -> Settings:
    """``settings`` with the ``fast`` embedder when it exists and loads (same model, ~4x faster)."""
    if settings.embedder != "dlib":
        return settings
    from facebank import embed

    if "fast" not in embed.available():
        return settings
    try:
        embed.create("fast", flip=settings.flip)
    except Exception as exc:  # an optional accelerator that cannot start is no error
        log.info("fast embedder unavailable (%s); using dlib", exc)
        return settings
    return settings.model_copy(update={"embedder": "fast"})


class EmbeddingCache:
    """SQLite store of PhotoEmbedding rows; safe to share between processes (WAL, busy timeout)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None and str(path) != ":memory:" else path
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path or default_cache_path()), timeout=60,
                                   check_same_thread=False)
        self._lock = threading.Lock()
        if str(self.path) != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE IF NOT EXISTS embeddings (
                sha256 TEXT NOT NULL, model_id TEXT NOT NULL, pipeline TEXT NOT NULL,
                embedding BLOB, box TEXT, detector TEXT, fallback INTEGER, faces_found INTEGER,
                width INTEGER, height INTEGER, error TEXT, created REAL,
                PRIMARY KEY (sha256, model_id, pipeline)
            );
            """
        )
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_many(self, digests: Iterable[str], model_id: str, key: str) -> dict[str, tuple]:
        out: dict[str, tuple] = {}
        digests = list(dict.fromkeys(digests))
        with self._lock:
            for i in range(0, len(digests), 500):
                chunk = digests[i:i + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT sha256, embedding, box, detector, fallback, faces_found, width, height, error "
                    f"FROM embeddings WHERE model_id=? AND pipeline=? AND sha256 IN ({marks})",
                    (model_id, key, *chunk),
                ).fetchall()
                out.update({r[0]: r[1:] for r in rows})
        return out

    def put_many(self, items: Sequence[PhotoEmbedding], model_id: str, key: str) -> None:
        rows = []
        for e in items:
            if not e.sha256:
                continue  # unreadable file: nothing to key it by, it is retried next time
            rows.append((
                e.sha256, model_id, key,
                None if e.embedding is None else np.asarray(e.embedding, np.float32).tobytes(),
                None if e.box is None else json.dumps([e.box.x1, e.box.y1, e.box.x2, e.box.y2]),
                e.detector, int(e.fallback), e.faces_found, e.width, e.height, e.error, time.time(),
            ))
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            self._db.commit()

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])


def _from_row(path: str, digest: str, row: tuple) -> PhotoEmbedding:
    blob, box, detector, fallback, found, w, h, error = row
    return PhotoEmbedding(
        path=path, sha256=digest,
        embedding=None if blob is None else np.frombuffer(blob, np.float32).copy(),
        box=None if box is None else Box(*json.loads(box)), detector=detector or "",
        fallback=bool(fallback), faces_found=int(found or 0), width=int(w or 0), height=int(h or 0),
        error=error,
    )


def cache_key(settings: Settings, policy: FacePolicy) -> str:
    return f"{settings.pipeline_key()}|{policy.key()}"


# ---- computing: one worker per core, each with its own pipeline ------------------------------------
_PIPE = None
_POLICY: FacePolicy | None = None
_RETRY: dict[str, Detector] = {}


def _retry_detections(pipe, name: str, rgb: np.ndarray) -> list[Detection]:
    from facebank import detect

    if name not in _RETRY:
        _RETRY[name] = detect.create(name, min_face=pipe.settings.min_face)
    small, factor = images.downscale(rgb, pipe.settings.detect_max_side)
    found = _RETRY[name].detect(small)
    if factor == 1.0:
        return found
    out = []
    for d in found:
        lm = d.landmarks
        if lm is not None:
            lm = type(lm)(tuple((x * factor, y * factor) for x, y in lm.points), lm.scheme)
        out.append(Detection(d.box.scaled(factor), d.score, d.detector, lm, d.fallback))
    return out


def _init(settings_json: str, policy: FacePolicy) -> None:
    global _PIPE, _POLICY
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from facebank.pipeline import FacePipeline

    _PIPE = FacePipeline(Settings.model_validate_json(settings_json))
    _POLICY = policy


def embed_one(pipe, policy: FacePolicy, path: str) -> PhotoEmbedding:
    """The chosen face of one photo with ``pipe`` (a FacePipeline); never raises for a bad photo."""
    try:
        img = images.load_image(path, max_pixels=pipe.settings.max_pixels)
    except images.ImageError as exc:
        return PhotoEmbedding(path, "", None, error=str(exc))
    w, h = img.width, img.height
    try:
        dets = pipe.detections(img.rgb)
        if not dets and policy.retry:
            dets = _retry_detections(pipe, policy.retry, img.rgb)
        det = policy.pick(dets, w, h) or policy.fallback(w, h)
        if det is None:
            return PhotoEmbedding(path, img.sha256, None, width=w, height=h, error="no face found")
        if policy.landmarks == "dlib5" and det.landmarks is not None and det.landmarks.scheme != "dlib5":
            det = Detection(det.box, det.score, det.detector, None, det.fallback)
        if policy.jitter > 0:
            chips, _ = pipe.chips(img.rgb, [det])
            vecs = pipe.embedder.embed(jittered_chips(chips[0], policy.jitter, img.sha256))
            mean = vecs.mean(axis=0)
            vec = (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)
        else:
            vec = np.asarray(pipe.faces(img.rgb, [det])[0].embedding, np.float32)
    except Exception as exc:  # one odd photo must not end a run
        log.exception("embedding %s failed", path)
        return PhotoEmbedding(path, img.sha256, None, width=w, height=h,
                              error=f"processing failed: {type(exc).__name__}: {exc}")
    return PhotoEmbedding(path, img.sha256, vec, det.box, det.detector, det.fallback, len(dets), w, h)


def jittered_chips(chip: np.ndarray, n: int, seed_text: str = "") -> np.ndarray:
    """The chip plus ``n`` copies rotated up to 3 degrees, scaled by 0.95-1.05 and shifted up to 2% of
    its side (the random source is seeded by ``seed_text``: the same photo gives the same copies)."""
    import cv2

    seed = int(hashlib.sha256(seed_text.encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    size = chip.shape[0]
    out = [chip]
    for _ in range(n):
        angle = rng.uniform(-3.0, 3.0)
        scale = rng.uniform(0.95, 1.05)
        m = cv2.getRotationMatrix2D((size / 2.0, size / 2.0), angle, scale)
        m[:, 2] += rng.uniform(-0.02, 0.02, 2) * size
        out.append(cv2.warpAffine(chip, m, (size, size), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REFLECT))
    return np.stack(out)


def _work(path: str) -> PhotoEmbedding:
    assert _PIPE is not None and _POLICY is not None
    return embed_one(_PIPE, _POLICY, path)


def _compute(paths: list[str], settings: Settings, policy: FacePolicy) -> Iterator[PhotoEmbedding]:
    from facebank.parallel import ordered_map

    workers = settings.workers if settings.workers > 0 else (os.cpu_count() or 1)
    workers = min(workers, max(1, len(paths)))

    def local():
        from facebank.pipeline import FacePipeline

        pipe = FacePipeline(settings)
        return lambda p: embed_one(pipe, policy, p)

    yield from ordered_map(_work, paths, workers, local, initializer=_init,
                           initargs=(settings.model_dump_json(), policy))


def file_sha256(path: str | Path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def embed_photos(paths: Sequence[str | Path], settings: Settings, policy: FacePolicy | None = None,
                 cache: EmbeddingCache | None = None,
                 progress: Progress = _no_progress) -> list[PhotoEmbedding]:
    """The chosen face of every photo, in order, from the cache or computed (and then cached).

    Photos with no face or that cannot be read come back with ``error`` set: callers count them as
    failures. ``settings.embedder == "dlib"`` is switched to ``fast`` when that is available.
    """
    policy = policy or FacePolicy()
    settings = prefer_fast(settings)
    model_id = model_id_for(settings)
    key = cache_key(settings, policy)
    own = cache is None
    cache = cache or EmbeddingCache(default_cache_path())
    try:
        strs = [str(p) for p in paths]
        digests = [file_sha256(p) for p in strs]
        known = cache.get_many([d for d in digests if d], model_id, key)
        out: list[PhotoEmbedding | None] = [
            _from_row(p, d, known[d]) if d in known else None for p, d in zip(strs, digests, strict=True)
        ]
        todo = [i for i, e in enumerate(out) if e is None]
        log.info("%d of %d photos cached for %s; embedding %d", len(strs) - len(todo), len(strs), key,
                 len(todo))
        if todo:
            pending: list[PhotoEmbedding] = []
            stream = _compute([strs[i] for i in todo], settings, policy)
            bar = progress(stream, total=len(todo), desc="embed", unit="photo")
            for i, e in zip(todo, bar, strict=False):
                out[i] = e
                pending.append(e)
                if len(pending) >= 64:
                    cache.put_many(pending, model_id, key)
                    pending = []
            cache.put_many(pending, model_id, key)
        return [e for e in out if e is not None]
    finally:
        if own:
            cache.close()


def labelled_photos(root: str | Path) -> list[tuple[str, Path]]:
    """(person, photo) for every photo of a folder-per-person tree, in a stable order."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    return list(FolderWalk(root).labelled())
