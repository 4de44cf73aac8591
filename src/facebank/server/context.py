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
from facebank.gallery import open_gallery
from facebank.gallery.uploads import default_uploads_dir
from facebank.pipeline import FacePipeline, PhotoFaces
from facebank.server.auth import ApiKeyInfo, ApiKeyStore
from facebank.server.errors import ApiError, image_error
from facebank.settings import Settings
from facebank.types import Detection, Face

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD = 20_000_000


@dataclass(frozen=True)
class ServerConfig:
    """How to run the server (``facebank serve`` flags)."""

    settings: Settings
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    open_reads: bool = False  # identify/detect/verify/listing without a key (writes always need one)
    photos_dir: Path | None = None  # uploaded photos; default <gallery>.photos next to the gallery
    enroll_root: Path | None = None  # enrollment jobs only below this folder (None: any folder)
    pipelines: int = 1
    job_workers: int = 1  # >1: enrollment jobs run in that many worker processes
    load_timeout_s: float = 120.0  # how long a request waits for the models at start-up
    keys_db: Path | None = None  # SQLite file of the API keys; default: the gallery file itself

    @property
    def sqlite_gallery(self) -> bool:
        return not str(self.settings.gallery).startswith(("postgresql://", "postgres://"))

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

    @property
    def inner(self) -> object:
        return self._gallery

    def __getattr__(self, name: str):
        attr = getattr(self._gallery, name)
        if not callable(attr):
            return attr
        lock = self._lock

        def locked(*args, **kwargs):
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
        from facebank.server.jobs import JobManager

        self.config = config
        # one process-local worker for request work: enrollment of uploads must not spawn processes
        self.settings = config.settings.model_copy(update={"workers": 1})
        self.gallery_lock = threading.RLock()
        self.write_lock = threading.RLock()  # multi-step writes of the routes (check, then write)
        self.gallery = LockedGallery(open_gallery(self.settings.gallery), self.gallery_lock)
        self.bank = FaceBank(self.gallery, settings=self.settings)
        self.keys = ApiKeyStore(config.resolved_keys_db())
        self.photos = PhotoStore(config.resolved_photos_dir(),
                                 self.settings.gallery if config.sqlite_gallery else None)
        self.decode_slots = threading.BoundedSemaphore(max(2, 2 * config.pipelines))
        self.jobs = JobManager(self, enroll_root=config.enroll_root, workers=config.job_workers)
        self._pool: PipelinePool | None = None
        self.load_error: str | None = None
        self._loaded = threading.Event()
        self._loader = threading.Thread(target=self._load_models, name="facebank-load-models", daemon=True)
        self._loader.start()

    # -- models -----------------------------------------------------------------------------------
    def _load_models(self) -> None:
        try:
            pool = PipelinePool(self.settings, self.config.pipelines)
            self.bank.pipeline = pool  # FaceBank uses it for identify/verify/enroll
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
            reason = self.load_error or "the face models are still loading"
            raise ApiError(503, "not_ready", reason, headers={"Retry-After": "5"})
        return self._pool

    # -- photos -----------------------------------------------------------------------------------
    def load_photo(self, data: bytes, label: str = "photo") -> images.LoadedImage:
        """Decode uploaded bytes (content sniffed, pixel limit); 4xx ApiError for non-photos."""
        if not data:
            raise ApiError(422, "empty_file", f"{label}: the upload is empty (0 bytes)")
        with self.decode_slots:
            try:
                return images.load_image(data, max_pixels=self.settings.max_pixels)
            except images.ImageError as exc:
                err = image_error(exc)
                raise ApiError(err.status, err.code, f"{label}: {err.message}") from None

    def close(self) -> None:
        self.jobs.close()
        self._loader.join(timeout=30)
        for closer in (self.keys.close, self.photos.close, self.bank.close):
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
    description="an API key made with `facebank keys create` (write routes always need it; read routes "
                "too unless the server runs with --open-reads)",
)


def require_key(request: Request, key: str | None = Security(api_key_header)) -> ApiKeyInfo:
    ctx = get_ctx(request)
    if not key:
        raise ApiError(401, "missing_api_key",
                       "this route needs an API key in the X-API-Key header (make one on the server with "
                       "'facebank keys create')", headers={"WWW-Authenticate": "ApiKey"})
    info = ctx.keys.verify(key)
    if info is None:
        raise ApiError(401, "invalid_api_key", "the API key is unknown or revoked",
                       headers={"WWW-Authenticate": "ApiKey"})
    return info


def require_read(request: Request, key: str | None = Security(api_key_header)) -> ApiKeyInfo | None:
    if get_ctx(request).config.open_reads and not key:
        return None
    return require_key(request, key)
