"""The end-to-end benchmark on held-out SQuAD: its sample, its scoring, the second-read comparison."""

from __future__ import annotations

import pytest

from eval.squad_ask import Outcome, evaluate, sample, summarise
from eval.squad_retrieval import Probe, write_corpus
from rag.config import get_settings
from rag.training.squad import SQUAD_V2_DEV

DATA_DIR = get_settings().qa_data_dir


@pytest.mark.skipif(not (DATA_DIR / SQUAD_V2_DEV).exists(), reason="qa-data not mounted")
def test_the_sample_takes_both_kinds_of_question_from_articles_the_calibration_did_not_see(
    tmp_path,
):
    probes = write_corpus(tmp_path, DATA_DIR, unanswerable=True)
    assert sum(not p.answers for p in probes) == 2657 and len(probes) == 5566
    titles = sorted({p.article for p in probes})
    chosen = sample(probes, 300, seed=1)
    assert len(chosen) == 300 and len({p.question for p in chosen}) > 290
    assert {p.article for p in chosen} <= set(titles[1::2])  # calibration fits titles[0::2]
    assert 0.3 < sum(not p.answers for p in chosen) / 300 < 0.7
    assert sample(probes, 300, seed=1) == chosen


def _outcome(answerable: bool, answered: bool, f1: float = 0.0, ms: float = 10.0) -> Outcome:
    return Outcome(answerable, answered, float(f1 == 1.0), f1, answered, ms)


def test_summary_scores_refusals_by_kind_and_weights_unanswerables_to_a_fifth():
    outcomes = [
        _outcome(True, True, 1.0, 10),
        _outcome(True, True, 0.5, 20),
        _outcome(True, False, 0.0, 30),
        _outcome(False, False, 1.0, 40),
        _outcome(False, True, 0.0, 50),
    ]
    s = summarise(outcomes)
    assert (s["answerable"], s["unanswerable"]) == (3, 2)
    assert s["has_ans_f1"] == 0.5 and s["has_ans_em"] == pytest.approx(0.3333, abs=1e-4)
    assert s["answerable_refused"] == pytest.approx(0.3333, abs=1e-4)
    assert s["unanswerable_refused"] == 0.5
    assert s["f1_at_20pct_unanswerable"] == pytest.approx(0.8 * 0.5 + 0.2 * 0.5)
    assert (s["median_ms"], s["p95_ms"]) == (30.0, 48.0)  # p95 interpolated, as everywhere


def test_the_second_read_is_compared_on_the_real_pipeline(seed_pipeline, dev_questions):
    def probe(qid: str) -> Probe:
        q = next(q for q in dev_questions if q["id"] == qid)
        return Probe(q["question"], q["doc"] or "", q["evidence"], tuple(q["answers"]), "seeds")

    probes = [probe("dev-009"), probe("dev-002"), probe("dev-021")]  # deep, easy, unanswerable
    settings = seed_pipeline.settings
    report = evaluate(seed_pipeline, probes, [0, 7])
    assert seed_pipeline.settings is settings  # asked through with_settings, never changed
    assert report[0]["answerable_refused"] == 0.5  # dev-009's evidence ranks 6th or 7th
    assert report[7]["answerable_refused"] == 0.0
    assert report[7]["has_ans_f1"] == report[7]["right_document"] == 1.0
    assert report[0]["unanswerable_refused"] == report[7]["unanswerable_refused"] == 1.0
