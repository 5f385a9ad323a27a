"""The verbatim command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from api_fixtures import free_port

from eval.bench_load import COLUMNS, proc_memory

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


# -- verbatim bench --------------------------------------------------------------------------


def test_bench_times_index_builds_and_each_stage_of_ask(index_dir):
    done = run(["bench", "--limit", "2", "--repeat-ingest", "1", "--warmup", "1"], index_dir)
    assert done.returncode == 0, done.stderr
    assert "ingest seeds/: median " in done.stdout and "over 1 builds" in done.stdout
    assert "ask over 2 questions x 1 (2 calls), milliseconds:" in done.stdout
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()[-3:]}
    assert set(rows) == {"retrieve", "read", "total"}
    assert all(float(v) >= 0 for values in rows.values() for v in values)


def test_bench_compare_haystack_prints_the_single_client_ratio(live_server, tmp_path):
    pytest.importorskip("haystack")
    pytest.importorskip("haystack_integrations.components.readers.transformers")
    args = ["bench", "--url", live_server, "--clients", "1", "--seconds", "2", "--limit", "3"]
    done = run(args + ["--warmup-seconds", "0.5", "--compare", "haystack"], tmp_path / "x")
    assert done.returncode == 0, done.stderr
    assert "haystack (in-process, one at a time) total ms: median " in done.stdout
    ratio = done.stdout.split("over HTTP, 1 client, median ")[1].split(": ")[1].split("x ")[0]
    assert float(ratio) > 0


def test_bench_url_times_post_ask_against_a_live_server(live_server, tmp_path):
    args = ["bench", "--url", live_server, "--limit", "3", "--concurrency", "2", "--warmup", "1"]
    done = run(args, tmp_path / "no-index")
    assert done.returncode == 0, done.stderr
    assert f"POST /ask x 3 (concurrency 2) against {live_server}" in done.stdout
    assert "client latency ms: median " in done.stdout and "server total ms:" in done.stdout
    assert "3 answered with 200" in done.stdout and ", 0 errors" in done.stdout
    assert not (tmp_path / "no-index").exists()  # nothing was built in-process


def test_bench_url_refuses_a_reader_and_reports_an_unreachable_server(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    done = run(["bench", "--url", url, "--reader", "span"], tmp_path / "index")
    assert done.returncode == 2 and "--reader cannot be chosen with --url" in done.stderr
    done = run(["bench", "--url", url, "--limit", "1"], tmp_path / "index")
    assert done.returncode == 1 and "cannot reach the service" in done.stderr


def test_bench_clients_runs_closed_loop_load_per_client_count(live_server, tmp_path):
    args = ["bench", "--url", live_server, "--clients", "1,2", "--seconds", "2"]
    done = run(args + ["--warmup-seconds", "0.5"], tmp_path / "no-index")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[2].split() == " ".join(COLUMNS).split()
    rows = [dict(zip(COLUMNS, line.split(), strict=True)) for line in lines[3:5]]
    assert [row["clients"] for row in rows] == ["1", "2"]
    for row in rows:
        assert float(row["answers/s"]) > 0 and float(row["p50 ms"]) <= float(row["p99 ms"])
        assert int(row["200"]) > 0 and row["429"] == row["other"] == row["conn_err"] == "0"
        assert row["RSS MiB"] != "n/a"  # from the server's /metrics
    markdown = [line for line in lines if line.startswith("| ")]
    assert markdown[0].startswith("| clients | answers/s | p50 ms | p95 ms | p99 ms | statuses |")
    assert [m.split(" | ")[:1] for m in markdown[1:]] == [["| 1"], ["| 2"]]
    assert not (tmp_path / "no-index").exists()


def test_bench_reads_a_local_process_memory_from_proc():
    rss, peak = proc_memory(os.getpid())
    assert rss is not None and peak is not None and 0 < rss <= peak
    assert proc_memory(2**22 + 1) == (None, None)  # above the kernel's pid limit: no such process


# -- verbatim add / remove / documents -------------------------------------------------------
KETTLE = "Kettle Notes\n\nThe Brannock kettle was invented by Orla Finch in 1911.\n"
ADMIN_TOKEN = "cli-admin-token-0123456789"


def listed(index: Path, *extra: str) -> dict[str, dict]:
    done = run(["documents", "--json", *extra], index)
    assert done.returncode == 0, done.stderr
    return {d["doc_id"]: d for d in json.loads(done.stdout)}


def test_add_remove_and_list_documents_in_the_index_folder(small_corpus, tmp_path):
    index = tmp_path / "index"
    assert "run `verbatim ingest`" in run(["documents"], index).stderr
    assert run(["ingest", str(small_corpus)], index).returncode == 0
    kettle = tmp_path / "kettle.txt"
    kettle.write_text(KETTLE, encoding="utf-8")
    done = run(["add", str(kettle), "--title", "Kettles"], index)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("added") and "kettle.txt" in done.stdout
    docs = listed(index)
    assert docs["kettle.txt"]["title"] == "Kettles" and docs["kettle.txt"]["origin"] == "upload"
    assert {"a.txt", "sub/b.md", "c.html"} <= set(docs)
    table = run(["documents"], index).stdout
    assert table.splitlines()[0].split() == [
        "doc_id",
        "title",
        "format",
        "pages",
        "chunks",
        "updated",
    ]
    assert "Orla Finch" in run(["ask", "Who invented the Brannock kettle?"], index).stdout
    assert run(["add", str(kettle)], index).stdout.startswith("unchanged")

    kettle.write_text(KETTLE.replace("Orla Finch", "Ned Harrow"), encoding="utf-8")
    refused = run(["add", str(kettle)], index)
    assert refused.returncode == 1 and "--replace" in refused.stderr
    assert run(["add", str(kettle), "--replace"], index).stdout.startswith("replaced")
    assert "Ned Harrow" in run(["ask", "Who invented the Brannock kettle?"], index).stdout

    bad = tmp_path / "scan.tiff"
    bad.write_bytes(b"II*\x00")
    refused = run(["add", str(kettle), str(bad)], index)  # all or nothing
    assert refused.returncode == 1 and "scan.tiff" in refused.stderr
    assert run(["add", str(kettle), str(bad), "--title", "T"], index).returncode == 2
    assert run(["remove", "kettle.txt", "nope.txt"], index).returncode == 1
    assert "kettle.txt" in listed(index)
    assert run(["remove", "kettle.txt"], index).stdout.startswith("removed")
    assert "kettle.txt" not in listed(index)


def test_add_remove_and_list_documents_through_the_api(small_corpus, tmp_path):
    from api_fixtures import running_server

    env = {
        "VERBATIM_INDEX_DIR": str(tmp_path / "server-index"),
        "VERBATIM_CORPUS_DIR": str(small_corpus),
        "VERBATIM_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    kettle = tmp_path / "kettle.txt"
    kettle.write_text(KETTLE, encoding="utf-8")
    client_index = tmp_path / "untouched"  # the commands must not fall back to a local index
    with running_server(tmp_path, env) as url:
        refused = run(["add", str(kettle), "--url", url], client_index)
        assert refused.returncode == 1 and "unauthorized" in refused.stderr
        done = run(["add", str(kettle), "--url", url, "--token", ADMIN_TOKEN], client_index)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("added")
        docs = listed(client_index, "--url", url)
        assert docs["kettle.txt"]["origin"] == "upload" and "a.txt" in docs
        answer = httpx.post(f"{url}/ask", json={"question": "Who invented the Brannock kettle?"})
        assert "Orla Finch" in (answer.json()["answer"] or "")
        kettle.write_text(KETTLE.replace("Orla Finch", "Ned Harrow"), encoding="utf-8")
        replaced = run(
            ["add", str(kettle), "--replace", "--url", url, "--token", ADMIN_TOKEN], client_index
        )
        assert replaced.stdout.startswith("replaced"), replaced.stderr
        gone = run(["remove", "kettle.txt", "--url", url, "--token", ADMIN_TOKEN], client_index)
        assert gone.returncode == 0 and gone.stdout.startswith("removed"), gone.stderr
        assert "kettle.txt" not in listed(client_index, "--url", url)
    assert not client_index.exists()
