"""``verbatim bench-scale`` end to end at a tiny size, its resume, its corpus and its usage errors."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from eval.bench_scale import COLUMNS, chunk_sizes, floor, missed_size_floors
from rag.config import PROJECT_ROOT, get_settings
from rag.training.squad import SQUAD_TRAIN, SQUAD_V2_DEV

DATA_DIR = get_settings().qa_data_dir
needs_data = pytest.mark.skipif(
    not ((DATA_DIR / SQUAD_TRAIN).is_file() and (DATA_DIR / SQUAD_V2_DEV).is_file()),
    reason=f"SQuAD data not found in {DATA_DIR} (../shared/qa-data beside the project)",
)


def bench_scale(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "eval.bench_scale", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


@needs_data
def test_a_tiny_run_prints_every_column_with_sane_figures_and_resumes(tmp_path: Path):
    work, out = tmp_path / "work", tmp_path / "scale.json"
    args = ["--chunks", "300", "--questions", "10", "--search-questions", "60"]
    floors = ["--fail-under", "hit@5=0.2", "--fail-under", "recall@10=0.95"]
    run = bench_scale(
        *args, *floors, "--add-pages", "2", "--work-dir", str(work), "--json", str(out)
    )
    assert run.returncode == 0, run.stderr[-3000:]

    header = next(line for line in run.stdout.splitlines() if line.startswith("| chunks"))
    assert [c.strip() for c in header.strip("|").split("|")] == [label for _, label in COLUMNS]
    (row,) = json.loads(out.read_text())["rows"]
    assert 240 <= row["chunks"] <= 360 and row["documents"] >= 2
    assert row["kind"] == "flat" and row["evidence"] == "off"  # a small corpus
    assert row["embedded_chunks"] == row["chunks"] and row["chunks_per_s"] > 0
    assert row["ingest_peak_rss_mb"] > 0 and row["store_mb"] > 0
    assert row["load_s"] >= 0 and row["load_rss_mb"] > 0
    assert row["kept_load_s"] >= 0 and row["kept_load_rss_mb"] > 0
    assert row["searched_questions"] == 60 and row["asked_questions"] == 10
    assert 0 < row["retrieve_ms"][0] <= row["retrieve_ms"][1]
    assert 0 < row["ask_ms"][0] <= row["ask_ms"][1]
    assert 0 <= row["ask_em_f1"][0] <= row["ask_em_f1"][1] <= 1 and row["ask_em_f1"][1] > 0
    assert 0 <= row["hit_at_5"] <= 1 and row["recall_at_10"] == 1.0  # flat: exact
    assert 0 <= row["hit_at_5_dense"] <= 1 and 0 <= row["hit_at_5_bm25"] <= 1
    assert row["planted_questions"] > row["searched_questions"]  # hit@5 asks every one
    assert row["add_chunks"] > 0 and row["add_s"] > 0
    assert row["add_refresh_ms"] > 0 and row["remove_refresh_ms"] > 0

    # resumed, with this size counted as large enough for lexical evidence, held to a floor
    # no run reaches: the table and JSON still come, and the exit says which floor was missed
    large = {"VERBATIM_AUTO_LEXICAL_MIN_CHUNKS": "200"}
    again = bench_scale(
        *args,
        *("--fail-under", "ask_f1=1.01", "--add-pages", "0", "--work-dir", str(work)),
        *("--json", str(out)),
        env=large,
    )
    assert again.returncode == 1, again.stderr[-3000:]
    assert "FAIL:" in again.stderr and "ask_f1" in again.stderr and "| chunks" in again.stdout
    (resumed,) = json.loads(out.read_text())["rows"]
    assert resumed["embedded_chunks"] == 0 and resumed["chunks"] == row["chunks"]
    assert resumed["evidence"] == "on"
    for key in ("hit_at_5_dense", "hit_at_5_bm25"):
        assert resumed[key] == row[key]  # the same corpus and questions
    assert "add_s" not in resumed


@needs_data
def test_the_corpus_plants_held_out_articles_and_lands_on_the_size(encoder):
    from eval.scale_corpus import ChunkCounter, CorpusSource, plan_corpus

    source = CorpusSource(DATA_DIR)
    count = ChunkCounter(encoder.count_tokens, 100, 30)
    small, large = plan_corpus(source, 1000, count), plan_corpus(source, 3000, count)
    for corpus, n in ((small, 1000), (large, 3000)):
        assert 0.95 * n <= corpus.chunks <= n
        planted = {d.doc_id: d.text for d in corpus.docs if d.planted}
        assert planted and sum(d.chunks for d in corpus.docs if d.planted) <= max(n // 4, 200)
        assert all(p.paragraph in planted[p.doc_id] for p in corpus.probes[::25])
    assert {d.doc_id for d in small.docs if d.planted} <= {d.doc_id for d in large.docs}
    added = source.added_document(3)
    assert len(added.pages) == 3 and len(added.text) >= 9000
    assert added.text[added.pages[1] :] not in {d.text for d in large.docs}


def test_usage_errors_exit_2_and_say_why(tmp_path: Path):
    missing = bench_scale("--chunks", "300", env={"VERBATIM_QA_DATA_DIR": str(tmp_path)})
    assert missing.returncode == 2
    assert str(tmp_path) in missing.stderr and "../shared/qa-data" in missing.stderr
    bad = bench_scale("--chunks", "10k")
    assert bad.returncode == 2 and "--chunks" in bad.stderr
    unknown = bench_scale("--chunks", "300", "--fail-under", "hit@9=0.5")
    assert unknown.returncode == 2 and "hit@5, recall@10, ask_f1" in unknown.stderr
    assert chunk_sizes("10000,1_000,1000") == [1000, 10000]
    with pytest.raises(Exception, match="at least 100"):
        chunk_sizes("50")


def test_floors_hold_each_size_to_its_row_and_name_what_was_not_measured():
    floors = [floor("hit@5=0.5"), floor(" ask_f1=0.7")]
    rows = [
        {"chunks": 10000, "hit_at_5": 0.6, "ask_em_f1": [0.6, 0.72]},
        {"chunks": 1000000, "hit_at_5": 0.45},  # asked no questions
    ]
    assert missed_size_floors(rows, floors) == [
        "1,000,000 chunks: hit@5 = 0.4500 < 0.5",
        "1,000,000 chunks: ask_f1 was not measured (floor 0.7)",
    ]
    for bad in ("hit@5", "hit@5=x", "hit@5=inf"):
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(repr(bad))):
            floor(bad)
