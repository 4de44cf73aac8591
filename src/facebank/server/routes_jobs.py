"""Jobs: enroll a server-side folder in the background (POST), and every kind of job (folder and
video jobs) by id: progress, cancel, resume. Jobs are kept in the gallery: they survive a restart."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from facebank.server.context import ServerContext, get_ctx, require_read_key, require_write
from facebank.server.schemas import AnyJob, EnrollJob, EnrollJobCreate, JobList, VideoJob, errors, job_model

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=errors(422))


@router.post("", response_model=EnrollJob, status_code=202, dependencies=[Depends(require_write)],
             responses=errors(400, 401, 403, 503), summary="Enroll a server-side folder in the background")
async def create_job(body: EnrollJobCreate, ctx: ServerContext = Depends(get_ctx)) -> EnrollJob:
    """Starts enrolling ``folder`` (one sub-folder of photos per person, or all photos of
    ``person``). Answers at once with the job; poll ``GET /v1/jobs/{id}`` for progress. Photos
    already in the gallery are skipped (and not counted in ``total``), so a job can be rerun, or
    resumed (``POST /v1/jobs/{id}/resume``), to finish an interrupted one."""
    job = await run_in_threadpool(ctx.folder_jobs.new, body.folder, body.person)
    job = await run_in_threadpool(ctx.jobs.submit, job)
    return EnrollJob(**job.snapshot())


@router.get("", response_model=JobList, dependencies=[Depends(require_read_key)], responses=errors(401, 403),
            summary="Recent jobs (folder and video jobs)")
def list_jobs(ctx: ServerContext = Depends(get_ctx)) -> JobList:
    return JobList(jobs=[job_model(j.snapshot()) for j in ctx.jobs.all()])


@router.get("/{job_id}", response_model=AnyJob, dependencies=[Depends(require_read_key)],
            responses=errors(401, 403, 404), summary="A job's progress (folder or video job)")
def get_job(job_id: str, ctx: ServerContext = Depends(get_ctx)) -> EnrollJob | VideoJob:
    """Also after a restart: a job that was queued or running when its server stopped is
    ``interrupted``."""
    return job_model(ctx.jobs.get(job_id).snapshot())


@router.delete("/{job_id}", response_model=AnyJob, dependencies=[Depends(require_write)],
               responses=errors(401, 403, 404, 409), summary="Cancel a job (folder or video job)")
def cancel_job(job_id: str, ctx: ServerContext = Depends(get_ctx)) -> EnrollJob | VideoJob:
    """Stops a queued or running job: a folder job after the photo in flight (what was enrolled
    stays), a video job at its next decoded frame. A job that has ended is answered as it is; 409
    for a job running on another server of the same gallery."""
    return job_model(ctx.jobs.cancel(job_id).snapshot())


@router.post("/{job_id}/resume", response_model=EnrollJob, status_code=202,
             dependencies=[Depends(require_write)], responses=errors(401, 403, 404, 409, 503),
             summary="Resume an interrupted folder job")
def resume_job(job_id: str, ctx: ServerContext = Depends(get_ctx)) -> EnrollJob:
    """Queues an ``interrupted`` folder job again, under the same id: photos it enrolled before are
    skipped (its ``total`` counts only the work left). 409 for a job that is not interrupted, or a
    video job (upload the video again); 403/422 if its folder is no longer allowed or there."""
    return EnrollJob(**ctx.jobs.resume(job_id).snapshot())
