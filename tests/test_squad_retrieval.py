"""The retrieval benchmark on held-out SQuAD articles: its corpus and its notion of a hit."""

from __future__ import annotations

import pytest

from eval.squad_retrieval import Probe, first_hit, write_corpus
from rag.config import get_settings
from rag.training.squad import SQUAD_V2_DEV, heldout_articles

DATA_DIR = get_settings().qa_data_dir


@pytest.mark.skipif(not (DATA_DIR / SQUAD_V2_DEV).exists(), reason="qa-data not mounted")
def test_corpus_holds_every_held_out_article_and_its_answerable_questions(tmp_path):
    probes = write_corpus(tmp_path, DATA_DIR)
    held = heldout_articles(DATA_DIR)
    files = sorted(tmp_path.glob("*.txt"))
    assert len(files) == len(held)
    texts = {f.name: f.read_text(encoding="utf-8") for f in files}
    assert len(probes) > 2000 and all(p.answers for p in probes)
    for p in probes[::50]:
        assert p.paragraph in texts[p.doc_id]
        assert any(a in p.paragraph for a in p.answers)


def test_a_hit_is_a_passage_inside_the_question_paragraph_holding_an_answer(seed_pipeline):
    chunk = next(c for c in seed_pipeline.store.chunks.values() if "75th anniversary" in c.text)
    paragraph = seed_pipeline.store.documents[chunk.doc_id].text  # the whole article
    question = "Which anniversary of diplomatic relations were China and Russia marking?"
    hit = Probe(question, chunk.doc_id, paragraph, ("75th anniversary",))
    assert first_hit(seed_pipeline, hit, "hybrid", 5) is not None
    wrong_doc = Probe(question, "elsewhere.txt", paragraph, ("75th anniversary",))
    assert first_hit(seed_pipeline, wrong_doc, "hybrid", 5) is None
    no_answer = Probe(question, chunk.doc_id, paragraph, ("a phrase found nowhere",))
    assert first_hit(seed_pipeline, no_answer, "hybrid", 5) is None
