"""The baseline reader: the passage sentence most similar to the question, verbatim."""

from __future__ import annotations

import numpy as np

from embeddings.encoder import Encoder
from rag.answer import Passage
from rag.config import Settings
from rag.readers.base import Reading, ReadItem, Span
from rag.readers.words import overlap
from rag.sentences import split_sentences


class SentenceReader:
    """Scores each sentence by embedding similarity plus word overlap with the question."""

    def __init__(self, encoder: Encoder, threshold: float = 0.35, overlap_weight: float = 0.3):
        self.encoder = encoder
        self.threshold = threshold
        self.overlap_weight = overlap_weight

    @classmethod
    def from_settings(cls, settings: Settings, encoder: Encoder) -> SentenceReader:
        return cls(encoder, threshold=settings.sentence_threshold)

    def warm_up(self) -> None:
        self.encoder.warm_up()

    def read_many(self, items: list[ReadItem]) -> list[Reading]:
        return [self.read(*item) for item in items]

    def read(self, question: str, passages: list[Passage], first_rank: int = 0) -> Reading:
        """Best sentences first; abstains when even the best scores under the threshold."""
        candidates: list[tuple[int, int, int, str]] = []
        seen: set[tuple[str, int]] = set()
        for p_idx, p in enumerate(passages):
            for s, e in split_sentences(p.text):
                key = (p.doc_id, p.start + s)
                if key not in seen:
                    seen.add(key)
                    candidates.append((p_idx, p.start + s, p.start + e, p.text[s:e]))
        if not candidates:
            return Reading([], abstain=True, score=0.0)
        q_vec = self.encoder.encode_queries([question])[0]
        s_vecs = self.encoder.encode([c[3] for c in candidates])
        scores = [
            float(np.dot(q_vec, vec)) + self.overlap_weight * overlap(question, text)
            for (_, _, _, text), vec in zip(candidates, s_vecs, strict=True)
        ]
        order = np.argsort(scores)[::-1][:5]
        spans = [
            Span(
                candidates[i][0],
                candidates[i][1],
                candidates[i][2],
                candidates[i][3],
                float(np.clip(scores[i], 0.0, 1.0)),
            )
            for i in order
        ]
        best = spans[0].score
        return Reading(spans, abstain=best < self.threshold, score=best)
