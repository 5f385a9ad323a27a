"""Tests of the span-reader training code: split, unanswerables, windows, metrics, a tiny run."""

from __future__ import annotations

import random

import numpy as np
import pytest

from rag.config import get_settings
from rag.readers.engine import top_spans
from rag.readers.windows import WindowSpec, WindowTokenizer
from rag.training import mix, negatives, squad, windows
from rag.training.squad import compute_exact, compute_f1, normalize_answer, squad2_metrics

DATA_DIR = get_settings().qa_data_dir


def _article(title: str, paras: list[tuple[str, list[tuple[str, str]]]]) -> dict:
    """An article from (context, [(question, answer)]) pairs; answer "" = unanswerable."""
    out = {"title": title, "paragraphs": []}
    for pi, (context, qas) in enumerate(paras):
        items = []
        for qi, (q, a) in enumerate(qas):
            answers = [{"text": a, "answer_start": context.index(a)}] if a else []
            items.append(
                {
                    "id": f"{title}-{pi}-{qi}",
                    "question": q,
                    "answers": answers,
                    "is_impossible": not a,
                }
            )
        out["paragraphs"].append({"context": context, "qas": items})
    return out


ARTICLES = [
    _article(
        "Paris",
        [
            (
                "Paris is the capital of France. The Eiffel Tower was built in 1889.",
                [
                    ("When was the Eiffel Tower built?", "1889"),
                    ("What is the capital of France?", "Paris"),
                ],
            ),
            (
                "The Louvre is the world's most-visited museum. It opened in 1793.",
                [("When did the Louvre open?", "1793")],
            ),
            (
                "The Seine flows through Paris. Gustave Eiffel designed the tower.",
                [("Who designed the tower?", "Gustave Eiffel")],
            ),
        ],
    ),
    _article(
        "Oxygen",
        [
            (
                "Oxygen is a chemical element with symbol O and atomic number 8.",
                [("What is the atomic number of Oxygen?", "8"), ("What is the melting point?", "")],
            ),
            (
                "Joseph Priestley and Carl Wilhelm Scheele discovered Oxygen independently.",
                [("Who discovered Oxygen with Scheele?", "Joseph Priestley")],
            ),
        ],
    ),
]


# --------------------------------------------------------------------------- split


def test_split_is_disjoint_deterministic_and_complete():
    arts = [{"title": t, "paragraphs": []} for t in ["b", "a", "e", "c", "d"]]
    train, held = squad.split_v2_dev(arts)
    assert [a["title"] for a in train] == ["a", "e", "c"]  # sorted a,b,c,d,e -> a,c,e; file order
    assert sorted(a["title"] for a in held) == ["b", "d"]
    train2, held2 = squad.split_v2_dev(list(reversed(arts)))
    assert {a["title"] for a in train2} == {a["title"] for a in train}
    assert {a["title"] for a in held2} == {a["title"] for a in held}


@pytest.mark.skipif(not (DATA_DIR / squad.SQUAD_V2_DEV).exists(), reason="qa-data not mounted")
def test_real_v2_dev_split():
    arts = squad.load_articles(DATA_DIR / squad.SQUAD_V2_DEV)
    train, held = squad.split_v2_dev(arts)
    tt, ht = {a["title"] for a in train}, {a["title"] for a in held}
    assert not tt & ht and tt | ht == {a["title"] for a in arts}
    assert (len(tt), len(ht)) == (18, 17)
    assert "Amazon_rainforest" in ht and "Warsaw" in ht
    held_ex = squad.heldout_examples(DATA_DIR)
    assert len(held_ex) == 5566
    train_ids = {qa["id"] for a in train for p in a["paragraphs"] for qa in p["qas"]}
    assert not train_ids & {e.qid for e in held_ex}


# --------------------------------------------------------------------------- unanswerables


def test_paragraph_negatives_never_contain_answer():
    negs = negatives.paragraph_negatives(ARTICLES, random.Random(0))
    assert negs, "expected some negatives"
    answers = {
        qa["id"]: [a["text"] for a in qa["answers"]]
        for art in ARTICLES
        for p in art["paragraphs"]
        for qa in p["qas"]
    }
    for n in negs:
        assert n.is_impossible and n.answers == ()
        src = n.qid.rsplit("-negp", 1)[0]
        assert not squad.answer_occurs(answers[src], n.context)
        own = next(
            p["context"]
            for a in ARTICLES
            for p in a["paragraphs"]
            for qa in p["qas"]
            if qa["id"] == src
        )
        assert n.context != own
    # Deterministic for a seed.
    assert negs == negatives.paragraph_negatives(ARTICLES, random.Random(0))


@pytest.mark.skipif(not (DATA_DIR / squad.SQUAD_TRAIN).exists(), reason="qa-data not mounted")
def test_paragraph_negatives_on_real_articles():
    arts = squad.load_articles(DATA_DIR / squad.SQUAD_TRAIN)[:15]
    answers = {
        qa["id"]: [a["text"] for a in qa["answers"]]
        for art in arts
        for p in art["paragraphs"]
        for qa in p["qas"]
    }
    negs = negatives.paragraph_negatives(arts, random.Random(1))
    assert len(negs) > 500
    for n in negs:
        ctx = n.context.lower()
        assert all(a.lower() not in ctx for a in answers[n.qid.rsplit("-negp", 1)[0]])


def test_entity_swap_negatives():
    negs = negatives.entity_swap_negatives(ARTICLES, random.Random(0))
    assert negs
    for n in negs:
        assert n.is_impossible
        # The swapped-in entity's words do not occur in the paragraph.
        orig = next(
            qa["question"]
            for a in ARTICLES
            for p in a["paragraphs"]
            for qa in p["qas"]
            if n.qid.startswith(qa["id"])
        )
        assert n.question != orig


# --------------------------------------------------------------------------- windows


@pytest.fixture(scope="module")
def tokenizer():
    from rag.readers.model import load_tokenizer
    from rag.training.train import default_base_model

    return load_tokenizer(default_base_model())


def _cutter(spec: WindowSpec) -> WindowTokenizer:
    from rag.training.train import default_base_model

    return WindowTokenizer.from_folder(default_base_model(), spec)


def test_train_windows_label_the_answer(tokenizer):
    long_ctx = " ".join(f"word{i}" for i in range(150)) + " The answer is Zanzibar today."
    examples = [
        squad.QAExample(
            "a", "t", "Where?", long_ctx, "Zanzibar", long_ctx.index("Zanzibar"), ("Zanzibar",)
        ),
        squad.QAExample("b", "t", "What?", "Nothing here.", source="neg"),
    ]
    wins = windows.build_train_windows(_cutter(WindowSpec(64, 16, 64)), examples)
    assert len(wins) > 2  # the long context overflows into several windows
    assert all(len(w.input_ids) <= 64 for w in wins)
    labelled = [w for w in wins if w.start > 0]
    assert labelled, "the window holding the answer must be labelled"
    for w in labelled:
        text = tokenizer.decode(w.input_ids[w.start : w.end + 1].tolist())
        assert text == "zanzibar"
    assert wins[-1].start == wins[-1].end == 0  # the unanswerable example -> [CLS]


# --------------------------------------------------------------------------- metrics


def test_normalisation_and_token_metrics():
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert compute_exact("the Eiffel Tower", "Eiffel tower.") == 1
    # gold {eiffel, tower}, pred {eiffel}: P=1, R=1/2 -> F1 = 2/3
    assert compute_f1("Eiffel Tower", "Eiffel") == pytest.approx(2 / 3)
    assert compute_f1("", "") == 1.0 and compute_f1("", "x") == 0.0


def test_squad2_metrics_hand_computed():
    gold = {"q1": ["Eiffel Tower"], "q2": [], "q3": ["1889", "in 1889"], "q4": []}
    spans = {"q1": "Eiffel", "q2": "Paris", "q3": "1889", "q4": "Seine"}
    # null - best span: q1 answers, q2 abstains, q3 answers, q4 answers (wrongly) at t=0.
    diffs = {"q1": -2.0, "q2": 1.5, "q3": -4.0, "q4": -1.0}
    m = squad2_metrics(gold, spans, diffs, threshold=0.0)
    assert m["total"] == 4 and m["HasAns_total"] == 2 and m["NoAns_total"] == 2
    assert m["exact"] == pytest.approx(100 * 2 / 4)  # q2, q3
    assert m["f1"] == pytest.approx(100 * (2 / 3 + 1 + 1 + 0) / 4)
    assert m["HasAns_exact"] == pytest.approx(50.0)
    assert m["HasAns_f1"] == pytest.approx(100 * (2 / 3 + 1) / 2)
    assert m["NoAns_acc"] == pytest.approx(50.0)
    # Best threshold: answering only q3 (diff -4) and q1 (-2) but not q4 (-1), q2 (1.5):
    # F1 = (1 + 2/3 + 1 + 1) / 4, reached at threshold -2.
    assert m["best_f1"] == pytest.approx(100 * (1 + 2 / 3 + 1 + 1) / 4)
    assert m["best_f1_thresh"] == pytest.approx(-2.0)
    assert m["best_exact"] == pytest.approx(100 * 3 / 4)
    # Abstaining on everything: HasAns scores 0, NoAns 100.
    m_all = squad2_metrics(gold, spans, diffs, threshold=-10.0)
    assert m_all["NoAns_acc"] == 100.0 and m_all["HasAns_f1"] == 0.0


def test_top_spans_respect_context_and_length():
    offsets = [None, None, None, (0, 5), (6, 11), (12, 17), None]
    s = np.array([[9.0, 0, 0, 1.0, 3.0, 0.5, 9.0], [9.0] * 7], dtype=np.float32)
    e = np.array([[9.0, 0, 0, 0.1, 0.2, 2.0, 9.0], [9.0] * 7], dtype=np.float32)
    context = np.array([[o is not None for o in offsets], [False] * 7])
    best, empty = top_spans(s, e, context, 30, k=2)
    assert [(round(v, 4), i, j) for v, i, j in best] == [(5.0, 4, 5), (3.2, 4, 4)]  # no [CLS]
    ((value, i, j),) = top_spans(s, e, context, 1, k=1)[0]  # one token only
    assert (round(value, 4), i, j) == (3.2, 4, 4)
    assert empty == []  # a window without context has no span


# --------------------------------------------------------------------------- a tiny run


def test_training_loss_falls_and_saves(tmp_path, tokenizer):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from rag.training.train import TrainConfig, train

    rng = random.Random(0)
    examples = []
    for i in range(32):
        city = rng.choice(["Paris", "Rome", "Oslo", "Lima", "Kyiv", "Cairo"])
        ctx = f"Report {i}. The meeting number {i} was held in {city} on a sunny day."
        if i % 4 == 3:
            examples.append(squad.QAExample(f"n{i}", "t", "Who won the race?", ctx))
        else:
            examples.append(
                squad.QAExample(
                    f"q{i}",
                    "t",
                    f"Where was meeting {i} held?",
                    ctx,
                    city,
                    ctx.index(city),
                    (city,),
                )
            )
    train_windows = windows.build_train_windows(_cutter(WindowSpec(128, 32, 64)), examples)
    assert len(train_windows) == 32
    cfg = TrainConfig(
        data_dir=str(DATA_DIR),
        out=str(tmp_path / "reader"),
        epochs=4,
        batch_size=8,
        lr=3e-4,
        warmup_ratio=0.1,
        max_length=128,
        log_every=4,
        seed=3,
        threads=1,
    )
    summary = train(cfg, windows=train_windows)
    print("train_seconds", summary["train_seconds"], "total", summary["total_seconds"])
    losses = summary["losses_per_log"]
    assert summary["steps"] == 16
    assert losses[-1] < losses[0] * 0.7, losses
    out = tmp_path / "reader"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "training.json"):
        assert (out / name).exists()
    model = AutoModelForQuestionAnswering.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert next(model.parameters()).dtype.is_floating_point
    assert len(tok("word " * 300)["input_ids"]) > 128  # no stale truncation to 128


def test_mix_and_repeat_arguments_are_validated():
    import argparse

    from rag.training.cli import parse_mix, parse_repeat

    shares = parse_mix("squad=0.5,neg_para=0.25")
    assert shares["squad"] == 0.5 and shares["neg_para"] == 0.25 and shares["v2dev"] == 0.0
    assert parse_repeat("v2dev=4") == {"v2dev": 4}
    for bad in ("squad", "nope=0.2", "squad=x", "squad=-1", "squad=0"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_mix(bad)
    for bad in ("v2dev=0", "v2dev=1.5", "nope=2"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_repeat(bad)


def test_repeat_draws_a_small_pool_more_than_once():
    once = mix.build_training_examples(20_000, 3, DATA_DIR, {"v2dev": 1.0})
    twice = mix.build_training_examples(20_000, 3, DATA_DIR, {"v2dev": 1.0}, repeat={"v2dev": 2})
    assert len({e.qid for e in once}) == len(once)  # one pass: every question once
    assert len(twice) == 2 * len(once)  # the pool is smaller than 20,000: both passes used
    assert {e.qid for e in twice} == {e.qid for e in once}


def test_a_repeat_that_the_mix_share_makes_inert_is_refused():
    pool = len(mix.build_training_examples(20_000, 3, DATA_DIR, {"v2dev": 1.0}))
    small = pool / 20_000  # one pass of the pool, so four passes allowed draw nothing more
    with pytest.raises(ValueError, match=r"--repeat v2dev=4 has no effect.*raise the share"):
        mix.build_training_examples(20_000, 3, DATA_DIR, {"v2dev": small}, repeat={"v2dev": 4})
    four = mix.build_training_examples(
        20_000, 3, DATA_DIR, {"v2dev": 4 * small}, repeat={"v2dev": 4}
    )
    assert len(four) == 4 * pool


def test_similar_negatives_pick_the_answer_free_paragraph_sharing_most_question_words():
    article = _article(
        "Harbour",
        [
            (
                "The lighthouse at Kestrel Point was built in 1874 by Mara Quill.",
                [
                    ("When was the lighthouse at Kestrel Point built?", "1874"),
                ],
            ),
            ("Fishing boats leave the harbour at dawn and return at noon.", []),
            ("The Kestrel Point lighthouse keeper's cottage was restored in 1990.", []),
            ("A second lighthouse was planned in 1874 but never built.", []),
        ],
    )
    negs = negatives.similar_paragraph_negatives([article])
    assert [n.qid for n in negs] == ["Harbour-0-0-negs2"]  # 1874 occurs in paragraph 3
    neg = negs[0]
    assert neg.is_impossible and neg.source == "neg_similar"
    assert neg.context.startswith("The Kestrel Point lighthouse keeper")
    assert "neg_similar" in mix.POOLS and "neg_similar" not in mix.DEFAULT_MIX


def test_sentence_negatives_cut_the_answer_sentence_from_the_question_paragraph():
    article = _article(
        "Harbour",
        [
            (
                "Kestrel Point has a lighthouse. It was built in 1874 by Mara Quill. "
                "The keeper's cottage was restored later. Boats leave at dawn.",
                [
                    ("When was the lighthouse at Kestrel Point built?", "1874"),
                    ("Who built the lighthouse?", "Mara Quill"),
                    ("What does Kestrel Point have?", "a lighthouse"),
                ],
            ),
            ("Mara Quill built it. In 1874.", [("Who built it?", "Mara Quill")]),
        ],
    )
    negs = negatives.answer_sentence_negatives([article])
    # The third answer sits in the first sentence; the short paragraph keeps one sentence only.
    assert [n.qid for n in negs] == ["Harbour-0-0-negc0", "Harbour-0-1-negc0", "Harbour-0-2-negc0"]
    assert negs[0].context == (
        "Kestrel Point has a lighthouse. The keeper's cottage was restored later. Boats leave at dawn."
    )
    assert negs[0].context == negs[1].context
    assert negs[2].context.startswith("It was built in 1874")
    assert all(n.is_impossible and n.source == "neg_sentence" for n in negs)
    assert "neg_sentence" in mix.POOLS and "neg_sentence" not in mix.DEFAULT_MIX


def test_sentence_negatives_skip_a_remainder_that_still_holds_the_answer():
    article = _article(
        "Harbour",
        [
            (
                "The lighthouse was built in 1874. The pier dates from 1874 too. Boats leave at dawn.",
                [("When was the lighthouse built?", "1874")],
            )
        ],
    )
    assert negatives.answer_sentence_negatives([article]) == []


def test_answer_excerpts_keep_the_answer_sentence_and_at_most_one_neighbour_each_side():
    paragraph = (
        "Kestrel Point has a lighthouse. It was built in 1874 by Mara Quill. "
        "The keeper's cottage was restored later. Boats leave at dawn. The ferry is crimson."
    )
    article = _article(
        "Harbour",
        [
            (
                paragraph,
                [
                    ("When was the lighthouse at Kestrel Point built?", "1874"),
                    ("What colour is the ferry?", "crimson"),
                ],
            ),
            ("Mara Quill built it.", [("Who built it?", "Mara Quill")]),  # nothing to cut
        ],
    )
    for seed in range(20):
        exc = negatives.answer_excerpts([article], random.Random(seed))
        assert [e.qid for e in exc] == ["Harbour-0-0-exc0", "Harbour-0-1-exc0"]
        for e in exc:
            assert not e.is_impossible and e.source == "pos_excerpt"
            assert e.context in paragraph and e.context != paragraph
            assert e.context[e.answer_start :].startswith(e.answer_text)
        assert "It was built in 1874 by Mara Quill." in exc[0].context
        assert "Boats leave" not in exc[0].context  # two sentences away from the answer
        assert exc[1].context.endswith("The ferry is crimson.")
    assert "pos_excerpt" in mix.POOLS and "pos_excerpt" not in mix.DEFAULT_MIX


def test_a_run_in_two_pieces_ends_where_one_run_ends(tmp_path, tokenizer):
    """save_every + resume: a run stopped at a checkpoint and resumed takes the same steps."""
    from rag.training.train import TrainConfig, train

    ctx = "The meeting was held in Oslo on a sunny day."
    examples = [
        squad.QAExample(f"q{i}", "t", "Where was it held?", ctx, "Oslo", ctx.index("Oslo"))
        for i in range(16)
    ]
    train_windows = windows.build_train_windows(_cutter(WindowSpec(64, 16, 32)), examples)

    def config(name: str, **kw) -> TrainConfig:
        return TrainConfig(
            data_dir=str(DATA_DIR), out=str(tmp_path / name), epochs=2, batch_size=4,
            max_length=64, log_every=2, seed=5, threads=1, wip_dir=str(tmp_path / "wip"), **kw,
        )  # fmt: skip

    whole = train(config("whole"), windows=train_windows)
    first = train(config("first", save_every=3), windows=train_windows)
    assert (tmp_path / "wip" / "checkpoint.pt").is_file()
    import torch

    state = torch.load(tmp_path / "wip" / "checkpoint.pt", weights_only=False)
    saved = state["progress"]
    _check_snapshot(tmp_path, state)
    resumed = train(config("resumed", resume=True), windows=train_windows)
    # the record's training time covers both pieces, not only the resumed one
    assert saved["step"] == 6 and saved["seconds"] > 0
    assert resumed["train_seconds"] >= round(saved["seconds"], 1)
    assert resumed["windows_seen"] == whole["windows_seen"]
    assert whole["steps"] == first["steps"] == resumed["steps"] == 8
    assert len(resumed["losses_per_log"]) == len(whole["losses_per_log"])
    assert resumed["losses_per_log"][-1] == pytest.approx(whole["losses_per_log"][-1], rel=1e-3)


def _check_snapshot(tmp_path, state) -> None:
    """snapshot-reader writes the checkpoint's weights as a reader folder transformers loads."""
    import json

    import torch
    from transformers import AutoModelForQuestionAnswering

    from rag.cli import main
    from rag.readers.model import sha256_file

    out = tmp_path / "snap"
    assert main(["snapshot-reader", "--wip-dir", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert not out.exists()
    assert main(["snapshot-reader", "--wip-dir", str(tmp_path / "wip"), "--out", str(out)]) == 0
    record = json.loads((out / "snapshot.json").read_text())
    assert record["step"] == state["progress"]["step"] == 6
    assert record["model_sha256"] == sha256_file(out / "model.safetensors")
    loaded = AutoModelForQuestionAnswering.from_pretrained(out).state_dict()
    for name, tensor in state["model"].items():
        # the reader folder keeps fp16 weights, as the shipped reader does
        assert torch.allclose(loaded[name].float(), tensor.float(), atol=2e-3, rtol=1e-3), name


@pytest.mark.skipif(not (DATA_DIR / squad.SQUAD_V2_DEV).exists(), reason="qa-data not mounted")
def test_eval_reader_command_reports_squad2_metrics():
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "rag.cli", "eval-reader", "--limit", "12"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads(done.stdout)
    assert metrics["total"] == 12 and metrics["max_length"] == WindowSpec().max_length
    assert 0 <= metrics["HasAns_f1"] <= 100 and 0 <= metrics["best_f1"] <= 100
