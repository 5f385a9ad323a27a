"""The ask pipeline: question -> retrieve -> read -> :class:`Answer`."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

from embeddings.encoder import Encoder
from rag.answer import Answer, Citation, Passage, Timings
from rag.attribution import named_documents, split_attribution
from rag.config import RetrievalMode, Settings, get_settings
from rag.documents import Document
from rag.passages import focus_sentences, merge_adjacent
from rag.readers.base import Reader, Reading, Span, overlaps_kept
from rag.readers.words import content_words
from rag.retrieval import Hit, Retriever
from rag.sentences import sentence_around, split_sentences
from rag.store import IndexStore, open_index

log = logging.getLogger(__name__)


# What a pipeline may change without reloading its index or reader (see with_settings).
ASK_TIME_SETTINGS = frozenset(
    ["retrieval_mode", "top_k", "second_pass_top_k", "candidates", "fusion", "rrf_k"]
    + ["dense_weight", "bm25_weight", "lexical_evidence", "lexical_weight", "lexical_candidates"]
    + ["auto_lexical_min_chunks", "merge_passages"]
    + ["reading_context", "reading_context_sentences", "attribution"]
)


class QuestionError(ValueError):
    """The question cannot be asked as it is; the message says why."""


@dataclass(frozen=True)
class Plan:
    """What retrieval searches with, what the reader reads, and the documents the question
    names (retrieval ranks their chunks first; None: no preference)."""

    search: str
    read: str
    scope: set[str] | None = None


@dataclass(frozen=True)
class Ask:
    """One question as asked: its text, and the retrieval mode and passages to read (None:
    the settings')."""

    question: str
    mode: RetrievalMode | None = None
    top_k: int | None = None


def validate_question(question: str, max_chars: int) -> str:
    """The question stripped of outer whitespace, or :class:`QuestionError`."""
    if not isinstance(question, str) or not question.strip():
        raise QuestionError("the question is empty: type a question in plain words")
    question = question.strip()
    if len(question) > max_chars:
        raise QuestionError(
            f"the question is {len(question)} characters long; the limit is {max_chars}"
        )
    try:
        question.encode("utf-8")
    except UnicodeEncodeError:  # a lone UTF-16 surrogate, or undecodable bytes from argv
        raise QuestionError(
            "the question holds characters that are not valid text (a lone UTF-16 surrogate or "
            "invalid UTF-8 bytes): send it as UTF-8"
        ) from None
    if not content_words(question):
        raise QuestionError(
            "the question has no word to look up (only words such as 'what', 'is', 'the', or "
            "single characters): ask about something the documents may mention"
        )
    return question


def make_reader(settings: Settings, encoder: Encoder) -> Reader:
    """The reader the settings name (``span`` is the trained model, ``sentence`` the baseline)."""
    if settings.reader == "sentence":
        from rag.readers.sentence import SentenceReader

        return SentenceReader.from_settings(settings, encoder)
    from rag.readers.span import SpanReader

    return SpanReader.from_settings(settings)


class AskPipeline:
    """Cheap to construct; :meth:`warm_up` loads the index and models once; then :meth:`ask`."""

    def __init__(
        self,
        settings: Settings | None = None,
        encoder: Encoder | None = None,
        reader: Reader | None = None,
    ):
        self.settings = settings or get_settings()
        self.encoder = encoder or Encoder.from_settings(self.settings)
        self.reader = reader
        self.store: IndexStore | None = None
        self.retriever: Retriever | None = None

    @property
    def ready(self) -> bool:
        return self.retriever is not None

    def warm_up(self, rebuild: bool = False) -> None:
        """Load models and open (or build) the index; repeated calls do nothing."""
        if self.ready and not rebuild:
            return
        s = self.settings
        self.encoder.warm_up()
        self.store = open_index(s, self.encoder, rebuild=rebuild)
        self.retriever = Retriever.from_settings(s, self.store, self.encoder)
        if self.reader is None:
            self.reader = make_reader(s, self.encoder)
        self.reader.warm_up()

    def with_settings(self, **updates: object) -> AskPipeline:
        """A pipeline asking under other retrieval settings (:data:`ASK_TIME_SETTINGS`) that
        shares this one's warm encoder, index and reader: how evaluations compare settings."""
        if unknown := set(updates) - ASK_TIME_SETTINGS:
            raise ValueError(f"not an ask-time setting: {', '.join(sorted(unknown))}")
        self.warm_up()
        assert self.store is not None
        other = AskPipeline(self.settings.model_copy(update=updates), self.encoder, self.reader)
        other.store = self.store
        other.retriever = Retriever.from_settings(other.settings, self.store, self.encoder)
        return other

    # -- documents -----------------------------------------------------------------------
    @property
    def documents(self) -> list[Document]:
        self.warm_up()
        assert self.store is not None
        return list(self.store.documents.values())

    def document(self, doc_id: str) -> Document | None:
        self.warm_up()
        assert self.store is not None
        return self.store.documents.get(doc_id)

    def chunk_count(self, doc_id: str) -> int:
        self.warm_up()
        assert self.store is not None
        return self.store.chunk_counts().get(doc_id, 0)

    # -- asking --------------------------------------------------------------------------
    def search(
        self, query: str, mode: RetrievalMode | None = None, top_k: int | None = None
    ) -> list[Passage]:
        """The top passages for a query (chunks that touch merged, see :func:`merge_adjacent`)."""
        query = validate_question(query, self.settings.max_question_chars)
        return self._passages(self._hits(query, mode, top_k or self.settings.top_k), query)

    def ask(
        self, question: str, mode: RetrievalMode | None = None, top_k: int | None = None
    ) -> Answer:
        """Answer a question from the documents, or abstain (:class:`QuestionError` when it
        cannot be asked).

        When the reader abstains over the ``top_k`` passages and ``second_pass_top_k`` is more,
        it reads the passages that the deeper ranking adds, so only unsure questions pay for it.
        """
        answer = self.ask_many([Ask(question, mode, top_k)])[0]
        if isinstance(answer, QuestionError):
            raise answer
        return answer

    def ask_many(self, asks: list[Ask]) -> list[Answer | QuestionError]:
        """:meth:`ask` of each, in order (a :class:`QuestionError` in place of a question that
        cannot be asked). The questions are embedded in one batch and their passages read in
        shared forward passes: how the service answers concurrent questions. Each answer's
        timings are those of the batch's stages."""
        out: list[Answer | QuestionError | None] = []
        todo: list[tuple[int, str, RetrievalMode, int]] = []
        for a in asks:
            try:
                question = validate_question(a.question, self.settings.max_question_chars)
            except QuestionError as exc:
                out.append(exc)
                continue
            k = a.top_k or self.settings.top_k
            todo.append((len(out), question, a.mode or self.settings.retrieval_mode, k))
            out.append(None)  # answered below
        if not todo:
            return out  # type: ignore[return-value]
        self.warm_up()
        assert self.retriever is not None and self.reader is not None
        assert self.store is not None
        with self.store.lock:  # an update waits for this batch, which sees one index
            self.store.refresh()
            t0 = time.perf_counter()
            depth = self.settings.second_pass_top_k
            plans = [self._plan(q) for _, q, _, _ in todo]
            hits = self.retriever.search_many(
                [p.search for p in plans],
                [max(k, depth) for *_, k in todo],
                [m for _, _, m, _ in todo],
                [p.scope for p in plans],
            )
            read_as = [p.read for p in plans]
            passages = [
                self._passages(h[:k], q) for h, q, (*_, k) in zip(hits, read_as, todo, strict=True)
            ]
            t1 = time.perf_counter()
            readings = self.reader.read_many(
                [(q, p, 0) for q, p in zip(read_as, passages, strict=True)]
            )
            again = []  # (position in todo, the passages the deeper ranking adds)
            for n, (reading, h, q, (*_, k)) in enumerate(
                zip(readings, hits, read_as, todo, strict=True)
            ):
                if reading.abstain and len(h) > k:
                    added = [p for p in self._passages(h, q) if p not in passages[n]]
                    if added:
                        again.append((n, added))
            if again:
                items = [(read_as[n], added, len(passages[n])) for n, added in again]
                for (n, added), more in zip(again, self.reader.read_many(items), strict=True):
                    readings[n] = combine_readings(readings[n], more, passages[n], added)
                    passages[n] = passages[n] + added
            t2 = time.perf_counter()
            timings = Timings(
                retrieve=round((t1 - t0) * 1000, 2),
                read=round((t2 - t1) * 1000, 2),
                total=round((t2 - t0) * 1000, 2),
            )
            for (i, question, _, _), reading, read in zip(todo, readings, passages, strict=True):
                out[i] = self._answer(question, reading, read, timings)
        return out  # type: ignore[return-value]

    def _plan(self, question: str) -> Plan:
        """How ``attribution`` asks ``question``: see :class:`Plan`."""
        if self.settings.attribution == "read":
            return Plan(question, question)
        split = split_attribution(question)
        if split.attribution is None:
            return Plan(question, question)
        if self.settings.attribution == "scope":
            assert self.store is not None
            named = named_documents(split.attribution, self.store.sparse, self.store.chunks)
            if named and len(named) < len(self.store.documents):
                return Plan(split.core, split.core, named)
        return Plan(question, split.core)

    def _answer(
        self, question: str, reading: Reading, passages: list[Passage], timings: Timings
    ) -> Answer:
        cited = [self._cite(span, passages) for span in reading.spans]
        abstained = reading.abstain or not cited
        return Answer(
            question=question,
            answer=None if abstained else reading.spans[0].text,
            abstained=abstained,
            score=round(min(1.0, max(0.0, reading.score)), 4),
            citations=[] if abstained else cited[:1],
            alternatives=cited if abstained else cited[1:],
            passages=passages,
            timings_ms=timings,
        )

    def _hits(self, query: str, mode: RetrievalMode | None, k: int) -> list[Hit]:
        self.warm_up()
        assert self.retriever is not None and self.store is not None
        with self.store.lock:
            self.store.refresh()
            plan = self._plan(query)
            mode = mode or self.settings.retrieval_mode
            return self.retriever.search_many([plan.search], [k], [mode], [plan.scope])[0]

    def refresh(self) -> bool:
        """Catch up with the document store now (after a write), waiting for the batch being
        answered; whether anything changed."""
        self.warm_up()
        assert self.store is not None
        with self.store.lock:
            return self.store.refresh()

    def _passages(self, hits: list[Hit], question: str) -> list[Passage]:
        """The hits' chunks as passages, best first; touching ones merged and each cut down to
        the sentences around its match with ``question`` when configured."""
        assert self.store is not None
        documents = self.store.documents
        passages = []
        for hit in hits:
            chunk = self.store.chunks[hit.chunk_id]
            passages.append(
                Passage(
                    doc_id=chunk.doc_id,
                    title=documents[chunk.doc_id].title,
                    start=chunk.start,
                    end=chunk.end,
                    text=chunk.text,
                    score=hit.score,
                    page=documents[chunk.doc_id].page_of(chunk.start),
                )
            )
        if self.settings.merge_passages:
            passages = merge_adjacent(passages, lambda doc_id: documents[doc_id].text)
        if self.settings.reading_context == "sentences":
            passages = focus_sentences(
                passages,
                question,
                lambda doc_id: documents[doc_id].text,
                self.settings.reading_context_sentences,
                lambda doc_id, offset: documents[doc_id].page_of(offset),
            )
        return passages

    def _cite(self, span: Span, passages: list[Passage]) -> Citation:
        """A citation of the span: its passage and the sentence that holds it."""
        assert self.store is not None
        p = passages[span.passage_index]
        doc = self.store.documents[p.doc_id]
        text = doc.text
        assert text[span.start : span.end] == span.text, "reader returned a non-verbatim span"
        s_start, s_end = sentence_around(
            split_sentences(text, p.start, p.end), span.start, span.end
        )
        return Citation(
            doc_id=p.doc_id,
            title=p.title,
            text=span.text,
            start=span.start,
            end=span.end,
            passage=p.text,
            passage_start=p.start,
            passage_end=p.end,
            score=round(span.score, 4),
            sentence=text[s_start:s_end],
            sentence_start=s_start,
            sentence_end=s_end,
            page=doc.page_of(span.start),
        )


def combine_readings(
    first: Reading, second: Reading, passages: list[Passage], added: list[Passage]
) -> Reading:
    """One reading of ``passages + added`` from a reading of each: spans best first, dropping any
    that overlaps a better one in the same document; it abstains when both did."""
    shifted = [replace(s, passage_index=s.passage_index + len(passages)) for s in second.spans]
    every = passages + added
    kept: list[Span] = []
    for span in sorted([*first.spans, *shifted], key=lambda s: -s.score):
        doc_id = every[span.passage_index].doc_id
        if not overlaps_kept(kept, every, doc_id, span.start, span.end):
            kept.append(span)
    return Reading(
        kept[: max(len(first.spans), len(second.spans))],
        abstain=first.abstain and second.abstain,
        score=max(first.score, second.score),
    )
