"""Does how convex fusion normalises each ranking's scores decide how much hybrid retrieval loses
as distractors grow (issue 18)?

    VERBATIM_EMBEDDING_PRECISION=int8 VERBATIM_CHUNK_CONTEXT=title \\
        python docs/studies/fusion_normalisation.py /work/scale_norms 10000 1000000
    python docs/studies/fusion_normalisation.py --squad      # squad-retrieval's 1,268 chunks
    ... fusion_normalisation.py --service <as above>          # the service's search, by settings

Per question: the dense and BM25 pools of 20 (the service's ``candidates``), fused under each
normalisation with equal weights; hit@5 as bench-scale and squad-retrieval count it (a chunk
inside the question's paragraph holding an answer). ``min-max`` is the service's: a pool's best
counts 1, its last 0, a chunk it did not find 0. At a million chunks the dense pool's cosines
bunch together, and min-max spreads them over [0, 1] all the same; the other normalisations keep
a pool's spread (``max``: score over the pool's best, cosines and BM25 both being non-negative
here; ``z``: standard scores), so a pool whose scores bunch orders the fusion less."""

import sys
import tempfile
from pathlib import Path

import numpy as np

from embeddings.encoder import Encoder
from eval.scale_corpus import CorpusSource, planted_probes
from eval.squad_retrieval import first_hit, holds_answer, write_corpus
from rag.config import get_settings
from rag.pipeline import AskPipeline
from rag.retrieval import Hit

POOLS = (20, 50)


def minmax(hits: list[Hit]) -> tuple[dict[int, float], float]:
    hi, lo = hits[0].score, hits[-1].score
    return {h.chunk_id: (h.score - lo) / (hi - lo) if hi > lo else 1.0 for h in hits}, 0.0


def by_max(hits: list[Hit]) -> tuple[dict[int, float], float]:
    hi = max(hits[0].score, 1e-9)
    return {h.chunk_id: max(h.score, 0.0) / hi for h in hits}, 0.0


def by_max_floor(hits: list[Hit]) -> tuple[dict[int, float], float]:
    """As ``max``, but a chunk the pool did not find counts as its last (its score's bound)."""
    scores, _ = by_max(hits)
    return scores, scores[hits[-1].chunk_id]


def zscore(hits: list[Hit]) -> tuple[dict[int, float], float]:
    s = np.array([h.score for h in hits])
    sd = float(s.std()) or 1.0
    z = {h.chunk_id: (h.score - float(s.mean())) / sd for h in hits}
    return z, min(z.values())


def rrf(hits: list[Hit]) -> tuple[dict[int, float], float]:
    return {h.chunk_id: 60 / (60 + r) for r, h in enumerate(hits, start=1)}, 0.0


NORMS = {"min-max (service)": minmax, "max": by_max, "max, missing = last": by_max_floor}
NORMS |= {"z": zscore, "rrf (k 60)": rrf}


def fused(dense: list[Hit], bm25: list[Hit], norm) -> list[int]:
    parts = [norm(h) for h in (dense, bm25) if h]
    ids = {c for scores, _ in parts for c in scores}
    total = {c: sum(scores.get(c, floor) for scores, floor in parts) for c in ids}
    return sorted(total, key=lambda c: (-total[c], c))


def hit_at_5(pipe: AskPipeline, probes: list) -> dict[str, float]:
    return {
        f"{k}, pools of {pool}": v for pool in POOLS for k, v in pooled(pipe, probes, pool).items()
    }


def pooled(pipe: AskPipeline, probes: list, pool: int) -> dict[str, float]:
    r, chunks = pipe.retriever, pipe.store.chunks
    dense = r.dense_many(
        pipe.encoder.encode_queries([p.question for p in probes]), [pool] * len(probes)
    )
    bm25 = [r.bm25(p.question, pool) for p in probes]
    out = {}
    for name, norm in NORMS.items():
        hits = [
            any(holds_answer(p, chunks[c].doc_id, chunks[c].text) for c in fused(d, b, norm)[:5])
            for p, d, b in zip(probes, dense, bm25, strict=True)
        ]
        out[name] = float(np.mean(hits))
    return out


# The service's own search under settings (bench-scale's hit@5, chunks not merged).
SERVICE = {
    "convex, 20": {"lexical_evidence": "off"},
    "scaled, 20": {"fusion": "scaled", "lexical_evidence": "off"},
    "scaled, 50": {"fusion": "scaled", "candidates": 50, "lexical_evidence": "off"},
    "convex, 50, lexical .5": {"lexical_evidence": "on"},  # weight .5, pools of 50
    "scaled, 50, lexical .5": {"fusion": "scaled", "lexical_evidence": "on"},
}


def service_hit_at_5(pipe: AskPipeline, probes: list) -> dict[str, float]:
    out = {}
    for name, updates in SERVICE.items():
        plain = pipe.with_settings(merge_passages=False, **updates)
        out[name] = float(np.mean([first_hit(plain, p, "hybrid", 5) is not None for p in probes]))
    return out


base = get_settings()
measure = hit_at_5
if sys.argv[1] == "--service":
    measure = service_hit_at_5
    sys.argv.pop(1)
if sys.argv[1] == "--squad":
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        probes = write_corpus(corpus, base.qa_data_dir)
        s = base.model_copy(update={"corpus_dir": corpus, "index_dir": Path(tmp) / "index"})
        pipe = AskPipeline(s)
        pipe.warm_up()
        print(f"squad-retrieval, {len(pipe.store.chunks)} chunks, {len(probes)} questions")
        for name, value in measure(pipe, probes).items():
            print(f"| {name} | {value:.4f} |", flush=True)
else:
    work, sizes = Path(sys.argv[1]), [int(a) for a in sys.argv[2:]]
    probes = [
        p for doc, a in CorpusSource(base.qa_data_dir).planted for p in planted_probes(doc, a)
    ]
    rows = {}
    for n in sizes:
        s = base.model_copy(
            update={"corpus_dir": work / f"corpus-{n}", "index_dir": work / f"store-{n}"}
        )
        pipe = AskPipeline(s, encoder=Encoder.from_settings(s))
        pipe.warm_up()
        rows[n] = measure(pipe, probes)
        del pipe
    print("| fusion | " + " | ".join(f"{n:,}" for n in sizes) + " | gap |")
    for name in rows[sizes[0]]:
        cells = [rows[n][name] for n in sizes]
        print(
            f"| {name} | "
            + " | ".join(f"{v:.4f}" for v in cells)
            + f" | {cells[0] - cells[-1]:.4f} |"
        )
