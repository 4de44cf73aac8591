"""The ONNX embedder runs a user-supplied model described by its model card.

The test builds a tiny ONNX model itself (conv -> global average pool -> linear), so the real
onnxruntime code path runs without any downloaded weights.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from facebank.embed import create
from facebank.embed.onnx import ModelCard, OnnxEmbedder


def build_tiny_model(path, size: int = 32, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(8, 3, 3, 3)).astype(np.float32)
    fc = rng.normal(size=(8, dim)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("GlobalAveragePool", ["r"], ["g"]),
            helper.make_node("Flatten", ["g"], ["f"]),
            helper.make_node("MatMul", ["f", "fc"], ["y"]),
        ],
        "tiny-face",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", dim])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(fc, "fc")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return w, fc


def reference(chips: np.ndarray, w: np.ndarray, fc: np.ndarray) -> np.ndarray:
    """The same network in NumPy: what the ONNX model must compute."""
    x = (chips.astype(np.float32) - 127.5) / 128.0
    x = x.transpose(0, 3, 1, 2)
    n, _, h, wd = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], h, wd), np.float32)
    for i in range(3):
        for j in range(3):
            patch = padded[:, :, i:i + h, j:j + wd]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    pooled = np.maximum(out, 0).mean(axis=(2, 3))
    y = pooled @ fc
    return y / np.linalg.norm(y, axis=1, keepdims=True)


@pytest.fixture
def tiny(tmp_path):
    model = tmp_path / "tiny.onnx"
    w, fc = build_tiny_model(model)
    (tmp_path / "tiny.json").write_text(json.dumps({
        "name": "tiny", "input_size": 32, "output_dim": 16, "mean": [127.5] * 3, "std": [128.0] * 3,
        "channels": "RGB", "layout": "NCHW", "padding": 0.1}))
    return model, w, fc


def test_onnx_embedder_computes_the_models_unit_vectors(tiny):
    model, w, fc = tiny
    emb = OnnxEmbedder(model)
    chips = np.random.default_rng(1).integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    out = emb.embed(chips)
    assert out.shape == (3, 16) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out, reference(chips, w, fc), atol=1e-4)
    assert emb.chip.size == 32 and emb.chip.padding == pytest.approx(0.1)


def test_model_id_names_the_weights(tiny, tmp_path):
    model, _, _ = tiny
    other = tmp_path / "other.onnx"
    build_tiny_model(other, seed=5)
    (tmp_path / "other.json").write_text((tmp_path / "tiny.json").read_text())
    assert OnnxEmbedder(model).model_id != OnnxEmbedder(other).model_id
    assert OnnxEmbedder(model).model_id.startswith("onnx:tiny:")


def test_registry_builds_it_from_settings(tiny):
    model, _, _ = tiny
    emb = create("onnx", model=str(model))
    assert emb.dim == 16


def test_wrong_chip_size_and_bad_cards_are_clear_errors(tiny, tmp_path):
    model, _, _ = tiny
    emb = OnnxEmbedder(model)
    with pytest.raises(ValueError, match="chips must be"):
        emb.embed(np.zeros((1, 40, 40, 3), np.uint8))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"input_size": 32}))
    with pytest.raises(ValueError, match="output_dim"):
        ModelCard.load(bad)
    assert emb.embed(np.zeros((0, 32, 32, 3), np.uint8)).shape == (0, 16)


def test_flip_augmentation_is_symmetric(tiny):
    model, _, _ = tiny
    emb = OnnxEmbedder(model, flip=True)
    chip = np.random.default_rng(2).integers(0, 256, size=(1, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(emb.embed(chip), emb.embed(chip[:, :, ::-1]), atol=1e-5)
