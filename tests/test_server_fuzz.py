"""The REST API fuzzed from its own OpenAPI schema (Schemathesis) against a real `facebank serve`
process on 127.0.0.1: every route, several hundred generated requests (valid and invalid), and no
answer may be a 5xx, break the schema (status codes, content types, bodies), or show a server path.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import facebank
from facebank.server.auth import ApiKeyStore
from facebank.server.testing import ServerProcess

schemathesis = pytest.importorskip("schemathesis", reason="the test extra installs schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis import checks as st_checks  # noqa: E402

SRC = Path(facebank.__file__).resolve().parents[1]
EXAMPLES_PER_ROUTE = 15  # per route and generation mode (valid / invalid)
CHECKS = [st_checks.not_a_server_error, st_checks.status_code_conformance,
          st_checks.content_type_conformance, st_checks.response_schema_conformance]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    photos = root / "enroll" / "people" / "ada"
    photos.mkdir(parents=True)
    out = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    Image.fromarray(noise).save(out, "JPEG")
    (photos / "a.jpg").write_bytes(out.getvalue())
    gallery = root / "gallery.db"
    with ApiKeyStore(gallery) as keys:
        _, key = keys.create("fuzzer", "admin")
    proc = ServerProcess(["--gallery", str(gallery), "--enroll-root", str(root / "enroll"),
                          "--max-upload-mb", "2"], env={"PYTHONPATH": str(SRC)})
    with proc:
        proc.key = key
        proc.root = root
        yield proc


def test_every_route_answers_generated_requests_within_its_schema(fuzzed):
    """Each operation of the published schema gets EXAMPLES_PER_ROUTE generated requests (with an
    admin key); every answer is checked. (Schemathesis' own pytest plugin does not load on this
    pytest, so the strategies are driven with Hypothesis here.)"""
    schema = schemathesis.openapi.from_url(fuzzed.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    sent: list[tuple[str, int]] = []
    failures: list[str] = []
    def fuzzer(op, name: str, mode: GenerationMode):
        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def fuzz(case) -> None:
            response = case.call(headers={"X-API-Key": fuzzed.key}, timeout=120)
            sent.append((name, response.status_code))
            case.validate_response(response, checks=CHECKS)
            assert str(fuzzed.root) not in response.text, f"a server path in: {response.text[:300]}"

        return fuzz

    for op in operations:
        name = f"{op.method.upper()} {op.path}"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):  # valid requests, then invalid ones
            try:
                fuzzer(op, name, mode)()
            except Unsatisfiable:  # no invalid request exists (a route without parameters or body)
                assert mode is GenerationMode.NEGATIVE, name
            except Exception as exc:  # collect every route's failure, then report them all
                failures.append(f"{name} ({mode.value}): {type(exc).__name__}: {str(exc)[:1500]}")
    counts = Counter(f"{n} -> {status}" for n, status in sent)
    print(f"{len(sent)} requests:", *sorted(counts.items()), sep="\n  ")
    assert not failures, "\n\n".join(failures)
    assert {f"{op.method.upper()} {op.path}" for op in operations} == {n for n, _ in sent}
    assert len(sent) >= 300, len(sent)
    assert not [s for _, s in sent if s >= 500]
    assert "Traceback" not in fuzzed.log()
