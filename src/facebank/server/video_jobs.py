"""Video jobs: an uploaded video analysed in the background (``POST /v1/videos``), with progress.

The machinery is the enrollment jobs' (``facebank.server.jobs.JobManager``: one worker thread,
jobs in submission order, the last ``keep`` kept in memory, cancel, close); only what a job is and
how it runs differ. The upload is kept in a private temporary file while its job waits and runs,
and deleted when it is done. Answers name the video by the file name the client gave, never by a
path of the server.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from facebank.server.errors import ApiError
from facebank.server.jobs import JobCancelled, JobManager, _now

log = logging.getLogger(__name__)

MAX_WAITING = 8  # queued + running video jobs at most; more uploads are refused (503, retry later)


@dataclass
class VideoJob:
    id: str
    filename: str
    size_bytes: int
    sample_fps: float | None
    state: str = "queued"
    width: int = 0
    height: int = 0
    fps: float = 0.0
    duration_s: float | None = None
    frames_analysed: int = 0
    frames_expected: int = 0
    tracks: list[dict] = field(default_factory=list)
    error: str | None = None
    created_at: str = field(default_factory=_now)
    started_at: str | None = None
    finished_at: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    path: Path | None = field(default=None, repr=False)  # the upload on the server: never shown

    def snapshot(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k not in ("cancel", "path")}
        d["tracks"] = list(self.tracks)
        if self.state == "finished":
            d["progress"] = 1.0
        elif self.frames_expected:
            d["progress"] = round(min(0.99, self.frames_analysed / self.frames_expected), 4)
        else:
            d["progress"] = 0.0
        return d


class VideoJobManager(JobManager):
    """``submit(data, filename, fps)`` checks the upload is a readable video and queues its job."""

    def submit(self, data: bytes, filename: str, fps: float | None) -> VideoJob:  # type: ignore[override]
        from facebank.video import VideoError, VideoReader

        name = Path(filename or "upload").name[:200] or "upload"
        if not data:
            raise ApiError(422, "empty_file", f"{name}: the upload is empty (0 bytes)")
        with self._lock:
            waiting = sum(1 for j in self._jobs.values() if j.state in ("queued", "running"))
        if waiting >= MAX_WAITING:
            raise ApiError(503, "busy", f"{waiting} videos are waiting; try again later",
                           headers={"Retry-After": "30"})
        fd, tmp = tempfile.mkstemp(prefix="facebank-video-")
        path = Path(tmp)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            with VideoReader(path, fps=fps, max_pixels=self.ctx.settings.max_pixels, name=name) as r:
                info = r.info
        except VideoError as exc:
            path.unlink(missing_ok=True)
            raise ApiError(422, "invalid_video", str(exc)) from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        job = VideoJob(id=uuid.uuid4().hex[:12], filename=name, size_bytes=len(data), sample_fps=fps,
                       width=info.width, height=info.height, fps=round(info.fps, 3),
                       duration_s=info.duration_s, path=path)
        rate = fps or info.fps
        job.frames_expected = int(info.duration_s * rate) + 1 if info.duration_s and rate else 0
        with self._lock:
            if self._closed:
                path.unlink(missing_ok=True)
                raise ApiError(503, "not_ready", "the server is shutting down")
            self._jobs[job.id] = job  # type: ignore[assignment]
            while len(self._jobs) > self.keep:
                oldest = next(iter(self._jobs.values()))
                if oldest.state in ("queued", "running"):
                    break
                self._jobs.popitem(last=False)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run_all, name="facebank-video-jobs", daemon=True)
                self._thread.start()
        self._queue.put(job)  # type: ignore[arg-type]
        log.info("video job %s queued: %s (%d bytes)", job.id, name, len(data))
        return job

    def _run(self, job: VideoJob) -> None:  # type: ignore[override]
        from facebank.video import VideoError, analyze_video

        job.state = "running"
        job.started_at = _now()
        t0 = time.perf_counter()
        try:
            bank = self.ctx.bank
            self.ctx.pool(timeout=600)  # the models are loaded (bank.pipeline is the server's pool)

            def progress(frames, **_: object):
                for frame in frames:
                    if job.cancel.is_set():
                        raise JobCancelled()
                    yield frame
                    job.frames_analysed += 1

            assert job.path is not None
            result = analyze_video(bank, job.path, fps=job.sample_fps, progress=progress, name=job.filename)
        except JobCancelled:
            job.state = "cancelled"
        except (VideoError, ApiError) as exc:
            job.state, job.error = "failed", getattr(exc, "message", None) or str(exc)
        except Exception as exc:  # a job's failure is its result, never the server's
            log.exception("video job %s failed", job.id)  # the details (server paths...) stay in the log
            job.state, job.error = "failed", f"{type(exc).__name__} (details are in the server log)"
        else:
            job.tracks = [t.to_json() for t in result.tracks]
            job.frames_analysed = result.frames_analysed
            job.state = "finished"
            log.info("video job %s finished in %.1f s: %d tracks", job.id, time.perf_counter() - t0,
                     len(result.tracks))
        finally:
            job.finished_at = _now()
            if job.path is not None:
                job.path.unlink(missing_ok=True)

    def close(self, timeout: float = 5.0) -> None:
        super().close(timeout)
        for job in self.all():
            path = getattr(job, "path", None)
            if path is not None and job.state != "running":
                Path(path).unlink(missing_ok=True)
