"""The reader's model folder (transformers weights + fast tokenizer): load it, run it, save it."""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.readers.precision import (
    apply_precision,
    resolve_backend,
    resolve_device,
    resolve_precision,
    set_threads,
)

# Call-time settings that a base tokenizer's config carries over from sentence-transformers.
_STALE_TOKENIZER_KEYS = (
    "max_length",
    "stride",
    "truncation_strategy",
    "pad_to_multiple_of",
    "is_local",
    "local_files_only",
)


class Backend(Protocol):
    """Start and end logits, float32 ``[windows, tokens]``, of a padded batch.

    ``scales_per_batch``: dynamic int8 scales activations by the range of the whole batch, so a
    window's logits depend on the windows beside it; the engine then never batches two
    callers' windows together, and an answer does not depend on who else is asking."""

    scales_per_batch: bool

    def forward(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]: ...


class TorchBackend:
    """A transformers question-answering model run by torch (one forward at a time)."""

    def __init__(self, model: Any, device: Any = "cpu", scales_per_batch: bool = False):
        self.model = model
        self.device = device
        self.scales_per_batch = scales_per_batch
        self._lock = threading.Lock()  # concurrent forwards would oversubscribe the CPU

    def forward(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        inputs = {k: torch.from_numpy(v).to(self.device) for k, v in batch.items()}
        with self._lock, torch.inference_mode():
            out = self.model(**inputs)
        return out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()


def load_tokenizer(folder: str | Path) -> Any:
    """The folder's transformers tokenizer (to save it beside trained weights; reading uses
    :class:`rag.readers.windows.WindowTokenizer` on its ``tokenizer.json``)."""
    from transformers import AutoTokenizer

    local = Path(folder).is_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=local)
    if not tokenizer.is_fast:
        raise RuntimeError(f"{folder}: a fast tokenizer is required (offsets)")
    return tokenizer


def load_qa_model(folder: str | Path) -> Any:
    """The folder's question-answering model in float32, eval mode."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    local = Path(folder).is_dir()
    model = AutoModelForQuestionAnswering.from_pretrained(
        str(folder), dtype=torch.float32, local_files_only=local
    )
    return model.eval()


def load_reader_model(
    folder: str | Path,
    precision: str = "auto",
    threads: int | None = None,
    device: str = "cpu",
    backend: str = "torch",
) -> Backend:
    """The reader folder's model on ``backend`` (``torch``, or ``onnx``: the files
    ``verbatim export-onnx`` wrote, run without torch) at the precision asked for."""
    backend = resolve_backend(backend, folder, precision)
    precision = resolve_precision(precision, backend)
    if backend == "onnx":
        from rag.readers.onnx_backend import OnnxBackend

        return OnnxBackend.load(folder, precision, threads)
    set_threads(threads)
    dev = resolve_device(device)
    model = apply_precision(load_qa_model(folder).to(dev), precision)
    return TorchBackend(model, dev, scales_per_batch=precision == "int8")


def save_reader_model(model: Any, tokenizer: Any, out: str | Path) -> Path:
    """A folder :func:`load_reader_model` reads: fp16 safetensors (half the size; config asks
    loaders for float32), config and a tokenizer without call-time settings baked in."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    half = copy.deepcopy(model).to("cpu").half()
    half.save_pretrained(out, safe_serialization=True)
    del half
    cfg_path = out / "config.json"
    cfg = json.loads(cfg_path.read_text())
    for key in ("dtype", "torch_dtype"):
        if key in cfg:
            cfg[key] = "float32"
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    tok = copy.deepcopy(tokenizer)
    tok.backend_tokenizer.no_truncation()
    tok.backend_tokenizer.no_padding()
    tok.model_max_length = 512
    tok.save_pretrained(out)
    tok_path = out / "tokenizer_config.json"
    tok_cfg = json.loads(tok_path.read_text())
    for key in _STALE_TOKENIZER_KEYS:
        tok_cfg.pop(key, None)
    tok_path.write_text(json.dumps(tok_cfg, indent=2, sort_keys=True) + "\n")
    return out


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
