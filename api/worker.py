"""One inference worker with dynamic batching: questions that arrive within a few milliseconds
are embedded together and their passages read in shared forward passes, by one thread that owns
the models (its CPU threads never compete with another request's)."""

from __future__ import annotations

import asyncio
import logging
import math
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from api.limits import ClientGone, Overloaded
from rag.answer import Answer
from rag.pipeline import Ask, AskPipeline

log = logging.getLogger(__name__)


@dataclass
class _Job:
    ask: Ask
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    gone: Callable[[], Awaitable[bool]] | None = None


async def _abandoned(jobs: list[_Job]) -> list[bool]:
    """Whether each answer has nobody to read it (its caller was cancelled or ``gone()`` says its
    client left), asked on the jobs' event loop."""
    return [j.future.cancelled() or (j.gone is not None and await j.gone()) for j in jobs]


def abandoned(jobs: list[_Job]) -> list[bool]:
    """:func:`_abandoned` from the worker thread: one round trip per event loop."""
    out = [False] * len(jobs)
    for loop in {id(j.loop): j.loop for j in jobs}.values():
        mine = [n for n, j in enumerate(jobs) if j.loop is loop]
        try:
            found = asyncio.run_coroutine_threadsafe(
                _abandoned([jobs[n] for n in mine]), loop
            ).result(timeout=1)
        except Exception:  # the loop is busy or closing: compute them rather than lose them
            found = [jobs[n].future.cancelled() for n in mine]
        for n, gone in zip(mine, found, strict=True):
            out[n] = gone
    return out


class BatchingWorker:
    """Answers :meth:`ask` calls in batches of up to ``max_batch``: those already waiting, and,
    when the last batch held more than one (questions arrive together), those arriving within
    ``window_ms`` after the first; a lone asker is never held for company. At most
    ``max_queue`` wait, the rest get :class:`Overloaded`.
    A job whose caller has gone (cancelled, or ``gone()`` says its client left) is dropped
    before it is computed, with :class:`ClientGone`."""

    def __init__(self, pipeline: AskPipeline, max_batch: int, window_ms: float, max_queue: int):
        self.pipeline = pipeline
        self.max_batch = max_batch
        self.window_s = window_ms / 1000
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self.busy = 0  # questions being computed now
        self.batches = 0
        self.dropped = 0
        self._batch_seconds = 0.5  # moving average, for Retry-After
        self._last_size = 1

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="inference", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def retry_after(self) -> int:
        """Seconds until a newly queued question would likely be answered: at least 1."""
        batches = self.waiting / self.max_batch + 1
        return max(1, math.ceil(batches * self._batch_seconds))

    async def ask(self, ask: Ask, gone: Callable[[], Awaitable[bool]] | None = None) -> Answer:
        """The answer (or the pipeline's :class:`QuestionError`), computed in a batch."""
        loop = asyncio.get_running_loop()
        job = _Job(ask, loop.create_future(), loop, gone)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise Overloaded(self.retry_after()) from None
        return await job.future

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            window = self.window_s if self._last_size > 1 else 0.0
            jobs, deadline = [first], time.perf_counter() + window
            while len(jobs) < self.max_batch:
                try:
                    job = self._queue.get(timeout=max(0.0, deadline - time.perf_counter()))
                except queue.Empty:
                    break
                if job is None:
                    self._queue.put(None)  # stop after this batch
                    break
                jobs.append(job)
            self._last_size = len(jobs)
            live = []
            for job, gone in zip(jobs, abandoned(jobs), strict=True):
                if gone:
                    self.dropped += 1
                    job.loop.call_soon_threadsafe(_settle, job.future, ClientGone())
                else:
                    live.append(job)
            if live:
                self._answer(live)

    def _answer(self, jobs: list[_Job]) -> None:
        self.busy, self.batches = len(jobs), self.batches + 1
        started = time.perf_counter()
        try:
            results: list = self.pipeline.ask_many([j.ask for j in jobs])
        except Exception as exc:  # the batch failed as a whole: each caller hears of it
            log.exception("a batch of %d questions failed", len(jobs))
            results = [exc] * len(jobs)
        finally:
            self.busy = 0
            took = time.perf_counter() - started
            self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * took
        for job, result in zip(jobs, results, strict=True):
            job.loop.call_soon_threadsafe(_settle, job.future, result)


def _settle(future: asyncio.Future, result: object) -> None:
    if future.cancelled():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
