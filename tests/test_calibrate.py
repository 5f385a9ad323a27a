"""The calibration's held-out reads: retrieval-like distractors, ranks, one forward per question."""

from __future__ import annotations

import numpy as np
import pytest

from rag.config import PROJECT_ROOT, Settings, get_settings
from rag.readers.calibration import FEATURES
from rag.readers.span import SpanReader
from rag.training.calibrate import read_item, sample_items
from rag.training.squad import answer_occurs, heldout_articles

DATA_DIR = get_settings().qa_data_dir

MODEL = PROJECT_ROOT / "models" / "reader"


@pytest.fixture(scope="module")
def items(encoder):
    return sample_items(6, 3, seed=7, data_dir=DATA_DIR, encoder=encoder)


def test_distractors_are_the_most_similar_paragraphs_without_the_answer(items, encoder) -> None:
    held = heldout_articles(DATA_DIR)
    held_titles = {a["title"] for a in held}
    assert len(items) == 6
    for item in items:
        assert item.title in held_titles  # never the half that training may use
        assert 1 <= len(item.texts) <= 4
        others = [t for i, t in enumerate(item.texts) if i != item.gold]
        assert not any(answer_occurs(item.answers, t) for t in others)
        sims = encoder.encode(item.texts) @ encoder.encode([item.question])[0]
        assert np.all(np.diff(sims) <= 1e-4)  # best first, as retrieval hands them over
        article = next(a for a in held if a["title"] == item.title)
        paras = [p["context"] for p in article["paragraphs"]]
        left_out = [p for p in paras if p not in item.texts and not answer_occurs(item.answers, p)]
        if len(others) == 3 and left_out:  # no closer answer-free paragraph was left out
            out_sims = encoder.encode(left_out) @ encoder.encode([item.question])[0]
            assert out_sims.max() <= min(s for i, s in enumerate(sims) if i != item.gold) + 1e-4


@pytest.mark.skipif(not (MODEL / "model.safetensors").is_file(), reason="no shipped reader")
def test_read_item_ranks_passages_within_each_setting(items) -> None:
    reader = SpanReader.from_settings(Settings(reader_model=str(MODEL)))
    reader.warm_up()
    item = next(i for i in items if i.answers and len(i.texts) > 1)
    reads = {rd.setting: rd for rd in read_item(reader, item, top=5)}
    assert set(reads) == {"single", "mixed", "absent"}
    rank = FEATURES.index("passage_rank")
    for rd in reads.values():
        assert rd.rows and all(len(r.features) == len(FEATURES) for r in rd.rows)
        assert all(0 < r.features[rank] <= 1 for r in rd.rows)
    assert {r.features[rank] for r in reads["single"].rows} == {1.0}  # alone, it is first
    assert reads["absent"].answers == ()
    assert any(r.features[rank] == 1.0 for r in reads["absent"].rows) or not reads["absent"].rows
