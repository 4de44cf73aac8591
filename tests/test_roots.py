"""Roots stay roots (issue 17): a server folder job never reads outside --enroll-root (links to
/etc or to photos elsewhere, a link swapped in after the walk), its answers name nothing outside,
and a link to a kernel file such as /proc/kmsg is one problem of a finished batch, not an abort."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from facebank import images
from facebank.folders import FolderWalk, iter_image_files
from facebank.server import ServerConfig
from facebank.server.auth import ApiKeyStore
from facebank.server.testing import LiveServer
from facebank.settings import Settings

KMSG = Path("/proc/kmsg")


def drain_kmsg() -> bool:
    """Empty the kernel's message buffer (a non-blocking read of an empty /proc/kmsg gives no
    data: the case that aborted batches). False when this process may not read it."""
    if not KMSG.exists() or not os.access(KMSG, os.R_OK):
        return False
    try:
        fd = os.open(KMSG, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        for _ in range(100_000):
            try:
                if not os.read(fd, 1 << 16):
                    break
            except BlockingIOError:
                break
    finally:
        os.close(fd)
    return True


def real_photos(faces_dir: Path, person: str, n: int) -> list[Path]:
    return list(iter_image_files(faces_dir / "5celeb" / "train" / person))[:n]


# -- the reader ------------------------------------------------------------------------------------
def test_a_kernel_file_that_shows_no_size_is_refused_without_reading_it(tmp_path):
    if not KMSG.exists():
        pytest.skip("no /proc/kmsg here")
    (tmp_path / "kmsg.jpg").symlink_to(KMSG)
    drain_kmsg()
    with pytest.raises(images.ImageError, match="kmsg.jpg") as err:
        images.read_bytes(tmp_path / "kmsg.jpg")
    assert err.value.code in ("unreadable_file", "file_not_found")  # (permission denied when not root)


def test_an_empty_file_is_still_an_empty_file(tmp_path):
    (tmp_path / "e.jpg").write_bytes(b"")
    with pytest.raises(images.ImageError, match="empty file") as err:
        images.read_bytes(tmp_path / "e.jpg")
    assert err.value.code == "empty_file"


def test_a_link_swapped_in_after_the_walk_cannot_lead_out_of_the_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "p").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"outside bytes")
    (root / "p" / "a.jpg").write_bytes(b"inside bytes")
    walk = FolderWalk(root, confine_to=root)
    (found,) = list(walk.photos())
    assert images.read_bytes(found, within=root) == b"inside bytes"
    found.unlink()
    found.symlink_to(outside / "secret.jpg")  # swapped between the walk and the read
    with pytest.raises(images.ImageError) as err:
        images.read_bytes(found, within=root)
    assert err.value.code == "outside_root"
    assert str(outside) not in str(err.value) and "secret" not in str(err.value)
    # a parent folder swapped for a link out is caught too (the opened file is checked, not the name)
    shutil.rmtree(root / "p")
    (root / "p").symlink_to(outside)
    (outside / "a.jpg").write_bytes(b"outside bytes")
    with pytest.raises(images.ImageError, match="outside the folder"):
        images.read_bytes(root / "p" / "a.jpg", within=root)


def test_a_confined_walk_reports_links_out_without_naming_where_they_lead(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "elsewhere-secret"
    (root / "ada").mkdir(parents=True)
    (outside / "bob").mkdir(parents=True)
    (outside / "bob" / "b.jpg").write_bytes(b"x")
    (root / "ada" / "a.jpg").write_bytes(b"x")
    (root / "ada" / "b.jpg").symlink_to(outside / "bob" / "b.jpg")
    (root / "bob").symlink_to(outside / "bob")
    (root / "etc").symlink_to("/etc")
    (root / "ada" / "inside.jpg").symlink_to(root / "ada" / "a.jpg")  # a link inside is fine
    skipped: list[tuple[str, str]] = []
    walk = FolderWalk(root, on_skip=lambda p, r: skipped.append((p, r)), confine_to=root)
    got = sorted(str(p.relative_to(root)) for _, p in walk.labelled())
    assert got == ["ada/a.jpg", "ada/inside.jpg"]
    assert sorted(Path(p).name for p, _ in skipped) == ["b.jpg", "bob", "etc"]
    for _, reason in skipped:
        assert "elsewhere-secret" not in reason and "/etc" not in reason and "outside" in reason
    assert walk.count() == 2
    # the user's own walk still follows a link out of the tree (by design)
    mine = sorted(p.name for _, p in FolderWalk(root).labelled())
    assert "b.jpg" in mine


# -- a whole enrollment and a server job --------------------------------------------------------------
@pytest.fixture(scope="module")
def pipeline():
    from facebank.pipeline import FacePipeline

    return FacePipeline(Settings(workers=1))


@pytest.mark.shared
def test_a_link_to_proc_kmsg_is_one_problem_of_a_finished_enrollment(tmp_path, faces_dir, pipeline):
    from facebank import FaceBank

    if not KMSG.exists():
        pytest.skip("no /proc/kmsg here")
    folder = tmp_path / "photos" / "madonna"
    folder.mkdir(parents=True)
    for i, src in enumerate(real_photos(faces_dir, "madonna", 2)):
        shutil.copy(src, folder / f"{i}.jpg")
    (folder / "kmsg.jpg").symlink_to(KMSG)
    drain_kmsg()
    with FaceBank(tmp_path / "g.db", pipeline=pipeline, workers=1) as fb:
        report = fb.enroll_folder(tmp_path / "photos")
    assert not report.interrupted and report.photos_enrolled == 2
    assert [Path(p).name for p, _ in report.problems] == ["kmsg.jpg"], report.problems


def wait_job(c: httpx.Client, job_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/v1/jobs/{job_id}").json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s")


@pytest.mark.shared
def test_a_folder_job_on_the_enroll_root_enrolls_and_names_nothing_outside_it(tmp_path, faces_dir):
    root, outside = tmp_path / "enroll", tmp_path / "outside-private"
    (root / "madonna").mkdir(parents=True)
    (outside / "elton").mkdir(parents=True)
    for i, src in enumerate(real_photos(faces_dir, "madonna", 2)):
        shutil.copy(src, root / "madonna" / f"{i}.jpg")
    elton = real_photos(faces_dir, "elton_john", 2)
    for i, src in enumerate(elton):
        shutil.copy(src, outside / "elton" / f"{i}.jpg")
    (root / "elton").symlink_to(outside / "elton")  # a folder of photos outside
    (root / "etc").symlink_to("/etc")
    (root / "madonna" / "x.jpg").symlink_to(outside / "elton" / "0.jpg")  # one photo outside
    if KMSG.exists():
        (root / "madonna" / "kmsg.jpg").symlink_to(KMSG)
        drain_kmsg()
    settings = Settings(gallery=str(tmp_path / "gallery.db"))
    with ApiKeyStore(settings.gallery) as store:
        _, key = store.create("tests", "admin")
    with LiveServer(ServerConfig(settings=settings, enroll_root=root)) as server, \
            httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=120) as c:
        r = c.post("/v1/jobs", json={"folder": "."})
        assert r.status_code == 202, r.text
        job = wait_job(c, r.json()["id"])
        assert job["state"] == "finished", job
        people = c.get("/v1/people").json()
        names = {p["name"] for p in (people["people"] if isinstance(people, dict) else people)}
        assert names == {"madonna"}, people
        assert job["photos_enrolled"] == 2, job
        answers = json.dumps(job) + c.get("/v1/jobs").text + json.dumps(people)
    samples = {s["path"]: s["reason"] for s in job["problem_samples"]}
    assert {"elton", "etc", "madonna/x.jpg"} <= set(samples), samples
    if KMSG.exists():
        assert "madonna/kmsg.jpg" in samples, samples
    for secret in (str(outside), "outside-private", "passwd", "/etc", "elton/0.jpg", str(tmp_path)):
        assert secret not in answers, (secret, answers)
