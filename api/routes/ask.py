"""``POST /ask``: a question in, an answer that stands verbatim in a document out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request

from api.schemas import ASK_EXAMPLES, AskRequest, AskResponse, error_responses
from api.service import ServiceDep

router = APIRouter(tags=["ask"])


@router.post("/ask", response_model=AskResponse, responses=error_responses(408, 413, 422, 429, 503))
async def ask(
    body: Annotated[AskRequest, Body(openapi_examples=ASK_EXAMPLES)],
    request: Request,
    svc: ServiceDep,
) -> AskResponse:
    """Answer a question with words that stand verbatim in a document, or abstain.

    Each client address may ask ``rate_limit_burst`` questions at once, then
    ``rate_limit_per_minute`` (429 with ``Retry-After`` beyond)."""
    return await svc.ask(body, request)
