"""The reader's model in ONNX Runtime: export beside the weights (fp32 and int8), load, run."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

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

    def __init__(self, session: Any):
        self.session = session
        self.inputs = [i.name for i in session.get_inputs()]

    @classmethod
    def load(cls, folder: str | Path, precision: str, threads: int | None = None) -> OnnxBackend:
        """The folder's exported model (``verbatim export-onnx``) at ``precision``."""
        path = onnx_path(folder, precision)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: run `verbatim export-onnx --model {folder}` first"
            )
        return cls(cpu_session(path, threads))

    def forward(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.session.run(list(OUTPUTS), {k: batch[k] for k in self.inputs})
        return start.astype(np.float32, copy=False), end.astype(np.float32, copy=False)


def export_onnx(folder: str | Path, int8: bool = True, opset: int = 17) -> list[Path]:
    """Write ``<folder>/onnx/model.onnx`` (fp32) and, with ``int8``, ``model.int8.onnx``: the
    attention's MatMuls quantised per channel; feed-forward, embeddings and span head float."""
    import torch

    from rag.readers.model import load_qa_model, load_tokenizer

    model = load_qa_model(folder)
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
    written = [out]
    if int8:
        written.append(_quantize(out, onnx_path(folder, "int8")))
    return written


def _quantize(source: Path, target: Path) -> Path:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    names = [n.name for n in onnx.load(str(source)).graph.node if n.op_type == "MatMul"]
    # Quantising the feed-forward MatMuls, or the span head's, cost 3-6 points of dev F1; the
    # attention's cost none (docs/studies/int8-reader.md).
    keep_float = [n for n in names if "qa_outputs" in n or "attention" not in n]
    quantize_dynamic(
        str(source),
        str(target),
        per_channel=True,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=keep_float,
    )
    return target
