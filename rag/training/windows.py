"""Training windows: the reader's windows labelled with the answer's tokens, and their batches."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.readers.windows import Window, WindowTokenizer
from rag.training.squad import QAExample


@dataclass
class TrainWindow:
    """A window without its offsets (163k of them must fit in memory) and its labels."""

    input_ids: np.ndarray  # int32, unpadded
    token_type_ids: np.ndarray  # int8
    start: int  # 0 (= [CLS]) when the answer is not inside the window
    end: int


def answer_tokens(window: Window, answer_start: int, answer_end: int) -> tuple[int, int]:
    """The first and last token of ``[answer_start, answer_end)`` in the window, or (0, 0)
    (the [CLS] no-answer label) when the window does not hold all of it."""
    context = [i for i, o in enumerate(window.offsets) if o is not None]
    if answer_start < 0 or not context:
        return 0, 0
    first, last = window.offsets[context[0]], window.offsets[context[-1]]
    assert first is not None and last is not None
    if not (first[0] <= answer_start and last[1] >= answer_end):
        return 0, 0
    s = next((i for i in context if window.offsets[i][1] > answer_start), None)  # type: ignore[index]
    t = next((i for i in reversed(context) if window.offsets[i][0] < answer_end), None)  # type: ignore[index]
    if s is None or t is None or s > t:
        return 0, 0
    return s, t


def build_train_windows(
    tokenizer: WindowTokenizer,
    examples: Sequence[QAExample],
    batch_size: int = 1000,
) -> list[TrainWindow]:
    """Every window of every example, labelled with its answer's tokens or [CLS]."""
    out: list[TrainWindow] = []
    for b in range(0, len(examples), batch_size):
        batch = examples[b : b + batch_size]
        windows = tokenizer.windows([e.question for e in batch], [e.context for e in batch])
        for w in windows:
            ex = batch[w.pair]
            end = ex.answer_start + len(ex.answer_text)
            start_tok, end_tok = answer_tokens(w, ex.answer_start, end)
            out.append(TrainWindow(w.input_ids, w.token_type_ids, start_tok, end_tok))
    return out


def length_bucketed_batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random, bucket_batches: int = 50
) -> list[list[int]]:
    """Shuffled batches of indices of similar length (less padding), in random order.

    Indices are shuffled, cut into chunks of ``bucket_batches * batch_size``, each chunk sorted
    by length and cut into batches; the batches are then shuffled.
    """
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    chunk = batch_size * bucket_batches
    batches: list[list[int]] = []
    for c in range(0, len(idx), chunk):
        part = sorted(idx[c : c + chunk], key=lambda i: lengths[i])
        batches.extend(part[b : b + batch_size] for b in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches
