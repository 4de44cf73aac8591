"""Photo -> ``PhotoFacts``: every face with its embedding and quality measures, and a perceptual
hash of the photo; computed once per (photo bytes, model, pipeline) and kept in the embedding cache
file (its own table: the cache of "the one face of a photo" has no landmarks or second faces).

Photos are processed in worker processes with a bounded window, like enrollment.
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
from dataclasses import replace
from pathlib import Path

import numpy as np

from facebank import images
from facebank.audit.base import FaceFacts, PhotoFacts
from facebank.audit.quality import chip_measures, outside_fraction, yaw_degrees
from facebank.settings import Settings
from facebank.types import Box, Landmarks

log = logging.getLogger(__name__)

FACTS_VERSION = 3  # bumped when what is measured changes: cached facts are then recomputed

Progress = Callable[..., Iterable]


def _no_progress(it: Iterable, **_: object) -> Iterable:
    return it


def phash(rgb: np.ndarray) -> int:
    """64-bit perceptual hash (DCT of the 32x32 grey photo) as an int."""
    import imagehash
    from PIL import Image

    h = imagehash.phash(Image.fromarray(rgb))
    return int(str(h), 16)


THUMB_SIDE = 32


def thumbnail(rgb: np.ndarray) -> bytes:
    """The photo squeezed to 32x32 grey pixels (uint8, row by row): compares two candidate copies."""
    import cv2

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA).tobytes()


def thumb_correlation(a: bytes, b: bytes) -> float:
    """Pearson correlation of two thumbnails' pixels (1 = the same picture up to brightness)."""
    x = np.frombuffer(a, np.uint8).astype(np.float64)
    y = np.frombuffer(b, np.uint8).astype(np.float64)
    x -= x.mean()
    y -= y.mean()
    den = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(x @ y) / den if den > 1e-9 else float(np.array_equal(x, y))


def hamming(a: int, b: int) -> int:
    return int((a ^ b).bit_count())


def analyse(pipe, path: str, person: str) -> PhotoFacts:
    """The facts of one photo with ``pipe`` (a FacePipeline); never raises for a bad photo."""
    try:
        img = images.load_image(path, max_pixels=pipe.settings.max_pixels)
    except images.ImageError as exc:
        return PhotoFacts(path, person, error=str(exc))
    w, h = img.width, img.height
    try:
        digest = phash(img.rgb)
        thumb = thumbnail(img.rgb)
        dets = pipe.detections(img.rgb)
        faces: list[FaceFacts] = []
        if dets:
            chips, lms = pipe.chips(img.rgb, dets)
            vecs = pipe.embedder.embed(chips)
            padding = pipe.embedder.chip.padding
            for d, lm, chip, v in zip(dets, lms, chips, vecs, strict=True):
                blur, bright, low, high = chip_measures(chip, padding)
                faces.append(FaceFacts(
                    box=d.box, landmarks=lm, detector_score=float(d.score),
                    embedding=np.asarray(v, np.float32), fallback=d.fallback, sharpness=blur,
                    luma=bright, yaw_deg=yaw_degrees(lm), outside=outside_fraction(lm, w, h),
                    luma_low=low, luma_high=high,
                ))
    except Exception as exc:  # one odd photo must not end an audit
        log.exception("auditing %s failed", path)
        return PhotoFacts(path, person, img.sha256, w, h,
                          error=f"processing failed: {type(exc).__name__}: {exc}")
    faces.sort(key=lambda f: (f.fallback, -f.box.area))
    return PhotoFacts(path, person, img.sha256, w, h, digest, tuple(faces), thumb=thumb)


# ---- cache ----------------------------------------------------------------------------------------
def _encode(p: PhotoFacts) -> tuple[str, bytes]:
    meta = {
        "width": p.width, "height": p.height, "phash": None if p.phash is None else f"{p.phash:016x}",
        "error": p.error, "thumb": None if p.thumb is None else p.thumb.hex(),
        "faces": [{
            "box": [f.box.x1, f.box.y1, f.box.x2, f.box.y2],
            "landmarks": None if f.landmarks is None else [list(pt) for pt in f.landmarks.points],
            "scheme": None if f.landmarks is None else f.landmarks.scheme,
            "score": f.detector_score, "fallback": f.fallback, "sharpness": f.sharpness,
            "luma": f.luma, "luma_low": f.luma_low, "luma_high": f.luma_high, "yaw": f.yaw_deg,
            "outside": f.outside,
        } for f in p.faces],
    }
    blob = b"".join(np.asarray(f.embedding, np.float32).tobytes() for f in p.faces)
    return json.dumps(meta), blob


def _decode(path: str, person: str, sha: str, meta_text: str, blob: bytes) -> PhotoFacts:
    meta = json.loads(meta_text)
    n = len(meta["faces"])
    vecs = np.frombuffer(blob, np.float32).reshape(n, -1) if n else np.zeros((0, 0), np.float32)
    faces = []
    for f, v in zip(meta["faces"], vecs, strict=True):
        lm = None if f["landmarks"] is None else Landmarks(tuple(tuple(pt) for pt in f["landmarks"]),
                                                           f["scheme"])
        faces.append(FaceFacts(Box(*f["box"]), lm, f["score"], v.copy(), f["fallback"], f["sharpness"],
                               f["luma"], f["yaw"], f["outside"], f["luma_low"], f["luma_high"]))
    ph = meta["phash"]
    thumb = meta.get("thumb")
    return PhotoFacts(path, person, sha, meta["width"], meta["height"],
                      None if ph is None else int(ph, 16), tuple(faces), meta["error"],
                      thumb=None if thumb is None else bytes.fromhex(thumb))


class FactsCache:
    """The ``audit_facts`` table of the embedding cache file (SQLite, WAL; safe between processes)."""

    def __init__(self, path: str | Path | None = None) -> None:
        from facebank.evaluate.cache import default_cache_path

        target = str(path) if path is not None else str(default_cache_path())
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(target, timeout=60, check_same_thread=False)
        self._lock = threading.Lock()
        if target != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS audit_facts (sha256 TEXT NOT NULL, key TEXT NOT NULL, "
            "meta TEXT NOT NULL, embeddings BLOB NOT NULL, created REAL, PRIMARY KEY (sha256, key))")
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> FactsCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_many(self, digests: Sequence[str], key: str) -> dict[str, tuple[str, bytes]]:
        out: dict[str, tuple[str, bytes]] = {}
        unique = list(dict.fromkeys(d for d in digests if d))
        with self._lock:
            for i in range(0, len(unique), 500):
                chunk = unique[i:i + 500]
                rows = self._db.execute(
                    f"SELECT sha256, meta, embeddings FROM audit_facts WHERE key=? AND sha256 IN "
                    f"({','.join('?' * len(chunk))})", (key, *chunk)).fetchall()
                out.update({r[0]: (r[1], r[2]) for r in rows})
        return out

    def put_many(self, items: Sequence[PhotoFacts], key: str) -> None:
        rows = []
        for p in items:
            if not p.sha256 or (p.error and p.error.startswith("processing failed")):
                continue  # unreadable, or a failure that may be transient: computed again next time
            meta, blob = _encode(p)
            rows.append((p.sha256, key, meta, blob, time.time()))
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO audit_facts VALUES (?,?,?,?,?)", rows)
            self._db.commit()


def facts_key(settings: Settings, model_id: str) -> str:
    return f"v{FACTS_VERSION}|{model_id}|{settings.pipeline_key()}"


# ---- computing --------------------------------------------------------------------------------------
_PIPE = None


def _init(settings_json: str) -> None:
    global _PIPE
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from facebank.pipeline import FacePipeline

    _PIPE = FacePipeline(Settings.model_validate_json(settings_json).model_copy(update={"threads": 1}))


def _work(item: tuple[str, str]) -> PhotoFacts:
    assert _PIPE is not None
    return analyse(_PIPE, *item)


def _compute(items: list[tuple[str, str]], settings: Settings) -> Iterator[PhotoFacts]:
    """``analyse`` every (path, person) in worker processes (facebank.parallel), in order."""
    from facebank.parallel import ordered_map
    from facebank.pipeline import FacePipeline, worker_count

    def local():
        pipe = FacePipeline(settings)
        return lambda item: analyse(pipe, *item)

    workers = min(worker_count(settings), max(1, len(items)))
    yield from ordered_map(_work, items, workers, local, initializer=_init,
                           initargs=(settings.model_dump_json(),))


def _sha256(path: str) -> tuple[str, int, str | None]:
    try:
        data = images.read_bytes(path)
    except images.ImageError as exc:
        return "", 0, str(exc)
    except OSError as exc:  # EIO and friends: named, and the audit goes on
        return "", 0, f"cannot read: {exc.strerror or exc}"
    if not data:
        return "", 0, "empty file (0 bytes)"
    return hashlib.sha256(data).hexdigest(), len(data), None


def photo_facts(items: Sequence[tuple[str, str]], settings: Settings, cache: FactsCache | None = None,
                progress: Progress = _no_progress) -> list[PhotoFacts]:
    """The facts of every (path, person), in order: from the cache, or computed and then cached."""
    from facebank.evaluate.cache import model_id_for

    key = facts_key(settings, model_id_for(settings))
    hashed = [_sha256(p) for p, _ in items]
    known = cache.get_many([d for d, _, _ in hashed], key) if cache is not None else {}
    out: list[PhotoFacts | None] = []
    todo: list[int] = []
    for i, ((path, person), (digest, size, error)) in enumerate(zip(items, hashed, strict=True)):
        if error is not None:
            out.append(PhotoFacts(path, person, error=error))
        elif digest in known:
            out.append(replace(_decode(path, person, digest, *known[digest]), size_bytes=size))
        else:
            out.append(None)
            todo.append(i)
    log.info("%d of %d photos known from the cache; analysing %d", len(items) - len(todo), len(items),
             len(todo))
    if todo:
        pending: list[PhotoFacts] = []
        stream = _compute([items[i] for i in todo], settings)
        for i, facts in zip(todo, progress(stream, total=len(todo), desc="audit", unit="photo"),
                            strict=False):
            out[i] = replace(facts, size_bytes=hashed[i][1])
            pending.append(facts)
            if cache is not None and len(pending) >= 64:
                cache.put_many(pending, key)
                pending = []
        if cache is not None:
            cache.put_many(pending, key)
    return [p for p in out if p is not None]
