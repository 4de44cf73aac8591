"""Face routes: identify (who is in this photo?), detect (where are the faces?), verify (same person?)."""

from __future__ import annotations

import math
import time

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.concurrency import run_in_threadpool

from facebank.pipeline import PhotoFaces, choose_face
from facebank.server.context import ServerContext, get_ctx, require_read
from facebank.server.errors import ApiError
from facebank.server.schemas import (
    DetectedFace,
    DetectResponse,
    IdentifiedFace,
    IdentifyResponse,
    PhotoInfo,
    VerifyResponse,
    errors,
)
from facebank.types import Detection, Face

PHOTO_ERRORS = errors(401, 403, 413, 415, 422, 503)

router = APIRouter(prefix="/v1", tags=["faces"], dependencies=[Depends(require_read)],
                   responses=errors(400, 422))

ThresholdQuery = Query(None, ge=0.0, le=2.0,
                       description="largest L2 distance that still counts as a match (default: the server's)")
DecisionThresholdQuery = Query(None, description="largest decision score that still names a person, in "
                               "the unit of the server's decision rule (GET /v1/model; an L2 distance for "
                               "the distance rule; the margin rule's may be negative); default: the "
                               "gallery's own estimate")


async def read_upload(upload: UploadFile) -> bytes:
    """The bytes of an uploaded file (the body size limit was enforced while it streamed in)."""
    try:
        return await upload.read()
    finally:
        await upload.close()


def _photo_info(img) -> PhotoInfo:
    width, height = img.photo_size
    return PhotoInfo(width=width, height=height, sha256=img.sha256, format=img.format)


def _finite(x: float) -> float | None:
    return round(float(x), 6) if math.isfinite(x) else None


def detected(box, detector: str, score: float, fallback: bool, landmarks, scale: float = 1.0) -> dict:
    """A face as JSON, in the photo's own pixels (``scale``: the photo was decoded shrunk)."""
    if scale != 1.0:
        box = box.scaled(scale)
    return {
        "box": box.as_list(), "detector": detector, "detector_score": round(float(score), 6),
        "fallback": bool(fallback),
        "landmarks": [[round(x * scale, 2), round(y * scale, 2)] for x, y in landmarks.points]
        if landmarks else None,
        "landmarks_scheme": landmarks.scheme if landmarks else None,
    }


def _face_json(f: Face, scale: float = 1.0) -> dict:
    return detected(f.box, f.detector, f.detector_score, f.fallback, f.landmarks, scale)


def _detection_json(d: Detection, scale: float = 1.0) -> dict:
    return detected(d.box, d.detector, d.score, d.fallback, d.landmarks, scale)


def identify_bytes(ctx: ServerContext, data: bytes, threshold: float | None) -> IdentifyResponse:
    t0 = time.perf_counter()
    if threshold is not None:  # in the decision rule's own unit and range (422 otherwise)
        from facebank.decide import check_threshold

        try:
            threshold = check_threshold(ctx.bank.decision().rule, threshold)
        except ValueError as exc:
            raise ApiError(422, "bad_threshold", str(exc)) from None
    with ctx.photo(data) as img:
        faces = ctx.pool().faces(img.rgb)
        info, scale = _photo_info(img), img.scale
        result = ctx.bank.name_faces(PhotoFaces("upload", tuple(faces), width=img.width, height=img.height),
                                     threshold)
        del img  # the decoded photo goes with the budget it held
    out = []
    for f in result.faces:
        m = f.match
        out.append(IdentifiedFace(**_face_json(f.face, scale), name=m.name, distance=_finite(m.distance),
                                  score=_finite(m.score) if math.isfinite(m.distance) else None,
                                  candidate=m.candidate, reason=m.reason,
                                  decision_score=_finite(m.decision_score)
                                  if m.decision_score is not None else None))
    decision = ctx.bank.decision()
    thr = decision.point.threshold if threshold is None else threshold
    return IdentifyResponse(photo=info, faces=out, threshold=thr, rule=ctx.settings.rule,
                            decision=decision.rule.key(),
                            seconds=round(time.perf_counter() - t0, 4))


@router.post("/identify", response_model=IdentifyResponse, responses={**PHOTO_ERRORS, **errors(409)},
             summary="Name every face in a photo")
async def identify(photo: UploadFile = File(..., description="a photo (JPEG, PNG, WebP, ...)"),
                   threshold: float | None = DecisionThresholdQuery,
                   ctx: ServerContext = Depends(get_ctx)) -> IdentifyResponse:
    """Every face of the photo with its box and the nearest enrolled person within the threshold
    (``name`` null = unknown; ``candidate`` is the nearest person anyway). No person is given to
    two faces of one photo."""
    data = await read_upload(photo)
    return await run_in_threadpool(identify_bytes, ctx, data, threshold)


def _detect(ctx: ServerContext, data: bytes) -> DetectResponse:
    t0 = time.perf_counter()
    with ctx.photo(data) as img:
        found = ctx.pool().detect(img.rgb)
        info, scale = _photo_info(img), img.scale
    return DetectResponse(photo=info, faces=[DetectedFace(**_detection_json(d, scale)) for d in found],
                          seconds=round(time.perf_counter() - t0, 4))


@router.post("/detect", response_model=DetectResponse, responses=PHOTO_ERRORS, summary="Find faces")
async def detect(photo: UploadFile = File(..., description="a photo"),
                 ctx: ServerContext = Depends(get_ctx)) -> DetectResponse:
    """Boxes and landmarks of the faces in the photo, no identification."""
    data = await read_upload(photo)
    return await run_in_threadpool(_detect, ctx, data)


def _verify(ctx: ServerContext, a: bytes, b: bytes, threshold: float | None) -> VerifyResponse:
    from facebank.identify import cosine_from_l2

    mains, scales = [], []
    for label, data in (("photo_a", a), ("photo_b", b)):
        with ctx.photo(data, label) as img:
            faces = ctx.pool().faces(img.rgb)
            face = choose_face(faces, img.width, img.height, "largest") if faces else None
        if face is None:
            raise ApiError(422, "no_face", f"{label}: no face found")
        mains.append(face)
        scales.append(img.scale)
    thr = ctx.settings.verify_threshold if threshold is None else threshold
    if thr is None:  # the model's own threshold
        from facebank.embed.points import points_for_settings

        thr = points_for_settings(ctx.settings).verify_l2
    d = float(((mains[0].embedding - mains[1].embedding) ** 2).sum() ** 0.5)
    return VerifyResponse(same=d <= thr, distance=round(d, 6), score=round(cosine_from_l2(d), 6),
                          threshold=thr, face_a=DetectedFace(**_face_json(mains[0], scales[0])),
                          face_b=DetectedFace(**_face_json(mains[1], scales[1])))


@router.post("/verify", response_model=VerifyResponse, responses=PHOTO_ERRORS, summary="Same person?")
async def verify(photo_a: UploadFile = File(..., description="first photo"),
                 photo_b: UploadFile = File(..., description="second photo"),
                 threshold: float | None = ThresholdQuery,
                 ctx: ServerContext = Depends(get_ctx)) -> VerifyResponse:
    """Compares the largest face of each photo (the gallery is not used)."""
    a = await read_upload(photo_a)
    b = await read_upload(photo_b)
    return await run_in_threadpool(_verify, ctx, a, b, threshold)
