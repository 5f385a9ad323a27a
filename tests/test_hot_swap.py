"""Hot swap under load: 8 clients ask without pause while a document is uploaded and deleted
over HTTP; no request fails, the new facts answer as soon as the upload returns, and they are
refused again once the delete returns (long form: 30 s, make reliability)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from api_fixtures import running_server
from reliability_figures import FIGURES

from rag.config import SEED_CORPUS

pytestmark = pytest.mark.reliability

LONG = os.environ.get("VERBATIM_RELIABILITY") == "long"
CLIENTS, SECONDS = 8, (30 if LONG else 8)
TOKEN = "hot-swap-token-0123456789abcdef0"
FACT = (
    "Harbour Records\n\nThe Marrowgate tide gauge was installed by Ilse Varnhagen in 1911. "
    "It was moved to the north pier after the storm of 1953.\n"
)
QUESTION = "Who installed the Marrowgate tide gauge?"


@pytest.fixture(scope="module")
def swap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("hot-swap")
    shutil.copytree(SEED_CORPUS, tmp / "corpus")
    env = {
        "VERBATIM_CORPUS_DIR": str(tmp / "corpus"),
        "VERBATIM_INDEX_DIR": str(tmp / "index"),
        "VERBATIM_ADMIN_TOKEN": TOKEN,
        "VERBATIM_RATE_LIMIT_PER_MINUTE": "0",
        "VERBATIM_MAX_QUEUE": "256",  # 8 closed-loop clients never fill it: any 503 is a failure
    }
    with running_server(tmp, env) as url:
        yield url


def test_upload_and_delete_while_eight_clients_ask(swap_server: str, dev_questions) -> None:
    url, auth = swap_server, {"Authorization": f"Bearer {TOKEN}"}
    questions = [q["question"] for q in dev_questions]
    statuses: Counter[int | str] = Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            i = n
            while not stop.is_set():
                try:
                    status: int | str = http.post(
                        "/ask", json={"question": questions[i % 40]}
                    ).status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                with lock:
                    statuses[status] += 1
                i += CLIENTS

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    began = time.monotonic()
    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            assert http.post("/ask", json={"question": QUESTION}).json()["abstained"]
            time.sleep(SECONDS / 4)
            t0 = time.monotonic()
            files = {"files": ("harbour-records.txt", FACT.encode(), "text/plain")}
            up = http.post("/documents", files=files, headers=auth)
            upload_s = time.monotonic() - t0
            assert up.status_code == 201, up.text
            answer = http.post("/ask", json={"question": QUESTION}).json()
            assert answer["answer"] and "Varnhagen" in answer["answer"]
            assert answer["citations"][0]["doc_id"] == "harbour-records.txt"
            time.sleep(SECONDS / 4)
            t0 = time.monotonic()
            assert http.delete("/documents/harbour-records.txt", headers=auth).status_code == 200
            delete_s = time.monotonic() - t0
            assert http.post("/ask", json={"question": QUESTION}).json()["abstained"]
            time.sleep(max(0.0, SECONDS - (time.monotonic() - began)))
    finally:
        stop.set()
        for t in threads:
            t.join()
    answered = statuses[200]
    FIGURES["hot swap"] = (
        f"{CLIENTS} clients for {time.monotonic() - began:.0f} s: {answered} answers, "
        f"statuses {dict(statuses)}; upload searchable after {upload_s:.2f} s, "
        f"delete {delete_s:.2f} s"
    )
    assert set(statuses) == {200} and answered >= CLIENTS
