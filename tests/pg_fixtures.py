"""A real PostgreSQL with pgvector for the tests, from the ``pgserver`` package (it ships both).

One server per test process, started on first use in a temporary folder (Unix socket only, no TCP
port) and stopped at exit; every test gets a fresh database on it. Without pgserver (or when it
cannot start) the PostgreSQL tests are skipped, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
import warnings

import pytest

_SERVER = None
_ERROR: str | None = None


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _start():
    global _SERVER, _ERROR
    if _SERVER is not None or _ERROR is not None:
        return _SERVER
    try:
        with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set" on import
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError as exc:
        _ERROR = f"pgserver is not installed ({exc}); pip install pgserver"
        return None
    folder = tempfile.mkdtemp(prefix="facebank-pg-")
    # registered first, so it runs after pgserver's own exit handler has stopped the server
    atexit.register(shutil.rmtree, folder, True)
    try:
        server = pgserver.get_server(os.path.join(folder, "data"), cleanup_mode="delete")
        server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
    except Exception as exc:  # the server binary could not run here
        _ERROR = f"pgserver could not start PostgreSQL: {type(exc).__name__}: {exc}"
        return None
    _SERVER = server
    return server


def require_server():
    """The running server, or skip (fail in CI) with the reason."""
    server = _start()
    if server is None:
        if in_ci():
            pytest.fail(f"PostgreSQL is needed in CI: {_ERROR}")
        pytest.skip(f"no PostgreSQL for this test: {_ERROR}")
    return server


def new_database_url() -> str:
    """A URL of a new, empty database on the test server."""
    import psycopg

    server = require_server()
    name = f"fb_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.get_uri(name)


@pytest.fixture
def pg_url() -> str:
    """A fresh database (with no facebank schema yet) on the session's PostgreSQL server."""
    return new_database_url()
