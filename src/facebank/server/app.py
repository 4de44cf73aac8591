"""The FastAPI application: ``create_app(ServerConfig)``; ``facebank serve`` runs it with uvicorn.

Routes (all JSON, versioned under /v1; OpenAPI at /openapi.json, docs at /docs, web page at /):

  GET  /v1/health /v1/ready /v1/model              no key (ready: gallery counts only with a key)
  POST /v1/identify /v1/detect /v1/verify          read key, or none with --open-reads
  GET  /v1/people[/{name}[/photos]]                read key, or none with --open-reads
  GET  /v1/people/{name}/photos/{sha}/image|face, GET /v1/jobs[/{id}]   read key, always
  POST/PATCH/DELETE /v1/people..., POST/DELETE /v1/jobs..., POST /v1/jobs/{id}/resume   write key
  POST/DELETE /v1/videos[/{id}] (write key), GET /v1/videos/{id} (read key)   video jobs
  (/v1/jobs/{id} answers, cancels and resumes jobs of every kind: they are kept in the gallery)
  GET/POST/DELETE /v1/keys...                                             admin key
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from facebank import __version__
from facebank.server import (
    routes_clusters,
    routes_faces,
    routes_jobs,
    routes_keys,
    routes_library,
    routes_people,
    routes_service,
    routes_videos,
)
from facebank.server.context import ServerConfig, ServerContext
from facebank.server.errors import BodyLimitMiddleware, CatchAllMiddleware, install_error_handlers

log = logging.getLogger(__name__)

DESCRIPTION = """Name the faces in photos against a gallery of known people.

Units: boxes are `[x1, y1, x2, y2]` pixels of the photo (after EXIF orientation); `distance` is the
L2 distance between unit face embeddings (a match is `distance <= threshold`); `score` is the cosine
similarity.

Keys: send `X-API-Key: <key>` (make one on the server: `facebank keys create --scope read|write|admin`).
A `read` key identifies, detects, verifies and lists; `write` also changes people, photos and jobs;
`admin` also manages keys. With `--open-reads` identify/detect/verify and the people listing need no
key; stored photos, face crops and jobs always do.

Errors: always `{"error": {"code": "<stable code>", "message": "..."}}`.
"""


def create_app(config: ServerConfig) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = ServerContext(config)
        app.state.ctx = ctx
        log.info("facebank server: gallery %s, uploads in %s", config.settings.gallery,
                 config.resolved_photos_dir())
        try:
            yield
        finally:
            app.state.ctx = None
            ctx.close()

    app = FastAPI(title="facebank", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.state.ctx = None
    app.state.config = config
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, limit=config.max_upload_bytes)
    app.add_middleware(CatchAllMiddleware)  # added last = outermost of ours
    for module in (routes_service, routes_faces, routes_people, routes_jobs, routes_keys, routes_videos,
                   routes_clusters, routes_library):
        app.include_router(module.router)
    app.include_router(routes_service.web)
    _document_unparseable_bodies(app)
    web_dir = resources.files("facebank.server") / "web"
    app.mount("/web", StaticFiles(directory=str(web_dir)), name="web")
    _offline_docs(app)
    return app


def _document_unparseable_bodies(app: FastAPI) -> None:
    """Every route that takes a body can answer 400 (invalid JSON, broken multipart): say so in the
    schema, whoever wrote the route (the fuzz test holds every answer to the schema)."""
    from fastapi.routing import APIRoute

    from facebank.server.schemas import errors

    for route in app.routes:
        if isinstance(route, APIRoute) and route.body_field is not None and 400 not in route.responses:
            route.responses = {**errors(400), **route.responses}


def _offline_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the files the fastapi-offline package ships: no CDN needed."""
    import importlib.util

    from fastapi.openapi.docs import get_swagger_ui_html

    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        log.warning("fastapi-offline is not installed: no /docs page (the schema is at /openapi.json)")
        return
    static = Path(next(iter(spec.submodule_search_locations))) / "static"
    app.mount("/docs-static", StaticFiles(directory=str(static)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def docs():  # noqa: ANN202 - an HTML page
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="facebank API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon.png",
        )
