"""Hostile models, cards and operating points get one clear error each; no model file runs code.

Every model here is a small ONNX graph built with the ``onnx`` package."""

from __future__ import annotations

import json
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from facebank.cli import app
from facebank.embed.onnx import ModelError, OnnxEmbedder, inspect_model
from facebank.embed.points import DLIB_POINTS, NotCalibrated, points_for, save_points
from facebank.embed.probe import ProbeError, probe

CARD = {"mean": [127.5] * 3, "std": [128.0] * 3}


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("FACEBANK_DATA_DIR", str(d))
    return d


def save(model_graph, path, opset: int = 17, card: dict | None = CARD, extra_opsets=()):
    model = helper.make_model(model_graph, opset_imports=[helper.make_opsetid("", opset), *extra_opsets])
    onnx.save(model, str(path))
    if card is not None:
        path.with_suffix(".json").write_text(json.dumps(card))
    return path


def pool_graph(out_shape, nodes_after=(), out_name="y", name="g"):
    """x [N,3,32,32] -> global average pool -> flatten (N, 3) -> ``nodes_after``."""
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"]), helper.make_node("Flatten", ["g"], ["f"]),
             *nodes_after]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])
    y = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)
    return helper.make_graph(nodes, name, [x], [y])


def test_a_card_claiming_other_dimensions_than_the_model_gives_is_refused(tmp_path):
    m = save(pool_graph(["N", 3], [helper.make_node("Identity", ["f"], ["y"])]), tmp_path / "m.onnx",
             card={**CARD, "output_dim": 128})
    with pytest.raises(ModelError, match="output_dim 128"):
        OnnxEmbedder(m)


def test_nan_outputs_are_an_error_not_an_embedding(tmp_path):
    zero = numpy_helper.from_array(np.zeros((1,), np.float32), "zero")
    g = pool_graph(["N", 3], [helper.make_node("Mul", ["f", "zero"], ["z"]),
                              helper.make_node("Div", ["z", "zero"], ["y"])])
    g.initializer.append(zero)
    emb = OnnxEmbedder(save(g, tmp_path / "nan.onnx"))
    with pytest.raises(ModelError, match="NaN"):
        emb.embed(np.full((2, 32, 32, 3), 100, np.uint8))


def test_an_output_that_is_not_one_vector_per_face_is_refused(tmp_path):
    shape = numpy_helper.from_array(np.array([-1, 3, 1], np.int64), "shape")
    g = pool_graph(["N", 3, 1], [helper.make_node("Reshape", ["f", "shape"], ["y"])])
    g.initializer.append(shape)
    m = save(g, tmp_path / "map.onnx")
    emb = OnnxEmbedder(m)  # (N, 3, 1) is still one 3-vector per face
    assert emb.dim == 3
    g2 = pool_graph(["N", 1], [helper.make_node("ReduceMean", ["f"], ["y"], keepdims=1, axes=[1])],
                    name="one")
    with pytest.raises(ModelError, match="not an embedding"):
        OnnxEmbedder(save(g2, tmp_path / "one.onnx", opset=13))
    # a constant output: the probe sees the same vector for different faces
    const = numpy_helper.from_array(np.ones((1, 4), np.float32), "c")
    g3 = pool_graph(["N", 4], [helper.make_node("ReduceMean", ["f"], ["s"], keepdims=1, axes=[1]),
                               helper.make_node("Mul", ["s", "c"], ["y"])], name="const")
    g3.initializer.append(const)
    with pytest.raises(ProbeError, match="same output for different faces"):
        probe(save(g3, tmp_path / "const.onnx", opset=13), CARD)


def test_a_threshold_that_is_a_string_in_the_points_file_is_one_clear_error(data_dir):
    save_points(DLIB_POINTS.__class__(**{**DLIB_POINTS.__dict__, "model_id": "m1"}))
    f = data_dir / "points" / "m1.json"
    raw = json.loads(f.read_text())
    raw["verify_l2"] = "0.4"
    f.write_text(json.dumps(raw))
    with pytest.raises(NotCalibrated, match="verify_l2 must be an L2 distance.*models calibrate"):
        points_for("m1")
    raw["verify_l2"], raw["prior_l2"] = 0.4, {"nearest": "x", "mean": 0.3, "both": 0.3}
    f.write_text(json.dumps(raw))
    with pytest.raises(NotCalibrated, match="prior_l2"):
        points_for("m1")


def test_a_huge_model_file_is_refused_before_loading(tmp_path):
    big = tmp_path / "big.onnx"
    with open(big, "wb") as f:  # a sparse 2 GB file: nothing is read
        f.truncate(2 << 30)
    with pytest.raises(ModelError, match="above the .* MB limit"):
        inspect_model(big)
    res = CliRunner().invoke(app, ["models", "check", str(big)])
    assert res.exit_code == 1 and "limit" in res.output and "Traceback" not in res.output


def test_external_tensors_outside_the_models_folder_are_refused(tmp_path):
    inner = tmp_path / "models"
    inner.mkdir()
    (tmp_path / "secret.bin").write_bytes(np.ones(9, np.float32).tobytes())
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3, 3])
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../secret.bin"), ("offset", "0"), ("length", "36")):
        entry = w.external_data.add()
        entry.key, entry.value = k, v
    g = pool_graph(["N", 3], [helper.make_node("MatMul", ["f", "w"], ["y"])])
    g.initializer.append(w)
    m = save(g, inner / "ext.onnx")
    with pytest.raises(ModelError, match="outside the model's folder"):
        inspect_model(m)
    res = CliRunner().invoke(app, ["models", "add", str(m), "--name", "ext"])
    assert res.exit_code == 2 and "outside the model's folder" in res.output
    # an external file inside the folder is fine, and 'add --copy' refuses to split it from its data
    (inner / "w.bin").write_bytes(np.eye(3, dtype=np.float32).tobytes())
    g.initializer[0].external_data[0].value = "w.bin"
    save(g, inner / "ext.onnx")
    assert inspect_model(m).external == ("w.bin",)
    res = CliRunner().invoke(app, ["models", "add", str(m), "--name", "ext", "--copy"])
    assert res.exit_code == 1 and "copying is refused" in res.output


def test_custom_operator_domains_are_refused(tmp_path):
    g = pool_graph(["N", 3], [helper.make_node("Evil", ["f"], ["y"], domain="com.example.evil")])
    m = save(g, tmp_path / "evil.onnx", extra_opsets=[helper.make_opsetid("com.example.evil", 1)])
    with pytest.raises(ModelError, match="custom operators .*com.example.evil"):
        inspect_model(m)


def test_a_graph_that_runs_forever_is_stopped_by_the_probe_time_limit(tmp_path, monkeypatch):
    # Loop with a huge trip count whose body does real work on a big tensor
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Sin", ["acc_in"], ["acc_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, None)])
    trips = numpy_helper.from_array(np.array(10**15, np.int64), "trips")
    cond = numpy_helper.from_array(np.array(True), "cond")
    g = pool_graph(["N", 3], [helper.make_node("Loop", ["trips", "cond", "f"], ["y"], body=body)],
                   name="forever")
    g.initializer.extend([trips, cond])
    m = save(g, tmp_path / "forever.onnx")
    monkeypatch.setenv("FACEBANK_PROBE_TIMEOUT", "4")
    with pytest.raises(ProbeError, match="longer than 4 s"):
        probe(m, CARD)


def test_no_model_file_runs_code_the_probe_runs_it_in_a_child_process(tmp_path):
    ok = save(pool_graph(["N", 3], [helper.make_node("Identity", ["f"], ["y"])]), tmp_path / "ok.onnx")
    rep = probe(ok, CARD)
    assert rep.output_dim == 3 and rep.batch is None and rep.graph_card["input_size"] == 32
    assert os.getpid()  # the model was never loaded by this process's onnxruntime
