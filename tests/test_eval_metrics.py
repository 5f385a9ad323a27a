"""Evaluation metrics, question loading, config parsing and the report, on hand-computed cases."""

from __future__ import annotations

import json

import pytest

from eval import metrics as m
from eval.cli import check_floors, parse_floors
from eval.configs import ConfigError, EvalConfig, parse_config
from eval.harness import ConfigResult, EvalResult
from eval.questions import DEV_QUESTIONS, QuestionFileError, load_questions, parse_questions
from eval.report import write_all

# -- answers ---------------------------------------------------------------------------------


def test_squad_normalisation():
    assert m.normalize_answer("The  75th Anniversary!") == "75th anniversary"
    assert m.normalize_answer("a U.S.-led  bloc, an idea") == "usled bloc idea"
    assert m.normalize_answer("  ") == ""


def test_exact_match_is_normalised_and_max_over_golds():
    assert m.exact_match("the Ceasefire.", ["ceasefire as soon as possible", "ceasefire"]) == 1.0
    assert m.exact_match("ceasefire now", ["ceasefire"]) == 0.0
    assert m.exact_match(None, ["ceasefire"]) == 0.0


def test_token_f1_takes_the_best_gold():
    # pred [ceasefire, as, soon] vs [ceasefire, as, soon, as, possible]: P=3/3, R=3/5 -> 0.75
    # vs [ceasefire]: P=1/3, R=1 -> 0.5
    golds = ["ceasefire as soon as possible", "ceasefire"]
    assert m.token_f1("Ceasefire as soon", golds) == pytest.approx(0.75)
    assert m.token_f1("a ceasefire", ["ceasefire"]) == 1.0  # the article does not count
    assert m.token_f1("peace talks", golds) == 0.0
    assert m.token_f1(None, golds) == 0.0
    # repeated tokens count once per gold occurrence: common = min(2, 1) = 1 -> P=1/2, R=1
    assert m.token_f1("no no", ["no"]) == pytest.approx(2 / 3)


# -- spans, hits, ranks ----------------------------------------------------------------------

DOC = "Intro line. Wang said China calls for ceasefire as soon as possible. The end here."
EVIDENCE = "Wang said China calls for ceasefire as soon as possible."
EV_START = DOC.index(EVIDENCE)
OTHER = "Elsewhere: a ceasefire was agreed."


def _gold() -> m.Gold:
    return m.Gold.build(["a.txt", "b.txt"], ["ceasefire"], EVIDENCE, {"a.txt": DOC, "b.txt": OTHER})


def _passage(doc_id: str, start: int, end: int) -> dict:
    text = {"a.txt": DOC, "b.txt": OTHER, "z.txt": DOC}[doc_id][start:end]
    return {"doc_id": doc_id, "start": start, "end": end, "text": text}


def test_overlap_and_find_all():
    assert m.overlaps((0, 5), (4, 8)) and not m.overlaps((0, 5), (5, 8))
    assert m.find_all("abab ab", "ab") == [(0, 2), (2, 4), (5, 7)]
    assert m.find_all("abc", "") == []


def test_gold_locates_evidence_and_answers():
    gold = _gold()
    assert gold.evidence_spans["a.txt"] == [(EV_START, EV_START + len(EVIDENCE))]
    c = DOC.index("ceasefire")
    assert gold.answer_spans["a.txt"] == [(c, c + 9)]
    assert gold.answer_spans["b.txt"] == [(13, 22)]


def test_passage_hits_by_containment_or_overlap():
    gold = _gold()
    # a passage that only touches the start of the evidence sentence (overlap) hits
    assert m.passage_hits(**_args(_passage("a.txt", 0, EV_START + 4)), gold=gold)
    # a passage after the evidence, without an answer, misses
    tail = len(DOC) - len("The end here.")
    assert not m.passage_hits(**_args(_passage("a.txt", tail, len(DOC))), gold=gold)
    # an also_in document's passage that contains a gold answer hits
    assert m.passage_hits(**_args(_passage("b.txt", 0, len(OTHER))), gold=gold)
    # the same text in a document that is not accepted does not
    assert not m.passage_hits(**_args(_passage("z.txt", 0, len(DOC))), gold=gold)


def _args(p: dict) -> dict:
    return {"doc_id": p["doc_id"], "start": p["start"], "end": p["end"], "text": p["text"]}


def test_overlap_is_judged_within_the_passage_without_document_texts():
    gold = m.Gold.build(["a.txt"], ["ceasefire"], EVIDENCE, {})  # no texts known
    assert m.passage_hits("a.txt", EV_START, len(DOC), DOC[EV_START:], gold)
    # the evidence is cut by the passage's end and holds no full answer: unknown, so a miss
    cut = DOC.index("ceasefire") + 3
    assert not m.passage_hits("a.txt", 0, cut, DOC[:cut], gold)


def test_first_hit_rank_doc_rank_and_mrr():
    gold = _gold()
    tail = len(DOC) - len("The end here.")
    passages = [
        _passage("z.txt", 0, 10),
        _passage("a.txt", tail, len(DOC)),
        _passage("a.txt", 0, len(DOC)),
    ]
    assert m.first_hit_rank(passages, gold) == 3
    assert m.first_doc_rank(passages, gold.accepted) == 2
    assert m.first_hit_rank(passages[:2], gold) is None
    ranks = [1, 2, None, 4]
    assert m.mrr(ranks) == pytest.approx((1 + 0.5 + 0 + 0.25) / 4)
    assert [m.hit_at_k(ranks, k) for k in (1, 3, 5)] == [0.25, 0.5, 0.75]
    assert m.mrr([]) is None


def test_citation_correct():
    gold = _gold()
    c = DOC.index("ceasefire")
    cite = {"doc_id": "a.txt", "start": c, "end": c + 9, "passage": DOC, "passage_start": 0}
    assert m.citation_correct(cite, gold)
    assert not m.citation_correct({**cite, "start": 0, "end": 5}, gold)  # "Intro"
    assert not m.citation_correct({**cite, "doc_id": "z.txt"}, gold)
    assert m.citation_correct({**cite, "doc_id": "b.txt", "start": 13, "end": 22}, gold)
    assert not m.citation_correct(None, gold)


def test_percentile_interpolates():
    assert m.percentile([4, 1, 3, 2], 50) == pytest.approx(2.5)
    assert m.percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    assert m.percentile([], 50) is None


# -- abstention ------------------------------------------------------------------------------


def _record(qid, answerable, score, f1, abstained=False, qtype="t", rank=1) -> dict:
    return {
        "id": qid,
        "type": qtype,
        "answerable": answerable,
        "abstained": abstained,
        "score": score,
        "candidate": "x",
        "cand_em": float(f1 == 1.0),
        "cand_f1": f1,
        "cand_citation_ok": answerable,
        "hit_rank": rank if answerable else None,
        "doc_rank": rank if answerable else None,
        "n_passages": 5,
        "timings_ms": {"retrieve": 10.0, "read": 20.0, "total": 30.0, "wall": 31.0},
    }


RECORDS = [
    _record("a", True, 0.9, 1.0, qtype="date"),
    _record("b", True, 0.6, 0.5, qtype="date", rank=3),
    _record("c", True, 0.3, 1.0, abstained=True, qtype="person", rank=None),
    _record("d", False, 0.7, 0.0, qtype="unanswerable"),
    _record("e", False, 0.2, 0.0, abstained=True, qtype="unanswerable"),
]


def test_abstention_counts_at_a_threshold():
    decided = [m.apply_threshold(r, 0.5) for r in RECORDS]
    assert [r["accepted"] for r in decided] == [True, True, False, True, False]
    s = m.summarize(decided, top_k=5)
    assert s["coverage"] == pytest.approx(3 / 5)
    assert s["abstain_unanswerable"] == pytest.approx(1 / 2)
    assert s["false_refusal"] == pytest.approx(1 / 3)
    assert s["f1"] == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    assert s["em"] == pytest.approx(1 / 3)
    # answered: a (ok), b (ok), d (unanswerable, so wrong) -> 2/3
    assert s["citation"] == pytest.approx(2 / 3)
    assert s["hit@1"] == pytest.approx(1 / 3) and s["hit@3"] == pytest.approx(2 / 3)
    assert s["hit@10"] is None and s["doc_recall@10"] is None  # top_k 5 cannot tell
    assert s["total_p50_ms"] == 30.0
    assert s["overall_f1"] == pytest.approx((1.0 + 0.5 + 0.0 + 0.0 + 1.0) / 5)


def test_service_decision_when_no_threshold():
    decided = [m.apply_threshold(r, None) for r in RECORDS]
    assert [r["accepted"] for r in decided] == [True, True, False, True, False]
    no_candidate = {**RECORDS[0], "candidate": None}
    assert not m.apply_threshold(no_candidate, 0.0)["accepted"]


def test_by_type_breaks_every_metric_down():
    types = m.by_type([m.apply_threshold(r, 0.5) for r in RECORDS])
    assert set(types) == {"date", "person", "unanswerable"}
    assert types["date"]["f1"] == pytest.approx(0.75)
    assert types["person"]["false_refusal"] == 1.0
    assert types["unanswerable"]["f1"] is None
    assert types["unanswerable"]["abstain_unanswerable"] == 0.5


def test_sweep_and_best_threshold():
    points = m.sweep(RECORDS, [0.0, 0.25, 0.5, 0.65, 0.95])
    assert [p["coverage"] for p in points] == [1.0, 0.8, 0.6, 0.4, 0.0]
    # overall F1: 0.0 -> (1+.5+1+0+0)/5; 0.25 -> (1+.5+1+0+1)/5; 0.5 -> 2.5/5;
    # 0.65 -> (1+0+0+0+1)/5 (b refused); 0.95 -> 2/5
    assert [p["overall_f1"] for p in points] == pytest.approx([0.5, 0.7, 0.5, 0.4, 0.4])
    assert m.best_threshold(points) == 0.25


# -- questions -------------------------------------------------------------------------------

GOOD = {
    "id": "q1",
    "question": "When?",
    "answers": ["1874"],
    "doc": "a.txt",
    "also_in": [],
    "answerable": True,
    "type": "date",
    "evidence": "It was built in 1874.",
}


def _lines(*objs) -> list[str]:
    return [o if isinstance(o, str) else json.dumps(o) for o in objs]


def test_dev_set_loads(tmp_path):
    qs = load_questions(DEV_QUESTIONS)
    assert len(qs) == 40 and sum(not q.answerable for q in qs) == 5
    (tmp_path / "q.jsonl").write_text("\n" + json.dumps(GOOD) + "\n\n", encoding="utf-8")
    assert [q.id for q in load_questions(tmp_path / "q.jsonl")] == ["q1"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", r"x.jsonl:2: not valid JSON"),
        ("[1, 2]", r"x.jsonl:2: expected a JSON object"),
        ({**GOOD, "id": "q2", "answerable": None}, r"x.jsonl:2: field 'answerable'"),
        ({k: v for k, v in GOOD.items() if k != "question"} | {"id": "q2"}, "field 'question'"),
        ({**GOOD, "id": "q2", "answers": []}, r":2: an answerable question needs"),
        ({**GOOD, "id": "q2", "answers": "1874"}, r":2: field 'answers'"),
        ({**GOOD, "id": "q2", "doc": None}, r":2: an answerable question needs its 'doc'"),
        ({**GOOD, "id": "q2", "answerable": False}, r":2: an unanswerable question must"),
        (GOOD, r"x.jsonl:2: duplicate id 'q1' \(first on line 1\)"),
    ],
)
def test_malformed_line_names_the_line_and_the_problem(bad, message):
    with pytest.raises(QuestionFileError, match=message):
        parse_questions(_lines(GOOD, bad), "x.jsonl")


def test_empty_or_missing_question_file(tmp_path):
    with pytest.raises(QuestionFileError, match="holds no questions"):
        parse_questions(["", "  "], "x.jsonl")
    with pytest.raises(QuestionFileError, match="cannot read"):
        load_questions(tmp_path / "missing.jsonl")


# -- configs, floors, report -----------------------------------------------------------------


def test_parse_config():
    cfg = parse_config("mode=bm25, reader=sentence,k=3,threshold=0.4")
    assert cfg == EvalConfig("bm25", "sentence", 3, 0.4)
    assert cfg.run_key == ("bm25", "sentence", 3)
    assert cfg.label == "mode=bm25,reader=sentence,top_k=3,thr=0.4"
    for bad in ("mode=fuzzy", "top_k=0", "threshold=2", "colour=red", "mode"):
        with pytest.raises(ConfigError):
            parse_config(bad)


def test_floors():
    assert parse_floors(["f1=0.5", "hit@5=0.8"]) == {"f1": 0.5, "hit@5": 0.8}
    for bad in (["f1"], ["bogus=1"], ["f1=high"], ["f1=nan"]):
        with pytest.raises(ConfigError, match="--fail-under"):
            parse_floors(bad)
    result = ConfigResult(EvalConfig("bm25"), metrics={"f1": 0.4, "hit@5": 0.9, "hit@10": None})
    failures = check_floors([result], {"f1": 0.5, "hit@5": 0.8, "hit@10": 0.5})
    assert failures == [
        "mode=bm25,thr=service: f1 = 0.4000 < 0.5",
        "mode=bm25,thr=service: hit@10 was not measured (floor 0.5)",
    ]


def test_report_writes_json_markdown_and_plots(tmp_path):
    decided = [m.apply_threshold(r, 0.5) for r in RECORDS]
    results = [
        ConfigResult(
            EvalConfig("bm25", "sentence", 5, 0.5),
            metrics=m.summarize(decided, 5),
            by_type=m.by_type(decided, 5),
            sweep=m.sweep(RECORDS, [i / 100 for i in range(101)]),
            best_threshold=0.25,
            records=decided,
        ),
        ConfigResult(EvalConfig("dense", "span"), skipped="no trained reader model"),
    ]
    paths = write_all(EvalResult("q.jsonl", "test", results, ["a warning"]), tmp_path / "out")
    names = {p.name for p in paths}
    assert names == {"results.json", "report.md", "metrics.png", "threshold.png", "latency.png"}
    assert all(p.stat().st_size > 0 for p in paths)
    report = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "| mode=bm25,reader=sentence,top_k=5,thr=0.5 | 0.333 | 0.667 |" in report
    assert "skipped: no trained reader model" in report and "a warning" in report
    data = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    assert len(data["configs"][0]["records"]) == 5 and data["configs"][1]["skipped"]
    assert data["configs"][0]["sweep"][50]["threshold"] == 0.5
