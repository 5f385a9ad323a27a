"""Synthetic unanswerable (and excerpt) training examples built from SQuAD articles."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rag.readers.words import content_words
from rag.sentences import split_sentences
from rag.training.squad import QAExample, answer_occurs

SIMILAR_STEM = 5  # characters kept per word when matching question and paragraph words
MIN_SENTENCES_LEFT = 2  # a paragraph cut down to fewer sentences gives no neg_sentence example
EXCERPT_NEIGHBOURS = 1  # pos_excerpt keeps up to this many sentences on each side of the answer


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
