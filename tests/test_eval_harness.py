"""The evaluation harness end to end: real model, real FAISS index, in-process and over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from api_fixtures import free_port, running_server

from eval.backends import HttpBackend, InProcessBackend
from eval.cli import main as eval_main
from eval.configs import EvalConfig, expand_configs, span_reader_available
from eval.harness import run_configs
from eval.questions import DEV_QUESTIONS, load_questions

VERBATIM = [sys.executable, "-m", "rag.cli"]
PICK = ("dev-002", "dev-004", "dev-005", "dev-015")
LONG = {
    "id": "too-long",
    "question": "why " * 200,
    "answers": [],
    "doc": None,
    "answerable": False,
    "type": "unanswerable",
}
LOCAL = "reader=sentence,top_k=5"  # explicit, whatever the settings' defaults
CONFIGS = ["mode=bm25", "mode=hybrid", "mode=hybrid,threshold=0.99"]


@pytest.fixture(scope="module")
def small_questions(tmp_path_factory) -> Path:
    """Four dev questions (one with also_in, one unanswerable) and one the service refuses."""
    lines = DEV_QUESTIONS.read_text("utf-8").splitlines()
    picked = [line for line in lines if json.loads(line)["id"] in PICK]
    path = tmp_path_factory.mktemp("questions") / "small.jsonl"
    path.write_text("\n".join([*picked, json.dumps(LONG)]) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def in_process(small_questions, seed_settings, encoder):
    """The small set through the real pipeline; the number of questions actually asked."""
    backend = InProcessBackend(seed_settings, encoder=encoder)
    asked = []
    ask = backend.ask
    backend.ask = lambda q, cfg: (asked.append(cfg.run_key), ask(q, cfg))[1]  # type: ignore[method-assign]
    configs = expand_configs([f"{c},{LOCAL}" for c in CONFIGS], seed_settings)
    results, warnings = run_configs(load_questions(small_questions), configs, backend, False)
    return backend, results, warnings, asked


def test_in_process_run_scores_every_config(in_process, seed_settings):
    backend, results, warnings, asked = in_process
    assert warnings == []
    assert [r.label for r in results] == [
        "mode=bm25,reader=sentence,top_k=5,thr=service",
        "mode=hybrid,reader=sentence,top_k=5,thr=service",
        "mode=hybrid,reader=sentence,top_k=5,thr=0.99",
    ]
    assert len(asked) == 2 * 5  # the threshold variant is decided offline, not asked again
    bm25, hybrid, strict = results
    for r in results:
        assert r.metrics["n"] == 5 and r.metrics["errors"] == 1
        assert r.metrics["hit@10"] is None and r.metrics["hit@5"] is not None
        assert 0.0 <= r.metrics["f1"] <= 1.0 and r.metrics["total_p95_ms"] > 0
        assert set(r.by_type) == {"date", "number", "person", "unanswerable"}
        assert len(r.sweep) == 101 and r.best_threshold is not None
    assert hybrid.metrics["hit@5"] >= 2 / 3
    assert strict.metrics["coverage"] <= hybrid.metrics["coverage"]
    assert [x["score"] for x in strict.records] == [x["score"] for x in hybrid.records]
    docs = backend.documents(set())
    for rec in hybrid.records:
        if rec["id"] == "too-long":
            assert rec["error"] and not rec["accepted"] and rec["timings_ms"] is None
            continue
        if rec["accepted"]:
            c = rec["citation"]
            assert docs[c["doc_id"]][c["start"] : c["end"]] == rec["answer"] == c["text"]
        ranks = [i for i, p in enumerate(rec["passages"], start=1) if p["hit"]]
        assert rec["hit_rank"] == (ranks[0] if ranks else None)
        if rec["id"] == "dev-015":
            assert rec["hit_rank"] is None and rec["doc_rank"] is None


def test_cli_in_process_writes_outputs_and_gates(small_questions, seed_settings, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--index-dir", str(seed_settings.index_dir), "--questions", str(small_questions)]
    args += ["--out", str(out), "--configs", f"mode=bm25,{LOCAL}", "-q"]
    code = eval_main([*args, "--fail-under", "hit@1=0", "--fail-under", "f1=1.01"])
    captured = capsys.readouterr()
    assert code == 1
    assert "FAIL: mode=bm25,reader=sentence,top_k=5,thr=service: f1 = " in captured.err
    assert "hit@1" not in captured.err
    assert "| mode=bm25,reader=sentence,top_k=5,thr=service |" in captured.out
    for name in ("results.json", "report.md", "metrics.png", "threshold.png", "latency.png"):
        assert (out / name).stat().st_size > 0
    data = json.loads((out / "results.json").read_text("utf-8"))
    assert [r["id"] for r in data["configs"][0]["records"]] == [*PICK, "too-long"]


def test_span_reader_run_shares_the_encoder(seed_settings, encoder, small_questions):
    if why := span_reader_available(seed_settings):
        pytest.skip(why)
    backend = InProcessBackend(seed_settings, encoder=encoder)
    configs = expand_configs(["reader=span,mode=bm25", "reader=sentence,mode=bm25"], seed_settings)
    results, warnings = run_configs(load_questions(small_questions), configs, backend, False)
    assert warnings == [] and not any(r.skipped for r in results)
    assert {p.encoder for p in backend._pipelines.values()} == {encoder}
    span = results[0]
    assert span.metrics["n"] == 5 and 0.0 <= span.metrics["em"] <= span.metrics["f1"] <= 1.0
    docs = backend.documents(set())
    for rec in span.records:
        if rec["candidate"] is not None:
            c = rec["citation"]
            assert docs[c["doc_id"]][c["start"] : c["end"]] == rec["candidate"]


def test_span_reader_without_a_model_is_skipped_not_fatal(seed_settings, tmp_path, small_questions):
    settings = seed_settings.model_copy(update={"reader_model": str(tmp_path / "no-model")})
    assert [c.reader for c in expand_configs(["all"], settings)] == ["sentence"] * 3
    backend = InProcessBackend(settings)
    configs = expand_configs(["reader=span,mode=hybrid,top_k=5"], settings)
    results, warnings = run_configs(load_questions(small_questions), configs, backend, False)
    assert results[0].skipped.startswith("no trained reader model in")
    assert warnings[0].startswith(
        "mode=hybrid,reader=span,top_k=5,thr=service: skipped: no trained"
    )
    assert not backend._pipelines  # nothing was loaded


def test_verbatim_eval_subcommand_rejects_a_malformed_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(LONG) + "\n{oops\n", encoding="utf-8")
    done = subprocess.run(
        [*VERBATIM, "eval", "--questions", str(bad)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert f"{bad}:2: not valid JSON" in done.stderr


# -- against a live service ------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(seed_settings, tmp_path_factory):
    """``verbatim serve`` in a subprocess over the seed index; its base URL."""
    env = {
        "VERBATIM_INDEX_DIR": str(seed_settings.index_dir),
        "VERBATIM_READER": "sentence",
        "VERBATIM_TOP_K": "5",
    }
    with running_server(tmp_path_factory.mktemp("serve"), env) as url:
        yield url


def test_url_mode_matches_in_process(service, small_questions, in_process, tmp_path):
    out = tmp_path / "out"
    args = ["--url", service, "--questions", str(small_questions), "--out", str(out), "-q"]
    assert eval_main([*args, "--configs", *CONFIGS[:2]]) == 0
    data = json.loads((out / "results.json").read_text("utf-8"))
    assert data["target"] == f"service at {service}" and data["warnings"] == []
    assert [c["label"] for c in data["configs"]] == [
        "mode=bm25,thr=service",
        "mode=hybrid,thr=service",
    ]
    _, local, _, _ = in_process
    for remote, mine in zip(data["configs"], local[:2], strict=True):
        assert remote["metrics"]["errors"] == 1  # the overlong question: HTTP 4xx, recorded
        for a, b in zip(remote["records"], mine.records, strict=True):
            assert (a["id"], a["candidate"], a["hit_rank"]) == (
                b["id"],
                b["candidate"],
                b["hit_rank"],
            )
            assert a["citation_ok"] == b["citation_ok"] and a["accepted"] == b["accepted"]
            if a["timings_ms"]:
                assert a["timings_ms"]["wall"] >= a["timings_ms"]["total"] > 0


def test_url_mode_refuses_a_reader_and_reports_an_unreachable_service(small_questions, capsys):
    args = ["--questions", str(small_questions), "-q"]
    assert eval_main([*args, "--url", "http://127.0.0.1:9", "--configs", "reader=span"]) == 2
    assert "reader= cannot be chosen with --url" in capsys.readouterr().err
    assert eval_main([*args, "--url", f"http://127.0.0.1:{free_port()}"]) == 1
    assert "cannot reach the service" in capsys.readouterr().err


def test_http_backend_retries_when_busy_and_falls_back_to_local_texts(seed_settings):
    calls = {"ask": 0}

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ask":
            calls["ask"] += 1
            if calls["ask"] == 1:
                return httpx.Response(503, json={"detail": "busy"})
            return httpx.Response(200, json={"answer": None, "abstained": True, "score": 0.1})
        return httpx.Response(404, json={"detail": "Not Found"})  # no /documents route

    client = httpx.Client(transport=httpx.MockTransport(handle))
    backend = HttpBackend("http://svc", seed_settings, client=client)
    assert backend.ask("Who?", EvalConfig(mode="bm25"))["abstained"] is True
    assert calls["ask"] == 2
    docs = backend.documents({"001_0de572d7f595036a.txt"})
    assert "Mikhail Gorbachev" in docs["001_0de572d7f595036a.txt"]
