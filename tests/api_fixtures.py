"""Fixtures for the HTTP service's tests: the app over the real pipeline, and a live server.

Loaded for every test module as a plugin (``pytest_plugins`` in conftest.py); they build on
``seed_settings`` / ``seed_pipeline`` from conftest.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from rag.config import PROJECT_ROOT, Settings
from rag.pipeline import AskPipeline

SERVER_START_TIMEOUT_S = 180
# A Host the default VERBATIM_ALLOWED_HOSTS accepts (TestClient's own is "testserver").
BASE_URL = "http://localhost"
ANNIVERSARY_ID = "dev-002"  # the dev question whose answer is "75th"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_ready(url: str, proc: subprocess.Popen, log_path: Path, timeout: float) -> None:
    """Poll ``/ready`` until 200; fail with the server's log if it dies or takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"verbatim serve exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"verbatim serve was not ready after {timeout} s:\n{log_path.read_text()}")


@pytest.fixture(scope="session")
def api_app(seed_settings: Settings, seed_pipeline: AskPipeline) -> FastAPI:
    """The app over the seed corpus, its pipeline already warm."""
    return create_app(seed_settings, seed_pipeline)


@pytest.fixture(scope="session")
def client(api_app: FastAPI) -> Iterator[TestClient]:
    """A client of :func:`api_app` with its lifespan running."""
    with TestClient(api_app, base_url=BASE_URL) as c:
        yield c


@contextmanager
def running_server(folder: Path, env: dict[str, str]) -> Iterator[str]:
    """``verbatim serve`` in a subprocess on a free loopback port, with ``env`` added to the
    environment; yields its base URL once ``/ready``, stops it afterwards."""
    port = free_port()
    log_path = folder / "server.log"
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=PROJECT_ROOT,
            env={**os.environ, "TQDM_DISABLE": "1", **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, proc, log_path, SERVER_START_TIMEOUT_S)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``verbatim serve`` with its own index folder; yields its base URL."""
    tmp = tmp_path_factory.mktemp("live-server")
    # No rate limit: load benchmarks and browser tests share it (tests/test_hardening.py has one).
    env = {"VERBATIM_INDEX_DIR": str(tmp / "index"), "VERBATIM_RATE_LIMIT_PER_MINUTE": "0"}
    with running_server(tmp, env) as url:
        yield url


# The hardened server's limits, small enough that tests reach them (tests/test_live_hardening.py).
HARDENED = {
    "VERBATIM_HEADER_TIMEOUT_S": "1",
    "VERBATIM_BODY_TIMEOUT_S": "1",
    "VERBATIM_KEEP_ALIVE_TIMEOUT_S": "2",
    "VERBATIM_MAX_CONNECTIONS": "32",
    "VERBATIM_MAX_IN_FLIGHT": "1",
    "VERBATIM_MAX_QUEUE": "8",
    "VERBATIM_RATE_LIMIT_PER_MINUTE": "3000",
    "VERBATIM_RATE_LIMIT_BURST": "60",
    "VERBATIM_METRICS_TOKEN": "hardened-metrics-token-0123456789",
    # Writes on, with a token no client here holds: every write attempt is a 401.
    "VERBATIM_ADMIN_TOKEN": "hardened-admin-token-nobody-has-0123",
    "VERBATIM_FORWARDED_ALLOW_IPS": '["127.0.0.1"]',
}


@pytest.fixture(scope="session")
def hardened_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``verbatim serve`` with the :data:`HARDENED` limits; yields its base URL."""
    tmp = tmp_path_factory.mktemp("hardened-server")
    with running_server(tmp, {"VERBATIM_INDEX_DIR": str(tmp / "index"), **HARDENED}) as url:
        yield url
