"""The reference Haystack 3.4 pipeline (issue 14) as a harness Backend, for ``eval --compare``."""

# ruff: noqa: E402  (telemetry must be switched off before haystack is first imported)

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Haystack posts usage telemetry unless told not to, and it reads this once, at import.
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

import torch
from haystack import Document as HaystackDocument
from haystack import ExtractedAnswer, Pipeline
from haystack.components.joiners import DocumentJoiner
from haystack.components.preprocessors import DocumentSplitter
from haystack.components.retrievers.in_memory import (
    InMemoryBM25Retriever,
    InMemoryEmbeddingRetriever,
)
from haystack.components.writers import DocumentWriter
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack_integrations.components.embedders.sentence_transformers import (
    SentenceTransformersDocumentEmbedder,
    SentenceTransformersTextEmbedder,
)
from haystack_integrations.components.readers.transformers import TransformersExtractiveReader

from embeddings.encoder import resolve_model_path
from eval.backends import Backend, BackendUnavailable, EvalError, local_corpus
from eval.configs import EvalConfig
from rag.answer import Answer, Citation, Passage, Timings
from rag.config import Settings
from rag.documents import CorpusError, load_corpus
from rag.sentences import sentence_around, split_sentences
from rag.store import corpus_of

# The pipeline the issue measured: 3-sentence splits overlapping by one, 10 + 10 candidates, RRF to 5.
SPLIT = {"split_by": "period", "split_length": 3, "split_overlap": 1}
CANDIDATES = 10
TOP_K = 5
# One answer per question: Haystack's no-answer score is then 1 - the best span's, so it abstains
# under 0.5 (this reproduces the F1 .582 and 31% refused; with 20 it almost never wins).
READER_TOP_K = 1
NO_ANSWER = {"on": (True,), "off": (False,), "both": (True, False)}


@dataclass(frozen=True)
class HaystackConfig(EvalConfig):
    """The Haystack row: its reader folder and whether its no-answer may win."""

    reader_model: str = ""
    no_answer: bool = True

    @property
    def run_key(self) -> tuple[str, str, bool]:  # type: ignore[override]
        return ("haystack", self.reader_model, self.no_answer)

    @property
    def label(self) -> str:
        thr = f"thr={self.threshold:g}" if self.threshold is not None else "thr=service"
        switch = "on" if self.no_answer else "off"
        return f"haystack,reader={Path(self.reader_model).name},no_answer={switch},{thr}"


def compare_configs(reader_model: str, no_answer: str) -> list[HaystackConfig]:
    """The Haystack rows for ``--compare-no-answer on|off|both``."""
    return [
        HaystackConfig(top_k=TOP_K, reader_model=reader_model, no_answer=flag)
        for flag in NO_ANSWER[no_answer]
    ]


def split_start(text: str, content: str, start: int) -> int:
    """A split's ``split_idx_start``, checked: its content stands verbatim there in the document."""
    if not text.startswith(content, start):
        raise EvalError(f"a Haystack split is not at its split_idx_start: {content[:60]!r}")
    return start


def to_answer(
    question: str,
    passages: list[HaystackDocument],
    answers: list[ExtractedAnswer],
    texts: dict[str, str],
    starts: dict[str, int],
    timings: dict[str, float],
    score_threshold: float | None = None,
) -> dict:
    """Haystack's ranked answers as the Answer JSON; it abstains when its no-answer ranks first
    (or its best span is under ``score_threshold``), the best span then an alternative."""
    spans = [a for a in answers if a.data is not None and a.document is not None]
    best = spans[0] if spans else None
    abstained = (
        best is None
        or answers[0].data is None
        or (score_threshold is not None and best.score < score_threshold)
    )
    cites = [] if best is None else [_citation(best, texts, starts)]
    return Answer(
        question=question,
        answer=None if abstained else cites[0].text,
        abstained=abstained,
        score=min(max(best.score, 0.0), 1.0) if best else 0.0,
        citations=[] if abstained else cites,
        alternatives=cites if abstained else [],
        passages=[_passage(d, starts) for d in passages],
        timings_ms=Timings(**timings),
    ).model_dump()


def _passage(doc: HaystackDocument, starts: dict[str, int]) -> Passage:
    start = starts[doc.id]
    content = doc.content or ""
    return Passage(
        doc_id=doc.meta["doc_id"],
        title=doc.meta.get("title", ""),
        start=start,
        end=start + len(content),
        text=content,
        score=float(doc.score or 0.0),
    )


def _citation(answer: ExtractedAnswer, texts: dict[str, str], starts: dict[str, int]) -> Citation:
    """The answer's span mapped from its split back to the original document's offsets."""
    doc = answer.document
    assert doc is not None and answer.document_offset is not None
    passage = _passage(doc, starts)
    text = texts[passage.doc_id]
    start = passage.start + answer.document_offset.start
    end = passage.start + answer.document_offset.end
    if text[start:end] != answer.data:
        raise EvalError(f"a Haystack answer does not map back to {passage.doc_id}: {answer.data!r}")
    s0, s1 = sentence_around(split_sentences(text), start, end)
    return Citation(
        doc_id=passage.doc_id,
        title=passage.title,
        text=text[start:end],
        start=start,
        end=end,
        passage=passage.text,
        passage_start=passage.start,
        passage_end=passage.end,
        score=min(max(answer.score, 0.0), 1.0),
        sentence=text[s0:s1],
        sentence_start=s0,
        sentence_end=s1,
    )


class HaystackBackend:
    """A plain Haystack 3.4 pipeline over the same corpus, answering with the Answer JSON."""

    def __init__(
        self,
        settings: Settings,
        reader_model: str | Path | None = None,
        score_threshold: float | None = None,
    ):
        self.settings = settings
        self.reader_model = str(reader_model or settings.reader_model)
        self.score_threshold = score_threshold
        self.texts: dict[str, str] = {}
        self.starts: dict[str, int] = {}  # split id -> its start in its document
        self._retrieval: Pipeline | None = None
        self._reader: TransformersExtractiveReader | None = None

    def warm_up(self) -> None:
        """Split, embed and index the corpus; load the reader (fp32). Later calls do nothing."""
        if self._retrieval is not None:
            return
        corpus = load_corpus(corpus_of(self.settings))
        self.texts = {d.doc_id: d.text for d in corpus}
        embedder = resolve_model_path(self.settings.embedding_model)
        store = InMemoryDocumentStore(shared=False)
        indexing = Pipeline()
        indexing.add_component("splitter", DocumentSplitter(**SPLIT))
        indexing.add_component(
            "embedder", self._embedder(SentenceTransformersDocumentEmbedder, embedder)
        )
        indexing.add_component("writer", DocumentWriter(store))
        indexing.connect("splitter", "embedder")
        indexing.connect("embedder", "writer")
        documents = [
            HaystackDocument(content=d.text, meta={"doc_id": d.doc_id, "title": d.title})
            for d in corpus
        ]
        indexing.run({"splitter": {"documents": documents}})
        self.starts = {
            d.id: split_start(
                self.texts[d.meta["doc_id"]], d.content or "", d.meta["split_idx_start"]
            )
            for d in store.filter_documents()
        }
        retrieval = Pipeline()
        retrieval.add_component(
            "embedder", self._embedder(SentenceTransformersTextEmbedder, embedder)
        )
        retrieval.add_component("dense", InMemoryEmbeddingRetriever(store, top_k=CANDIDATES))
        retrieval.add_component("bm25", InMemoryBM25Retriever(store, top_k=CANDIDATES))
        joiner = DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=TOP_K)
        retrieval.add_component("joiner", joiner)
        retrieval.connect("embedder.embedding", "dense.query_embedding")
        retrieval.connect("dense", "joiner")
        retrieval.connect("bm25", "joiner")
        retrieval.warm_up()
        reader = TransformersExtractiveReader(
            model=self.reader_model,
            token=None,
            top_k=READER_TOP_K,
            model_kwargs={"dtype": torch.float32},
        )
        reader.warm_up()
        self._retrieval, self._reader = retrieval, reader

    @staticmethod
    def _embedder(kind: Any, model: str) -> Any:
        return kind(model=model, local_files_only=True, progress_bar=False)

    def prepare(self, config: EvalConfig) -> None:
        try:
            self.warm_up()
        except (EvalError, CorpusError):
            raise
        except Exception as exc:  # whatever Haystack or the model loader raises: no Haystack row
            raise BackendUnavailable(f"the Haystack pipeline cannot start: {exc}") from exc

    def ask(self, question: str, config: EvalConfig) -> dict:
        self.warm_up()
        assert self._retrieval is not None and self._reader is not None
        t0 = time.perf_counter()
        found = self._retrieval.run({"embedder": {"text": question}, "bm25": {"query": question}})
        passages = found["joiner"]["documents"]
        t1 = time.perf_counter()
        no_answer = getattr(config, "no_answer", True)
        answers = self._reader.run(query=question, documents=passages, no_answer=no_answer)
        t2 = time.perf_counter()
        ms = {"retrieve": (t1 - t0) * 1000, "read": (t2 - t1) * 1000, "total": (t2 - t0) * 1000}
        return to_answer(
            question,
            passages,
            answers["answers"],
            self.texts,
            self.starts,
            ms,
            self.score_threshold,
        )

    def documents(self, doc_ids: set[str]) -> dict[str, str]:
        return dict(self.texts) if self.texts else local_corpus(self.settings)

    def describe(self) -> str:
        """One line for the report: what the Haystack rows ran."""
        return (
            f"Haystack 3.4 (3-period splits overlapping by 1, {CANDIDATES} dense + {CANDIDATES} "
            f"BM25 -> RRF top {TOP_K}, TransformersExtractiveReader top_k={READER_TOP_K}, fp32, "
            f"reader {self.reader_model})"
        )


class CompareBackend:
    """Verbatim's configurations to its backend, the Haystack rows to the Haystack pipeline."""

    def __init__(self, verbatim: Backend, haystack: HaystackBackend):
        self.verbatim = verbatim
        self.haystack = haystack

    def _for(self, config: EvalConfig) -> Backend:
        return self.haystack if isinstance(config, HaystackConfig) else self.verbatim

    def prepare(self, config: EvalConfig) -> None:
        self._for(config).prepare(config)

    def ask(self, question: str, config: EvalConfig) -> dict:
        return self._for(config).ask(question, config)

    def documents(self, doc_ids: set[str]) -> dict[str, str]:
        return self.verbatim.documents(doc_ids)
