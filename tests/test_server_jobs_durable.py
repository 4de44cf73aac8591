"""Jobs are kept in the gallery (issue 17, item 8): after a restart a client sees what became of its
job (finished, or interrupted when it was running), an interrupted folder job resumes under the same
id and its total counts only the work left, job answers carry no server paths, and a job whose
server vanished (no heartbeat) is interrupted for the next server that looks."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest

from facebank.gallery.jobs_store import MemoryJobStore, SqliteJobStore, StoredJob
from facebank.gallery.sqlite import SqliteGallery
from facebank.server import ServerConfig
from facebank.server.auth import ApiKeyStore
from facebank.server.errors import ApiError
from facebank.server.jobs import FolderJob, FolderJobs, JobManager
from facebank.server.testing import LiveServer
from facebank.settings import Settings


def _wait(client: httpx.Client, job_id: str, until, timeout: float = 600.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if until(job) or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def _ended(job: dict) -> bool:
    return job["state"] not in ("queued", "running")


@pytest.mark.shared
def test_a_restart_keeps_jobs_and_an_interrupted_folder_job_resumes(tmp_path, faces_dir):
    root = tmp_path / "root"
    shutil.copytree(faces_dir / "5celeb" / "val", root / "val")
    (root / "val" / "madonna" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a photo")
    (root / "empty").mkdir()
    files = sum(1 for p in (root / "val").rglob("*") if p.is_file())
    gallery = tmp_path / "gallery.db"
    SqliteGallery(gallery).close()
    with ApiKeyStore(gallery) as keys:
        _, key = keys.create("tests", "write")
    config = ServerConfig(settings=Settings(gallery=str(gallery)), enroll_root=root)
    answers: list[str] = []

    def client_of(srv: LiveServer) -> httpx.Client:
        return httpx.Client(base_url=srv.url, headers={"X-API-Key": key}, timeout=120,
                            event_hooks={"response": [lambda r: (r.read(), answers.append(r.text))]})

    with LiveServer(config) as first, client_of(first) as client:
        small = client.post("/v1/jobs", json={"folder": "empty"}).json()
        assert _wait(client, small["id"], _ended)["state"] == "finished"
        r = client.post("/v1/jobs", json={"folder": "val"})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        running = _wait(client, job_id, lambda j: j["processed"] >= 3 or _ended(j))
        assert running["state"] == "running", running
    # the first server stopped while the job ran
    with LiveServer(config) as second, client_of(second) as client:
        job = client.get(f"/v1/jobs/{job_id}").json()
        assert job["state"] == "interrupted" and job["reason"] == "server_stopped", job
        assert job["finished_at"] and job["folder"] == "val"
        assert client.get(f"/v1/jobs/{small['id']}").json()["state"] == "finished"
        listed = [j["id"] for j in client.get("/v1/jobs").json()["jobs"]]
        assert listed[-2:] == [small["id"], job_id]
        with SqliteGallery(gallery, readonly=True) as g:
            enrolled_before = sum(p.photos for p in g.people())
        assert enrolled_before >= 2

        r = client.post(f"/v1/jobs/{job_id}/resume")
        assert r.status_code == 202, r.text
        assert r.json()["id"] == job_id and r.json()["state"] in ("queued", "running")
        done = _wait(client, job_id, _ended)
        assert done["state"] == "finished" and done["progress"] == 1.0, done
        # the photos enrolled before the restart are skipped, and not counted in the total
        assert done["photos_skipped_known"] >= enrolled_before
        assert done["total"] == done["processed"] == files - done["photos_skipped_known"]
        assert {"path": "madonna/broken.jpg"}.items() <= next(
            p for p in done["problem_samples"] if p["path"].endswith("broken.jpg")).items()
        again = client.post(f"/v1/jobs/{job_id}/resume")
        assert again.status_code == 409 and again.json()["error"]["code"] == "job_not_resumable"
    assert answers and not [a for a in answers if str(tmp_path) in a or str(root) in a]
    assert not [a for a in answers if str(Path.home()) + "/" in a]


def _stored(jid: str, state: str, heartbeat: float, owner: str = "other") -> StoredJob:
    record = {"id": jid, "state": state, "folder": "team", "person": None,
              "created_at": "2026-01-01T00:00:00Z", "total": 10, "processed": 4}
    return StoredJob(jid, "enroll", state, record, {"folder": "team", "person": None}, owner, heartbeat)


@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
def test_a_job_whose_server_vanished_is_interrupted_for_the_next_server(tmp_path, store_kind):
    if store_kind == "sqlite":
        SqliteGallery(tmp_path / "g.db").close()
        store = SqliteJobStore(tmp_path / "g.db")
    else:
        store = MemoryJobStore()
    (tmp_path / "team").mkdir()
    now = time.time()
    store.save(_stored("killed", "running", now - 300))  # its server was SIGKILLed 5 minutes ago
    store.save(_stored("elsewhere", "running", now))  # another server runs it right now
    kinds = [FolderJobs(gallery=None, settings=Settings(), pipelines=lambda **_: None, enroll_root=tmp_path)]
    manager = JobManager(store, kinds, stale_after_s=30.0)
    try:
        killed = manager.get("killed")
        assert isinstance(killed, FolderJob)
        assert killed.state == "interrupted" and killed.reason == "server_lost"
        assert killed.snapshot()["progress"] == 0.4 and store.get("killed").state == "interrupted"
        assert manager.get("elsewhere").state == "running"
        with pytest.raises(ApiError) as err:
            manager.cancel("elsewhere")
        assert err.value.status == 409 and err.value.code == "job_elsewhere"
        with pytest.raises(ApiError) as err:
            manager.get("nope")
        assert err.value.status == 404
    finally:
        manager.close(timeout=1.0)
        store.close()


def test_the_state_machine_refuses_moves_it_does_not_have():
    job = FolderJob(id="j")
    for bad in ("finished", "interrupted" + "x"):
        with pytest.raises((ValueError, KeyError)):
            job.move(bad)
    job.move("running")
    job.move("finished", "done")
    assert job.progress() == 1.0
    for state in ("running", "queued", "cancelled"):
        with pytest.raises(ValueError):
            job.move(state)
