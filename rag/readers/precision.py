"""Hardware and precision choices for the reader's model: device, threads, bf16, int8."""

from __future__ import annotations

import functools
import re
import warnings
from pathlib import Path
from typing import Any, get_args

from rag.config import ReaderPrecision, ReaderRuntime

PRECISIONS: tuple[str, ...] = get_args(ReaderPrecision)  # auto, fp32, bf16, int8
BACKENDS: tuple[str, ...] = get_args(ReaderRuntime)  # auto, torch, onnx


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX): Linux flags only."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def resolve_backend(backend: str, folder: str | Path | None = None, precision: str = "auto") -> str:
    """``auto``: ``onnx`` where ``folder`` holds the files ``verbatim export-onnx`` writes (int8
    there answers as fast as torch's bf16 on an AVX512-BF16 CPU and faster than torch elsewhere,
    starts in a second without torch, in half the memory), unless ``precision`` is torch's bf16;
    else ``torch``. Any other value as it is."""
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r}: use {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    from rag.readers.onnx_backend import onnx_path

    exported = folder is not None and onnx_path(folder, "int8").is_file()
    return "onnx" if exported and precision != "bf16" else "torch"


def resolve_precision(precision: str, backend: str = "torch") -> str:
    """``auto`` on onnx: ``int8`` (the float layers where int8 would cost answers stay float,
    and each caller's windows are batched alone, so an answer does not depend on who else is
    asking: docs/studies/int8-reader.md); on torch: ``bf16`` where the CPU computes it natively,
    else ``fp32``. Any other value as it is, if the backend has it (ONNX Runtime: fp32, int8)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: use {', '.join(PRECISIONS)}")
    if backend == "onnx":
        if precision == "bf16":
            raise ValueError("the onnx backend runs fp32 or int8; bf16 is torch's")
        return "int8" if precision == "auto" else precision
    if precision != "auto":
        return precision
    return "bf16" if cpu_has_bf16() else "fp32"


def resolve_device(name: str = "auto") -> Any:
    """``auto``: CUDA when torch sees a GPU, else the CPU."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def set_threads(threads: int | None) -> None:
    """torch's intra-op threads (None or 0: leave torch's default)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def apply_precision(model: Any, precision: str) -> Any:
    """The model in ``precision`` (``fp32``, ``bf16`` or ``int8``) for inference."""
    precision = resolve_precision(precision)
    if precision == "bf16":
        return _to_bf16(model)
    if precision == "int8":
        return _quantize(model)
    return model


def _to_bf16(model: Any) -> Any:
    """The encoder's weights in bfloat16, cast once (autocast re-casts them on every call); the
    span head stays float32 and gets float32 input, so logits keep full precision."""
    import torch

    head = getattr(model, "qa_outputs", None)  # the span head of transformers' QA models
    if head is None:
        return model.to(torch.bfloat16)  # an unknown layout: all of it (logits cast later)
    getattr(model, model.base_model_prefix).to(torch.bfloat16)
    head.register_forward_pre_hook(lambda _module, args: tuple(a.float() for a in args))
    return model


def _quantize(model: Any) -> Any:
    """int8 dynamic quantisation of the encoder's Linear layers (the span head stays float)."""
    import torch

    base = getattr(model, model.base_model_prefix, model)
    with warnings.catch_warnings():  # deprecated in torch, still the simplest CPU int8 path
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(base, {torch.nn.Linear}, torch.qint8)
    setattr(model, model.base_model_prefix, quantized)
    return model
