"""The reader's model in ONNX Runtime: export beside the weights (fp32 and int8), load, run."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.onnx_export import fuse_bert, quantize_int8
from embeddings.onnx_session import cpu_session

log = logging.getLogger(__name__)

ONNX_DIR = "onnx"
FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUTS = ("start_logits", "end_logits")


def onnx_path(folder: str | Path, precision: str) -> Path:
    if precision not in FILES:
        raise ValueError(f"ONNX precision {precision!r}: use {' or '.join(FILES)}")
    return Path(folder) / ONNX_DIR / FILES[precision]


class OnnxBackend:
    """Start and end logits from an ONNX Runtime session (thread-safe: ORT serialises runs)."""

    def __init__(self, session: Any, scales_per_batch: bool = False):
        self.session = session
        self.inputs = [i.name for i in session.get_inputs()]
        self.scales_per_batch = scales_per_batch

    @classmethod
    def load(cls, folder: str | Path, precision: str, threads: int | None = None) -> OnnxBackend:
        """The folder's exported model (``verbatim export-onnx``) at ``precision``."""
        path = onnx_path(folder, precision)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: run `verbatim export-onnx --model {folder}` first"
            )
        return cls(cpu_session(path, threads), scales_per_batch=precision == "int8")

    def forward(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.session.run(list(OUTPUTS), {k: batch[k] for k in self.inputs})
        return start.astype(np.float32, copy=False), end.astype(np.float32, copy=False)


def export_onnx(folder: str | Path, int8: bool = True, opset: int = 17) -> list[Path]:
    """Write ``<folder>/onnx/model.onnx`` (fp32, attention and norms fused) and, with ``int8``,
    ``model.int8.onnx``: the attention and the last layers' feed-forward in int8, weights per
    channel (:func:`float_in_int8` says what stays float)."""
    import torch

    from rag.readers.model import load_qa_model, load_tokenizer

    model = load_qa_model(folder)
    model.set_attn_implementation("eager")  # the pattern ONNX Runtime's attention fusion parses
    tokenizer = load_tokenizer(folder)
    enc = tokenizer(["a question?"], ["a passage of text."], return_tensors="pt")
    args = tuple(enc[k] for k in INPUTS)
    out = onnx_path(folder, "fp32")
    out.parent.mkdir(parents=True, exist_ok=True)
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, *OUTPUTS)}
    with torch.inference_mode():
        torch.onnx.export(
            model,
            args,
            str(out),
            input_names=list(INPUTS),
            output_names=list(OUTPUTS),
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
    fuse_bert(out, model.config.num_attention_heads, model.config.hidden_size)
    written = [out]
    if int8:
        keep = float_in_int8(model.config.num_hidden_layers)
        written.append(quantize_int8(out, onnx_path(folder, "int8"), keep_float=keep))
    return written


_FEED_FORWARD = re.compile(r"/layer\.(\d+)/(intermediate|output)/dense/")


def float_in_int8(layers: int) -> Callable[[str], bool]:
    """Which nodes of the int8 graph stay float: the span head (its logits are the scores every
    decision compares) and the feed-forward MatMuls of all but the last two layers, whose inputs
    carry the [CLS] token's outliers, up to 10x any other token's range, that one scale per batch
    cannot hold (docs/studies/int8-reader.md)."""

    def keep(name: str) -> bool:
        ff = _FEED_FORWARD.search(name)
        return "qa_outputs" in name or bool(ff and int(ff.group(1)) < layers - 2)

    return keep
