"""Service routes: liveness, readiness, model info (no key needed) and the web page."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, JSONResponse

from facebank import __version__
from facebank.server.auth import ApiKeyInfo
from facebank.server.context import ServerContext, get_ctx, optional_key
from facebank.server.schemas import Health, ModelInfo, Readiness, errors

router = APIRouter(prefix="/v1", tags=["service"])


@router.get("/health", response_model=Health, summary="Liveness: the process answers")
def health() -> Health:
    return Health(status="ok", version=__version__)


@router.get("/ready", response_model=Readiness, responses=errors(503),
            summary="Readiness: models loaded and gallery readable")
def ready(ctx: ServerContext = Depends(get_ctx), key: ApiKeyInfo | None = Depends(optional_key)):
    """Status for everyone; the gallery's people and face counts only for a valid key."""
    people = faces = 0
    try:
        listed = ctx.gallery.people()
        people, faces = len(listed), sum(p.faces for p in listed)
        gallery_ok = True
    except Exception:  # a broken gallery is a 'not ready', not a crash
        gallery_ok = False
    counts = {"people": people, "faces": faces} if key is not None else {}
    body = Readiness(ready=ctx.models_loaded and gallery_ok, models_loaded=ctx.models_loaded,
                     gallery_ok=gallery_ok, **counts)
    if not body.ready:
        reason = ("the face models could not be loaded (see the server log)" if ctx.load_error else
                  "the gallery cannot be read" if not gallery_ok else "the models are loading")
        return JSONResponse({"error": {"code": "not_ready", "message": reason}}, status_code=503,
                            headers={"Retry-After": "5"})
    return body


@router.get("/model", response_model=ModelInfo, summary="The models and settings in use")
def model_info(ctx: ServerContext = Depends(get_ctx)) -> ModelInfo:
    s = ctx.settings
    pool = ctx.loaded_pool
    decision = ctx.bank.decision()
    return ModelInfo(
        version=__version__, detector=s.detector, embedder=s.embedder,
        model_id=pool.model_id if pool else None, gallery_model_id=ctx.gallery.model_id,
        threshold=decision.point.threshold, threshold_source=decision.point.source,
        target_far=decision.point.far, decision=decision.rule.key(), decision_unit=decision.rule.unit,
        rule=s.rule, multi_face=s.multi_face, max_pixels=s.max_pixels,
        max_upload_bytes=ctx.config.max_upload_bytes, open_reads=ctx.config.open_reads,
        pipelines=ctx.config.pipelines,
    )


web = APIRouter(include_in_schema=False)
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@web.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
def index() -> HTMLResponse:
    html = (resources.files("facebank.server") / "web" / "index.html").read_text(encoding="utf-8")
    return HTMLResponse(html, headers=PAGE_HEADERS)
