"""One ONNX Runtime session on the CPU, with the options every exported model here runs under."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def cpu_session(path: Path, threads: int | None = None) -> Any:
    """An inference session over the model file at ``path`` (``threads``: None, all cores)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = False  # an arena keeps the largest batch's memory for good
    if threads:
        options.intra_op_num_threads = threads
    # Idle workers sleep, not spin: the encoder's and the reader's pools take turns on the same
    # cores, and a spinning pool held a core the other needed (one question's p50 46 -> 23 ms).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Exports leave their norms apart (SkipLayerNormalization's CPU kernel is the slower), and
    # ORT would fuse them again at load without this.
    return ort.InferenceSession(
        str(path),
        options,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=["SkipLayerNormFusion"],
    )
