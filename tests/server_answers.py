"""A guard for every test that talks to a facebank server: no JSON answer may name a path of the
server (issue 17). Every answer an ``httpx`` client receives during a test (LiveServer, a
``facebank serve`` process, Starlette's TestClient: all are httpx) is collected; at the end of
the test, one that holds the session's temporary folder, the shared photo folder or the home
folder's prefix fails the test, unless the client itself sent that text (an echo of the request's
own input is no leak).

Imported by ``conftest.py`` (the autouse fixture ``no_server_path_in_answers``).
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]


def _secrets(base: Path) -> set[str]:
    found = {str(base), os.path.realpath(base)}
    shared = Path(os.environ.get("FACEBANK_SHARED_FACES") or REPO.parent / "shared" / "faces")
    found |= {str(shared), os.path.realpath(shared)}
    home = os.path.expanduser("~").rstrip("/")
    if home:
        found.add(home + "/")
    return {s for s in found if len(s) > 1}


def _request_text(request: httpx.Request) -> str:
    try:
        body = request.content.decode("utf-8", "replace")
    except httpx.RequestNotRead:
        body = ""
    return str(request.url) + "\n" + body


def leaks(answers: list[tuple[httpx.Request, str]], secrets: set[str]) -> list[tuple[str, str, str]]:
    """(request, secret, answer excerpt) of each answer naming a secret its request did not send."""
    out = []
    for request, text in answers:
        sent = _request_text(request)
        for s in secrets:
            if s in text and s not in sent:
                at = text.index(s)
                out.append((f"{request.method} {request.url.path}", s, text[max(0, at - 80): at + 120]))
    return out


@pytest.fixture(autouse=True)
def no_server_path_in_answers(request, tmp_path_factory, monkeypatch):
    answers: list[tuple[httpx.Request, str]] = []

    def keep(response: httpx.Response) -> None:
        if "json" in response.headers.get("content-type", "") and response.is_stream_consumed:
            answers.append((response.request, response.text))

    sync_send, async_send = httpx.Client.send, httpx.AsyncClient.send

    def send(self, req, *args, **kwargs):
        response = sync_send(self, req, *args, **kwargs)
        if not kwargs.get("stream"):
            keep(response)
        return response

    async def asend(self, req, *args, **kwargs):
        response = await async_send(self, req, *args, **kwargs)
        if not kwargs.get("stream"):
            keep(response)
        return response

    monkeypatch.setattr(httpx.Client, "send", send)
    monkeypatch.setattr(httpx.AsyncClient, "send", asend)
    yield answers
    if answers:
        found = leaks(answers, _secrets(tmp_path_factory.getbasetemp()))
        assert not found, f"answers of the server name a path of the server: {found[:5]}"
