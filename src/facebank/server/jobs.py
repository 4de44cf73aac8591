"""Enrollment jobs: enroll a folder on the server's disk in a background thread, with progress.

Only folders inside the enroll root the operator chose (``serve --enroll-root DIR``) can be
enrolled; without one, every folder job is refused (403). Folders are named relative to the root,
and no answer ever shows a path of the server: jobs show their folder relative to the root, and
problems the photo's path relative to the job's folder.

Jobs run one at a time, in submission order, on one worker thread. The face work uses the
server's pipelines (shared with requests: a request waits at most one photo) unless the server
runs with ``job_workers > 1``, in which case each job gets that many worker processes. Jobs live
in memory (the last ``keep``); the gallery's ``runs`` table keeps the durable record of each run.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from facebank.api import EnrollRun, FaceBank
from facebank.folders import FolderWalk
from facebank.gallery.base import GalleryError, validate_name
from facebank.server.errors import ApiError

if TYPE_CHECKING:
    from facebank.server.context import ServerContext

log = logging.getLogger(__name__)

MAX_PROBLEM_SAMPLES = 20


class JobCancelled(Exception):
    pass


def _relative(path: str, root: Path) -> str:
    """A photo's path relative to the job's folder (its file name if it is somewhere else)."""
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return Path(path).name


def _scrub(reason: str, root: Path) -> str:
    """A problem's reason without the server's folders in it: the job's folder becomes relative,
    any other absolute path (a link's target...) is replaced by its last part."""
    reason = reason.replace(str(root) + "/", "").replace(str(root), ".")
    return _ABSOLUTE.sub(lambda m: "<server path>/" + Path(m.group(0)).name, reason)


_ABSOLUTE = re.compile(r"(?<![\w.~])/[^\s'\"(),:;]+")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Job:
    id: str
    folder: str
    person: str | None
    state: str = "queued"
    total: int = 0
    seen: int = 0
    processed: int = 0
    photos_enrolled: int = 0
    photos_skipped_known: int = 0
    faces_added: int = 0
    people: int = 0
    problems: int = 0
    problem_samples: list[dict] = field(default_factory=list)
    error: str | None = None
    run_id: int | None = None
    created_at: str = field(default_factory=_now)
    started_at: str | None = None
    finished_at: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    root: Path | None = field(default=None, repr=False)  # the folder on the server: never shown

    def snapshot(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k not in ("cancel", "root")}
        d["problem_samples"] = list(self.problem_samples)
        if self.state == "finished":
            d["progress"] = 1.0
        else:
            d["progress"] = round(min(1.0, self.seen / self.total), 4) if self.total else 0.0
        return d


class JobManager:
    def __init__(self, ctx: ServerContext, enroll_root: Path | None = None, workers: int = 1,
                 keep: int = 100) -> None:
        self.ctx = ctx
        self.enroll_root = Path(enroll_root).resolve() if enroll_root else None
        self.workers = max(1, int(workers))
        self.keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- API --------------------------------------------------------------------------------------
    def submit(self, folder: str, person: str | None = None) -> Job:
        root = self._check_folder(folder)
        if person is not None:
            try:
                person = validate_name(person)
            except GalleryError as exc:
                raise ApiError(422, "invalid_name", str(exc)) from None
        job = Job(id=uuid.uuid4().hex[:12], folder=self._shown(root), person=person)
        job.root = root
        with self._lock:
            if self._closed:
                raise ApiError(503, "not_ready", "the server is shutting down")
            self._jobs[job.id] = job
            while len(self._jobs) > self.keep:
                oldest = next(iter(self._jobs.values()))
                if oldest.state in ("queued", "running"):
                    break
                self._jobs.popitem(last=False)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run_all, name="facebank-jobs", daemon=True)
                self._thread.start()
        self._queue.put(job)
        log.info("job %s queued: enroll %s", job.id, root)
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, "job_not_found", f"no job with id {job_id!r}")
        return job

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.state in ("queued", "running"):
            job.cancel.set()
            if job.state == "queued":
                job.state = "cancelled"
                job.finished_at = _now()
        return job

    def close(self, timeout: float = 5.0) -> None:
        """Cancel every job and wait (at most ``timeout``) for the photo in flight; the worker thread
        is a daemon, so the process stops even if a photo takes longer."""
        with self._lock:
            self._closed = True
            for job in self._jobs.values():
                job.cancel.set()
            thread = self._thread
        self._queue.put(None)
        if thread is not None:
            thread.join(timeout)

    # -- work -------------------------------------------------------------------------------------
    def _check_folder(self, folder: str) -> Path:
        if self.enroll_root is None:
            raise ApiError(403, "folder_jobs_disabled", "this server enrolls no folders of its own disk: "
                           "its operator can allow a folder with 'facebank serve --enroll-root DIR' (or add "
                           "photos with POST /v1/people/{name}/photos)")
        if not folder or "\x00" in folder or len(folder) > 4096:
            raise ApiError(422, "folder_not_found", "give a folder inside the server's enroll root, "
                           "relative to it (e.g. 'team/2024')")
        try:
            root = (self.enroll_root / folder).resolve()  # an absolute folder replaces the root here
            inside = root.is_relative_to(self.enroll_root)
            is_dir = inside and root.is_dir()
        except (OSError, RuntimeError, ValueError):  # symlink loops, names the OS refuses
            inside = is_dir = False
        if not inside:
            raise ApiError(403, "folder_not_allowed", "enrollment folders must be inside the server's enroll "
                           "root (--enroll-root); give them relative to it")
        if not is_dir:
            raise ApiError(422, "folder_not_found", f"{folder!r} is not a folder inside the enroll root")
        return root

    def _shown(self, path: Path) -> str:
        """A folder as answers show it: relative to the enroll root ('.' for the root itself)."""
        assert self.enroll_root is not None
        return str(path.relative_to(self.enroll_root)) if path != self.enroll_root else "."

    def _run_all(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if job.cancel.is_set():
                job.state = "cancelled"
                job.finished_at = job.finished_at or _now()
                continue
            self._run(job)

    def _run(self, job: Job) -> None:
        job.state = "running"
        job.started_at = _now()
        t0 = time.perf_counter()
        reports: list = []
        try:
            pool = self.ctx.pool(timeout=600)
            root = job.root
            assert root is not None
            walk = FolderWalk(root, confine_to=self.enroll_root)
            job.total = walk.count()
            settings = self.ctx.settings.model_copy(update={"workers": self.workers})
            bank = FaceBank(self.ctx.gallery, settings=settings)
            bank.pipeline = pool  # used in this thread when workers == 1

            def progress(stream: Iterable, **_: object) -> Iterator:
                for result in stream:
                    job.processed += 1
                    if job.cancel.is_set():
                        raise JobCancelled()
                    yield result

            class JobRun(EnrollRun):  # keeps the run's report also when the job is cancelled
                def __exit__(self, *exc: object) -> None:
                    super().__exit__(*exc)
                    reports.append(self.report)

            report = bank.enroll_items(self._items(job, walk), source=str(root), progress=progress,
                                       total=job.total, walk=walk, run_type=JobRun)
        except JobCancelled:
            job.state = "cancelled"
            if reports:  # what was enrolled before the cancel stays, and the job says so
                self._record(job, reports[0], root)
            log.info("job %s cancelled after %d photos", job.id, job.seen)
        except ApiError as exc:
            job.state, job.error = "failed", exc.message
        except Exception as exc:  # a job's failure is its result, never the server's
            log.exception("job %s failed", job.id)  # the details (paths...) stay in the server log
            job.state, job.error = "failed", f"{type(exc).__name__} (details are in the server log)"
        else:
            job.state = "finished"
            self._record(job, report, root)
            log.info("job %s finished in %.1f s: %d photos enrolled", job.id, time.perf_counter() - t0,
                     report.photos_enrolled)
        finally:
            job.finished_at = _now()

    @staticmethod
    def _record(job: Job, report, root: Path) -> None:
        job.run_id = report.run_id
        job.photos_enrolled = report.photos_enrolled
        job.photos_skipped_known = report.photos_skipped_known
        job.faces_added = report.faces_added
        job.people = report.people
        job.problems = len(report.problems)
        job.problem_samples = [{"path": _relative(p, root), "reason": _scrub(r, root)}
                               for p, r in report.problems[:MAX_PROBLEM_SAMPLES]]

    @staticmethod
    def _items(job: Job, walk: FolderWalk) -> Iterator[tuple[str, Path]]:
        for person, path in walk.labelled(job.person):
            if job.cancel.is_set():
                raise JobCancelled()
            job.seen += 1
            yield person, path
