"""Enrollment as a Ray Data job on a local Ray cluster, into PostgreSQL: the same gallery as a plain
FaceBank enrollment of the same photos, and a rerun enrolls nothing again."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from facebank import FaceBank
from facebank.gallery import open_gallery
from facebank.settings import Settings
from tests.pg_fixtures import new_database_url


@pytest.fixture(scope="module")
def ray_cluster():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Ray is needed in CI: {exc}")
        pytest.skip(f"Ray is not installed (pip install 'ray[data]'): {exc}")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def small_folder(tmp_path, faces_dir):
    """2 people x 5 photos of 5celeb/train, copied (the folder names are the people)."""
    src = faces_dir / "5celeb" / "train"
    people = sorted(p for p in src.iterdir() if p.is_dir())[:2]
    for person in people:
        (tmp_path / "photos" / person.name).mkdir(parents=True)
        for photo in sorted(person.iterdir())[:5]:
            shutil.copy(photo, tmp_path / "photos" / person.name / photo.name)
    return tmp_path / "photos"


def _by_person(gallery) -> dict[str, np.ndarray]:
    e = gallery.embeddings()
    out: dict[str, list] = {}
    for name, vec in zip(e.names, e.vectors, strict=True):
        out.setdefault(name, []).append(vec)
    return {k: np.stack(sorted(v, key=lambda x: tuple(x[:4]))) for k, v in out.items()}


def test_enroll_ray_is_a_command_that_refuses_a_missing_folder(tmp_path):
    from typer.testing import CliRunner

    from facebank.cli import app

    runner = CliRunner()
    shown = runner.invoke(app, ["enroll-ray", "--help"])
    assert shown.exit_code == 0 and "--address" in shown.output
    missing = runner.invoke(app, ["enroll-ray", str(tmp_path / "nope"), "--gallery", str(tmp_path / "g.db")])
    assert missing.exit_code != 0 and "does not exist" in missing.output


def test_photos_are_listed_as_enroll_folder_lists_them(tmp_path):
    from facebank.folders import labelled_photos
    from facebank.scale.ray_enroll import list_photos

    for rel in ("Ann/a.jpg", "Ann/sub/b.png", "Ben/c.JPG", ".hidden/d.jpg", "Ben/.e.jpg", "Ben/notes.txt",
                "loose.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    listed = list(list_photos(tmp_path))
    assert listed == [(name, str(p)) for name, p in labelled_photos(tmp_path, None)]
    assert [name for name, _ in listed] == ["Ann", "Ann", "Ben"]
    assert {name for name, _ in list_photos(tmp_path / "Ann", person="Zoë")} == {"Zoë"}


@pytest.mark.slow
@pytest.mark.shared
def test_ray_enrollment_into_postgres_equals_a_plain_enrollment(ray_cluster, small_folder, tmp_path):
    from facebank.scale.ray_enroll import enroll_with_ray

    settings = Settings(workers=1)
    url = new_database_url()
    report = enroll_with_ray(small_folder, url, settings)
    with FaceBank(tmp_path / "plain.db", settings=settings) as plain:
        expected = plain.enroll_folder(small_folder)
        plain_people = plain.people()
        plain_faces = _by_person(plain.gallery)

    assert report.photos_seen == expected.photos_seen == 10
    assert report.people == expected.people == 2
    assert report.photos_enrolled == expected.photos_enrolled
    assert report.faces_added == expected.faces_added
    assert sorted(report.problems) == sorted(expected.problems)
    g = open_gallery(url)
    try:
        assert g.people() == plain_people
        ray_faces = _by_person(g)
        assert ray_faces.keys() == plain_faces.keys()
        for name in plain_faces:
            np.testing.assert_allclose(ray_faces[name], plain_faces[name], atol=1e-5)
        assert g.integrity() == []
        runs = g.runs()
        assert runs[-1]["status"] == "finished" and runs[-1]["photos_seen"] == 10
        stored = sum(len(g.photos(p.name)) for p in g.people())  # with no_face/multi_face records
    finally:
        g.close()

    again = enroll_with_ray(small_folder, url, settings)
    assert again.photos_skipped_known == stored >= report.photos_enrolled
    assert again.faces_added == 0 and again.photos_enrolled == 0
