"""Batched answering: the same answers as one at a time, each caller its own, a bounded queue."""

from __future__ import annotations

import asyncio
import threading

import pytest

from api.limits import Overloaded
from api.worker import BatchingWorker
from rag.pipeline import Ask, QuestionError


def _key(answer) -> tuple:
    return (answer.answer, [c.start for c in answer.citations])


def _same(got, expected) -> None:
    """Same answer and citation; padding moves bf16 scores in the third decimal only."""
    assert [_key(a) for a in got] == [_key(a) for a in expected]
    assert [a.score for a in got] == pytest.approx([a.score for a in expected], abs=0.01)


def test_a_batch_answers_as_one_at_a_time(seed_pipeline, dev_questions) -> None:
    questions = [q["question"] for q in dev_questions[:12]]
    alone = [seed_pipeline.ask(q) for q in questions]
    asks = (
        [Ask(q) for q in questions[:6]] + [Ask("   "), Ask("x")] + [Ask(q) for q in questions[6:]]
    )
    batched = seed_pipeline.ask_many(asks)
    assert isinstance(batched[6], QuestionError) and isinstance(batched[7], QuestionError)
    _same(batched[:6] + batched[8:], alone)


def test_a_batch_mixes_modes_and_depths(seed_pipeline, dev_questions) -> None:
    q = dev_questions[0]["question"]
    asks = [Ask(q, "bm25", 3), Ask(q, "dense", 1), Ask(q)]
    alone = [seed_pipeline.ask(a.question, a.mode, a.top_k) for a in asks]
    _same(seed_pipeline.ask_many(asks), alone)


def test_concurrent_callers_each_get_their_own_answer(seed_pipeline, dev_questions) -> None:
    questions = [q["question"] for q in dev_questions[:10]]
    alone = [seed_pipeline.ask(q) for q in questions]
    worker = BatchingWorker(seed_pipeline, max_batch=4, window_ms=20, max_queue=32)
    worker.start()

    async def ask_all() -> list:
        return await asyncio.gather(*(worker.ask(Ask(q)) for q in questions))

    try:
        answers = asyncio.run(ask_all())
    finally:
        worker.stop()
    _same(answers, alone)  # gather keeps the callers' order
    assert worker.batches < len(questions)  # some questions shared a batch


def test_a_full_queue_is_overloaded_and_a_gone_caller_is_dropped(seed_pipeline) -> None:
    gate = threading.Event()
    original = seed_pipeline.ask_many

    def held(asks):  # the first batch waits, so the queue fills behind it
        gate.wait(30)
        return original(asks)

    worker = BatchingWorker(seed_pipeline, max_batch=1, window_ms=0, max_queue=2)
    seed_pipeline.ask_many = held
    worker.start()

    async def scenario() -> None:
        first = asyncio.ensure_future(worker.ask(Ask("Who is Russia's foreign minister?")))
        while worker.busy == 0:
            await asyncio.sleep(0.01)
        gone = asyncio.ensure_future(worker.ask(Ask("Which anniversary did they mark?")))
        kept = asyncio.ensure_future(worker.ask(Ask("Who went to Beijing in 1989?")))
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded):
            await worker.ask(Ask("One question too many?"))
        gone.cancel()
        gate.set()
        assert (await first).question and (await kept).question
        with pytest.raises(asyncio.CancelledError):
            await gone

    try:
        asyncio.run(scenario())
    finally:
        gate.set()
        seed_pipeline.ask_many = original
        worker.stop()
    assert worker.dropped == 1


def test_a_lone_question_is_not_held_for_company(seed_pipeline, dev_questions) -> None:
    """The window opens only while questions arrive together: a lone asker waits for no one."""
    worker = BatchingWorker(seed_pipeline, max_batch=4, window_ms=60_000, max_queue=8)
    worker.start()

    async def ask_alone() -> list:
        return [
            await asyncio.wait_for(worker.ask(Ask(q["question"])), timeout=30)
            for q in dev_questions[:2]
        ]

    try:
        answers = asyncio.run(ask_alone())  # a minute's window would time out here
    finally:
        worker.stop()
    assert [a.question for a in answers] == [q["question"] for q in dev_questions[:2]]
    assert worker.batches == 2
