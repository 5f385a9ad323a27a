"""Tests of the abstention study (``python -m rag.training.abstention``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag.training import abstention as A
from rag.training import data as D


def test_lexical_features_name_what_the_question_adds():
    context = "The Normans gave their name to Normandy in 911. They were Norse raiders."
    start = context.index("911")
    fits = dict(
        zip(
            A.LEXICAL,
            A.lexical_features(
                "When did the Normans give their name to Normandy?", context, start, start + 3
            ),
            strict=True,
        )
    )
    swap = dict(
        zip(
            A.LEXICAL,
            A.lexical_features(
                "When did the Vikings not give their name to Normandy in 1066?",
                context,
                start,
                start + 3,
            ),
            strict=True,
        )
    )
    assert fits["names_absent"] == 0 and swap["names_absent"] == 1  # Vikings
    assert fits["numbers_absent"] == 0 and swap["numbers_absent"] == 1  # 1066
    assert fits["negation_only_in_question"] == 0 and swap["negation_only_in_question"] == 1
    assert fits["absent_in_paragraph"] == 0.25  # give (the text says "gave")
    assert swap["absent_in_paragraph"] == 4 / 7  # vikin, not, give, 1066
    assert fits["span_words_in_question"] == 0


def _signals(rng: np.random.Generator, n: int, half: str) -> A.Signals:
    """Questions whose answerability only the first lexical feature tells; ``diff`` is noise."""
    answerable = rng.integers(0, 2, n)
    lexical = rng.normal(size=(n, len(A.LEXICAL)))
    lexical[:, 0] += 3 * answerable
    qids = [f"{half}{i}" for i in range(n)]
    return A.Signals(
        qids,
        [f"{half}-article-{i % 6}" for i in range(n)],
        answerable,
        {q: "Paris" for q in qids},
        rng.normal(size=n),
        rng.normal(size=(n, 12)).astype(np.float32),
        lexical,
    )


def test_study_finds_the_signal_that_separates_and_scores_it_officially():
    rng = np.random.default_rng(0)
    train, held = _signals(rng, 400, "t"), _signals(rng, 300, "h")
    gold = {q: (["Paris"] if a else []) for q, a in zip(held.qids, held.answerable, strict=True)}
    report = A.study(train, held, gold)
    rows = report["held_out"]
    assert rows["lexical (fit on train half)"]["auc"] > 0.95
    assert 0.35 < rows["diff"]["auc"] < 0.65
    assert 0.35 < rows["states (fit on train half)"]["auc"] < 0.65
    assert rows["diff + 5 * lexical"]["best_f1"] > rows["diff"]["best_f1"] + 10
    assert "states, held-out CV (ceiling)" in rows
    assert max(report["lexical_weights"].items(), key=lambda kv: kv[1])[0] == A.LEXICAL[0]


@pytest.mark.skipif(not (D.DATA_DIR / D.SQUAD_V2_DEV).exists(), reason="qa-data not mounted")
def test_study_reads_both_halves_with_the_shipped_reader(tmp_path, capsys):
    out = tmp_path / "abstention.json"
    assert A.main(["--limit", "60", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report == json.loads(capsys.readouterr().out)
    assert report["questions"] == [60, 60]
    rows = report["held_out"]
    assert {"diff", "lexical (fit on train half)", "states (fit on train half)"} <= set(rows)
    for row in rows.values():
        assert 0.0 <= row["auc"] <= 1.0 and 0.0 <= row["best_f1"] <= 100.0
    assert report["train_half_auc_of_diff"] > 0.9  # the train half was trained on
