"""Verbatim's HTTP service: the app, its middleware and its routers, over one Settings."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from api.docs import install_offline_docs
from api.errors import JsonCORSMiddleware, install_error_handlers
from api.limits import MULTIPART_OVERHEAD, BodySizeLimit
from api.metrics import MetricsMiddleware
from api.request_id import RequestId
from api.routes import ask, documents, jobs, operations, pages
from api.security import AdminGuard, HeadAsGet, HostCheck, SecurityHeaders
from api.service import Service
from rag.config import Settings, get_settings
from rag.pipeline import AskPipeline


def create_app(
    settings: Settings | None = None,
    pipeline: AskPipeline | None = None,
    on_failure: Callable[[str], None] | None = None,
) -> FastAPI:
    """The ASGI app. The pipeline warms up in the background at start-up; /ready says when, and
    ``on_failure`` hears why if it cannot (``verbatim serve`` then exits)."""
    settings = settings or get_settings()
    svc = Service(settings, pipeline or AskPipeline(settings), on_failure)
    app = FastAPI(
        title="Verbatim",
        version="0.1.0",
        summary="Extractive question answering: answers that stand verbatim in your documents.",
        lifespan=svc.lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_offline_docs(app)
    app.state.service = svc
    install_error_handlers(app)
    # Added innermost first: metrics sees every response, CORS headers even on a 413, the
    # hardening headers even on a refused Host, the admin token checked before a body is read.
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        timeout_s=settings.body_timeout_s,
        upload_bytes=settings.max_upload_bytes * settings.max_upload_files + MULTIPART_OVERHEAD,
    )
    app.add_middleware(AdminGuard, token=settings.admin_token)
    app.add_middleware(HeadAsGet)
    app.add_middleware(
        JsonCORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_headers=["Content-Type", "X-Request-ID", "Authorization"],
        expose_headers=["X-Request-ID", "Retry-After", "Location"],
        max_age=600,
    )
    app.add_middleware(HostCheck, allowed=settings.allowed_hosts)
    app.add_middleware(RequestId)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(MetricsMiddleware, metrics=svc.metrics, router=app.router)
    for module in (ask, documents, jobs, operations, pages):
        app.include_router(module.router)
    schema_of = app.openapi

    def openapi() -> dict:
        """The schema, with this server's limit on a question's length."""
        schema = schema_of()
        question = schema["components"]["schemas"]["AskRequest"]["properties"]["question"]
        question["maxLength"] = settings.max_question_chars
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """The app over the settings of the environment (``VERBATIM_*``): uvicorn's factory."""
    return create_app(get_settings())
