"""Shared fixtures: where the real photos are, and small galleries built from them once."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest

from tests.server_answers import no_server_path_in_answers  # noqa: F401 (autouse: no server path in answers)

REPO = Path(__file__).resolve().parents[1]
# ../shared/faces beside the repo; FACEBANK_SHARED_FACES points elsewhere (e.g. from a git worktree)
SHARED_FACES = Path(os.environ.get("FACEBANK_SHARED_FACES") or REPO.parent / "shared" / "faces")
ARTIFACTS = REPO / "tests" / "artifacts"


def shared_faces() -> Path:
    """../shared/faces, or skip the test saying why (CI has it: there a missing folder fails)."""
    if not (SHARED_FACES / "README.md").is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SHARED_FACES} is missing in CI: the end-to-end tests need the shared photos")
        pytest.skip(f"../shared/faces not found at {SHARED_FACES}: the real-photo tests need it")
    return SHARED_FACES


# made-up model ids of the unit tests' galleries: they get dlib's operating points under their own id
TEST_MODEL_IDS = ("test-model-v1", "test-model", "m1", "m2")


def give_points(model_id: str) -> None:
    """Save dlib's built-in operating points under ``model_id`` in the session's data folder."""
    from dataclasses import replace

    from facebank.embed.points import DLIB_POINTS, save_points

    save_points(replace(DLIB_POINTS, model_id=model_id, source="tests: dlib's points under a test id"))


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory) -> Path:
    """The user's data folder (installed models, cards, operating points) is a temporary one for the
    whole session, so the tests never read or write the real one; child processes inherit it."""
    path = tmp_path_factory.mktemp("facebank-data")
    old = os.environ.get("FACEBANK_DATA_DIR")
    os.environ["FACEBANK_DATA_DIR"] = str(path)
    for mid in TEST_MODEL_IDS:
        give_points(mid)
    yield path
    if old is None:
        os.environ.pop("FACEBANK_DATA_DIR", None)
    else:
        os.environ["FACEBANK_DATA_DIR"] = old


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    return shared_faces()


@pytest.fixture(scope="session")
def celeb_gallery(tmp_path_factory, faces_dir):
    """A gallery with 5celeb/train enrolled (default settings), built once per test session."""
    from facebank import FaceBank

    path = tmp_path_factory.mktemp("celeb") / "gallery.db"
    with FaceBank(path) as fb:
        report = fb.enroll_folder(faces_dir / "5celeb" / "train")
    assert report.photos_enrolled >= 85, report.problems
    return path


# -- markers for `make test-fast` (no browser, no PostgreSQL, no long end-to-end runs) ----------------
# Set here from what a test uses, so new tests are marked without anyone remembering to.
SLOW_MODULES = {
    "test_server_fuzz",  # schemathesis: thousands of generated requests
}


def _uses_postgres(item: pytest.Item) -> bool:
    if "pg_url" in getattr(item, "fixturenames", ()):
        return True
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "postgres" in callspec.params.values():
        return True
    try:
        source = inspect.getsource(item.function)  # type: ignore[attr-defined]
    except (AttributeError, OSError, TypeError):
        return False
    return "new_database_url(" in source or "require_server(" in source


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        module = item.module.__name__.rpartition(".")[2] if getattr(item, "module", None) else ""
        if _uses_postgres(item):
            item.add_marker(pytest.mark.postgres)
        if "page" in fixtures or module == "test_web_browser":
            item.add_marker(pytest.mark.browser)
        if module.endswith("_e2e") or module in SLOW_MODULES or "ray_cluster" in fixtures:
            item.add_marker(pytest.mark.slow)
