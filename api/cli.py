"""``verbatim serve``: run the HTTP service under uvicorn."""

from __future__ import annotations

import argparse
import os
import sys

from rag.cli import bounded
from rag.config import Settings, get_settings

ENV_OVERRIDES = {"corpus_dir": "VERBATIM_CORPUS_DIR", "index_dir": "VERBATIM_INDEX_DIR"}


def _default(name: str) -> object:
    return Settings.model_fields[name].default


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` subcommand to the ``verbatim`` command line."""
    p = subparsers.add_parser(
        "serve",
        help="run the HTTP API and chat widget",
        description="Serve the API, the document views and the chat widget (demo at /).",
    )
    p.add_argument("--host", default=None, help=f"interface to bind (default: {_default('host')})")
    p.add_argument(
        "--port",
        type=bounded("port"),
        default=None,
        help=f"port (default: {_default('port')})",
    )
    p.add_argument(
        "--workers",
        type=bounded("workers"),
        default=None,
        help="worker processes, each with its own copy of the models "
        f"(default: {_default('workers')})",
    )
    p.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    """Run uvicorn until interrupted; 1 if the index and models cannot be loaded. Settings come
    from ``VERBATIM_*`` and the options."""
    import uvicorn

    from api.server import uvicorn_options
    from rag.store import milvus_lite, prepare_index

    # Workers are separate processes that read their settings from the environment.
    for key, env in ENV_OVERRIDES.items():
        if getattr(args, key, None) is not None:
            os.environ[env] = str(getattr(args, key))
    get_settings.cache_clear()
    settings = get_settings()
    workers = args.workers or settings.workers
    if workers > 1 and milvus_lite(settings):
        print(
            "verbatim serve: Milvus Lite serves one process; with several workers point "
            "VERBATIM_MILVUS_URI at a Milvus server (http://host:19530)",
            file=sys.stderr,
        )
        return 2
    where = {"host": args.host or settings.host, "port": args.port or settings.port}
    if workers > 1:
        prepare_index(settings)  # once, before several workers would race to build it
        uvicorn.run(
            "api.app:app_from_env",
            factory=True,
            workers=workers,
            log_level="info",
            **where,
            **uvicorn_options(settings),
        )
        return 0
    from api.app import create_app

    server: uvicorn.Server | None = None
    failures: list[str] = []

    def stop(reason: str) -> None:
        failures.append(reason)
        if server is not None:
            server.should_exit = True

    app = create_app(settings, on_failure=stop)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="info", **where, **uvicorn_options(settings))
    )
    server.run()
    if failures:
        print(f"verbatim serve: {failures[0]}", file=sys.stderr)
        return 1
    return 0
