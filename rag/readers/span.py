"""The span reader: an extractive QA model picks the answer span across all retrieved passages.

The :class:`SpanEngine` reads every passage window in one batched forward pass and returns each
window's best spans by raw logit; here they are mapped to document offsets, trimmed, scored on a
calibrated [0, 1] scale (:mod:`rag.readers.calibration`) and de-duplicated.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from rag.answer import Passage
from rag.config import Settings
from rag.readers.base import Reading, ReadItem, Span, overlaps_kept
from rag.readers.calibration import Calibration, span_features
from rag.readers.engine import SpanEngine, WindowSpans
from rag.readers.model import load_reader_model
from rag.readers.precision import resolve_backend, resolve_precision
from rag.readers.trimming import trim_span
from rag.readers.windows import WindowSpec, WindowTokenizer
from rag.sentences import sentence_around, split_sentences

log = logging.getLogger(__name__)


@dataclass
class Candidate:
    """A decoded span before de-duplication; offsets are in the passage text."""

    passage_index: int
    start: int
    end: int
    logit: float  # raw start + end logit
    features: tuple[float, ...]
    score: float  # calibrated


def select_spans(candidates: list[Candidate], passages: list[Passage], limit: int) -> list[Span]:
    """Up to ``limit`` document-offset spans in candidate order, dropping any that overlaps an
    earlier (better) one of the same document."""
    kept: list[Span] = []
    for c in candidates:
        p = passages[c.passage_index]
        start, end = p.start + c.start, p.start + c.end
        if overlaps_kept(kept, passages, p.doc_id, start, end):
            continue
        kept.append(Span(c.passage_index, start, end, p.text[c.start : c.end], c.score))
        if len(kept) >= limit:
            break
    return kept


class SpanReader:
    """Extractive reader over a SQuAD-style model folder; cheap to build, :meth:`warm_up` loads.

    ``model``: the folder (or hub id); ``spec``: how passages are cut into windows;
    ``max_answer_tokens``: the longest span; ``threshold``: it abstains when the best span's
    calibrated score is under it; ``top_n``: spans returned; ``per_window``: spans decoded per
    window; ``threads``/``precision``/``backend``: see :mod:`rag.readers.precision`;
    ``first_passages``: read only this many of a question's passages first, and the rest only
    when the best answer among them scores under ``first_accept`` (0, the default here: all at
    once, as calibration reads; the service's setting turns it on).
    """

    def __init__(
        self,
        model: str,
        spec: WindowSpec | None = None,
        max_answer_tokens: int = 30,
        threshold: float = Settings.model_fields["abstain_threshold"].default,
        top_n: int = 5,
        per_window: int = 20,
        threads: int | None = None,
        precision: str = "auto",
        backend: str = "auto",
        first_passages: int = 0,
        first_accept: float = Settings.model_fields["reader_first_accept"].default,
    ):
        self.model_name = model
        self.spec = spec or WindowSpec()
        self.max_answer_tokens = max_answer_tokens
        self.threshold = threshold
        self.top_n = top_n
        self.per_window = per_window
        self.threads = threads
        self.backend = resolve_backend(backend, model, precision)
        self.precision = resolve_precision(precision, self.backend)
        self.first_passages = first_passages
        self.first_accept = first_accept
        self.engine: SpanEngine | None = None
        self.calibration = Calibration.fallback()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> SpanReader:
        return cls(
            settings.reader_model,
            spec=settings.window_spec,
            max_answer_tokens=settings.reader_max_answer_tokens,
            threshold=settings.abstain_threshold,
            threads=settings.reader_threads,
            precision=settings.reader_precision,
            backend=settings.reader_backend,
            first_passages=settings.reader_first_passages,
            first_accept=settings.reader_first_accept,
        )

    def warm_up(self) -> None:
        """Load the tokenizer, the model at its precision and the calibration, once."""
        if self.engine is not None:
            return
        with self._lock:
            if self.engine is not None:
                return
            backend = load_reader_model(
                self.model_name, self.precision, self.threads, backend=self.backend
            )
            tokenizer = WindowTokenizer.from_folder(self.model_name, self.spec)
            local = Path(self.model_name).is_dir()
            self.calibration = (
                Calibration.load(self.model_name) if local else Calibration.fallback()
            )
            self.engine = SpanEngine(tokenizer, backend, self.max_answer_tokens)
            log.info(
                "span reader %s loaded (calibration: %s)", self.model_name, self.calibration.source
            )

    def read(self, question: str, passages: list[Passage], first_rank: int = 0) -> Reading:
        """Best spans first (calibrated scores); abstains when the best scores under threshold.
        ``first_rank``: the retrieval rank of ``passages[0]`` (the ``passage_rank`` feature)."""
        return self.read_many([(question, passages, first_rank)])[0]

    def read_many(self, items: list[ReadItem]) -> list[Reading]:
        """:meth:`read` of each item; the windows of all items share the engine's batches.

        With ``first_passages``, an item's first passages are read first; its other passages
        are read only when the best answer among those scores under ``first_accept``, and then
        the answer is decoded from every window, as if all had been read at once."""
        self.warm_up()
        heads = [passages[: self.first_passages or len(passages)] for _, passages, _ in items]
        windows = self._windows(heads, items)
        readings = [
            self._reading(question, head, w, rank)
            for (question, _, rank), head, w in zip(items, heads, windows, strict=True)
        ]
        unsure = [
            n
            for n, ((_, passages, _), head, reading) in enumerate(
                zip(items, heads, readings, strict=True)
            )
            if len(head) < len(passages) and (reading.abstain or reading.score < self.first_accept)
        ]
        if unsure:
            tails = [items[n][1][len(heads[n]) :] for n in unsure]
            for n, tail in zip(
                unsure, self._windows(tails, [items[n] for n in unsure]), strict=True
            ):
                whole = windows[n] + [replace(w, pair=w.pair + len(heads[n])) for w in tail]
                question, passages, rank = items[n]
                readings[n] = self._reading(question, passages, whole, rank)
        return readings

    def _windows(
        self, texts_of: list[list[Passage]], items: list[ReadItem]
    ) -> list[list[WindowSpans]]:
        """Each item's windows over its passages in ``texts_of`` (``pair`` indexes them)."""
        assert self.engine is not None
        questions, texts, first_pair = [], [], []
        for (question, _, _), passages in zip(items, texts_of, strict=True):
            first_pair.append(len(texts))
            questions += [question] * len(passages)
            texts += [p.text for p in passages]
        owner = [n for n, passages in enumerate(texts_of) for _ in passages]
        per_item: list[list[WindowSpans]] = [[] for _ in items]
        for w in self.engine.read(questions, texts, self.per_window, groups=owner):
            n = owner[w.pair]
            per_item[n].append(replace(w, pair=w.pair - first_pair[n]))
        return per_item

    def _reading(
        self, question: str, passages: list[Passage], windows: list[WindowSpans], first_rank: int
    ) -> Reading:
        texts = [p.text for p in passages]
        candidates = self.decode(question, texts, windows, first_rank)
        spans = select_spans(candidates, passages, self.top_n)
        if not spans:
            return Reading([], abstain=True, score=0.0)
        best = spans[0].score
        return Reading(spans, abstain=best < self.threshold, score=best)

    def forward(self, question: str, texts: list[str]) -> list[WindowSpans]:
        """The best spans of every window of every text, from one batched forward pass."""
        self.warm_up()
        assert self.engine is not None
        return self.engine.read([question] * len(texts), texts, self.per_window)

    def decode(
        self, question: str, texts: list[str], windows: list[WindowSpans], first_rank: int = 0
    ) -> list[Candidate]:
        """Candidate spans of ``windows`` (``pair`` indexes ``texts``), trimmed and calibrated,
        best first (may overlap); the texts' retrieval ranks start at ``first_rank``."""
        raw = [(w, span) for w in windows for span in w.spans]
        if not raw:
            return []
        best = max(span[0] for _, span in raw)
        min_null = min(w.null for w in windows)
        readable = [i for i, t in enumerate(texts) if t.strip()]
        rank = {i: r for r, i in enumerate(readable, first_rank)}  # an empty one takes no rank
        sentences: dict[int, list[tuple[int, int]]] = {}
        out: list[Candidate] = []
        for w, (logit, start, end) in raw:
            text = texts[w.pair]
            start, end = trim_span(text, start, end)
            if end <= start or "\n\n" in text[start:end]:
                continue  # empty, or running across a paragraph break: not an answer
            if w.pair not in sentences:
                sentences[w.pair] = split_sentences(text)
            a, b = sentence_around(sentences[w.pair], start, end)
            features = span_features(
                question,
                text[start:end],
                text[a:b],
                logit,
                w.null,
                min_null,
                w.norm,
                best,
                rank[w.pair],
            )
            out.append(
                Candidate(w.pair, start, end, logit, features, self.calibration.score(features))
            )
        out.sort(key=lambda c: (-c.score, -c.logit))
        return out
