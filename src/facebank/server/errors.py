"""Every error the server sends is JSON ``{"error": {"code": "...", "message": "..."}}``.

``code`` is stable (clients branch on it), ``message`` is for people. Handlers cover our own
``ApiError``, gallery errors, image errors, FastAPI's request validation, Starlette's 404/405;
``CatchAllMiddleware`` answers any other exception (500 ``internal_error``, logged on the server,
never a stack trace in the reply).
The upload limit is enforced by ``BodyLimitMiddleware`` while the body streams in.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facebank.gallery.base import (
    GalleryError,
    GalleryStorageError,
    ModelMismatch,
    NotFound,
    PersonExists,
    PersonNotFound,
)
from facebank.images import ImageError

log = logging.getLogger(__name__)

# HTTP status -> the code used when nothing more specific is known
GENERIC_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    406: "not_acceptable", 409: "conflict", 413: "upload_too_large", 415: "not_an_image",
    422: "validation_error", 429: "too_many_requests", 500: "internal_error", 503: "not_ready",
}


class ApiError(Exception):
    """An error answer: HTTP status, stable code, human message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def image_error(exc: ImageError) -> ApiError:
    """Map a photo that cannot be used to a 4xx answer with a stable code."""
    msg = str(exc)
    code = exc.code
    status = {"not_an_image": 415, "image_too_large": 413}.get(code, 422)
    return ApiError(status, code, msg)


def gallery_error(exc: GalleryError) -> ApiError:
    if isinstance(exc, GalleryStorageError):  # the server's disk (full, read-only): not the caller's fault
        return ApiError(503, "storage_unavailable", str(exc), headers={"Retry-After": "60"})
    if isinstance(exc, PersonNotFound):
        return ApiError(404, "person_not_found", str(exc))
    if isinstance(exc, PersonExists):
        return ApiError(409, "person_exists", str(exc))
    if isinstance(exc, ModelMismatch):
        return ApiError(409, "model_mismatch", str(exc))
    if isinstance(exc, NotFound):  # a face or cluster id (the routes name which with their own code)
        return ApiError(404, "not_found", str(exc))
    return ApiError(400, "gallery_error", str(exc))


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(GalleryError)
    async def _gallery(_: Request, exc: GalleryError) -> JSONResponse:
        e = gallery_error(exc)
        return error_response(e.status, e.code, e.message, e.headers)

    @app.exception_handler(ImageError)
    async def _image(_: Request, exc: ImageError) -> JSONResponse:
        e = image_error(exc)
        return error_response(e.status, e.code, e.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        bad_json = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
        if bad_json is not None:
            where = bad_json.get("loc", ("body", 0))[-1]
            reason = (bad_json.get("ctx") or {}).get("error", "invalid JSON")
            return error_response(400, "invalid_json",
                                  f"the request body is not valid JSON ({reason} at character {where})")
        return error_response(422, "validation_error", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = GENERIC_CODES.get(exc.status_code, f"http_{exc.status_code}")
        if exc.status_code == 404:
            message = f"no such route: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))


class CatchAllMiddleware:
    """Any exception no handler took: logged here with its traceback, answered with a plain JSON 500.

    (Starlette's own last-resort handler re-raises after answering, and the server then drops the
    connection, so a client could see a reset instead of the answer.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error("unexpected error on %s %s", scope.get("method"), scope.get("path"), exc_info=exc)
            if started:
                raise  # half an answer is out: only dropping the connection tells the client
            body = json.dumps(error_body("internal_error",
                                         "internal server error (details are in the server log)")).encode()
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes with 413, counting while the body streams in.

    A declared Content-Length over the limit is refused before any byte of the body is read. For a
    body without one (chunked), the count is checked chunk by chunk: the moment it passes the
    limit, the app's reading fails, its answer is dropped and a 413 is sent instead, so a huge
    upload is never held in memory or spooled to disk.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    def _message(self) -> str:
        return f"the upload is larger than the limit of {self.limit / 1e6:g} MB"

    async def _send_413(self, send: Send) -> None:
        body = json.dumps(error_body("upload_too_large", self._message())).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    await self._drain(receive)
                    await self._send_413(send)
                    return
        state = {"received": 0, "exceeded": False, "started": False}

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.limit:
                    state["exceeded"] = True
                    raise BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            if state["exceeded"]:
                return  # the app's answer to a body we cut short: dropped, a 413 goes instead
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            pass
        except Exception:
            if not state["exceeded"]:
                raise
        if state["exceeded"] and not state["started"]:
            await self._drain(receive)
            await self._send_413(send)

    async def _drain(self, receive: Receive, cap: int = 512 * 1024 * 1024) -> None:
        """Read (and discard) the rest of the body so the client, still sending, gets our answer.

        Bounded: past ``cap`` bytes we stop reading and answer anyway (the connection is closed)."""
        seen = 0
        while seen < cap:
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return
