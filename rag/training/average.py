"""Average the weights of reader folders fine-tuned from one base (a "model soup").

Readers trained from the same pretrained encoder stay close enough in weight space that their
mean reads as well as either or better; whether it does is measured, never assumed (the gates of
``docs/reader-history.md``). The output is a reader folder like ``train-reader``'s, and its
``training.json`` holds every parent's record unmodified, so the lineage stays whole.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rag.readers.model import load_qa_model, load_tokenizer, save_reader_model, sha256_file
from rag.training.train import command_line

RECORD = "training.json"


class AverageError(ValueError):
    """The folders cannot be averaged (the message says why and what to pass instead)."""


def _check_parents(folders: Sequence[Path], weights: Sequence[float], out: Path) -> None:
    if len(folders) < 2:
        raise AverageError("give at least two reader folders to average")
    if len(weights) != len(folders):
        raise AverageError(f"{len(weights)} weights for {len(folders)} folders: give one each")
    if any(w <= 0 for w in weights):
        raise AverageError("weights must be > 0")
    if out.resolve() in {f.resolve() for f in folders}:
        raise AverageError(f"--out {out} is one of the folders averaged: write elsewhere")
    first = folders[0]
    for folder in folders:
        for name in ("model.safetensors", "config.json", "tokenizer.json", RECORD):
            if not (folder / name).is_file():
                raise AverageError(
                    f"{folder} has no {name}: give reader folders train-reader wrote"
                )
    for folder in folders[1:]:
        if (
            _architecture(folder) != _architecture(first)
            or (folder / "tokenizer.json").read_bytes() != (first / "tokenizer.json").read_bytes()
        ):
            raise AverageError(
                f"{folder} differs from {first} in its architecture or tokenizer: not one base model"
            )


def _architecture(folder: Path) -> dict:
    """``config.json`` without what the saving library stamps on it."""
    cfg = json.loads((folder / "config.json").read_text())
    return {k: v for k, v in cfg.items() if k not in ("transformers_version", "_name_or_path")}


def average_readers(
    folders: Sequence[str | Path], out: str | Path, weights: Sequence[float] | None = None
) -> dict:
    """Write the weighted mean of ``folders``' weights to ``out``; returns its record.

    ``weights`` (default: equal) are normalised to sum to 1. Integer buffers are taken from the
    first folder (they are the same in every reader of one architecture).
    """
    import torch

    paths = [Path(f) for f in folders]
    weights = [1.0] * len(paths) if weights is None else [float(w) for w in weights]
    _check_parents(paths, weights, Path(out))
    total = sum(weights)
    weights = [w / total for w in weights]
    parents = [json.loads((p / RECORD).read_text()) for p in paths]
    shas = [sha256_file(p / "model.safetensors") for p in paths]
    model = load_qa_model(paths[0])
    mean = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for v in mean.values():
            if v.is_floating_point():
                v.mul_(weights[0])
        for path, w in zip(paths[1:], weights[1:], strict=True):
            state = load_qa_model(path).state_dict()  # same config, so the same names
            for k, v in mean.items():
                if v.is_floating_point():
                    v.add_(state[k], alpha=w)
    model.load_state_dict(mean)
    folder = save_reader_model(model, load_tokenizer(paths[0]), out)
    record = {
        "command": command_line(),
        "averaged": [
            {"folder": str(p), "weight": round(w, 6), "model_sha256": s, "record": r}
            for p, w, s, r in zip(paths, weights, shas, parents, strict=True)
        ],
        "model_sha256": sha256_file(folder / "model.safetensors"),
    }
    (folder / RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
