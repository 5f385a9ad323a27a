"""Passages as the reader sees them: retrieved chunks of one document that overlap or touch are
read as one passage, so no sentence is read twice and a chunk keeps the context around it; and,
when configured, each cut down to the sentences around its best match with the question."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from rag.answer import Passage
from rag.sentences import split_sentences
from rag.sparse import terms_of


def merge_adjacent(
    passages: Sequence[Passage], document_text: Callable[[str], str]
) -> list[Passage]:
    """Join passages of the same document that overlap or have only whitespace between them.

    A merged passage takes the rank (and the best score) of its best-ranked member, and its text
    is ``document_text(doc_id)[start:end]``, so its offsets still point into the document.
    """
    runs: list[tuple[int, Passage]] = []  # (best rank among members, merged passage)
    by_doc: dict[str, list[tuple[int, Passage]]] = {}
    for rank, p in enumerate(passages):
        by_doc.setdefault(p.doc_id, []).append((rank, p))
    for doc_id, ranked in by_doc.items():
        text = document_text(doc_id)
        ranked.sort(key=lambda rp: (rp[1].start, rp[1].end))
        rank, cur = ranked[0]
        for r, p in ranked[1:]:
            if p.start <= cur.end or not text[cur.end : p.start].strip():
                end = max(cur.end, p.end)
                cur = cur.model_copy(
                    update={
                        "end": end,
                        "text": text[cur.start : end],
                        "score": max(cur.score, p.score),
                    }
                )
                rank = min(rank, r)
            else:
                runs.append((rank, cur))
                rank, cur = r, p
        runs.append((rank, cur))
    return [p for _, p in sorted(runs, key=lambda rp: rp[0])]


def focus_sentences(
    passages: Sequence[Passage],
    question: str,
    document_text: Callable[[str], str],
    neighbours: int,
    page_of: Callable[[str, int], int | None] | None = None,
) -> list[Passage]:
    """Each passage cut down to the sentences that share the most with the question, with
    ``neighbours`` sentences on each side: fewer tokens to read.

    A sentence scores the summed IDF of the question's stemmed terms it holds (IDF over the
    sentences of all ``passages``, so a term that every passage repeats weighs little); each
    passage keeps its best-scoring sentences (ties included) and their neighbours. Kept
    sentences that touch form one passage, so a passage may become several, in document order
    at its rank; each is ``document_text(doc_id)[start:end]`` and keeps the passage's score.
    A passage with no question term, or nothing to drop, is kept whole. ``page_of(doc_id,
    offset)`` pages a cut passage (None: it keeps its passage's page).
    """
    wanted = set(terms_of([question])[0])
    if not wanted:
        return list(passages)
    texts = {p.doc_id: document_text(p.doc_id) for p in passages}
    spans = [split_sentences(texts[p.doc_id], p.start, p.end) for p in passages]
    flat = [texts[p.doc_id][s:e] for p, ss in zip(passages, spans, strict=True) for s, e in ss]
    found = [sorted(wanted.intersection(t)) for t in terms_of(flat)]  # sorted: a fixed sum order
    df: dict[str, int] = {}
    for terms in found:
        for t in terms:
            df[t] = df.get(t, 0) + 1
    idf = {t: math.log(1 + len(found) / n) for t, n in df.items()}
    out: list[Passage] = []
    at = 0
    for p, sentences in zip(passages, spans, strict=True):
        scores = [sum(idf[t] for t in terms) for terms in found[at : at + len(sentences)]]
        at += len(sentences)
        best = max(scores, default=0.0)
        kept = set()
        if best > 0:
            for i, score in enumerate(scores):
                if score == best:
                    kept.update(range(max(0, i - neighbours), min(len(scores), i + neighbours + 1)))
        if len(kept) in (0, len(sentences)):
            out.append(p)  # nothing to go by, or nothing to drop
            continue
        text = texts[p.doc_id]
        for first, last in _runs(sorted(kept)):
            start, end = sentences[first][0], sentences[last][1]
            page = page_of(p.doc_id, start) if page_of else p.page
            out.append(
                p.model_copy(
                    update={"start": start, "end": end, "text": text[start:end], "page": page}
                )
            )
    return out


def _runs(indices: list[int]) -> list[tuple[int, int]]:
    """Sorted indices as (first, last) runs of consecutive ones."""
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs
