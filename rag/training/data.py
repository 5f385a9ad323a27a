"""Training data for the span reader: loading, the fixed article split, unanswerables, windows.

Everything here is deterministic given a seed: the same arguments give the same examples, in the
same order, and the same windows.

The article split of SQuAD v2.0 dev (``split_v2_dev``): the article titles are sorted with Python's
``sorted`` (code-point order); titles at even positions (0, 2, 4, ...) form the *train* half (usable
for training: its unanswerable questions teach abstention), titles at odd positions form the
*held-out* half, used only for evaluation and never trained on.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.config import get_settings
from rag.readers.words import content_words
from rag.sentences import split_sentences

DATA_DIR = get_settings().qa_data_dir
SQUAD_TRAIN = "squad-v1.1-train-from-explorer.json.gz"
SQUAD_V2_DEV = "squad-v2.0-dev-from-explorer.json.gz"
SIMILAR_STEM = 5  # characters kept per word when matching question and paragraph words
SHIFTS = ("new_wiki_v1.0.json.gz", "reddit_v1.0.json.gz", "amazon_reviews_v1.0.json.gz")

# Share of the training *examples* drawn from each pool (before windowing).
DEFAULT_MIX: dict[str, float] = {
    "squad": 0.48,  # SQuAD v1.1 train, answerable
    "shifts": 0.10,  # SQuADShifts new_wiki/reddit/amazon, answerable (first reference answer)
    "neg_para": 0.15,  # question paired with another paragraph of its article (unanswerable)
    "neg_entity": 0.12,  # question's entity swapped for another entity of the article (unanswerable)
    "v2dev": 0.15,  # the train half of SQuAD v2.0 dev (answerable + real unanswerable)
}
# Every pool a mix may name: the default's, "neg_similar" (question paired with the paragraph
# of its article that shares most of its words but lacks the answer), "neg_sentence" (its
# own paragraph with the sentence that holds the answer cut out) and "pos_excerpt" (answerable:
# only the answer's sentence and a neighbour or two of its paragraph, as a retrieved chunk).
POOLS: tuple[str, ...] = (*DEFAULT_MIX, "neg_similar", "neg_sentence", "pos_excerpt")
MIN_SENTENCES_LEFT = 2  # a paragraph cut down to fewer sentences gives no neg_sentence example
EXCERPT_NEIGHBOURS = 1  # pos_excerpt keeps up to this many sentences on each side of the answer


@dataclass(frozen=True)
class QAExample:
    """One question over one context; unanswerable when ``answer_start < 0``."""

    qid: str
    title: str
    question: str
    context: str
    answer_text: str = ""
    answer_start: int = -1
    answers: tuple[str, ...] = ()  # every reference answer (for evaluation); () when unanswerable
    source: str = ""

    @property
    def is_impossible(self) -> bool:
        return self.answer_start < 0


# --------------------------------------------------------------------------- loading


def load_articles(path: str | Path) -> list[dict]:
    """The ``data`` list of a gzip (or plain) SQuAD-format JSON file."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)["data"]


def examples_from_articles(articles: Iterable[dict], source: str = "") -> list[QAExample]:
    """Flatten articles into examples; the first reference answer is the training target."""
    out: list[QAExample] = []
    for article in articles:
        title = article.get("title", "")
        for para in article["paragraphs"]:
            context = para["context"]
            for qa in para["qas"]:
                answers = [a for a in qa.get("answers", []) if a.get("text")]
                question = qa["question"].strip()
                if qa.get("is_impossible") or not answers:
                    out.append(QAExample(qa["id"], title, question, context, source=source))
                    continue
                first = answers[0]
                out.append(
                    QAExample(
                        qa["id"],
                        title,
                        question,
                        context,
                        answer_text=first["text"],
                        answer_start=int(first["answer_start"]),
                        answers=tuple(a["text"] for a in answers),
                        source=source,
                    )
                )
    return out


def split_v2_dev(articles: Sequence[dict]) -> tuple[list[dict], list[dict]]:
    """(train half, held-out half) of SQuAD v2.0 dev: sorted titles, alternating, even -> train."""
    titles = sorted({a["title"] for a in articles})
    train_titles = set(titles[0::2])
    train = [a for a in articles if a["title"] in train_titles]
    held = [a for a in articles if a["title"] not in train_titles]
    return train, held


def heldout_examples(data_dir: Path = DATA_DIR) -> list[QAExample]:
    """Every question of the held-out half of SQuAD v2.0 dev, in file order."""
    _, held = split_v2_dev(load_articles(data_dir / SQUAD_V2_DEV))
    return examples_from_articles(held, source="v2dev-heldout")


# --------------------------------------------------------------------------- unanswerables


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def answer_occurs(answers: Iterable[str], context: str) -> bool:
    """Whether any answer text occurs in the context (case- and whitespace-insensitive)."""
    ctx = _norm(context)
    return any(_norm(a) and _norm(a) in ctx for a in answers)


def _negative(qa: dict, title: str, suffix: str, context: str, source: str) -> QAExample:
    """An unanswerable example: the question of ``qa`` over ``context``, id ``<qa id>-<suffix>``."""
    return QAExample(f"{qa['id']}-{suffix}", title, qa["question"].strip(), context, source=source)


def paragraph_negatives(
    articles: Sequence[dict], rng: random.Random, source: str = "neg_para", tries: int = 6
) -> list[QAExample]:
    """Pair each answerable question with another paragraph of its article lacking the answer.

    At most one negative per question; questions whose article has no suitable paragraph are
    skipped. The pairing never contains any reference answer text (see ``answer_occurs``).
    """
    out: list[QAExample] = []
    for article in articles:
        paras = article["paragraphs"]
        if len(paras) < 2:
            continue
        for pi, para in enumerate(paras):
            for qa in para["qas"]:
                answers = [a["text"] for a in qa.get("answers", []) if a.get("text")]
                if qa.get("is_impossible") or not answers:
                    continue
                for _ in range(tries):
                    pj = rng.randrange(len(paras) - 1)
                    pj = pj + 1 if pj >= pi else pj
                    ctx = paras[pj]["context"]
                    if not answer_occurs(answers, ctx):
                        out.append(_negative(qa, article["title"], f"negp{pj}", ctx, source))
                        break
    return out


def similar_paragraph_negatives(
    articles: Sequence[dict], source: str = "neg_similar"
) -> list[QAExample]:
    """Pair each answerable question with the paragraph of its article, other than its own and
    lacking every answer, that shares the most question words (weighted by rarity in the
    article): a negative that lexical retrieval would rank high, as in the service.
    """
    out: list[QAExample] = []
    for article in articles:
        paras = article["paragraphs"]
        if len(paras) < 2:
            continue
        words = [content_words(p["context"], SIMILAR_STEM) for p in paras]
        df: dict[str, int] = {}
        for ws in words:
            for w in ws:
                df[w] = df.get(w, 0) + 1
        idf = {w: math.log((1 + len(paras)) / (1 + n)) + 1 for w, n in df.items()}
        for pi, para in enumerate(paras):
            for qa in para["qas"]:
                answers = [a["text"] for a in qa.get("answers", []) if a.get("text")]
                if qa.get("is_impossible") or not answers:
                    continue
                q = content_words(qa["question"], SIMILAR_STEM)
                others = [
                    pj
                    for pj in range(len(paras))
                    if pj != pi and not answer_occurs(answers, paras[pj]["context"])
                ]
                if not others:
                    continue
                # The highest idf-weighted overlap (summed in sorted order: set order varies
                # between processes); ties go to the first paragraph.
                pj = max(others, key=lambda j: sum(idf[w] for w in sorted(q & words[j])))
                if not q & words[pj]:
                    continue
                context = paras[pj]["context"]
                out.append(_negative(qa, article["title"], f"negs{pj}", context, source))
    return out


@dataclass(frozen=True)
class _Answered:
    """An answerable question in its paragraph, split into sentences; ``[start, end)`` is its
    first reference answer in ``context``."""

    qa: dict
    title: str
    paragraph: int
    context: str
    sentences: list[tuple[int, int]]
    answers: tuple[str, ...]
    start: int
    end: int


def _answered_in_sentences(articles: Sequence[dict]) -> Iterable[_Answered]:
    """Every answerable question of ``articles`` with its paragraph's sentences."""
    for article in articles:
        for pi, para in enumerate(article["paragraphs"]):
            context = para["context"]
            sentences = split_sentences(context)
            for qa in para["qas"]:
                answers = [a for a in qa.get("answers", []) if a.get("text")]
                if qa.get("is_impossible") or not answers:
                    continue
                start = int(answers[0]["answer_start"])
                end = start + len(answers[0]["text"])
                texts = tuple(a["text"] for a in answers)
                yield _Answered(qa, article["title"], pi, context, sentences, texts, start, end)


def answer_sentence_negatives(
    articles: Sequence[dict], source: str = "neg_sentence"
) -> list[QAExample]:
    """Pair each answerable question with its own paragraph minus the sentence(s) holding the
    answer: the same topic, names and wording, only the answer gone, as when the service
    retrieves the right article but a neighbouring chunk. The remaining sentences keep their
    order, joined by a space; examples whose remainder still contains a reference answer, or
    keeps fewer than :data:`MIN_SENTENCES_LEFT` sentences, are skipped.
    """
    out: list[QAExample] = []
    for q in _answered_in_sentences(articles):
        kept = [(s, e) for s, e in q.sentences if e <= q.start or s >= q.end]
        rest = " ".join(q.context[s:e] for s, e in kept)
        if len(kept) < MIN_SENTENCES_LEFT or answer_occurs(q.answers, rest):
            continue
        out.append(_negative(q.qa, q.title, f"negc{q.paragraph}", rest, source))
    return out


def answer_excerpts(
    articles: Sequence[dict], rng: random.Random, source: str = "pos_excerpt"
) -> list[QAExample]:
    """Pair each answerable question with an excerpt of its own paragraph: the sentence(s)
    holding the answer and up to :data:`EXCERPT_NEIGHBOURS` sentences on each side (drawn at
    random), as the service's chunks cut a document. Names the question takes from the rest of
    the paragraph may be missing, yet the answer stands: the lesson against reading a missing
    name as "no answer". Excerpts that are the whole paragraph are skipped.
    """
    out: list[QAExample] = []
    for q in _answered_in_sentences(articles):
        sentences = q.sentences
        held = [i for i, (s, e) in enumerate(sentences) if s < q.end and q.start < e]
        if not held:
            continue
        first = max(0, held[0] - rng.randint(0, EXCERPT_NEIGHBOURS))
        last = min(len(sentences) - 1, held[-1] + rng.randint(0, EXCERPT_NEIGHBOURS))
        start, end = sentences[first][0], sentences[last][1]
        if start == sentences[0][0] and end == sentences[-1][1]:
            continue
        out.append(
            QAExample(
                f"{q.qa['id']}-exc{q.paragraph}",
                q.title,
                q.qa["question"].strip(),
                q.context[start:end],
                q.answers[0],
                q.start - start,
                q.answers,
                source,
            )
        )
    return out


# A run of capitalised words (allowing short lower-case joiners like "of" inside), e.g.
# "University of Notre Dame", "Beyoncé", "New York City".
_ENTITY_RE = re.compile(
    r"\b[A-Z][\w'’.-]*[\w](?:\s+(?:of|the|de|du|la|von|van|and|for)\s+[A-Z][\w'’.-]*[\w]"
    r"|\s+[A-Z][\w'’.-]*[\w])*"
)
_NOT_ENTITIES = frozenset(
    [
        "The",
        "A",
        "An",
        "In",
        "On",
        "At",
        "Of",
        "For",
        "And",
        "But",
        "Or",
        "If",
        "When",
        "What",
        "Which",
        "Who",
        "Whom",
        "Whose",
        "Where",
        "Why",
        "How",
        "This",
        "That",
        "These",
        "Those",
        "It",
        "Its",
        "He",
        "She",
        "They",
        "His",
        "Her",
        "Their",
        "As",
        "By",
        "From",
        "To",
        "With",
        "After",
        "Before",
        "During",
        "Since",
        "While",
        "However",
        "Also",
        "There",
        "Is",
        "Was",
        "Are",
        "Were",
        "Did",
        "Do",
        "Does",
        "Has",
        "Have",
        "Had",
        "Not",
        "I",
        "We",
        "You",
        "Many",
        "Most",
        "Some",
        "One",
        "Two",
        "Three",
        "Other",
        "Another",
        "Such",
        "According",
    ]
)


def _entities(text: str, skip_first_word: bool) -> list[tuple[int, int, str]]:
    out = []
    for m in _ENTITY_RE.finditer(text):
        s, e, ent = m.start(), m.end(), m.group(0)
        if skip_first_word and s == 0:
            # The question's first word is capitalised anyway; drop it from the run.
            parts = ent.split(None, 1)
            if len(parts) < 2:
                continue
            s, ent = e - len(parts[1]), parts[1]
        if ent in _NOT_ENTITIES or len(ent) < 3:
            continue
        out.append((s, e, ent))
    return out


def entity_swap_negatives(
    articles: Sequence[dict], rng: random.Random, source: str = "neg_entity"
) -> list[QAExample]:
    """Swap a question's capitalised entity for another entity of the same article.

    The swapped-out entity must occur in the question's own paragraph and no word of the
    swapped-in entity may occur there, so the new question is (almost surely) unanswerable from
    that paragraph while staying lexically close to it: a hard negative.
    """
    out: list[QAExample] = []
    for article in articles:
        pool = sorted(
            {
                ent
                for para in article["paragraphs"]
                for _, _, ent in _entities(para["context"], skip_first_word=False)
            }
        )
        if len(pool) < 2:
            continue
        for para in article["paragraphs"]:
            context = para["context"]
            ctx_low = context.lower()
            ctx_words = set(re.findall(r"\w+", ctx_low))
            for qa in para["qas"]:
                if qa.get("is_impossible") or not qa.get("answers"):
                    continue
                question = qa["question"].strip()
                cands = [x for x in _entities(question, True) if x[2].lower() in ctx_low]
                if not cands:
                    continue
                s, e, ent = cands[rng.randrange(len(cands))]
                for _ in range(8):
                    new = pool[rng.randrange(len(pool))]
                    words = re.findall(r"\w+", new.lower())
                    if new != ent and words and not any(w in ctx_words for w in words):
                        out.append(
                            QAExample(
                                f"{qa['id']}-nege",
                                article["title"],
                                question[:s] + new + question[e:],
                                context,
                                source=source,
                            )
                        )
                        break
    return out


# --------------------------------------------------------------------------- the training mix


def build_training_examples(
    n_examples: int,
    seed: int,
    mix: dict[str, float] | None = None,
    data_dir: Path = DATA_DIR,
    repeat: dict[str, int] | None = None,
) -> list[QAExample]:
    """About ``n_examples`` shuffled training examples drawn from the pools by ``mix``.

    A pool named in ``repeat`` may be drawn up to that many times over (each pass in its own
    shuffled order), so a small pool such as the real unanswerables of ``v2dev`` can weigh
    more. Never touches the held-out half of SQuAD v2.0 dev.
    """
    repeat = repeat or {}
    mix = dict(DEFAULT_MIX if mix is None else mix)
    rng = random.Random(seed)
    squad_articles = load_articles(data_dir / SQUAD_TRAIN)
    v2_train, _ = split_v2_dev(load_articles(data_dir / SQUAD_V2_DEV))
    shift_articles: list[dict] = []
    for name in SHIFTS:
        shift_articles.extend(load_articles(data_dir / name))

    builders = {
        "squad": lambda: examples_from_articles(squad_articles, "squad"),
        "shifts": lambda: [
            e for e in examples_from_articles(shift_articles, "shifts") if e.answers
        ],
        "neg_para": lambda: paragraph_negatives(squad_articles, random.Random(seed + 1)),
        "neg_entity": lambda: entity_swap_negatives(squad_articles, random.Random(seed + 2)),
        "neg_similar": lambda: similar_paragraph_negatives(squad_articles),
        "neg_sentence": lambda: answer_sentence_negatives(squad_articles),
        "pos_excerpt": lambda: answer_excerpts(squad_articles, random.Random(seed + 3)),
        "v2dev": lambda: examples_from_articles(v2_train, "v2dev-train"),
    }
    chosen: list[QAExample] = []
    for name in sorted(mix):
        if mix[name] <= 0:
            continue
        pool = builders[name]()
        random.Random(f"{seed}-{name}").shuffle(pool)
        passes = [pool]
        for k in range(1, repeat.get(name, 1)):
            passes.append(random.Random(f"{seed}-{name}-{k}").sample(pool, len(pool)))
        drawn = [e for p in passes for e in p]
        chosen.extend(drawn[: round(mix[name] * n_examples)])
    rng.shuffle(chosen)
    return chosen


# --------------------------------------------------------------------------- windows


def truncate_questions(tokenizer, questions: Sequence[str], max_tokens: int) -> list[str]:
    """Cut questions longer than ``max_tokens`` word pieces (rare) at a token boundary."""
    enc = tokenizer(
        list(questions),
        add_special_tokens=False,
        truncation=False,
        padding=False,
        return_offsets_mapping=True,
    )
    out = []
    for q, offsets in zip(questions, enc["offset_mapping"], strict=True):
        out.append(q if len(offsets) <= max_tokens else q[: offsets[max_tokens - 1][1]])
    return out


def _encode(tokenizer, examples: Sequence[QAExample], max_length: int, stride: int, max_q: int):
    questions = truncate_questions(tokenizer, [e.question for e in examples], max_q)
    return tokenizer(
        questions,
        [e.context for e in examples],
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        padding=False,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        return_token_type_ids=True,
    )


@dataclass
class TrainWindow:
    input_ids: np.ndarray  # int32, unpadded
    token_type_ids: np.ndarray  # int8
    start: int  # 0 (= [CLS]) when the answer is not inside the window
    end: int


def build_train_windows(
    tokenizer,
    examples: Sequence[QAExample],
    max_length: int = 256,
    stride: int = 128,
    max_question_tokens: int = 64,
    batch_size: int = 1000,
) -> list[TrainWindow]:
    """Windows of (question, context) with the answer's token span, or [CLS] when absent.

    ``stride`` is the number of context tokens shared by consecutive windows (as in the
    tokenizer's overflow API).
    """
    out: list[TrainWindow] = []
    for b in range(0, len(examples), batch_size):
        batch = examples[b : b + batch_size]
        enc = _encode(tokenizer, batch, max_length, stride, max_question_tokens)
        for i, ex_idx in enumerate(enc["overflow_to_sample_mapping"]):
            ex = batch[ex_idx]
            ids = enc["input_ids"][i]
            seq = enc.sequence_ids(i)
            offsets = enc["offset_mapping"][i]
            start_tok = end_tok = 0
            if not ex.is_impossible:
                a0 = ex.answer_start
                a1 = a0 + len(ex.answer_text)
                ctx_first = seq.index(1)
                ctx_last = len(seq) - 1 - seq[::-1].index(1)
                if offsets[ctx_first][0] <= a0 and offsets[ctx_last][1] >= a1:
                    s = ctx_first
                    while s <= ctx_last and offsets[s][1] <= a0:
                        s += 1
                    t = ctx_last
                    while t >= ctx_first and offsets[t][0] >= a1:
                        t -= 1
                    if s <= t:
                        start_tok, end_tok = s, t
            out.append(
                TrainWindow(
                    np.asarray(ids, dtype=np.int32),
                    np.asarray(enc["token_type_ids"][i], dtype=np.int8),
                    start_tok,
                    end_tok,
                )
            )
    return out


@dataclass
class EvalWindow:
    example_index: int
    input_ids: np.ndarray
    token_type_ids: np.ndarray
    offsets: list[tuple[int, int] | None]  # None outside the context


def build_eval_windows(
    tokenizer,
    examples: Sequence[QAExample],
    max_length: int = 256,
    stride: int = 128,
    max_question_tokens: int = 64,
    batch_size: int = 1000,
) -> list[EvalWindow]:
    """Windows for prediction, each keeping the character offsets of its context tokens."""
    out: list[EvalWindow] = []
    for b in range(0, len(examples), batch_size):
        batch = examples[b : b + batch_size]
        enc = _encode(tokenizer, batch, max_length, stride, max_question_tokens)
        for i, ex_idx in enumerate(enc["overflow_to_sample_mapping"]):
            seq = enc.sequence_ids(i)
            offsets = [
                tuple(o) if s == 1 else None
                for o, s in zip(enc["offset_mapping"][i], seq, strict=True)
            ]
            out.append(
                EvalWindow(
                    b + ex_idx,
                    np.asarray(enc["input_ids"][i], dtype=np.int32),
                    np.asarray(enc["token_type_ids"][i], dtype=np.int8),
                    offsets,
                )
            )
    return out


def length_bucketed_batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random, bucket_batches: int = 50
) -> list[list[int]]:
    """Shuffled batches of indices of similar length (less padding), in random order.

    Indices are shuffled, cut into chunks of ``bucket_batches * batch_size``, each chunk sorted
    by length and cut into batches; the batches are then shuffled.
    """
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    chunk = batch_size * bucket_batches
    batches: list[list[int]] = []
    for c in range(0, len(idx), chunk):
        part = sorted(idx[c : c + chunk], key=lambda i: lengths[i])
        batches.extend(part[b : b + batch_size] for b in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def collate(windows: Sequence, pad_id: int = 0, multiple: int = 8) -> dict[str, np.ndarray]:
    """Pad a batch of windows to its longest (rounded up to ``multiple``)."""
    n = max(len(w.input_ids) for w in windows)
    n = -(-n // multiple) * multiple
    ids = np.full((len(windows), n), pad_id, dtype=np.int64)
    tt = np.zeros((len(windows), n), dtype=np.int64)
    am = np.zeros((len(windows), n), dtype=np.int64)
    for r, w in enumerate(windows):
        k = len(w.input_ids)
        ids[r, :k] = w.input_ids
        tt[r, :k] = w.token_type_ids
        am[r, :k] = 1
    return {"input_ids": ids, "token_type_ids": tt, "attention_mask": am}
