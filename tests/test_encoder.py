"""The sentence encoder's batches: the backend's fastest unless set; fp32 vectors alike at any size."""

from __future__ import annotations

import numpy as np

from embeddings.encoder import FASTEST_BATCH, Encoder
from rag.config import Settings

TEXTS = [
    "The lighthouse keeper logged every storm of the winter in a red notebook.",
    "Apples ripen.",
    "Tides rise twice a day, pulled by the moon and, less, by the sun.",
    "A short one.",
    "The harbour master opened the locks at dawn so the fishing fleet could leave before the "
    "fog rolled in from the bay and closed the channel for the rest of the morning.",
]


def test_an_unset_batch_size_is_the_backends_fastest(tmp_path) -> None:
    settings = Settings(index_dir=tmp_path / "index")
    assert settings.embedding_batch_size is None
    assert Encoder.from_settings(settings).batch_size == FASTEST_BATCH["onnx"]
    assert Encoder(backend="torch").batch_size == FASTEST_BATCH["torch"]
    chosen = settings.model_copy(update={"embedding_batch_size": 16})
    assert Encoder.from_settings(chosen).batch_size == 16


def test_fp32_vectors_do_not_depend_on_the_batch_size(tmp_path) -> None:
    settings = Settings(index_dir=tmp_path / "index")
    small, large = (
        Encoder.from_settings(settings),
        Encoder.from_settings(settings.model_copy(update={"embedding_batch_size": 32})),
    )
    assert small.batch_size < len(TEXTS) <= large.batch_size
    np.testing.assert_allclose(small.encode(TEXTS), large.encode(TEXTS), atol=1e-5)
    np.testing.assert_allclose(small.encode_queries(TEXTS), small.encode(TEXTS), atol=1e-5)


def test_lanes_embed_the_same_vectors_as_one_session(tmp_path) -> None:
    settings = Settings(index_dir=tmp_path / "index", embedding_precision="int8")
    one = Encoder.from_settings(settings.model_copy(update={"embedding_lanes": 1}))
    assert Encoder.from_settings(settings).lanes >= 1  # unset: one lane per core
    texts = TEXTS * 7  # more batches than lanes, of mixed lengths
    for lanes in (2, 3):
        laned = Encoder.from_settings(settings.model_copy(update={"embedding_lanes": lanes}))
        assert np.array_equal(laned.encode(texts), one.encode(texts))
        # questions take the one multi-threaded session, never the lanes
        assert np.array_equal(laned.encode_queries(TEXTS), one.encode_queries(TEXTS))
        assert len(laned.model._lanes) == lanes


def test_an_int8_chunks_vector_depends_on_its_text_alone(tmp_path) -> None:
    encoder = Encoder.from_settings(
        Settings(index_dir=tmp_path / "index", embedding_precision="int8")
    )
    together = encoder.encode(TEXTS)
    for i, text in enumerate(TEXTS):
        assert np.array_equal(together[i], encoder.encode([text])[0])
    assert np.array_equal(together, encoder.encode_queries(TEXTS))


def test_the_export_keeps_norms_apart_and_embeds_as_sentence_transformers(tmp_path) -> None:
    import onnx

    torch_side = Encoder(backend="torch")
    written = Encoder(onnx_dir=tmp_path / "onnx").export_onnx()
    ops = {
        n.op_type
        for p in (written, written.with_name("model.int8.onnx"))
        for n in onnx.load(str(p)).graph.node
    }
    # attention fused; residual adds and LayerNorms apart (the faster kernels on the CPU)
    assert {"Attention", "QAttention", "LayerNormalization"} <= ops
    assert "SkipLayerNormalization" not in ops
    onnx_side = Encoder(onnx_dir=tmp_path / "onnx")
    np.testing.assert_allclose(onnx_side.encode(TEXTS), torch_side.encode(TEXTS), atol=1e-5)
