"""The OpenAPI contract: the schema the server publishes must equal tests/snapshots/openapi.json.

A difference fails the test. When the API changed on purpose, regenerate the snapshot and review
the diff like any code change:

    FACEBANK_UPDATE_SNAPSHOT=1 pytest tests/test_server_openapi.py
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import pytest

from facebank.server import ServerConfig, create_app
from facebank.settings import Settings

SNAPSHOT = Path(__file__).parent / "snapshots" / "openapi.json"
REGENERATE = "FACEBANK_UPDATE_SNAPSHOT=1 pytest tests/test_server_openapi.py"


def current_schema() -> dict:
    # building the app loads nothing and opens no gallery (that happens at start-up)
    return create_app(ServerConfig(settings=Settings(gallery="unused.db"))).openapi()


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_openapi_schema_matches_the_snapshot():
    text = render(current_schema())
    if os.environ.get("FACEBANK_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(text, encoding="utf-8")
    if not SNAPSHOT.exists():
        pytest.fail(f"no snapshot at {SNAPSHOT}; create it deliberately with: {REGENERATE}")
    stored = SNAPSHOT.read_text(encoding="utf-8")
    if text != stored:
        diff = "".join(list(difflib.unified_diff(stored.splitlines(True), text.splitlines(True),
                                                 "snapshot", "current", n=2))[:80])
        pytest.fail(f"the API's OpenAPI schema differs from {SNAPSHOT.name}: a contract change.\n{diff}\n"
                    f"If the change is intended, regenerate the snapshot and commit it: {REGENERATE}")


def test_every_error_answer_is_documented_with_the_error_shape():
    schema = current_schema()
    for path, item in schema["paths"].items():
        for method, op in item.items():
            for status, answer in op["responses"].items():
                if status.startswith(("4", "5")):
                    ref = answer["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorResponse"), (method, path, status)
            if path.startswith("/v1/") and not path.startswith(("/v1/health", "/v1/ready", "/v1/model")):
                assert "401" in op["responses"], f"{method} {path} needs a key and must document 401"
                assert op.get("security") == [{"ApiKey": []}], (method, path)


def test_every_route_with_a_body_documents_400_for_an_unparseable_one():
    """Broken JSON or multipart is a 400 from any route that takes a body (the fuzz test found
    POST /v1/videos without it: a router's own `responses` must list 400)."""
    schema = current_schema()
    missing = [f"{method.upper()} {path}" for path, item in schema["paths"].items()
               for method, op in item.items() if "requestBody" in op and "400" not in op["responses"]]
    assert not missing, missing


def test_docs_page_works_offline_from_packaged_files():
    from fastapi.testclient import TestClient

    # no `with`: the app's start-up (models, gallery) is not needed for the docs page
    client = TestClient(create_app(ServerConfig(settings=Settings(gallery="unused.db"))))
    page = client.get("/docs")
    assert page.status_code == 200 and "/docs-static/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    js = client.get("/docs-static/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
