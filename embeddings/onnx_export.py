"""Make an exported BERT graph fast on ONNX Runtime: fuse its attention and norms, quantise it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def fuse_bert(path: Path, num_heads: int, hidden_size: int) -> bool:
    """Rewrite the graph at ``path`` with ONNX Runtime's BERT fusions (one Attention node a
    layer, BiasGelu), leaving residual adds and LayerNorms apart; the numbers stay float32 and
    equal within 1e-4. False, the file untouched, when the attention did not fuse (an export
    it cannot parse)."""
    import onnx
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    # ORT's CPU SkipLayerNormalization runs 4.5x slower than Add + LayerNormalization
    # (docs/studies/embedding-batch.md, "Norms apart").
    options.enable_skip_layer_norm = options.enable_bias_skip_layer_norm = False
    fused = optimize_model(
        str(path),
        model_type="bert",
        num_heads=num_heads,
        hidden_size=hidden_size,
        opt_level=1,
        optimization_options=options,
    )
    if not any(n.op_type == "Attention" for n in fused.model.graph.node):
        log.warning("%s: the attention did not fuse; the graph is left as exported", path)
        return False
    onnx.save(fused.model, str(path))
    return True


def quantize_int8(source: Path, target: Path, keep_float: Callable[[str], bool]) -> Path:
    """``target``: ``source`` with the weights of its MatMuls and fused Attentions in int8, per
    output channel, and activations quantised at run time over each batch; the nodes whose
    name ``keep_float`` accepts stay float32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    nodes = onnx.load(str(source)).graph.node
    quantize_dynamic(
        str(source),
        str(target),
        per_channel=True,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Attention"],
        nodes_to_exclude=[n.name for n in nodes if keep_float(n.name)],
        # Fused nodes are in Microsoft's domain, which ONNX's shape inference does not type.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    return target
