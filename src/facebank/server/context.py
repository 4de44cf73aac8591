"""What one running server holds: its settings, ONE FaceBank, the face pipelines, keys, jobs, files.

Concurrency model:
  * the models are loaded once, in a background thread at start-up (``/v1/ready`` says when);
  * face work runs in FastAPI's thread pool; each ``FacePipeline`` (dlib objects: not assumed
    thread-safe) is leased by one thread at a time from a small pool (default 1: dlib holds the
    GIL, so more pipelines buy nothing on CPU; more help with GIL-releasing embedders like ``fast``);
  * every gallery call goes through one lock (``LockedGallery``): SQLite answers in microseconds to
    milliseconds, so this costs nothing next to a 100 ms face pipeline, and it keeps the shared
    sqlite3 connection and the in-memory index consistent. Writes are one transaction each; other
    processes (the CLI) are serialised by SQLite itself (WAL, busy timeout);
  * ``FaceBank.index()`` rebuilds the search index whenever ``gallery.version()`` changes, so the
    index follows every write, ours and other processes'.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi import Request, Security
from fastapi.security import APIKeyHeader

from facebank import images
from facebank.api import FaceBank
from facebank.cluster.groups import KNOWN_WRITES, GroupsCache
from facebank.gallery import open_gallery
from facebank.gallery.jobs_store import open_job_store
from facebank.gallery.uploads import default_uploads_dir
from facebank.pipeline import FacePipeline, PhotoFaces
from facebank.server.auth import ApiKeyInfo, ApiKeyStore
from facebank.server.errors import ApiError, image_error
from facebank.server.jobs import FolderJobs, JobManager
from facebank.server.limits import (
    DECODE_SIDE,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_UPLOAD,
    DEFAULT_MAX_UPLOAD_STORAGE,
    DEFAULT_VIDEO_MAX_FRAMES,
    DEFAULT_VIDEO_MAX_SECONDS,
    PixelBudget,
    header_pixels,
    limit_malloc_arenas,
)
from facebank.server.video_jobs import VideoJobs, VideoUploads
from facebank.settings import Settings
from facebank.types import Detection, Face

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerConfig:
    """How to run the server (``facebank serve`` flags)."""

    settings: Settings
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    open_reads: bool = False  # identify/detect/verify/people listing without a key (never photos, jobs)
    photos_dir: Path | None = None  # uploaded photos; default <gallery>.photos next to the gallery
    enroll_root: Path | None = None  # enrollment jobs only below this folder (None: no folder jobs)
    max_pixels: int | None = None  # largest photo decoded; default the lower of 40 MP and settings.max_pixels
    decode_side: int = DECODE_SIDE  # identify/detect/verify decode big photos reduced to about this side
    pixel_budget: int | None = None  # pixels in flight at once; default the pixel limit
    pipelines: int = 1
    job_workers: int = 1  # >1: enrollment jobs run in that many worker processes
    load_timeout_s: float = 120.0  # how long a request waits for the models at start-up
    keys_db: Path | None = None  # SQLite file of the API keys; default: the gallery file itself
    max_upload_storage_bytes: int = DEFAULT_MAX_UPLOAD_STORAGE  # videos waiting for their job, together

    @property
    def sqlite_gallery(self) -> bool:
        return not str(self.settings.gallery).startswith(("postgresql://", "postgres://"))

    @property
    def pixel_limit(self) -> int:
        """The largest photo the server decodes, in pixels."""
        if self.max_pixels is not None:
            return int(self.max_pixels)
        return min(DEFAULT_MAX_PIXELS, int(self.settings.max_pixels))

    def resolved_videos_dir(self) -> Path:
        """Where uploaded videos wait for their job: ``videos/`` in the photos folder."""
        return self.resolved_photos_dir() / "videos"

    def resolved_photos_dir(self) -> Path:
        if self.photos_dir is not None:
            return Path(self.photos_dir)
        return default_uploads_dir(self.settings.gallery)

    def resolved_keys_db(self) -> str:
        return str(self.keys_db) if self.keys_db is not None else str(self.settings.gallery)


class LockedGallery:
    """The gallery with every method call under one lock (attributes such as model_id pass through)."""

    def __init__(self, gallery: object, lock: threading.RLock) -> None:
        self._gallery = gallery
        self._lock = lock
        self.groups: GroupsCache | None = None  # told of each People action (patches its groups)

    @property
    def inner(self) -> object:
        return self._gallery

    def __getattr__(self, name: str):
        attr = getattr(self._gallery, name)
        if not callable(attr):
            return attr
        lock = self._lock
        groups = self.groups if name in KNOWN_WRITES else None

        def locked(*args, **kwargs):
            if groups is not None and not kwargs:  # by keyword: not told (the next read groups all again)
                return groups.write(name, lambda: locked_call(*args), args)
            return locked_call(*args, **kwargs)

        def locked_call(*args, **kwargs):
            with lock:
                return attr(*args, **kwargs)

        return locked


class PipelinePool:
    """``size`` FacePipelines; each is used by one thread at a time. Duck-types a FacePipeline for
    FaceBank (``photo``, ``faces``, ``model_id``, ``settings``)."""

    def __init__(self, settings: Settings, size: int = 1) -> None:
        self.settings = settings
        self.size = max(1, int(size))
        self._free: queue.Queue[FacePipeline] = queue.Queue()
        for _ in range(self.size):
            self._free.put(FacePipeline(settings))
        first = self._free.get()
        self.model_id: str = first.model_id
        self.embedder_name = type(first.embedder).__name__
        self.detector_name = getattr(first.detector, "name", settings.detector)
        self._free.put(first)

    @contextmanager
    def lease(self) -> Iterator[FacePipeline]:
        pipe = self._free.get()
        try:
            yield pipe
        finally:
            self._free.put(pipe)

    def photo(self, source, name: str | None = None) -> PhotoFaces:
        with self.lease() as pipe:
            return pipe.photo(source, name)

    def faces(self, rgb: np.ndarray, dets: list[Detection] | None = None) -> list[Face]:
        with self.lease() as pipe:
            return pipe.faces(rgb, dets)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Detections with landmarks (the detector's own, or dlib's 5 points), no embeddings."""
        with self.lease() as pipe:
            found = pipe.detections(rgb)
            return [Detection(d.box, d.score, d.detector, pipe.landmarks(rgb, d), d.fallback) for d in found]


class ServerContext:
    """Everything the routes use; one per app, built at start-up, closed at shut-down."""

    def __init__(self, config: ServerConfig) -> None:
        from facebank.server.files import PhotoStore

        self.config = config
        # one process-local worker for request work: enrollment of uploads must not spawn processes
        s = config.settings
        self.settings = s.model_copy(update={
            "workers": 1, "max_pixels": config.pixel_limit,
            # a server always bounds its video jobs (serve --video-max-frames / --video-max-seconds)
            "video_max_frames": s.video_max_frames or DEFAULT_VIDEO_MAX_FRAMES,
            "video_max_seconds": s.video_max_seconds or DEFAULT_VIDEO_MAX_SECONDS})
        self.gallery_lock = threading.RLock()
        self.write_lock = threading.RLock()  # multi-step writes of the routes (check, then write)
        self.gallery = LockedGallery(open_gallery(self.settings.gallery), self.gallery_lock)
        self.bank = FaceBank(self.gallery, settings=self.settings)
        self.face_groups = GroupsCache(self.gallery)  # the People view's clusters, kept per gallery version
        self.gallery.groups = self.face_groups  # ... and patched by the People actions
        # the keys share the gallery's connection (a second one, opened and closed, would drop its locks)
        self.keys = ApiKeyStore.beside(self.gallery.inner, config.keys_db)
        self.photos = PhotoStore(config.resolved_photos_dir(),
                                 self.settings.gallery if config.sqlite_gallery else None)
        self.decode_slots = threading.BoundedSemaphore(max(2, 2 * config.pipelines))
        self.budget = PixelBudget(config.pixel_budget or config.pixel_limit)
        limit_malloc_arenas()  # before the request threads make their own
        self.folder_jobs = FolderJobs(self.gallery, self.settings, self.pool, enroll_root=config.enroll_root,
                                      workers=config.job_workers)
        uploads = VideoUploads(config.resolved_videos_dir(), config.max_upload_storage_bytes)
        self.video_jobs = VideoJobs(self.bank, self.pool, uploads, waiting=lambda: self.jobs.waiting("video"))
        self.job_store = open_job_store(self.settings.gallery)  # after the gallery: it adds the table
        self.jobs = JobManager(self.job_store, [self.folder_jobs, self.video_jobs])
        waiting = self.job_store.active()  # of any server on this gallery (they share the photos folder)
        uploads.sweep(keep={str(j.params.get("upload")) for j in waiting if j.kind == "video"})
        self._pool: PipelinePool | None = None
        self.load_error: str | None = None
        self._loaded = threading.Event()
        self._loader = threading.Thread(target=self._load_models, name="facebank-load-models", daemon=True)
        self._loader.start()

    # -- models -----------------------------------------------------------------------------------
    def _load_models(self) -> None:
        try:
            pool = PipelinePool(self.settings, self.config.pipelines)
            # FaceBank uses it for identify/verify/enroll: a duck-typed FacePipeline (FaceBank.pipeline
            # is typed FacePipeline; a protocol there would make this ignore unused)
            self.bank.pipeline = pool  # type: ignore[assignment]
            self._pool = pool
            log.info("models loaded: %s + %s (%s), %d pipeline(s)", pool.detector_name, pool.embedder_name,
                     pool.model_id, pool.size)
        except Exception as exc:  # the server keeps answering health/ready with the reason
            log.exception("loading the face models failed")
            self.load_error = f"{type(exc).__name__}: {exc}"
        finally:
            self._loaded.set()

    @property
    def models_loaded(self) -> bool:
        return self._pool is not None

    @property
    def loaded_pool(self) -> PipelinePool | None:
        """The pipelines if loaded (never waits)."""
        return self._pool

    def pool(self, timeout: float | None = None) -> PipelinePool:
        """The pipelines, waiting for them at start-up; 503 not_ready when they are not there."""
        self._loaded.wait(self.config.load_timeout_s if timeout is None else timeout)
        if self._pool is None:
            # the reason itself (paths of model files) stays in the server log
            reason = ("the face models could not be loaded (see the server log)" if self.load_error
                      else "the face models are still loading")
            raise ApiError(503, "not_ready", reason, headers={"Retry-After": "5"})
        return self._pool

    # -- photos -----------------------------------------------------------------------------------
    def load_photo(self, data: bytes, label: str = "photo",
                   side: int = 0) -> images.LoadedImage:
        """Decode uploaded bytes (content sniffed, pixel limit, inside the pixel budget; reduced to about
        ``side`` px when > 0); 4xx ApiError for non-photos. The budget is held while decoding only:
        see ``photo`` to keep it."""
        with self.pixels(data):
            return self._decode(data, label, side)

    @contextmanager
    def photo(self, data: bytes, label: str = "photo") -> Iterator[images.LoadedImage]:
        """The upload decoded (reduced to about ``decode_side``), the pixel budget held while it is used."""
        with self.pixels(data):
            yield self._decode(data, label, self.config.decode_side)

    def pixels(self, data: bytes):
        """Hold the pixel budget for this photo's full-size pixels (read from its header)."""
        return self.budget.hold(min(header_pixels(data), self.config.pixel_limit))

    def _decode(self, data: bytes, label: str, side: int) -> images.LoadedImage:
        if not data:
            raise ApiError(422, "empty_file", f"{label}: the upload is empty (0 bytes)")
        with self.decode_slots:
            try:
                return images.load_reduced(data, side, max_pixels=self.config.pixel_limit, any_format=True)
            except images.ImageError as exc:
                err = image_error(exc)
                raise ApiError(err.status, err.code, f"{label}: {err.message}") from None

    def close(self) -> None:
        self.jobs.close(timeout=5.0)
        self._loader.join(timeout=5.0)  # a daemon thread: a server stopped while loading does not wait
        for closer in (self.keys.close, self.photos.close, self.job_store.close, self.bank.close):
            try:
                closer()
            except Exception:  # closing: log, keep closing the rest
                log.exception("error while closing")


def get_ctx(request: Request) -> ServerContext:
    ctx = getattr(request.app.state, "ctx", None)
    if ctx is None:
        raise ApiError(503, "not_ready", "the server is starting")
    return ctx


api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="ApiKey",
    description="an API key made with `facebank keys create --scope read|write|admin` (read: identify, "
                "detect, verify, listing; write: + people, photos, jobs; admin: + keys). Read routes need "
                "no key when the server runs with --open-reads",
)


def _check_key(request: Request, key: str | None, needed: str) -> ApiKeyInfo:
    ctx = get_ctx(request)
    if not key:
        raise ApiError(401, "missing_api_key",
                       "this route needs an API key in the X-API-Key header (make one on the server with "
                       f"'facebank keys create --scope {needed}')", headers={"WWW-Authenticate": "ApiKey"})
    info = ctx.keys.verify(key)
    if info is None:
        raise ApiError(401, "invalid_api_key", "the API key is unknown or revoked",
                       headers={"WWW-Authenticate": "ApiKey"})
    if not info.allows(needed):
        raise ApiError(403, "insufficient_scope",
                       f"this route needs a key of scope {needed!r}; key {info.id} has scope {info.scope!r}")
    return info


def optional_key(request: Request, key: str | None = Security(api_key_header)) -> ApiKeyInfo | None:
    """The caller's valid key, or None (no key, or an unknown one): for routes open to everyone that
    show more to a key holder."""
    ctx = get_ctx(request)
    return ctx.keys.verify(key) if key else None


def require_read(request: Request, key: str | None = Security(api_key_header)) -> ApiKeyInfo | None:
    """identify / detect / verify / listing people: a read key, or nothing with --open-reads."""
    if get_ctx(request).config.open_reads and not key:
        return None
    return _check_key(request, key, "read")


def require_read_key(request: Request, key: str | None = Security(api_key_header)) -> ApiKeyInfo:
    """A read key even with --open-reads: stored photos, face crops and job records."""
    return _check_key(request, key, "read")


def require_write(request: Request, key: str | None = Security(api_key_header)) -> ApiKeyInfo:
    return _check_key(request, key, "write")


def require_admin(request: Request, key: str | None = Security(api_key_header)) -> ApiKeyInfo:
    return _check_key(request, key, "admin")


require_key = require_write  # the name routes used before scopes: a key that may change the gallery
