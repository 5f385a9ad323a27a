"""Where the answers come from: real :class:`AskPipeline` objects in this process, or a running
service's ``POST /ask`` over HTTP; both give the Answer JSON."""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol
from urllib.parse import quote

from eval.configs import EvalConfig, span_reader_available
from rag.config import Settings

log = logging.getLogger(__name__)


class EvalError(RuntimeError):
    """The evaluation cannot go on (service unreachable, index unusable...)."""


class BackendUnavailable(RuntimeError):
    """A configuration cannot run here (e.g. the span reader has no trained model)."""


def local_corpus(settings: Settings) -> dict[str, str]:
    """doc_id -> text of the local corpus folder ({} when it cannot be read)."""
    from rag.documents import CorpusError, load_corpus
    from rag.store import corpus_of

    folder = corpus_of(settings)
    try:
        return {d.doc_id: d.text for d in load_corpus(folder)}
    except (CorpusError, OSError) as exc:
        log.warning("cannot read the corpus %s: %s", folder, exc)
        return {}


class Backend(Protocol):
    """Something that answers questions with the Answer JSON."""

    def prepare(self, config: EvalConfig) -> None: ...

    def ask(self, question: str, config: EvalConfig) -> dict: ...

    def documents(self, doc_ids: set[str]) -> dict[str, str]: ...


class QuestionFailed(Exception):
    """One question could not be answered (refused input, server error); recorded, not fatal."""


class InProcessBackend:
    """Real :class:`AskPipeline` objects, one per reader, sharing one warm encoder."""

    def __init__(self, settings: Settings, encoder: Any = None):
        self.settings = settings
        self.encoder = encoder
        self._pipelines: dict[str, Any] = {}

    def pipeline(self, reader: str) -> Any:
        from rag.pipeline import AskPipeline

        if reader not in self._pipelines:
            if reader == "span" and (why := span_reader_available(self.settings)):
                raise BackendUnavailable(why)
            pipe = AskPipeline(
                self.settings.model_copy(update={"reader": reader}), encoder=self.encoder
            )
            self._warm_up(pipe, reader)
            self.encoder = pipe.encoder
            self._pipelines[reader] = pipe
        return self._pipelines[reader]

    @staticmethod
    def _warm_up(pipe: Any, reader: str) -> None:
        """Warm a pipeline whose reader may fail to load (no or a broken trained model)."""
        from rag.documents import CorpusError
        from rag.store import IndexLoadError

        try:
            pipe.warm_up()
        except (CorpusError, IndexLoadError):
            raise
        except Exception as exc:  # whatever the model loader raises: this config cannot run
            raise BackendUnavailable(f"the {reader} reader cannot start: {exc}") from exc

    def prepare(self, config: EvalConfig) -> None:
        self.pipeline(config.reader or self.settings.reader)

    def ask(self, question: str, config: EvalConfig) -> dict:
        from rag.pipeline import QuestionError

        pipe = self.pipeline(config.reader or self.settings.reader)
        try:
            return pipe.ask(question, mode=config.mode, top_k=config.top_k).model_dump()
        except QuestionError as exc:
            raise QuestionFailed(str(exc)) from exc

    def documents(self, doc_ids: set[str]) -> dict[str, str]:
        """The indexed documents' texts (the local corpus's, before any pipeline is warm)."""
        if self._pipelines:
            pipe = next(iter(self._pipelines.values()))
            return {d.doc_id: d.text for d in pipe.documents}
        return local_corpus(self.settings)


class HttpBackend:
    """A real HTTP client of a running service's ``POST /ask``."""

    def __init__(
        self,
        url: str,
        settings: Settings | None = None,
        timeout: float = 120.0,
        client: Any = None,
    ):
        import httpx

        self.url = url.rstrip("/")
        self.settings = settings
        self.timeout = timeout
        self.client = client or httpx.Client(timeout=timeout)
        self._httpx = httpx

    def prepare(self, config: EvalConfig) -> None:
        """Wait (up to the timeout) until ``GET /ready`` says the service is ready."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                status = self.client.get(f"{self.url}/ready").status_code
            except self._httpx.TransportError as exc:
                raise EvalError(f"cannot reach the service at {self.url}: {exc}") from exc
            if status != 503 or time.monotonic() > deadline:
                return
            time.sleep(1.0)

    def ask(self, question: str, config: EvalConfig) -> dict:
        body: dict[str, Any] = {"question": question}
        if config.mode:
            body["mode"] = config.mode
        if config.top_k:
            body["top_k"] = config.top_k
        for attempt in range(4):
            try:
                resp = self.client.post(f"{self.url}/ask", json=body)
            except self._httpx.TransportError as exc:
                raise EvalError(f"cannot reach the service at {self.url}: {exc}") from exc
            if resp.status_code in (429, 503) and attempt < 3:
                time.sleep(0.5 * 2**attempt)
                continue
            break
        if resp.status_code != 200:
            raise QuestionFailed(f"HTTP {resp.status_code}: {resp.text[:300]}")
        try:
            return resp.json()
        except ValueError as exc:
            raise QuestionFailed(f"the service sent invalid JSON: {exc}") from exc

    def documents(self, doc_ids: set[str]) -> dict[str, str]:
        """The gold documents' texts from ``GET /documents/{id}``, else the local corpus."""
        texts: dict[str, str] = {}
        try:
            for doc_id in sorted(doc_ids):
                resp = self.client.get(f"{self.url}/documents/{quote(doc_id, safe='/')}")
                if resp.status_code == 404 and resp.headers.get("content-type", "").startswith(
                    "application/json"
                ):
                    continue  # an unknown document: gold_for() warns about it
                resp.raise_for_status()
                texts[doc_id] = resp.json()["text"]
            if texts or not doc_ids:
                return texts
            log.warning("the service knows none of the gold documents; reading them locally")
        except (self._httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning("the service does not serve document texts (%s); reading them locally", exc)
        return local_corpus(self.settings) if self.settings else {}

    def close(self) -> None:
        self.client.close()
