"""The verbatim command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

VERBATIM = [sys.executable, "-m", "rag.cli"]


def run(args: list[str], index_dir: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "VERBATIM_INDEX_DIR": str(index_dir)}
    return subprocess.run(
        VERBATIM + args, capture_output=True, text=True, env=env, timeout=300, **kw
    )


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "index"
    done = run(["ingest"], path)
    assert done.returncode == 0, done.stderr
    assert "5 documents" in done.stdout
    return path


def test_ask_json_is_the_answer_contract(index_dir):
    done = run(["ask", "What did Wang say Beijing wants to see in Ukraine?", "--json"], index_dir)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["question"].startswith("What did Wang")
    if not answer["abstained"]:
        c = answer["citations"][0]
        text = (Path(__file__).parents[1] / "seeds" / c["doc_id"]).read_text(encoding="utf-8")
        assert text[c["start"] : c["end"]] == answer["answer"]


def test_ask_human_output_names_source_and_marks_the_answer(index_dir):
    done = run(
        ["ask", "Which anniversary of diplomatic relations did China and Russia mark?"], index_dir
    )
    assert done.returncode == 0, done.stderr
    assert "Answer:" in done.stdout and "Source:" in done.stdout
    assert "»" in done.stdout and "«" in done.stdout


def test_search_lists_ranked_passages(index_dir):
    done = run(["search", "Gorbachev Beijing 1989", "--mode", "bm25", "--top-k", "3"], index_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1. [")
    assert "Gorbachev" in done.stdout


def test_empty_question_exits_2_with_a_message(index_dir):
    done = run(["ask", "   "], index_dir)
    assert done.returncode == 2
    assert "question is empty" in done.stderr


def test_bad_option_exits_2(index_dir):
    assert run(["ask", "x", "--mode", "fuzzy"], index_dir).returncode == 2
    assert run(["ask", "x", "--top-k", "0"], index_dir).returncode == 2


def test_empty_corpus_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    done = run(["ingest", str(tmp_path / "empty")], tmp_path / "index")
    assert done.returncode == 1
    assert "no readable documents" in done.stderr
    assert not (tmp_path / "index").exists()


def test_any_folder_can_be_ingested_and_asked(small_corpus, tmp_path):
    index = tmp_path / "index"
    done = run(["ingest", str(small_corpus)], index)
    assert done.returncode == 0, done.stderr
    assert "3 documents" in done.stdout
    done = run(["search", "Who captains the ferry?", "--json"], index)
    assert done.returncode == 0, done.stderr
    passages = json.loads(done.stdout)
    assert {p["doc_id"] for p in passages} <= {"a.txt", "sub/b.md", "c.html"}
    assert passages[0]["doc_id"] == "c.html"
