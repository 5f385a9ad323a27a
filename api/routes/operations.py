"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from api.schemas import Status, error_responses
from api.service import ServiceDep

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Status)
async def health() -> Status:
    """The process is alive (it may still be loading)."""
    return Status(status="ok")


@router.get("/ready", response_model=Status, responses=error_responses(503))
async def ready(svc: ServiceDep) -> Status:
    """The index and models are loaded: 200, else 503."""
    svc.require_ready()
    return Status(status="ready")


@router.get("/metrics", response_class=Response)
async def metrics(svc: ServiceDep) -> Response:
    """Prometheus metrics in the text exposition format."""
    return Response(svc.metrics.render(), media_type=svc.metrics.content_type)
