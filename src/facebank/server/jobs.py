"""Jobs of the server: one record and one state machine for every kind of job, kept in the gallery.

A job is a ``Job`` (the record every kind shares: id, state, reason, error, times, progress) extended
by its kind: ``FolderJob`` here (enroll a folder of the server's disk: ``POST /v1/jobs``) and
``VideoJob`` in ``video_jobs`` (analyse an uploaded video: ``POST /v1/videos``). A ``JobKind``
knows how to run one; the ``JobManager`` runs them (one worker thread per kind, in submission
order), cancels, resumes, and saves every record in the gallery (``gallery.jobs_store``).

States (``TRANSITIONS`` is the whole machine)::

    queued -> running -> finished | failed | cancelled | interrupted
    queued -> cancelled | interrupted
    interrupted -> queued            (POST /v1/jobs/{id}/resume, for kinds that can resume)

``failed`` carries a ``reason`` (``budget_exceeded``, ``invalid_video``, ``error``...) and a message;
``interrupted`` means the server stopped (``server_stopped``) or vanished (``server_lost``: a queued
or running job whose heartbeat, saved about once a second, stopped) while the job was not done.

Only folders inside the enroll root the operator chose (``serve --enroll-root DIR``) can be
enrolled; without one, every folder job is refused (403). Folders are named relative to the root,
and no answer ever shows a path of the server: jobs show their folder relative to the root, and
problems the photo's path relative to the job's folder.

The face work uses the server's pipelines (shared with requests: a request waits at most one
photo) unless the server runs with ``job_workers > 1``, in which case each folder job gets that
many worker processes.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from facebank.api import EnrollRun, FaceBank
from facebank.folders import FolderWalk
from facebank.gallery.base import GalleryError, validate_name
from facebank.gallery.jobs_store import JobStore, StoredJob, utc_now
from facebank.server.errors import ApiError
from facebank.settings import Settings

log = logging.getLogger(__name__)

MAX_PROBLEM_SAMPLES = 20
ACTIVE = ("queued", "running")
TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "cancelled", "interrupted"}),
    "running": frozenset({"finished", "failed", "cancelled", "interrupted"}),
    "interrupted": frozenset({"queued"}),
    "finished": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}
HEARTBEAT_S = 1.0  # a queued or running job is saved this often
STALE_AFTER_S = 30.0  # a queued or running job not saved for this long lost its server
STOPPED_RUNNING = "the server stopped while the job ran"
PRIVATE = {"private": True}  # metadata of the fields a job never shows


class JobCancelled(Exception):
    """Raised inside a job's work when its cancel event is set."""


class JobFailed(Exception):
    """A job's work ended in failure: ``reason`` a stable code, ``message`` for people."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Job:
    """The record every job has. Subclasses add their kind's fields (all with defaults); fields with
    ``PRIVATE`` metadata are never shown nor saved in the record."""

    id: str
    kind: ClassVar[str] = "job"
    state: str = "queued"
    reason: str | None = None
    error: str | None = None
    created_at: str = field(default_factory=utc_now)
    started_at: str | None = None
    finished_at: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event, repr=False, metadata=PRIVATE)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def can_move(self, state: str) -> bool:
        return state in TRANSITIONS[self.state]

    def move(self, state: str, reason: str | None = None, error: str | None = None) -> None:
        """Change state (ValueError for a move the machine does not have); sets the times."""
        if not self.can_move(state):
            raise ValueError(f"job {self.id}: no move from {self.state} to {state}")
        self.state, self.reason, self.error = state, reason, error
        if state == "running":
            self.started_at = utc_now()
        elif state == "queued":
            self.started_at = self.finished_at = None
            self.cancel = threading.Event()
        else:
            self.finished_at = utc_now()

    def progress(self) -> float:
        """Share of the job's work done, 0..1 (1 when finished)."""
        return 1.0 if self.state == "finished" else 0.0

    def params(self) -> dict[str, Any]:
        """What running the job again needs (saved, never shown)."""
        return {}

    def snapshot(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            if not f.metadata.get("private"):
                value = getattr(self, f.name)
                d[f.name] = list(value) if isinstance(value, list) else value
        d["progress"] = round(min(1.0, max(0.0, self.progress())), 4)
        return d

    @classmethod
    def from_record(cls, record: dict[str, Any], params: dict[str, Any]) -> Job:
        """The job as saved (``snapshot()``), for a job of an earlier server run."""
        known = {f.name for f in dataclasses.fields(cls) if not f.metadata.get("private")}
        return cls(**{k: v for k, v in record.items() if k in known})


JobT = TypeVar("JobT", bound=Job)


class JobKind(Protocol):
    """How to run one kind of job."""

    kind: str
    job_type: type[Job]
    resumable: bool

    def run(self, job: Any) -> None:
        """Do the work; raise JobCancelled when ``job.cancel`` is set, JobFailed for a failure."""

    def ended(self, job: Any) -> None:
        """The job will not run (again) in this process: free what it holds (an upload...)."""

    def lost(self, stored: StoredJob) -> None:
        """A job of an earlier server run was found interrupted: free what it held."""

    def resume(self, job: Any, params: dict[str, Any]) -> Job:
        """A queued copy of an interrupted job (ApiError when it cannot run any more)."""


class JobManager:
    """Runs, cancels, resumes and saves the jobs of every kind; ``keep`` recent jobs stay in memory
    (all of them stay in the gallery)."""

    def __init__(self, store: JobStore, kinds: Sequence[JobKind], keep: int = 100,
                 heartbeat_s: float = HEARTBEAT_S, stale_after_s: float = STALE_AFTER_S) -> None:
        self.store = store
        self.kinds = {k.kind: k for k in kinds}
        self.keep = keep
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = stale_after_s
        self.owner = uuid.uuid4().hex
        self._live: dict[str, Job] = {}  # this process's jobs: the active ones and recent others
        self._lock = threading.RLock()
        self._queues: dict[str, queue.Queue[Job | None]] = {k: queue.Queue() for k in self.kinds}
        self._threads: dict[str, threading.Thread] = {}
        self._closed = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._interrupt_stale()

    # -- API --------------------------------------------------------------------------------------
    def submit(self, job: JobT) -> JobT:
        """Queue ``job``; returns it (typed as given)."""
        kind = self.kinds[job.kind]
        with self._lock:
            if self._closed.is_set():
                kind.ended(job)
                raise ApiError(503, "not_ready", "the server is shutting down")
            self._live[job.id] = job
            self._trim()
            self._save(job)
            self._start(job.kind)
        self._queues[job.kind].put(job)
        log.info("%s job %s queued", job.kind, job.id)
        return job

    def waiting(self, kind: str) -> int:
        """Queued and running jobs of ``kind`` in this process."""
        with self._lock:
            return sum(1 for j in self._live.values() if j.kind == kind and j.active)

    def get(self, job_id: str, kind: str | None = None) -> Job:
        with self._lock:
            job = self._live.get(job_id)
        if job is None:
            job = self._stored(job_id)
        if job is None or (kind is not None and job.kind != kind):
            what = f"{kind} job" if kind else "job"
            raise ApiError(404, "job_not_found", f"no {what} with id {job_id!r}")
        return job

    def all(self) -> list[Job]:
        """The most recent ``keep`` jobs (of this and earlier server runs), oldest first."""
        self._interrupt_stale()
        jobs: dict[str, Job] = {}
        for s in self.store_call(self.store.recent, self.keep) or []:
            built = self._build(s)
            if built is not None:
                jobs[s.id] = built
        with self._lock:
            jobs.update(self._live)
        return sorted(jobs.values(), key=lambda j: (j.created_at, j.id))[-self.keep:]

    def cancel(self, job_id: str, kind: str | None = None) -> Job:
        """Stop a queued or running job (a running one stops at its next frame or photo); a job that
        has ended is answered as it is."""
        job = self.get(job_id, kind)
        with self._lock:
            live = self._live.get(job.id) is job
            if live and job.state == "queued":
                job.cancel.set()
                job.move("cancelled", "cancelled")
                self.kinds[job.kind].ended(job)
                self._save(job)
            elif live and job.state == "running":
                job.cancel.set()
        if job.active and not live:
            raise ApiError(409, "job_elsewhere", f"job {job.id} runs on another server of this gallery; "
                           "cancel it there")
        return job

    def resume(self, job_id: str) -> Job:
        """Queue an interrupted job again (its work already done is kept: enrolled photos are skipped)."""
        job = self.get(job_id)
        kind = self.kinds[job.kind]
        if job.state != "interrupted":
            raise ApiError(409, "job_not_resumable", f"job {job.id} is {job.state}: only an interrupted job "
                           "can be resumed")
        if not kind.resumable:
            raise ApiError(409, "job_not_resumable", f"{job.kind} jobs cannot be resumed: submit it again")
        stored = self.store_call(self.store.get, job.id)
        again = kind.resume(job, stored.params if stored else job.params())
        again.move("queued")
        return self.submit(again)

    def close(self, timeout: float = 5.0) -> None:
        """Stop: queued jobs and running ones become ``interrupted`` (resumable), and wait at most
        ``timeout`` for the running ones to stop (their threads are daemons)."""
        with self._lock:
            self._closed.set()
            for job in self._live.values():
                job.cancel.set()
                if job.state == "queued":
                    self._end(job, "interrupted", "server_stopped", "the server stopped before the job ran")
        for q in self._queues.values():
            q.put(None)
        deadline = time.monotonic() + timeout
        for thread in list(self._threads.values()):
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            for job in self._live.values():
                if job.state == "running":  # still in its photo or frame: its record says so now
                    self._end(job, "interrupted", "server_stopped", STOPPED_RUNNING)
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=1.0)

    def store_call(self, method: Callable, *args: Any) -> Any:
        """A call of the store; a failing store (a locked or full disk) is logged, never the job's end."""
        try:
            return method(*args)
        except Exception:
            log.exception("the job store failed (%s)", getattr(method, "__name__", method))
            return None

    # -- plumbing ---------------------------------------------------------------------------------
    def _save(self, job: Job) -> None:
        self.store_call(self.store.save, StoredJob(job.id, job.kind, job.state, job.snapshot(), job.params(),
                                                   self.owner, time.time()))

    def _end(self, job: Job, state: str, reason: str, error: str | None = None) -> None:
        """Move an active job to an end state (once), free what it holds, save it."""
        if not job.can_move(state):
            return
        job.move(state, reason, error)
        try:
            self.kinds[job.kind].ended(job)
        finally:
            self._save(job)

    def _build(self, stored: StoredJob) -> Job | None:
        kind = self.kinds.get(stored.kind)
        if kind is None:
            return None
        try:
            return kind.job_type.from_record(stored.record, stored.params)
        except (TypeError, ValueError):
            log.warning("job %s: its saved record cannot be read", stored.id)
            return None

    def _stored(self, job_id: str) -> Job | None:
        stored = self.store_call(self.store.get, job_id)
        if stored is None:
            return None
        if stored.state in ACTIVE:  # not ours: is its server still there?
            for lost in self.store_call(self.store.interrupt_stale, self.stale_after_s, "server_lost", None,
                                        job_id) or []:
                self._lost(lost)
                stored = lost
        return self._build(stored)

    def _interrupt_stale(self) -> None:
        for lost in self.store_call(self.store.interrupt_stale, self.stale_after_s, "server_lost") or []:
            self._lost(lost)

    def _lost(self, stored: StoredJob) -> None:
        log.warning("%s job %s was interrupted: its server stopped", stored.kind, stored.id)
        kind = self.kinds.get(stored.kind)
        if kind is not None:
            kind.lost(stored)

    def _trim(self) -> None:
        ended = [j for j in self._live.values() if not j.active]
        for job in ended[:max(0, len(self._live) - self.keep)]:
            del self._live[job.id]

    def _start(self, kind: str) -> None:
        if kind not in self._threads:
            self._threads[kind] = threading.Thread(target=self._worker, args=(kind,), daemon=True,
                                                   name=f"facebank-{kind}-jobs")
            self._threads[kind].start()
        if self._heartbeat is None:
            self._heartbeat = threading.Thread(target=self._beat, name="facebank-job-heartbeat", daemon=True)
            self._heartbeat.start()

    def _beat(self) -> None:
        """Save the active jobs every ``heartbeat_s``; now and then, interrupt the jobs of vanished
        servers (so their uploads are freed even if no client asks for them)."""
        last_sweep = time.monotonic()
        while not self._closed.wait(self.heartbeat_s):
            with self._lock:
                active = [j for j in self._live.values() if j.active]
            for job in active:
                self._save(job)
            if time.monotonic() - last_sweep > self.stale_after_s:
                last_sweep = time.monotonic()
                self._interrupt_stale()

    def _worker(self, kind_name: str) -> None:
        kind = self.kinds[kind_name]
        q = self._queues[kind_name]
        while True:
            job = q.get()
            if job is None:
                return
            with self._lock:
                if job.state != "queued" or self._closed.is_set():
                    continue  # cancelled (or interrupted by close) while it waited
                job.move("running")
                self._save(job)
            t0 = time.perf_counter()
            try:
                kind.run(job)
            except JobCancelled:
                with self._lock:
                    if self._closed.is_set():
                        self._end(job, "interrupted", "server_stopped", STOPPED_RUNNING)
                    else:
                        self._end(job, "cancelled", "cancelled")
            except JobFailed as exc:
                with self._lock:
                    self._end(job, "failed", exc.reason, exc.message)
            except ApiError as exc:
                with self._lock:
                    self._end(job, "failed", exc.code, exc.message)
            except Exception as exc:  # a job's failure is its result, never the server's
                log.exception("%s job %s failed", job.kind, job.id)  # details (paths...) stay in the log
                with self._lock:
                    self._end(job, "failed", "error", f"{type(exc).__name__} (details are in the server log)")
            else:
                with self._lock:
                    self._end(job, "finished", "done")
            log.info("%s job %s %s in %.1f s", job.kind, job.id, job.state, time.perf_counter() - t0)


# -- folder jobs --------------------------------------------------------------------------------------
def _relative(path: str, root: Path) -> str:
    """A photo's path relative to the job's folder (its file name if it is somewhere else)."""
    try:
        rel = Path(path).relative_to(root)
    except ValueError:
        return Path(path).name
    return str(rel) if str(rel) != "." else Path(path).name


def _scrub(reason: str, root: Path) -> str:
    """A problem's reason without the server's folders in it: the job's folder becomes relative,
    any other absolute path (a link's target...) is replaced by its last part."""
    reason = reason.replace(str(root) + "/", "").replace(str(root), ".")
    return _ABSOLUTE.sub(lambda m: "<server path>/" + Path(m.group(0)).name, reason)


_ABSOLUTE = re.compile(r"(?<![\w.~])/[^\s'\"(),:;]+")


@dataclass
class FolderJob(Job):
    """Enroll a folder below the enroll root. ``total``: photos there is work for (photos already
    in the gallery and unreadable files are taken off as the walk meets them); ``seen``: photos
    walked; ``processed``: photos through the face pipeline."""

    kind: ClassVar[str] = "enroll"
    folder: str = ""
    person: str | None = None
    total: int = 0
    seen: int = 0
    processed: int = 0
    photos_enrolled: int = 0
    photos_skipped_known: int = 0
    faces_added: int = 0
    people: int = 0
    problems: int = 0
    problem_samples: list[dict] = field(default_factory=list)
    run_id: int | None = None
    root: Path | None = field(default=None, repr=False, metadata=PRIVATE)  # on the server: never shown

    def progress(self) -> float:
        if self.state == "finished":
            return 1.0
        return self.processed / self.total if self.total else 0.0

    def params(self) -> dict[str, Any]:
        return {"folder": self.folder, "person": self.person}


class _Progress:
    """``enroll_items``' progress: counts the processed photos, stops on cancel, and keeps the job's
    ``total`` (enroll_items takes it down for each photo with no work: known, unreadable)."""

    def __init__(self, job: FolderJob, stream: Iterable) -> None:
        self.job = job
        self.stream = stream

    @property
    def total(self) -> int:
        return self.job.total

    @total.setter
    def total(self, value: int) -> None:
        self.job.total = max(int(value), self.job.processed)

    def __iter__(self) -> Iterator:
        for result in self.stream:
            self.job.processed += 1
            if self.job.cancel.is_set():
                raise JobCancelled()
            yield result


class FolderJobs:
    """Enrollment of folders below the enroll root (``POST /v1/jobs``); resumable."""

    kind = "enroll"
    job_type: type[Job] = FolderJob
    resumable = True

    def __init__(self, gallery: Any, settings: Settings, pipelines: Callable[..., Any],
                 enroll_root: Path | None = None, workers: int = 1) -> None:
        self.gallery = gallery
        self.settings = settings
        self.pipelines = pipelines  # pipelines(timeout=...) -> the server's face pipelines (waits for them)
        self.enroll_root = Path(enroll_root).resolve() if enroll_root else None
        self.workers = max(1, int(workers))

    def new(self, folder: str, person: str | None = None) -> FolderJob:
        root = self._check_folder(folder)
        if person is not None:
            try:
                person = validate_name(person)
            except GalleryError as exc:
                raise ApiError(422, "invalid_name", str(exc)) from None
        return FolderJob(id=uuid.uuid4().hex[:12], folder=self._shown(root), person=person, root=root)

    def resume(self, job: FolderJob, params: dict[str, Any]) -> FolderJob:
        fresh = self.new(str(params.get("folder") or job.folder), params.get("person", job.person))
        fresh.id, fresh.created_at = job.id, job.created_at
        fresh.state = "interrupted"  # the manager moves it to queued
        return fresh

    def ended(self, job: FolderJob) -> None:
        pass

    def lost(self, stored: StoredJob) -> None:
        pass

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

    def run(self, job: FolderJob) -> None:
        reports: list = []
        root = job.root
        assert root is not None
        try:
            pool = self.pipelines(timeout=600)
            walk = FolderWalk(root, confine_to=self.enroll_root)
            job.total = walk.count()
            settings = self.settings.model_copy(update={"workers": self.workers})
            bank = FaceBank(self.gallery, settings=settings)
            bank.pipeline = pool  # used in this thread when workers == 1

            def progress(stream: Iterable, **_: object) -> _Progress:
                return _Progress(job, stream)

            class JobRun(EnrollRun):  # keeps the photos done and the run's report also on a cancel
                def __exit__(self, exc_type, exc, tb) -> None:
                    if exc_type is not None and issubclass(exc_type, JobCancelled):
                        try:  # the photos processed before the cancel (or the server's stop) stay
                            self.flush()
                        except Exception:
                            log.exception("job %s: could not save its last photos", job.id)
                    super().__exit__(exc_type, exc, tb)
                    reports.append(self.report)

            report = bank.enroll_items(self._items(job, walk), source=str(root), progress=progress,
                                       total=job.total, walk=walk, run_type=JobRun)
        except JobCancelled:
            if reports:  # what was enrolled before the cancel stays, and the job says so
                self._record(job, reports[0], root)
            raise
        self._record(job, report, root)
        job.total = job.processed  # every photo with work was processed

    @staticmethod
    def _record(job: FolderJob, report: Any, root: Path) -> None:
        job.run_id = report.run_id
        job.photos_enrolled = report.photos_enrolled
        job.photos_skipped_known = report.photos_skipped_known
        job.faces_added = report.faces_added
        job.people = report.people
        job.problems = len(report.problems)
        job.problem_samples = [{"path": _relative(p, root), "reason": _scrub(r, root)}
                               for p, r in report.problems[:MAX_PROBLEM_SAMPLES]]

    @staticmethod
    def _items(job: FolderJob, walk: FolderWalk) -> Iterator[tuple[str, Path]]:
        for person, path in walk.labelled(job.person):
            if job.cancel.is_set():
                raise JobCancelled()
            job.seen += 1
            yield person, path
