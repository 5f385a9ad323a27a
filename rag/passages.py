"""Passages as the reader sees them: retrieved chunks of one document that overlap or touch are
read as one passage, so no sentence is read twice and a chunk keeps the context around it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rag.answer import Passage


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
