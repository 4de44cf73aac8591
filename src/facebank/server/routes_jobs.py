"""Enrollment jobs: enroll a folder on the server's disk in the background; GET the job for progress."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from facebank.server.context import ServerContext, get_ctx, require_read_key, require_write
from facebank.server.schemas import EnrollJob, EnrollJobCreate, JobList, errors

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=errors(400, 422))


@router.post("", response_model=EnrollJob, status_code=202, dependencies=[Depends(require_write)],
             responses=errors(401, 403, 422), summary="Enroll a server-side folder in the background")
async def create_job(body: EnrollJobCreate, ctx: ServerContext = Depends(get_ctx)) -> EnrollJob:
    """Starts enrolling ``folder`` (one sub-folder of photos per person, or all photos of
    ``person``). Answers at once with the job; poll ``GET /v1/jobs/{id}`` for progress. Photos
    already in the gallery are skipped, so a job can be rerun to finish an interrupted one."""
    job = await run_in_threadpool(ctx.jobs.submit, body.folder, body.person)
    return EnrollJob(**job.snapshot())


@router.get("", response_model=JobList, dependencies=[Depends(require_read_key)], responses=errors(401, 403),
            summary="Recent jobs")
def list_jobs(ctx: ServerContext = Depends(get_ctx)) -> JobList:
    return JobList(jobs=[EnrollJob(**j.snapshot()) for j in ctx.jobs.all()])


@router.get("/{job_id}", response_model=EnrollJob, dependencies=[Depends(require_read_key)],
            responses=errors(401, 403, 404), summary="A job's progress")
def get_job(job_id: str, ctx: ServerContext = Depends(get_ctx)) -> EnrollJob:
    return EnrollJob(**ctx.jobs.get(job_id).snapshot())


@router.delete("/{job_id}", response_model=EnrollJob, dependencies=[Depends(require_write)],
               responses=errors(401, 403, 404), summary="Cancel a job")
def cancel_job(job_id: str, ctx: ServerContext = Depends(get_ctx)) -> EnrollJob:
    """Stops a queued or running job after the photo in flight; what was enrolled stays."""
    return EnrollJob(**ctx.jobs.cancel(job_id).snapshot())
