"""Videos: upload one to be analysed in the background (who appears when), GET the job for its tracks."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from facebank.server.context import ServerContext, get_ctx, require_read_key, require_write
from facebank.server.errors import ApiError
from facebank.server.schemas import errors

router = APIRouter(prefix="/v1/videos", tags=["videos"], responses=errors(422))


class VideoTrack(BaseModel):
    """One face followed through one shot, named from all its faces."""

    track: int
    name: str | None = Field(description="the person, null = unknown")
    distance: float | None = Field(description="median L2 distance (unit embeddings) of the track's "
                                   "faces to the person (or to the nearest one when unknown)")
    start: float = Field(description="seconds of video of its first sighting")
    end: float = Field(description="seconds of video of its last sighting")
    frames: int = Field(description="analysed frames it was seen in")
    box: list[int] = Field(description="its largest face, [x1, y1, x2, y2] pixels of the frame")
    score: float | None = Field(None, description="the track's group score in the decision rule's unit "
                                "(lower = more alike; see facebank.groups); null when nobody is enrolled")
    faces_used: int | None = Field(None, description="the track's independent faces its name comes from")


class VideoJob(BaseModel):
    id: str
    state: str = Field(description="queued, running, finished, failed or cancelled")
    progress: float = Field(description="share of the analysed frames done (0-1)")
    filename: str
    size_bytes: int
    sample_fps: float | None = Field(description="frames analysed per second of video; null = every frame")
    width: int
    height: int
    fps: float = Field(description="frames per second of the video")
    duration_s: float | None = Field(description="seconds of video")
    frames_analysed: int
    frames_expected: int
    tracks: list[VideoTrack] = Field(description="filled when the job is finished, ordered by start")
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None


def _jobs(ctx: ServerContext):
    jobs = getattr(ctx, "video_jobs", None)
    if jobs is None:
        raise ApiError(503, "not_ready", "video jobs are not available on this server")
    return jobs


@router.post("", response_model=VideoJob, status_code=202, dependencies=[Depends(require_write)],
             responses=errors(400, 401, 403, 413, 503), summary="Analyse a video in the background")
async def create_video_job(
    video: UploadFile = File(..., description="a video file (MP4, MKV, MOV, WebM, AVI, ...)"),
    fps: float = Query(2.0, gt=0, le=120, description="frames analysed per second of video"),
    every_frame: bool = Query(False, description="analyse every frame (ignores fps)"),
    ctx: ServerContext = Depends(get_ctx),
) -> VideoJob:
    """Checks that the upload is a readable video, then answers at once with the job; poll
    ``GET /v1/videos/{id}`` for progress and, when finished, the tracks (who appears when). The
    upload size limit is the server's (``--max-upload-mb``)."""
    try:
        data = await video.read()
    finally:
        await video.close()
    job = await run_in_threadpool(_jobs(ctx).submit, data, video.filename or "upload",
                                  None if every_frame else fps)
    return VideoJob(**job.snapshot())


@router.get("/{job_id}", response_model=VideoJob, dependencies=[Depends(require_read_key)],
            responses=errors(401, 403, 404), summary="A video job: progress, then its tracks")
def get_video_job(job_id: str, ctx: ServerContext = Depends(get_ctx)) -> VideoJob:
    return VideoJob(**_jobs(ctx).get(job_id).snapshot())
