"""``verbatim serve``: run the HTTP service under uvicorn."""

from __future__ import annotations

import argparse
import os

from rag.config import Settings, get_settings

ENV_OVERRIDES = {"corpus_dir": "VERBATIM_CORPUS_DIR", "index_dir": "VERBATIM_INDEX_DIR"}


def _port(value: str) -> int:
    port = int(value)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError("must be between 1 and 65535")
    return port


def _workers(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` subcommand to the ``verbatim`` command line."""
    p = subparsers.add_parser(
        "serve",
        help="run the HTTP API and chat widget",
        description="Serve the API, the document views and the chat widget (demo at /).",
    )
    p.add_argument("--host", default=None, help="interface to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=_port, default=None, help="port (default: 8000)")
    p.add_argument(
        "--workers",
        type=_workers,
        default=None,
        help="worker processes, each with its own copy of the models (default: 1)",
    )
    p.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    """Run uvicorn until interrupted. Settings come from ``VERBATIM_*`` and the options."""
    import uvicorn

    # Workers are separate processes that read their settings from the environment.
    for key, env in ENV_OVERRIDES.items():
        if getattr(args, key, None) is not None:
            os.environ[env] = str(getattr(args, key))
    get_settings.cache_clear()
    settings = get_settings()
    workers = args.workers or settings.workers
    if workers > 1:
        _prepare_index(settings)
    uvicorn.run(
        "api.app:app_from_env",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=workers,
        log_level="info",
        timeout_graceful_shutdown=10,
    )
    return 0


def _prepare_index(settings: Settings) -> None:
    """Build the index once, before several workers would race to build it."""
    from embeddings.encoder import Encoder
    from rag.store import open_index

    encoder = Encoder(settings.embedding_model, settings.embedding_batch_size)
    encoder.warm_up()
    open_index(settings, encoder)
