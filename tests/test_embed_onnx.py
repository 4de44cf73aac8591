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


def build_tiny_model(path, size: int = 32, dim: int = 16, seed: int = 0,
                     batch: int | str = "N") -> tuple[np.ndarray, np.ndarray]:
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
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, dim])],
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
    assert OnnxEmbedder(model).model_id.startswith("onnx:")


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
    bad.write_text(json.dumps({"input_size": "32"}))
    with pytest.raises(ValueError, match="input_size"):
        ModelCard.load(bad)
    assert emb.embed(np.zeros((0, 32, 32, 3), np.uint8)).shape == (0, 16)


def test_flip_augmentation_is_symmetric(tiny):
    model, _, _ = tiny
    emb = OnnxEmbedder(model, flip=True)
    chip = np.random.default_rng(2).integers(0, 256, size=(1, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(emb.embed(chip), emb.embed(chip[:, :, ::-1]), atol=1e-5)


def build_two_output_uint8_model(path, size: int = 32, dim: int = 8, seed: int = 3):
    """uint8 NHWC input -> Cast -> mean over pixels -> two linear heads ("feat", "emb")."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(3, dim)).astype(np.float32)
    b = rng.normal(size=(3, dim)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
            helper.make_node("ReduceMean", ["xf", "axes"], ["m"], keepdims=0),
            helper.make_node("MatMul", ["m", "a"], ["feat"]),
            helper.make_node("MatMul", ["m", "b"], ["emb"]),
        ],
        "two-heads",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, ["N", size, size, 3])],
        [helper.make_tensor_value_info("feat", TensorProto.FLOAT, ["N", dim]),
         helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["N", dim])],
        [numpy_helper.from_array(a, "a"), numpy_helper.from_array(b, "b"),
         numpy_helper.from_array(np.array([1, 2], np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return a, b


def test_card_picks_an_output_by_name_and_feeds_raw_uint8_pixels(tmp_path):
    model = tmp_path / "heads.onnx"
    a, b = build_two_output_uint8_model(model)
    card = {"name": "heads", "input_size": 32, "output_dim": 8, "layout": "NHWC", "dtype": "uint8"}
    chips = np.random.default_rng(4).integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8)
    mean_px = chips.astype(np.float32).mean(axis=(1, 2))
    for output, head in (("emb", b), (0, a), ("feat", a)):
        (tmp_path / "heads.json").write_text(json.dumps({**card, "output": output}))
        out = OnnxEmbedder(model).embed(chips)
        want = mean_px @ head
        np.testing.assert_allclose(out, want / np.linalg.norm(want, axis=1, keepdims=True), atol=1e-5)
    (tmp_path / "heads.json").write_text(json.dumps({**card, "output": "nope"}))
    with pytest.raises(ValueError, match="no output named 'nope'"):
        OnnxEmbedder(model)
    (tmp_path / "heads.json").write_text(json.dumps({**card, "dtype": "float16"}))
    with pytest.raises(ValueError, match="dtype"):
        OnnxEmbedder(model)


def test_editing_the_card_changes_the_model_id(tiny, tmp_path):
    model, _, _ = tiny
    before = OnnxEmbedder(model).model_id
    card = json.loads((tmp_path / "tiny.json").read_text())
    (tmp_path / "tiny.json").write_text(json.dumps({**card, "mean": [120.0, 120.0, 120.0]}))
    assert OnnxEmbedder(model).model_id != before
    (tmp_path / "tiny.json").write_text(json.dumps(card))
    assert OnnxEmbedder(model).model_id == before


def test_arcface_template_puts_the_five_points_where_arcface_models_expect_them(tiny, tmp_path):
    from facebank.align import align
    from facebank.embed.base import ARCFACE_TEMPLATE_112
    from facebank.types import Box, Landmarks

    model = tmp_path / "arc.onnx"
    build_tiny_model(model, size=112)
    card = json.loads((tiny[0].with_suffix(".json")).read_text())
    (tmp_path / "arc.json").write_text(json.dumps({**card, "input_size": 112, "template": "arcface"}))
    emb = OnnxEmbedder(model)
    assert emb.chip.size == 112 and emb.chip.template == ARCFACE_TEMPLATE_112
    # a photo where the five points are the template turned by 20 degrees, scaled by 2.5, shifted
    t = np.radians(20)
    rot = 2.5 * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    pts = np.asarray(ARCFACE_TEMPLATE_112) @ rot.T + [150.0, 60.0]
    img = np.zeros((500, 500, 3), np.uint8)
    for k, (x, y) in enumerate(pts):
        img[int(round(y)) - 4:int(round(y)) + 5, int(round(x)) - 4:int(round(x)) + 5] = 50 * (k + 1)
    chip = align(img, Box(0, 0, 500, 500), Landmarks(tuple(map(tuple, pts)), "mtcnn5"), emb.chip)
    assert chip.shape == (112, 112, 3)
    for k, (x, y) in enumerate(ARCFACE_TEMPLATE_112):
        assert abs(int(chip[int(round(y)), int(round(x)), 0]) - 50 * (k + 1)) <= 2, k
    assert emb.embed(chip[None]).shape == (1, 16)


def test_explicit_template_points_and_bad_templates(tiny, tmp_path):
    model, _, _ = tiny
    card = json.loads((tmp_path / "tiny.json").read_text())
    pts = [[10, 12], [22, 12], [16, 18], [11, 24], [21, 24]]
    (tmp_path / "tiny.json").write_text(json.dumps({**card, "template": pts}))
    assert OnnxEmbedder(model).chip.template == tuple(tuple(map(float, p)) for p in pts)
    for bad in ("insightface", pts[:4], [["a", 1]] * 5):
        (tmp_path / "tiny.json").write_text(json.dumps({**card, "template": bad}))
        with pytest.raises(ValueError, match="template"):
            OnnxEmbedder(model)


@pytest.mark.parametrize("output, message", [(5, "output 5 does not exist"), (-1, "output -1 does not exist"),
                                             (True, "output must be"), ([0], "output must be")])
def test_a_card_naming_an_output_the_model_lacks_is_a_clear_error(tiny, tmp_path, output, message):
    model, _, _ = tiny
    card = json.loads((tmp_path / "tiny.json").read_text())
    (tmp_path / "tiny.json").write_text(json.dumps({**card, "output": output}))
    with pytest.raises(ValueError, match=message):
        OnnxEmbedder(model)


def test_output_dim_and_input_size_come_from_the_graph_when_the_card_leaves_them_out(tiny, tmp_path):
    model, _, _ = tiny
    (tmp_path / "tiny.json").write_text(json.dumps({"name": "tiny", "mean": [127.5] * 3, "std": [128.0] * 3}))
    emb = OnnxEmbedder(model)
    assert emb.dim == 16 and emb.chip.size == 32
    (tmp_path / "tiny.json").write_text(json.dumps({"output_dim": 12}))
    with pytest.raises(ValueError, match="output_dim 12"):
        OnnxEmbedder(model)
    (tmp_path / "tiny.json").write_text(json.dumps({"input_size": 64}))
    with pytest.raises(ValueError, match="input_size 64"):
        OnnxEmbedder(model)


def test_the_card_name_does_not_change_the_model_id_but_the_template_does(tiny, tmp_path):
    model, _, _ = tiny
    card = json.loads((tmp_path / "tiny.json").read_text())
    before = OnnxEmbedder(model).model_id
    (tmp_path / "tiny.json").write_text(json.dumps({**card, "name": "renamed", "licence": "MIT"}))
    assert OnnxEmbedder(model).model_id == before
    (tmp_path / "tiny.json").write_text(json.dumps({**card, "template": "arcface"}))
    assert OnnxEmbedder(model).model_id != before


@pytest.mark.parametrize("batch", [1, 2])
def test_a_model_with_a_fixed_batch_embeds_any_number_of_faces(tmp_path, batch):
    model = tmp_path / "fixed.onnx"
    w, fc = build_tiny_model(model, batch=batch)
    (tmp_path / "fixed.json").write_text(json.dumps({"mean": [127.5] * 3, "std": [128.0] * 3}))
    emb = OnnxEmbedder(model)
    assert emb.batch == batch
    chips = np.random.default_rng(7).integers(0, 256, size=(5, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(emb.embed(chips), reference(chips, w, fc), atol=1e-4)
    assert emb.embed(chips[:1]).shape == (1, 16)


def test_jitter_runs_through_a_batch_one_model(tmp_path):
    from facebank.evaluate.cache import jittered_chips

    model = tmp_path / "one.onnx"
    w, fc = build_tiny_model(model, batch=1)
    (tmp_path / "one.json").write_text(json.dumps({"mean": [127.5] * 3, "std": [128.0] * 3}))
    chip = np.random.default_rng(8).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    copies = jittered_chips(chip, 4, "seed")
    out = OnnxEmbedder(model, flip=True).embed(copies)
    assert out.shape == (5, 16) and np.isfinite(out).all()
