"""The span reader: an extractive QA model picks the answer span across all retrieved passages.

One batched forward pass scores every passage window; candidate spans are ranked with raw
start + end logits (comparable across windows, unlike a per-window softmax), mapped back to
document offsets, de-duplicated, and scored on a calibrated [0, 1] scale by a logistic function
of a few features (see :func:`span_features`). The logistic parameters live beside the weights in
``<model folder>/calibration.json`` (written by ``python -m rag.readers.calibrate``); without that
file (e.g. a hub model) the score falls back to ``sigmoid(margin_window)``, the span's lead over
its window's no-answer score.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from rag.answer import Passage
from rag.config import ReaderPrecision, Settings
from rag.readers.base import Reading, Span, overlaps_kept
from rag.readers.spans import context_mask, top_spans
from rag.readers.words import overlap
from rag.sentences import split_sentences

log = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
FEATURES = (
    "margin_window",
    "margin_min",
    "gap",
    "type_fit",
    "log_p_window",
    "overlap",
    "passage_rank",
)
FALLBACK_CALIBRATION = {"weights": [1.0] + [0.0] * (len(FEATURES) - 1), "bias": 0.0}
PRECISIONS: tuple[str, ...] = get_args(ReaderPrecision)  # auto, fp32, bf16, int8
OVERLAP_STEM = 5  # characters kept per word when matching question words in the sentence
MAX_QUESTION_SHARE = 0.5  # of ``max_length``: longer questions are cut (rare)

# -- answer types ----------------------------------------------------------------------------
_NUMERIC_Q = re.compile(
    r"\b(how (many|much|long|old|far|often|big|large|tall|high)|when|what (year|date|time|"
    r"percentage|percent|century|decade|day|month|age|number)|which (year|century|decade|day|"
    r"month)|in what year)\b",
    re.IGNORECASE,
)
_WEEKDAY_Q = re.compile(r"\b(day of the week|week ?day)\b", re.IGNORECASE)
_WEEKDAY_A = re.compile(
    r"\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?\b", re.IGNORECASE
)
_PERSON_Q = re.compile(r"^\W*(who|whom|whose)\b|\b(by whom|to whom)\b", re.IGNORECASE)
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    "sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
    "hundred|thousand|million|billion|trillion|dozen|half|once|twice|first|second|third|"
    "century|centuries|decade|decades|year|years|daily|weekly|monthly|annually"
)
_NUMERIC_A = re.compile(rf"\d|\b({_MONTHS}|{_NUMBER_WORDS})\b", re.IGNORECASE)
_DATE_A = re.compile(rf"\d|^\W*({_MONTHS})\b", re.IGNORECASE)
_CAPITALISED_A = re.compile(r"^\W*(the\s+)?[A-Z]")

# -- trimming --------------------------------------------------------------------------------
_TRAIL = set(",;:!?")
_QUOTES = {'"': '"', "“": "”", "‘": "’", "'": "'", "(": ")", "[": "]", "«": "»"}
_CLOSERS = {v: k for k, v in _QUOTES.items()}


def answer_type_fit(question: str, answer: str) -> int:
    """+1 when the answer has the type the question asks for, -1 when not, 0 when no type."""
    if _WEEKDAY_Q.search(question):  # first: the numeric pattern also matches "what day"
        return 1 if _WEEKDAY_A.search(answer) else -1
    if _PERSON_Q.search(question):
        person = _CAPITALISED_A.match(answer) and not _DATE_A.search(answer)
        return 1 if person else -1
    if _NUMERIC_Q.search(question):
        return 1 if _NUMERIC_A.search(answer) else -1
    return 0


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """``[start, end)`` of ``text`` without outer whitespace, trailing punctuation, lone quotes.

    Only narrows the span, so ``text[start:end]`` stays a verbatim slice. A final ``.`` is kept
    after abbreviations (``U.S.``, ``J.``) and dropped otherwise.
    """
    for _ in range(4):
        before = (start, end)
        while start < end and (text[start].isspace() or text[start] in ",;:."):
            start += 1
        while end > start and (text[end - 1].isspace() or text[end - 1] in _TRAIL):
            end -= 1
        if end > start and text[end - 1] == "." and not _is_abbreviation(text[start:end]):
            end -= 1
        span = text[start:end]
        if len(span) > 2 and span[0] in _QUOTES and span[-1] == _QUOTES[span[0]]:
            start, end = start + 1, end - 1  # wrapped in a pair: the words inside
        elif span and span[0] in _QUOTES and _QUOTES[span[0]] not in span[1:]:
            start += 1
        elif span and span[-1] in _CLOSERS and _CLOSERS[span[-1]] not in span[:-1]:
            end -= 1
        if (start, end) == before:
            break
    return start, end


def _is_abbreviation(span: str) -> bool:
    last = span.split()[-1] if span.split() else ""
    return last.count(".") > 1 or (len(last) == 2 and last[0].isupper())


# -- calibration -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Calibration:
    """``score = sigmoid(bias + weights . features)``; features named in :data:`FEATURES`."""

    weights: tuple[float, ...]
    bias: float
    threshold: float | None = None  # the threshold chosen on held-out data (informative)
    source: str = "fallback"

    def score(self, features: tuple[float, ...]) -> float:
        z = self.bias + sum(w * f for w, f in zip(self.weights, features, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    @classmethod
    def fallback(cls) -> Calibration:
        return cls(tuple(FALLBACK_CALIBRATION["weights"]), FALLBACK_CALIBRATION["bias"])

    @classmethod
    def load(cls, model_dir: str | Path) -> Calibration:
        """The folder's ``calibration.json``, or :meth:`fallback` when absent or unusable."""
        path = Path(model_dir) / CALIBRATION_FILE
        if not path.is_file():
            return cls.fallback()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if tuple(data["features"]) != FEATURES:
                raise ValueError(f"features {data['features']} != {list(FEATURES)}")
            return cls(
                tuple(float(w) for w in data["weights"]),
                float(data["bias"]),
                data.get("threshold"),
                str(path),
            )
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring %s (%s); using the fallback calibration", path, exc)
            return cls.fallback()


# -- decoding --------------------------------------------------------------------------------
@dataclass
class Candidate:
    """A decoded span before calibration; offsets are in the passage text."""

    passage_index: int
    window: int
    start: int
    end: int
    logit: float  # raw start + end logit
    features: tuple[float, ...] = ()
    score: float = 0.0


@dataclass
class Logits:
    """One forward pass over the windows of a question's passages."""

    start: Any  # torch.Tensor [windows, tokens]
    end: Any
    null: list[float]  # start[0] + end[0] per window (inf for a window without context)
    window_passage: list[int]  # passage index of each window
    offsets: list[list[tuple[int, int] | None]]  # char offsets of context tokens, else None
    context: Any  # torch.Tensor [windows, tokens], bool: the :func:`context_mask` of ``offsets``
    norm: list[float]  # logsumexp of start + of end logits over [CLS] and context, per window


def span_features(
    question: str,
    answer: str,
    sentence: str,
    logit: float,
    logits: Logits,
    window: int,
    best: float,
    rank: int,
) -> tuple[float, ...]:
    """The calibration features of one span, in :data:`FEATURES` order.

    ``margin_window``: lead of the span's logit over its window's no-answer logit;
    ``margin_min``: lead over the lowest no-answer logit of all windows; ``gap``: how far it
    trails the best span of all windows; ``type_fit``: :func:`answer_type_fit`;
    ``log_p_window``: its log-probability under its window's start and end softmaxes;
    ``overlap``: the share of the question's content words found in the span's ``sentence``;
    ``passage_rank``: ``1 / (1 + rank)`` of the span's passage, the reader's passages coming
    best-first from retrieval.
    """
    return (
        logit - logits.null[window],
        logit - min(logits.null),
        best - logit,
        float(answer_type_fit(question, answer)),
        logit - logits.norm[window],
        overlap(question, sentence, OVERLAP_STEM),
        1.0 / (1 + rank),
    )


def sentence_around(sentences: list[tuple[int, int]], start: int, end: int) -> tuple[int, int]:
    """``[start, end)`` widened to the sentences (``(start, end)`` pairs, in order) it touches."""
    a = next((s for s, e in sentences if s <= start < e), start)
    b = next((e for s, e in sentences if s < end <= e), end)
    return min(a, start), max(b, end)


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX): Linux flags only."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def resolve_precision(precision: str) -> str:
    """``auto``: ``bf16`` where the CPU computes it natively (about 1.5x faster reading, the
    same answers on the dev set), else ``fp32``; any other value as it is."""
    if precision != "auto":
        return precision
    return "bf16" if cpu_has_bf16() else "fp32"


def _to_bf16(model: Any) -> Any:
    """The encoder's weights in bfloat16, cast once (autocast re-casts them on every call); the
    span head stays float32 and gets float32 input, so logits keep full precision."""
    import torch

    head = getattr(model, "qa_outputs", None)  # the span head of transformers' QA models
    if head is None:
        return model.to(torch.bfloat16)  # an unknown layout: all of it (logits cast later)
    getattr(model, model.base_model_prefix).to(torch.bfloat16)
    head.register_forward_pre_hook(lambda _module, args: tuple(a.float() for a in args))
    return model


def _quantize(model: Any) -> Any:
    """int8 dynamic quantisation of the encoder's Linear layers (the span head stays float)."""
    import torch

    base = getattr(model, model.base_model_prefix, model)
    with warnings.catch_warnings():  # deprecated in torch, still the simplest CPU int8 path
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(base, {torch.nn.Linear}, torch.qint8)
    setattr(model, model.base_model_prefix, quantized)
    return model


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
    """Extractive reader over a SQuAD-style model; cheap to build, :meth:`warm_up` loads it."""

    def __init__(
        self,
        model: str,
        max_length: int = 384,
        stride: int = 128,
        max_answer_tokens: int = 30,
        threshold: float = 0.5,
        top_n: int = 5,
        per_window: int = 20,
        threads: int | None = None,
        precision: str = "auto",
    ):
        self.model_name = model
        self.max_length = max_length
        self.stride = min(stride, max_length // 2)
        self.max_answer_tokens = max_answer_tokens
        self.threshold = threshold
        self.top_n = top_n
        self.per_window = per_window
        self.threads = threads
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: use {', '.join(PRECISIONS)}")
        self.precision = resolve_precision(precision)
        self.tokenizer: Any = None
        self.model: Any = None
        self.calibration = Calibration.fallback()
        self._lock = threading.Lock()
        self._forward_lock = threading.Lock()  # one forward at a time: no CPU oversubscription

    @classmethod
    def from_settings(cls, settings: Settings) -> SpanReader:
        return cls(
            settings.reader_model,
            max_length=settings.reader_max_length,
            stride=settings.reader_stride,
            max_answer_tokens=settings.reader_max_answer_tokens,
            threshold=settings.abstain_threshold,
            threads=settings.reader_threads,
            precision=settings.reader_precision,
        )

    # -- loading ---------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Load the tokenizer, the model (float32, eval mode) and the calibration, once."""
        if self.model is not None:
            return
        with self._lock:
            if self.model is not None:
                return
            import torch
            from transformers import AutoModelForQuestionAnswering, AutoTokenizer

            if self.threads:
                torch.set_num_threads(self.threads)
            local = Path(self.model_name).is_dir()
            tokenizer = AutoTokenizer.from_pretrained(self.model_name, local_files_only=local)
            if not tokenizer.is_fast:
                raise RuntimeError(f"{self.model_name}: a fast tokenizer is required (offsets)")
            model = AutoModelForQuestionAnswering.from_pretrained(
                self.model_name, dtype=torch.float32, local_files_only=local
            )
            model.eval()
            if self.precision == "int8":
                model = _quantize(model)
            elif self.precision == "bf16":
                model = _to_bf16(model)
            self.calibration = (
                Calibration.load(self.model_name) if local else Calibration.fallback()
            )
            self.tokenizer = tokenizer
            self.model = model
            log.info(
                "span reader %s loaded (calibration: %s)", self.model_name, self.calibration.source
            )

    # -- reading ---------------------------------------------------------------------------
    def read(self, question: str, passages: list[Passage], first_rank: int = 0) -> Reading:
        """Best spans first (calibrated scores); abstains when the best scores under threshold.
        ``first_rank``: the retrieval rank of ``passages[0]`` (the ``passage_rank`` feature)."""
        if not passages:
            return Reading([], abstain=True, score=0.0)
        self.warm_up()
        logits = self.forward(question, [p.text for p in passages])
        candidates = self.decode(question, [p.text for p in passages], logits, first_rank)
        spans = select_spans(candidates, passages, self.top_n)
        if not spans:
            return Reading([], abstain=True, score=0.0)
        best = spans[0].score
        return Reading(spans, abstain=best < self.threshold, score=best)

    def forward(self, question: str, texts: list[str]) -> Logits:
        """Start/end logits for every window of every passage, in ONE batched forward pass."""
        import torch

        with self._forward_lock:  # the fast tokenizer's settings are not thread-safe either
            question, n_question = self._fit_question(question)
            enc = self.tokenizer(
                [question] * len(texts),
                texts,
                truncation="only_second",
                max_length=self.max_length,
                # the overlap must leave room for new context tokens in each window
                stride=max(0, min(self.stride, self.max_length - n_question - 4)),
                return_overflowing_tokens=True,
                return_offsets_mapping=True,
                padding="longest",
                return_tensors="pt",
            )
            inputs = {
                k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc
            }
            with torch.inference_mode():
                out = self.model(**inputs)
        offsets: list[list[tuple[int, int] | None]] = []
        for w in range(enc["input_ids"].shape[0]):
            seq = enc.sequence_ids(w)
            offsets.append(
                [
                    (int(a), int(b)) if s == 1 and b > a else None
                    for (a, b), s in zip(enc["offset_mapping"][w].tolist(), seq, strict=True)
                ]
            )
        start, end = out.start_logits.float(), out.end_logits.float()
        # A window without context (an empty passage) has no spans and no say in min(null).
        null = [
            n if any(o is not None for o in offs) else math.inf
            for n, offs in zip((start[:, 0] + end[:, 0]).tolist(), offsets, strict=True)
        ]
        context = context_mask(offsets, start.shape[1])
        allowed = context.clone()
        allowed[:, 0] = True  # [CLS], the no-answer position
        norm = (
            start.masked_fill(~allowed, float("-inf")).logsumexp(1)
            + end.masked_fill(~allowed, float("-inf")).logsumexp(1)
        ).tolist()
        windows = enc["overflow_to_sample_mapping"].tolist()
        return Logits(start, end, null, windows, offsets, context, norm)

    def decode(
        self, question: str, texts: list[str], logits: Logits, first_rank: int = 0
    ) -> list[Candidate]:
        """Candidate spans of every window, trimmed and calibrated, best first (may overlap);
        the passages' retrieval ranks start at ``first_rank``."""
        raw = self._top_spans(logits)
        if not raw:
            return []
        best = max(c.logit for c in raw)
        readable = [i for i, t in enumerate(texts) if t.strip()]
        rank = {i: r for r, i in enumerate(readable, first_rank)}  # an empty one takes no rank
        sentences: dict[int, list[tuple[int, int]]] = {}
        out: list[Candidate] = []
        for c in raw:
            text = texts[c.passage_index]
            c.start, c.end = trim_span(text, c.start, c.end)
            if c.end <= c.start or "\n\n" in text[c.start : c.end]:
                continue  # empty, or running across a paragraph break: not an answer
            if c.passage_index not in sentences:
                sentences[c.passage_index] = split_sentences(text)
            a, b = sentence_around(sentences[c.passage_index], c.start, c.end)
            c.features = span_features(
                question,
                text[c.start : c.end],
                text[a:b],
                c.logit,
                logits,
                c.window,
                best,
                rank[c.passage_index],
            )
            c.score = self.calibration.score(c.features)
            out.append(c)
        out.sort(key=lambda c: (-c.score, -c.logit))
        return out

    # -- helpers ---------------------------------------------------------------------------
    def _fit_question(self, question: str) -> tuple[str, int]:
        """The question cut to at most half of ``max_length`` tokens, and its token count."""
        limit = int(self.max_length * MAX_QUESTION_SHARE)
        enc = self.tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        if len(offsets) <= limit:
            return question, len(offsets)
        return question[: offsets[limit - 1][1]], limit

    def _top_spans(self, logits: Logits) -> list[Candidate]:
        """The ``per_window`` best spans of every window (see :func:`top_spans`)."""
        best = top_spans(
            logits.start, logits.end, logits.context, self.max_answer_tokens, self.per_window
        )
        out: list[Candidate] = []
        for w, spans in enumerate(best):
            offs = logits.offsets[w]
            for value, i, j in spans:
                a, b = offs[i], offs[j]
                assert a is not None and b is not None
                out.append(Candidate(logits.window_passage[w], w, a[0], b[1], value))
        return out
