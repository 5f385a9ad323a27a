"""Background writes (large uploads): their state, progress, and what they did."""

from __future__ import annotations

import anyio
from fastapi import APIRouter

from api.errors import ApiError
from api.schemas import Job, error_responses
from api.service import ServiceDep

router = APIRouter(tags=["jobs"])

_UNKNOWN = ("Unknown job", "unknown_job", "no job has the id '0f3a'")


@router.get(
    "/jobs/{job_id}",
    response_model=Job,
    responses=error_responses(404, 503, wording={404: _UNKNOWN}),
)
async def job(job_id: str, svc: ServiceDep) -> Job:
    """A write job: queued, running (with its progress), done (with the documents it
    changed) or failed (with why; then nothing was written)."""
    writes = svc.require_writable()
    found = await anyio.to_thread.run_sync(writes.job, job_id)
    if found is None:
        raise ApiError(404, "unknown_job", f"no job has the id {job_id[:100]!r}")
    return found
