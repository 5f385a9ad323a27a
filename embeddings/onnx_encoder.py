"""The sentence encoder on ONNX Runtime: export a sentence-transformers folder, load, embed."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.onnx_export import fuse_bert, quantize_int8
from embeddings.onnx_session import cpu_session

MODEL_FILE = "model.onnx"
# Weights int8 per channel (activations quantised on the fly): 1.6x faster to embed, and
# squad-retrieval's hit@5 .615 against .614 in fp32 (docs/studies/int8-encoder.md).
INT8_FILE = "model.int8.onnx"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class OnnxEncoderModel:
    """Mean-pooled, L2-normalised embeddings (all-MiniLM-L6-v2's recipe) without torch.

    ``session`` embeds what one call asks at a time (questions); ``encode(..., on_lanes=True)``
    embeds the batches of many texts on ``lanes`` single-threaded sessions of ``model_file`` side
    by side, made on first use: on 2 cores, 1.13x the chunks/s of one session on both, for about
    100 MB more (docs/studies/embedding-batch.md). A batch's vectors do not depend on its lane.
    """

    def __init__(
        self,
        session: Any,
        tokenizer_json: Path,
        max_tokens: int,
        dimension: int,
        model_file: Path | None = None,
        lanes: int = 1,
    ):
        from tokenizers import Tokenizer

        if lanes > 1 and model_file is None:
            raise ValueError("lanes need the model_file to open their sessions from")
        self.session = session
        self.model_file = model_file
        self.lanes = lanes
        self._lanes: list[Any] = []
        self._pool: ThreadPoolExecutor | None = None
        self._lanes_lock = threading.Lock()
        self.inputs = [i.name for i in session.get_inputs()]
        self.max_tokens = max_tokens
        self.dimension = dimension
        self._batch = Tokenizer.from_file(str(tokenizer_json))
        self._batch.enable_truncation(max_tokens)
        self._batch.enable_padding(pad_id=self._batch.token_to_id("[PAD]") or 0)
        self._count = Tokenizer.from_file(str(tokenizer_json))
        self._count.no_truncation()
        self._count.no_padding()

    @classmethod
    def load(
        cls,
        onnx_dir: str | Path,
        threads: int | None = None,
        precision: str = "fp32",
        lanes: int = 1,
    ) -> OnnxEncoderModel:
        """The folder ``export_encoder`` wrote; ``precision`` fp32 or int8."""
        folder = Path(onnx_dir)
        model_file = folder / (INT8_FILE if precision == "int8" else MODEL_FILE)
        if not model_file.is_file():
            raise FileNotFoundError(f"{model_file} is missing: run `verbatim export-onnx` first")
        meta = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
        session = cpu_session(model_file, threads)
        return cls(
            session,
            folder / "tokenizer.json",
            meta["max_tokens"],
            meta["dimension"],
            model_file,
            lanes,
        )

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self._count.encode_batch(texts, add_special_tokens=False)]

    def encode(self, texts: list[str], batch_size: int = 32, on_lanes: bool = False) -> np.ndarray:
        order = np.argsort([len(t) for t in texts])  # similar lengths pad little
        batches = [order[b : b + batch_size] for b in range(0, len(texts), batch_size)]
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not on_lanes or self.lanes < 2 or len(batches) < 2:
            for idx in batches:
                out[idx] = self._embed(self.session, [texts[i] for i in idx])
            return out
        sessions, pool = self._lane_sessions()

        def lane(k: int) -> None:
            for idx in batches[k :: self.lanes]:  # sorted batches dealt in turn: even work per lane
                out[idx] = self._embed(sessions[k], [texts[i] for i in idx])

        for done in [pool.submit(lane, k) for k in range(self.lanes)]:
            done.result()
        return out

    def _lane_sessions(self) -> tuple[list[Any], ThreadPoolExecutor]:
        with self._lanes_lock:
            if self._pool is None:
                assert self.model_file is not None  # checked in __init__
                self._lanes = [cpu_session(self.model_file, 1) for _ in range(self.lanes)]
                self._pool = ThreadPoolExecutor(self.lanes, thread_name_prefix="embed-lane")
            return self._lanes, self._pool

    def _embed(self, session: Any, texts: list[str]) -> np.ndarray:
        encs = self._batch.encode_batch(texts)
        feed = {
            "input_ids": np.array([e.ids for e in encs], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64),
        }
        (hidden,) = session.run(None, {k: feed[k] for k in self.inputs})
        mask = feed["attention_mask"][:, :, None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


def export_encoder(model_dir: str | Path, onnx_dir: str | Path, opset: int = 17) -> Path:
    """The transformer of a sentence-transformers folder as ONNX (last hidden states), with its
    tokenizer and what pooling needs; the vectors equal sentence-transformers' within 1e-5."""
    import torch
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(model_dir), device="cpu")
    model = st[0].auto_model.eval()
    model.set_attn_implementation("eager")  # the pattern ONNX Runtime's attention fusion parses
    out = Path(onnx_dir)
    out.mkdir(parents=True, exist_ok=True)
    enc = st.tokenizer(["a short sentence."], return_tensors="pt")
    names = [n for n in INPUTS if n in enc]

    class LastHidden(torch.nn.Module):
        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any) -> Any:
            return self.inner(**dict(zip(names, args, strict=True))).last_hidden_state

    with torch.inference_mode():
        torch.onnx.export(
            LastHidden(model),
            tuple(enc[n] for n in names),
            str(out / MODEL_FILE),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
            opset_version=opset,
            dynamo=False,
        )
    st.tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    meta = {"max_tokens": int(st.max_seq_length), "dimension": int(st.get_embedding_dimension())}
    (out / "encoder.json").write_text(json.dumps(meta) + "\n", encoding="utf-8")
    fuse_bert(out / MODEL_FILE, model.config.num_attention_heads, model.config.hidden_size)
    quantize_int8(out / MODEL_FILE, out / INT8_FILE, keep_float=lambda _name: False)
    return out / MODEL_FILE
