"""The training mix: pools of SQuAD-format examples, drawn by share into one shuffled list.

Deterministic given a seed: the same arguments give the same examples in the same order.
"""

from __future__ import annotations

import random
from pathlib import Path

from rag.training.negatives import (
    answer_excerpts,
    answer_sentence_negatives,
    entity_swap_negatives,
    paragraph_negatives,
    similar_paragraph_negatives,
)
from rag.training.squad import (
    SHIFTS,
    SQUAD_TRAIN,
    SQUAD_V2_DEV,
    QAExample,
    examples_from_articles,
    load_articles,
    split_v2_dev,
)

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


def build_training_examples(
    n_examples: int,
    seed: int,
    data_dir: Path,
    mix: dict[str, float] | None = None,
    repeat: dict[str, int] | None = None,
) -> list[QAExample]:
    """About ``n_examples`` shuffled training examples drawn from the pools by ``mix``.

    A pool named in ``repeat`` may be drawn up to that many times over (each pass in its own
    shuffled order), so a small pool such as the real unanswerables of ``v2dev`` can weigh
    more; its share in ``mix`` must ask for more than one pass (``ValueError`` otherwise).
    Never touches the held-out half of SQuAD v2.0 dev.
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
        take, times = round(mix[name] * n_examples), repeat.get(name, 1)
        if times > 1 and take <= 1.05 * len(pool):
            # the share, not the repeat, sets how much is drawn: an inert repeat is a wrong recipe
            raise ValueError(
                f"--repeat {name}={times} has no effect: its --mix share {mix[name]:g} draws "
                f"{take:,} examples of a pool of {len(pool):,}; raise the share to about "
                f"{times * len(pool) / n_examples:.2f} to draw it {times} times"
            )
        passes = [pool]
        for k in range(1, times):
            passes.append(random.Random(f"{seed}-{name}-{k}").sample(pool, len(pool)))
        drawn = [e for p in passes for e in p]
        chosen.extend(drawn[:take])
    rng.shuffle(chosen)
    return chosen
