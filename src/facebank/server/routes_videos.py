"""Videos: upload one to be analysed in the background (who appears when), GET the job for its
tracks, DELETE it to stop it. A video job is also a job: GET/DELETE /v1/jobs/{id} work too."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.concurrency import run_in_threadpool

from facebank.server.context import ServerContext, get_ctx, require_read_key, require_write
from facebank.server.schemas import VideoJob, VideoTrack, errors

__all__ = ["VideoJob", "VideoTrack", "router"]

router = APIRouter(prefix="/v1/videos", tags=["videos"], responses=errors(422))


@router.post("", response_model=VideoJob, status_code=202, dependencies=[Depends(require_write)],
             responses=errors(400, 401, 403, 413, 503, 507), summary="Analyse a video in the background")
async def create_video_job(
    video: UploadFile = File(..., description="a video file (MP4, MKV, MOV, WebM, AVI, ...)"),
    fps: float = Query(2.0, gt=0, le=120, description="frames analysed per second of video"),
    every_frame: bool = Query(False, description="analyse every frame (ignores fps)"),
    ctx: ServerContext = Depends(get_ctx),
) -> VideoJob:
    """Checks that the upload is a readable video, then answers at once with the job; poll
    ``GET /v1/videos/{id}`` for progress and, when finished, the tracks (who appears when). The
    upload size limit is the server's (``--max-upload-mb``); the video waits for its job in the
    server's upload storage (``--max-upload-storage-mb``: 413 for a video bigger than all of it,
    507 while it is full). A job past ``--video-max-frames`` decoded frames or
    ``--video-max-seconds`` of work fails with reason ``budget_exceeded``."""
    try:
        data = await video.read()
    finally:
        await video.close()
    job = await run_in_threadpool(ctx.video_jobs.new, data, video.filename or "upload",
                                  None if every_frame else fps)
    job = await run_in_threadpool(ctx.jobs.submit, job)
    return VideoJob(**job.snapshot())


@router.get("/{job_id}", response_model=VideoJob, dependencies=[Depends(require_read_key)],
            responses=errors(401, 403, 404), summary="A video job: progress, then its tracks")
def get_video_job(job_id: str, ctx: ServerContext = Depends(get_ctx)) -> VideoJob:
    return VideoJob(**ctx.jobs.get(job_id, kind="video").snapshot())


@router.delete("/{job_id}", response_model=VideoJob, dependencies=[Depends(require_write)],
               responses=errors(401, 403, 404, 409), summary="Cancel a video job")
def cancel_video_job(job_id: str, ctx: ServerContext = Depends(get_ctx)) -> VideoJob:
    """Stops a queued or running video job (a running one at its next decoded frame, within a
    second) and deletes its upload; a job that has ended is answered as it is."""
    return VideoJob(**ctx.jobs.cancel(job_id, kind="video").snapshot())
