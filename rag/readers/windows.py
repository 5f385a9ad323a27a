"""Reader windows: (question, text) pairs cut into overlapping token windows with offsets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Offsets = list[tuple[int, int] | None]  # per token: (char start, char end) in the text, else None


@dataclass(frozen=True)
class WindowSpec:
    """How a pair is cut: one set of defaults for serving, calibration, training and eval."""

    max_length: int = 384  # tokens per window, question and special tokens included
    stride: int = 128  # context tokens shared by consecutive windows of one text
    max_question_tokens: int = 64  # longer questions are cut (rare)


@dataclass
class Window:
    """One window of pair ``pair``: unpadded token ids and the text offsets of its tokens."""

    pair: int
    input_ids: np.ndarray  # int32
    token_type_ids: np.ndarray  # int8
    offsets: Offsets  # None outside the text (question, special tokens)

    @property
    def has_context(self) -> bool:
        return any(o is not None for o in self.offsets)


def cut_questions(tokenizer: Any, questions: Sequence[str], max_tokens: int) -> list[str]:
    """Questions longer than ``max_tokens`` word pieces cut at a token boundary."""
    enc = tokenizer(list(questions), add_special_tokens=False, return_offsets_mapping=True)
    return [
        q if len(offs) <= max_tokens else q[: offs[max_tokens - 1][1]]
        for q, offs in zip(questions, enc["offset_mapping"], strict=True)
    ]


def make_windows(
    tokenizer: Any,
    questions: Sequence[str],
    texts: Sequence[str],
    spec: WindowSpec | None = None,
    batch_size: int = 1000,
) -> list[Window]:
    """Every window of every ``(questions[i], texts[i])`` pair, in pair order."""
    if len(questions) != len(texts):
        raise ValueError(f"{len(questions)} questions for {len(texts)} texts")
    spec = spec or WindowSpec()
    out: list[Window] = []
    q_tokens = min(spec.max_question_tokens, spec.max_length // 2)
    # The overlap must leave room for new context tokens in each window.
    stride = max(0, min(spec.stride, spec.max_length - q_tokens - 4))
    for b in range(0, len(texts), batch_size):
        qs = cut_questions(tokenizer, questions[b : b + batch_size], q_tokens)
        enc = tokenizer(
            qs,
            list(texts[b : b + batch_size]),
            truncation="only_second",
            max_length=spec.max_length,
            stride=stride,
            padding=False,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            return_token_type_ids=True,
        )
        for w, pair in enumerate(enc["overflow_to_sample_mapping"]):
            seq = enc.sequence_ids(w)
            offsets: Offsets = [
                (int(a), int(z)) if s == 1 and z > a else None
                for (a, z), s in zip(enc["offset_mapping"][w], seq, strict=True)
            ]
            out.append(
                Window(
                    b + pair,
                    np.asarray(enc["input_ids"][w], dtype=np.int32),
                    np.asarray(enc["token_type_ids"][w], dtype=np.int8),
                    offsets,
                )
            )
    return out


def collate(windows: Sequence[Any], pad_id: int = 0, multiple: int = 8) -> dict[str, np.ndarray]:
    """A batch of windows padded to its longest (rounded up to ``multiple``), as int64 arrays."""
    n = max(len(w.input_ids) for w in windows)
    n = -(-n // multiple) * multiple
    ids = np.full((len(windows), n), pad_id, dtype=np.int64)
    tt = np.zeros((len(windows), n), dtype=np.int64)
    am = np.zeros((len(windows), n), dtype=np.int64)
    for r, w in enumerate(windows):
        k = len(w.input_ids)
        ids[r, :k] = w.input_ids
        tt[r, :k] = w.token_type_ids
        am[r, :k] = 1
    return {"input_ids": ids, "token_type_ids": tt, "attention_mask": am}
