"""``verbatim eval --compare haystack``: both rows in one report, Haystack's citations round-trip."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from eval.backends import local_corpus
from eval.cli import main as eval_main
from eval.questions import DEV_QUESTIONS

PICK = ("dev-002", "dev-004", "dev-005")  # two answerable, and an unanswerable one below
UNANSWERABLE = next(
    json.loads(line)["id"]
    for line in DEV_QUESTIONS.read_text("utf-8").splitlines()
    if not json.loads(line)["answerable"]
)


@pytest.fixture(scope="module")
def questions(tmp_path_factory) -> Path:
    lines = DEV_QUESTIONS.read_text("utf-8").splitlines()
    picked = [line for line in lines if json.loads(line)["id"] in (*PICK, UNANSWERABLE)]
    path = tmp_path_factory.mktemp("compare") / "small.jsonl"
    path.write_text("\n".join(picked) + "\n", encoding="utf-8")
    return path


def test_compare_reports_both_systems_and_haystack_citations_round_trip(
    questions, seed_settings, tmp_path, capsys
):
    pytest.importorskip("haystack")
    pytest.importorskip("haystack_integrations.components.readers.transformers")
    out = tmp_path / "out"
    args = ["--index-dir", str(seed_settings.index_dir), "--questions", str(questions)]
    args += ["--out", str(out), "--compare", "haystack", "--compare-no-answer", "both", "-q"]
    code = eval_main([*args, "--fail-under", "f1=0"])
    printed = capsys.readouterr().out
    assert code == 0
    data = json.loads((out / "results.json").read_text("utf-8"))
    labels = [c["label"] for c in data["configs"]]
    assert labels == [
        "mode=hybrid,reader=span,top_k=5,thr=service",
        "haystack,reader=reader,no_answer=on,thr=service",
        "haystack,reader=reader,no_answer=off,thr=service",
    ]
    assert all(f"| {label} |" in printed for label in labels)
    assert "Haystack 3.4" in (out / "report.md").read_text("utf-8")
    texts = local_corpus(seed_settings)
    for cfg in data["configs"]:
        assert cfg["metrics"]["n"] == 4 and cfg["metrics"]["total_p50_ms"] > 0
        for rec in cfg["records"]:
            assert not rec["error"] and rec["n_passages"] >= 1
            cite = rec["citation"]
            if cite is not None:
                assert texts[cite["doc_id"]][cite["start"] : cite["end"]] == cite["text"]
                assert cite["text"] == rec["candidate"]
    off = data["configs"][2]
    assert all(r["accepted"] for r in off["records"])  # no-answer off: every question answered
    assert all(r["n_passages"] == 5 for r in off["records"])  # RRF's top 5 splits
    assert off["metrics"]["f1"] > 0


def test_haystack_no_answer_and_threshold_decide_abstention():
    pytest.importorskip("haystack")
    from haystack import Document, ExtractedAnswer

    from eval.haystack_backend import to_answer

    text = "Intro line. The bridge opened in 1932. It is long."
    split = Document(content="The bridge opened in 1932.", meta={"doc_id": "d", "title": "T"})
    starts = {split.id: text.index("The bridge")}
    span = ExtractedAnswer(
        query="q",
        score=0.6,
        data="1932",
        document=split,
        document_offset=ExtractedAnswer.Span(21, 25),
    )
    none = ExtractedAnswer(query="q", score=0.4, data=None)
    ms = {"retrieve": 1.0, "read": 2.0, "total": 3.0}
    answered = to_answer("q", [split], [span, none], {"d": text}, starts, ms)
    assert not answered["abstained"] and answered["answer"] == "1932"
    cite = answered["citations"][0]
    assert text[cite["start"] : cite["end"]] == "1932"
    assert cite["sentence"] == "The bridge opened in 1932."
    assert answered["passages"][0]["start"] == 12
    sure_none = ExtractedAnswer(query="q", score=0.7, data=None)
    refused = to_answer("q", [split], [sure_none, span], {"d": text}, starts, ms)
    assert refused["abstained"] and refused["answer"] is None
    assert refused["alternatives"][0]["text"] == "1932"  # kept for the offline threshold sweep
    low = to_answer("q", [split], [span], {"d": text}, starts, ms, score_threshold=0.7)
    assert low["abstained"]


def test_compare_without_the_extra_exits_2_naming_it(questions, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "eval.haystack_backend", None)  # as if haystack were absent
    code = eval_main(["--questions", str(questions), "--compare", "haystack", "-q"])
    assert code == 2
    assert "pip install -e '.[compare]'" in capsys.readouterr().err
