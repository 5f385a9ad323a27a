"""The span engine: (question, text) pairs -> windows -> batched forwards -> each window's best
spans, scored by raw ``start + end`` logit (comparable across windows, unlike a per-window
softmax). The reader, the calibration fit and ``eval-reader`` all decode through it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from rag.readers.model import Backend
from rag.readers.windows import Window, WindowTokenizer, collate


@dataclass
class WindowSpans:
    """What one window says: its best spans and its no-answer evidence."""

    pair: int  # which (question, text) pair the window belongs to
    null: float  # start + end logit of [CLS]; inf for a window without text tokens
    norm: float  # logsumexp of start logits + of end logits over [CLS] and the text tokens
    spans: list[tuple[float, int, int]]  # (start + end logit, char start, char end), best first


def top_spans(
    start: np.ndarray, end: np.ndarray, context: np.ndarray, max_answer_tokens: int, k: int
) -> list[list[tuple[float, int, int]]]:
    """Per window, up to ``k`` best ``(start + end logit, start token, end token)``, best first.

    A span needs ``start <= end < start + max_answer_tokens`` with both tokens in ``context``
    (bool ``[windows, tokens]``); only that band of pairs is ever computed.
    """
    n_win, n_tok = start.shape
    band = max(1, min(max_answer_tokens, n_tok))
    s = np.where(context, start, -np.inf).astype(np.float32)
    e = np.where(context, end, -np.inf).astype(np.float32)
    e = np.concatenate([e, np.full((n_win, band - 1), -np.inf, np.float32)], axis=1)
    pair = (s[:, :, None] + sliding_window_view(e, band, axis=1)).reshape(n_win, -1)
    k = min(k, pair.shape[1])
    idx = np.argpartition(-pair, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(pair, idx, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    out: list[list[tuple[float, int, int]]] = []
    for w in range(n_win):
        spans = []
        for r in order[w]:
            value = float(vals[w, r])
            if value == -np.inf:
                break
            i, d = divmod(int(idx[w, r]), band)
            spans.append((value, i, i + d))
        out.append(spans)
    return out


def _logsumexp(x: np.ndarray, keep: np.ndarray) -> np.ndarray:
    x = np.where(keep, x, -np.inf)
    m = x.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]


class SpanEngine:
    """Decodes spans for any question-answering backend (torch or ONNX Runtime)."""

    def __init__(
        self,
        tokenizer: WindowTokenizer,
        backend: Backend,
        max_answer_tokens: int = 30,
        batch_size: int = 16,
        pad_slack: int | None = 8,
    ):
        self.tokenizer = tokenizer
        self.backend = backend
        self.max_answer_tokens = max_answer_tokens
        self.batch_size = batch_size
        self.pad_slack = pad_slack

    def windows(self, questions: Sequence[str], texts: Sequence[str]) -> list[Window]:
        return self.tokenizer.windows(questions, texts)

    def read(
        self,
        questions: Sequence[str],
        texts: Sequence[str],
        per_window: int,
        groups: Sequence[int] | None = None,
    ) -> list[WindowSpans]:
        """The ``per_window`` best spans of every window of every ``(questions[i], texts[i])``
        pair, in window order (``pair`` is ``i``). Windows are batched by length, at most
        ``batch_size`` a forward (16: the fastest on 2 cores for 1 to 8 questions' windows),
        and only windows within ``pad_slack`` tokens of each other (8: a padded token costs as
        much as a real one, a forward little more, so a question's read is ~20 % faster than
        padding its windows to the longest). A backend that scales per batch never gets two of
        ``groups`` (a group per pair; default: one in all) in a batch, so what a caller reads
        does not depend on what others read beside it, and reads a group's windows padded
        together: int8 scales fitted to single windows cost answers (.005 F1 on all of
        squad-ask, docs/studies/first-read.md). A window without text is not run."""
        windows = self.windows(questions, texts)
        out: list[WindowSpans | None] = [None] * len(windows)
        batched: dict[int, list[int]] = {}
        for w, window in enumerate(windows):
            if not window.has_context:  # no spans, and no say in the smallest null
                out[w] = WindowSpans(window.pair, float("inf"), 0.0, [])
                continue
            key = groups[window.pair] if groups is not None and self.backend.scales_per_batch else 0
            batched.setdefault(key, []).append(w)
        for members in batched.values():
            for idx in self._batches(
                sorted(members, key=lambda w: len(windows[w].input_ids)), windows
            ):
                batch = [windows[w] for w in idx]
                for w, spans in zip(idx, self._read_batch(batch, per_window), strict=True):
                    out[w] = spans
        return [s for s in out if s is not None]

    def _batches(self, order: list[int], windows: list[Window]) -> list[list[int]]:
        """``order`` (shortest first) cut into batches of at most ``batch_size`` whose longest
        window is at most ``pad_slack`` tokens longer than its shortest (any, for a backend
        that scales per batch)."""
        slack = None if self.backend.scales_per_batch else self.pad_slack
        out: list[list[int]] = []
        for w in order:
            if (
                out
                and len(out[-1]) < self.batch_size
                and (
                    slack is None
                    or len(windows[w].input_ids) - len(windows[out[-1][0]].input_ids) <= slack
                )
            ):
                out[-1].append(w)
            else:
                out.append([w])
        return out

    def _read_batch(self, batch: list[Window], per_window: int) -> list[WindowSpans]:
        start, end = self.backend.forward(collate(batch, self.tokenizer.pad_id))
        context = np.zeros(start.shape, dtype=bool)
        for r, w in enumerate(batch):
            context[r, : len(w.offsets)] = [o is not None for o in w.offsets]
        allowed = context.copy()
        allowed[:, 0] = True  # [CLS], the no-answer position
        norm = _logsumexp(start, allowed) + _logsumexp(end, allowed)
        null = start[:, 0] + end[:, 0]
        tops = top_spans(start, end, context, self.max_answer_tokens, per_window)
        out = []
        for r, w in enumerate(batch):
            spans = [(v, w.offsets[i][0], w.offsets[j][1]) for v, i, j in tops[r]]  # type: ignore[index]
            out.append(WindowSpans(w.pair, float(null[r]), float(norm[r]), spans))
        return out
