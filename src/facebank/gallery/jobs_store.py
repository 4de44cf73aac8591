"""The server's job records, kept in the gallery (table ``jobs``: SQLite migration 4, PostgreSQL 3).

A job is saved when it is queued, at every change of state and about once a second while it runs
(its heartbeat). After a restart the records are still there: a finished, failed or cancelled job
answers as it ended, and a queued or running job whose heartbeat stopped (its server was stopped
or killed) is marked ``interrupted`` by the next server that looks (``interrupt_stale``).

The store has its own connection to the gallery (SQLite: the same file, opened by SQLite only;
PostgreSQL: the same database), so saving a job's progress neither waits for the gallery's lock
nor counts as a change of the gallery's content (its index is not rebuilt for it). The gallery
must be opened (and so migrated) first.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from facebank.gallery.base import GalleryError

log = logging.getLogger(__name__)

ACTIVE_STATES = ("queued", "running")


@dataclass(frozen=True)
class StoredJob:
    """One saved job: ``record`` is its public answer (JSON object), ``params`` what running it again
    needs; ``heartbeat`` unix seconds of its last save, ``owner`` the server process that saved it."""

    id: str
    kind: str
    state: str
    record: dict
    params: dict = field(default_factory=dict)
    owner: str = ""
    heartbeat: float = 0.0


class JobStore(Protocol):
    def save(self, job: StoredJob) -> None: ...
    def get(self, job_id: str) -> StoredJob | None: ...
    def recent(self, limit: int) -> list[StoredJob]: ...
    def active(self) -> list[StoredJob]: ...
    def interrupt_stale(self, stale_after_s: float, reason: str, now: float | None = None,
                        job_id: str | None = None) -> list[StoredJob]: ...
    def close(self) -> None: ...


def _interrupted(job: StoredJob, reason: str, when: str) -> StoredJob:
    record = {**job.record, "state": "interrupted", "reason": reason,
              "error": "the server running the job stopped without a word (killed, or its machine went "
                       "down)", "finished_at": job.record.get("finished_at") or when}
    return StoredJob(job.id, job.kind, "interrupted", record, job.params, job.owner, job.heartbeat)


def utc_now() -> str:
    """Now as the job records write times: ISO 8601 UTC with microseconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class MemoryJobStore:
    """Jobs in memory only (a ``:memory:`` gallery; unit tests)."""

    def __init__(self) -> None:
        self._jobs: dict[str, StoredJob] = {}
        self._lock = threading.Lock()

    def save(self, job: StoredJob) -> None:
        with self._lock:
            self._jobs[job.id] = job

    def get(self, job_id: str) -> StoredJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def recent(self, limit: int) -> list[StoredJob]:
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda j: j.record.get("created_at", ""))
        return jobs[-limit:] if limit > 0 else []

    def active(self) -> list[StoredJob]:
        with self._lock:
            return [j for j in self._jobs.values() if j.state in ACTIVE_STATES]

    def interrupt_stale(self, stale_after_s: float, reason: str, now: float | None = None,
                        job_id: str | None = None) -> list[StoredJob]:
        now = time.time() if now is None else now
        out = []
        with self._lock:
            for j in list(self._jobs.values()):
                if (j.state in ACTIVE_STATES and now - j.heartbeat > stale_after_s
                        and (job_id is None or j.id == job_id)):
                    self._jobs[j.id] = _interrupted(j, reason, utc_now())
                    out.append(self._jobs[j.id])
        return out

    def close(self) -> None:
        pass


class _SqlJobStore:
    """The SQL shared by SQLite and PostgreSQL (``?`` placeholders are rewritten for psycopg)."""

    _param = "?"

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self._param)

    @contextmanager
    def _tx(self) -> Iterator:
        raise NotImplementedError

    def _rows(self, sql: str, args: tuple = ()) -> list[tuple]:
        raise NotImplementedError

    @staticmethod
    def _job(row: tuple) -> StoredJob:
        jid, kind, state, record, params, owner, heartbeat = row
        rec = json.loads(record)
        rec["state"] = state  # the column is the truth
        return StoredJob(jid, kind, state, rec, json.loads(params or "{}"), owner or "",
                         float(heartbeat or 0))

    _COLUMNS = "id, kind, state, record, params, owner, heartbeat"

    def save(self, job: StoredJob) -> None:
        args = (job.id, job.kind, job.state, json.dumps(job.record, ensure_ascii=False),
                json.dumps(job.params, ensure_ascii=False), job.owner, float(job.heartbeat),
                str(job.record.get("created_at") or utc_now()))
        with self._tx() as db:
            db.execute(self._sql(
                "INSERT INTO jobs(id, kind, state, record, params, owner, heartbeat, created_at)"
                " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET kind=excluded.kind,"
                " state=excluded.state, record=excluded.record, params=excluded.params,"
                " owner=excluded.owner, heartbeat=excluded.heartbeat"), args)

    def get(self, job_id: str) -> StoredJob | None:
        rows = self._rows(f"SELECT {self._COLUMNS} FROM jobs WHERE id=?", (job_id,))
        return self._job(rows[0]) if rows else None

    def recent(self, limit: int) -> list[StoredJob]:
        rows = self._rows(f"SELECT {self._COLUMNS} FROM jobs ORDER BY created_at DESC, id DESC LIMIT ?",
                          (max(0, int(limit)),))
        return [self._job(r) for r in reversed(rows)]

    def active(self) -> list[StoredJob]:
        """The queued and running jobs (of any server on this gallery)."""
        rows = self._rows(f"SELECT {self._COLUMNS} FROM jobs WHERE state IN ('queued', 'running')")
        return [self._job(r) for r in rows]

    def interrupt_stale(self, stale_after_s: float, reason: str, now: float | None = None,
                        job_id: str | None = None) -> list[StoredJob]:
        """Mark ``interrupted`` every queued or running job (or only ``job_id``) not saved for more
        than ``stale_after_s`` seconds; returns them."""
        now = time.time() if now is None else now
        out = []
        where = "state IN ('queued', 'running') AND heartbeat < ?" + (" AND id=?" if job_id else "")
        args: tuple = (now - stale_after_s, job_id) if job_id else (now - stale_after_s,)
        query = f"SELECT {self._COLUMNS} FROM jobs WHERE {where}"
        if not self._rows(query, args):  # the usual answer, without taking the write lock
            return []
        with self._tx() as db:
            rows = db.execute(self._sql(query), args).fetchall()
            for row in rows:
                job = _interrupted(self._job(row), reason, utc_now())
                db.execute(self._sql("UPDATE jobs SET state=?, record=? WHERE id=? AND state=?"),
                           (job.state, json.dumps(job.record, ensure_ascii=False), job.id, row[2]))
                out.append(job)
        return out


class SqliteJobStore(_SqlJobStore):
    """The jobs table of a SQLite gallery, through a connection of its own (WAL, busy timeout)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._db = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=30000")
        try:
            found = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='jobs'").fetchone()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise GalleryError(f"{self.path} is not a facebank gallery ({exc})") from None
        if not found:
            self._db.close()
            raise GalleryError(f"the gallery {self.path} has no jobs table: open it with this facebank "
                               "first (it adds the table)")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PostgresJobStore(_SqlJobStore):
    """The jobs table of a PostgreSQL gallery, through a connection of its own."""

    _param = "%s"

    def __init__(self, url: str) -> None:
        import psycopg

        super().__init__()
        try:
            self._db = psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise GalleryError(f"cannot connect to the gallery database for its jobs: {exc}") from None
        if self._db.execute("SELECT to_regclass('jobs')").fetchone()[0] is None:
            self._db.close()
            raise GalleryError("the gallery database has no jobs table: open it with this facebank first")

    @contextmanager
    def _tx(self) -> Iterator:
        with self._lock, self._db.transaction():
            yield self._db

    def _rows(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(self._sql(sql), args).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_job_store(location: str | Path) -> JobStore:
    """The job store of the (already opened) gallery at ``location``; in memory for ``:memory:``."""
    loc = str(location)
    if loc.startswith(("postgresql://", "postgres://")):
        return PostgresJobStore(loc)
    if loc == ":memory:":
        return MemoryJobStore()
    return SqliteJobStore(loc)
