"""Video jobs: an uploaded video analysed in the background (``POST /v1/videos``), with progress.

A ``VideoJob`` is a ``jobs.Job`` (same record, states, cancel, saving in the gallery) run by
``VideoJobs``. The upload is kept under the server's photos folder (``<photos>/videos/<id>.video``)
while its job waits and runs, and deleted when the job ends (finished, failed, cancelled or
interrupted: a video job is not resumed, the client uploads it again). The waiting uploads share a
disk quota (``serve --max-upload-storage-mb``): an upload bigger than the whole quota is refused
with 413, one that does not fit next to the waiting ones with 507 (retry later).

Every job is bounded: the pixel limit (checked on every decoded frame, and by FFmpeg itself), the
decoded frames and the wall time (``--video-max-frames``, ``--video-max-seconds``: past them the
job fails with reason ``budget_exceeded``); ``DELETE /v1/videos/{id}`` stops it at the next decoded
frame. Answers name the video by the file name the client gave, never by a path of the server.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from facebank.gallery.jobs_store import StoredJob
from facebank.server.errors import ApiError
from facebank.server.jobs import PRIVATE, Job, JobCancelled, JobFailed

log = logging.getLogger(__name__)

MAX_WAITING = 8  # queued + running video jobs at most; more uploads are refused (503, retry later)
UPLOAD_SUFFIX = ".video"


@dataclass
class VideoJob(Job):
    kind: ClassVar[str] = "video"
    filename: str = ""
    size_bytes: int = 0
    sample_fps: float | None = None
    width: int = 0
    height: int = 0
    fps: float = 0.0
    duration_s: float | None = None
    frames_analysed: int = 0
    frames_expected: int = 0
    tracks: list[dict] = field(default_factory=list)
    people: list[dict] = field(default_factory=list)  # per person: time on screen, each appearance
    upload: str | None = field(default=None, repr=False, metadata=PRIVATE)  # file name in the uploads folder

    def progress(self) -> float:
        if self.state == "finished":
            return 1.0
        if self.frames_expected:
            return min(0.99, self.frames_analysed / self.frames_expected)
        return 0.0

    def params(self) -> dict[str, Any]:
        return {"upload": self.upload}


class VideoUploads:
    """The folder of the videos waiting for their job, and its quota (bytes, all files together)."""

    def __init__(self, folder: Path, quota_bytes: int) -> None:
        self.folder = Path(folder)
        self.quota_bytes = int(quota_bytes)
        self._lock = threading.Lock()  # the quota check and the write of one upload at a time

    def used(self) -> int:
        total = 0
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return 0
        for e in entries:
            try:
                if e.is_file(follow_symlinks=False):
                    total += e.stat(follow_symlinks=False).st_size
            except OSError:
                pass
        return total

    def path(self, name: str) -> Path | None:
        """The upload called ``name`` (a bare file name of this folder only)."""
        if not name or Path(name).name != name or not name.endswith(UPLOAD_SUFFIX):
            return None
        return self.folder / name

    def store(self, job_id: str, data: bytes) -> str:
        """Write an upload; returns its name. 413/507 ApiError when it does not fit the quota or disk."""
        size = len(data)
        mb = 1_000_000
        if size > self.quota_bytes:
            raise ApiError(413, "upload_storage_exceeded", f"the video ({size / mb:.1f} MB) is larger than "
                           f"the server's storage for waiting videos ({self.quota_bytes / mb:.0f} MB, "
                           "--max-upload-storage-mb)")
        with self._lock:
            return self._store(job_id, data, size)

    def _store(self, job_id: str, data: bytes, size: int) -> str:
        mb = 1_000_000
        used = self.used()
        if used + size > self.quota_bytes:
            raise ApiError(507, "upload_storage_full", f"the server's storage for waiting videos is full "
                           f"({used / mb:.1f} of {self.quota_bytes / mb:.0f} MB used): try again when "
                           "the videos before yours are done", headers={"Retry-After": "60"})
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{job_id}{UPLOAD_SUFFIX}"
        path = self.folder / name
        part = self.folder / f".{name}.part"
        try:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(part, path)
        except OSError as exc:
            part.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise ApiError(507, "upload_storage_full", "the server's disk is full: try again later",
                               headers={"Retry-After": "60"}) from None
            raise
        return name

    def remove(self, name: str | None) -> None:
        path = self.path(name or "")
        if path is not None:
            path.unlink(missing_ok=True)

    def sweep(self, keep: set[str]) -> int:
        """Delete the uploads (and partial writes) no waiting job needs; returns how many."""
        removed = 0
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return 0
        for e in entries:
            if e.name in keep or not (e.name.endswith(UPLOAD_SUFFIX) or e.name.endswith(".part")):
                continue
            try:
                os.unlink(e.path)
                removed += 1
            except OSError as exc:
                log.warning("could not delete a left-over video upload: %s", exc)
        return removed


class VideoJobs:
    """``new(data, filename, fps)`` stores the upload, checks it is a readable video and makes its job."""

    kind = "video"
    job_type: type[Job] = VideoJob
    resumable = False

    def __init__(self, bank: Any, pipelines: Callable[..., Any], uploads: VideoUploads,
                 waiting: Callable[[], int] | None = None) -> None:
        self.bank = bank  # the server's FaceBank (its settings: pixel limit and video budget)
        self.pipelines = pipelines  # pipelines(timeout=...): waits for the models
        self.uploads = uploads
        self.waiting = waiting or (lambda: 0)

    def new(self, data: bytes, filename: str, fps: float | None) -> VideoJob:
        from facebank.video import VideoError, VideoReader

        name = Path(filename or "upload").name[:200] or "upload"
        if not data:
            raise ApiError(422, "empty_file", f"{name}: the upload is empty (0 bytes)")
        waiting = self.waiting()
        if waiting >= MAX_WAITING:
            raise ApiError(503, "busy", f"{waiting} videos are waiting; try again later",
                           headers={"Retry-After": "30"})
        job = VideoJob(id=uuid.uuid4().hex[:12], filename=name, size_bytes=len(data), sample_fps=fps)
        job.upload = self.uploads.store(job.id, data)
        path = self.uploads.path(job.upload)
        assert path is not None
        try:
            with VideoReader(path, fps=fps, max_pixels=self.bank.settings.max_pixels, name=name) as r:
                info = r.info
        except VideoError as exc:
            self.uploads.remove(job.upload)
            raise ApiError(422, "invalid_video", str(exc)) from None
        except BaseException:
            self.uploads.remove(job.upload)
            raise
        job.width, job.height, job.fps = info.width, info.height, round(info.fps, 3)
        job.duration_s = info.duration_s
        rate = fps or info.fps
        job.frames_expected = int(info.duration_s * rate) + 1 if info.duration_s and rate else 0
        return job

    def run(self, job: VideoJob) -> None:
        from facebank.video import VideoError, analyze_video
        from facebank.video.decode import VideoBudgetExceeded, VideoCancelled

        path = self.uploads.path(job.upload or "")
        if path is None or not path.is_file():
            raise JobFailed("upload_missing", f"{job.filename}: the uploaded video is gone")
        self.pipelines(timeout=600)  # the models are loaded (the bank's pipeline is the server's pool)

        def progress(frames: Iterable, **_: object) -> Iterator:
            for frame in frames:
                yield frame
                job.frames_analysed += 1

        try:
            result = analyze_video(self.bank, path, fps=job.sample_fps, progress=progress, name=job.filename,
                                   cancel=job.cancel)
        except VideoCancelled:
            raise JobCancelled() from None
        except VideoBudgetExceeded as exc:
            raise JobFailed(exc.reason, str(exc)) from None
        except VideoError as exc:
            raise JobFailed("invalid_video", str(exc)) from None
        job.tracks = [t.to_json() for t in result.tracks]
        job.people = [p.to_json() for p in result.people()]  # as `identify VIDEO --json --summary`
        job.frames_analysed = result.frames_analysed

    def ended(self, job: VideoJob) -> None:
        self.uploads.remove(job.upload)

    def lost(self, stored: StoredJob) -> None:
        self.uploads.remove(stored.params.get("upload"))

    def resume(self, job: VideoJob, params: dict[str, Any]) -> Job:
        raise ApiError(409, "job_not_resumable", "video jobs cannot be resumed: upload the video again")
