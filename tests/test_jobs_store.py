"""The server's job records kept in the gallery (SQLite and PostgreSQL): saved, read back after the
store is reopened, listed newest last, and queued/running jobs whose heartbeat stopped are marked
interrupted (issue 17: jobs vanished on a restart)."""

from __future__ import annotations

import time

import pytest

from facebank.gallery import open_gallery
from facebank.gallery.jobs_store import MemoryJobStore, StoredJob, open_job_store
from tests.pg_fixtures import new_database_url


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def location(request, tmp_path):
    if request.param == "memory":
        return None
    loc = str(tmp_path / "g.db") if request.param == "sqlite" else new_database_url()
    open_gallery(loc).close()  # the gallery's migrations add the jobs table
    return loc


def _open(location):
    return MemoryJobStore() if location is None else open_job_store(location)


def _job(jid: str, state: str, created: str, heartbeat: float, **record) -> StoredJob:
    return StoredJob(jid, "enroll", state, {"id": jid, "state": state, "created_at": created, **record},
                     {"folder": "team"}, owner="server-a", heartbeat=heartbeat)


def test_jobs_are_saved_updated_and_read_back_after_reopening(location):
    store = _open(location)
    store.save(_job("a1", "queued", "2026-01-01T00:00:01.000000Z", time.time(), folder="team"))
    store.save(_job("a1", "finished", "2026-01-01T00:00:01.000000Z", time.time(), folder="team",
                    photos_enrolled=3, name="Zoë ☃"))
    store.save(_job("b2", "failed", "2026-01-01T00:00:02.000000Z", time.time(), error="x"))
    if location is not None:
        store.close()
        store = _open(location)
    a = store.get("a1")
    assert a is not None and a.state == "finished" and a.record["photos_enrolled"] == 3
    assert a.record["name"] == "Zoë ☃" and a.params == {"folder": "team"} and a.owner == "server-a"
    assert store.get("nope") is None
    assert [j.id for j in store.recent(10)] == ["a1", "b2"]
    assert [j.id for j in store.recent(1)] == ["b2"]
    store.close()


def test_queued_and_running_jobs_whose_heartbeat_stopped_become_interrupted(location):
    store = _open(location)
    now = time.time()
    store.save(_job("old-run", "running", "2026-01-01T00:00:01.000000Z", now - 120))
    store.save(_job("old-queue", "queued", "2026-01-01T00:00:02.000000Z", now - 120))
    store.save(_job("alive", "running", "2026-01-01T00:00:03.000000Z", now - 1))
    store.save(_job("done", "finished", "2026-01-01T00:00:04.000000Z", now - 120))
    hit = store.interrupt_stale(30.0, "server_lost")
    assert sorted(j.id for j in hit) == ["old-queue", "old-run"]
    old = store.get("old-run")
    assert old.state == "interrupted" and old.record["reason"] == "server_lost" and old.record["finished_at"]
    assert "stopped" in old.record["error"]
    assert store.get("alive").state == "running" and store.get("done").state == "finished"
    assert store.interrupt_stale(30.0, "server_lost") == []  # once
    assert [j.id for j in store.interrupt_stale(0.5, "server_lost", job_id="alive")] == ["alive"]
    store.close()
