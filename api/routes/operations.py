"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.schemas import Status, error_responses
from api.service import ServiceDep

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Status, responses=error_responses(503))
async def health(svc: ServiceDep) -> Status:
    """The process is alive (it may still be loading): 200; 503 once start-up has failed."""
    svc.require_alive()
    return Status(status="ok")


@router.get("/ready", response_model=Status, responses=error_responses(503))
async def ready(svc: ServiceDep) -> Status:
    """The index and models are loaded: 200, else 503."""
    svc.require_ready()
    return Status(status="ready")


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus metrics",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **error_responses(401),
    },
)
async def metrics(svc: ServiceDep, request: Request) -> Response:
    """Prometheus metrics in the text exposition format (with ``VERBATIM_METRICS_TOKEN`` set,
    only for ``Authorization: Bearer <token>``)."""
    # Read here, not as a Header parameter, which would add a 422 no request can cause.
    svc.require_metrics_token(request.headers.get("authorization"))
    return Response(svc.metrics.render(), media_type=svc.metrics.content_type)
