"""Reader windows: (question, text) pairs cut into overlapping token windows with offsets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
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


class WindowTokenizer:
    """Cuts (question, text) pairs into windows with the folder's fast tokenizer
    (``tokenizer.json``, read by the ``tokenizers`` library: no transformers, no torch)."""

    def __init__(self, tokenizer_json: str | Path, spec: WindowSpec | None = None):
        from tokenizers import Tokenizer

        self.spec = spec or WindowSpec()
        self.question_tokens = min(self.spec.max_question_tokens, self.spec.max_length // 2)
        self._plain = Tokenizer.from_file(str(tokenizer_json))
        self._plain.no_truncation()
        self._plain.no_padding()
        self._pairs = Tokenizer.from_file(str(tokenizer_json))
        self._pairs.no_padding()
        # The overlap must leave room for new context tokens in each window.
        stride = min(self.spec.stride, self.spec.max_length - self.question_tokens - 4)
        self._pairs.enable_truncation(
            self.spec.max_length, stride=max(0, stride), strategy="only_second"
        )
        self.pad_id = self._plain.token_to_id("[PAD]") or 0

    @classmethod
    def from_folder(cls, folder: str | Path, spec: WindowSpec | None = None) -> WindowTokenizer:
        return cls(Path(folder) / "tokenizer.json", spec)

    def cut_questions(self, questions: Sequence[str]) -> list[str]:
        """Questions longer than the spec's question tokens cut at a token boundary."""
        limit = self.question_tokens
        encs = self._plain.encode_batch(list(questions), add_special_tokens=False)
        return [
            q if len(e.offsets) <= limit else q[: e.offsets[limit - 1][1]]
            for q, e in zip(questions, encs, strict=True)
        ]

    def windows(
        self, questions: Sequence[str], texts: Sequence[str], batch_size: int = 1000
    ) -> list[Window]:
        """Every window of every ``(questions[i], texts[i])`` pair, in pair order."""
        if len(questions) != len(texts):
            raise ValueError(f"{len(questions)} questions for {len(texts)} texts")
        out: list[Window] = []
        for b in range(0, len(texts), batch_size):
            qs = self.cut_questions(questions[b : b + batch_size])
            encs = self._pairs.encode_batch(list(zip(qs, texts[b : b + batch_size], strict=True)))
            for pair, enc in enumerate(encs, b):
                for e in (enc, *enc.overflowing):
                    offsets: Offsets = [
                        (a, z) if s == 1 and z > a else None
                        for (a, z), s in zip(e.offsets, e.sequence_ids, strict=True)
                    ]
                    out.append(
                        Window(
                            pair,
                            np.asarray(e.ids, dtype=np.int32),
                            np.asarray(e.type_ids, dtype=np.int8),
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
