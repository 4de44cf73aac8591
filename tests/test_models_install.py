"""facebank models install: download (resumable, sha256-checked) or --from a local copy; list, add,
remove. The download is served on 127.0.0.1 by a thread of the test (never outside the machine)."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from facebank.cli import app
from facebank.embed import catalogue

CARD = {"name": "tiny", "mean": [127.5] * 3, "std": [128.0] * 3, "licence": "CC-BY-NC-4.0"}


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("FACEBANK_DATA_DIR", str(d))
    return d


def tiny_model(path: Path, seed: int = 0) -> bytes:
    fc = np.random.default_rng(seed).normal(size=(3, 8)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["x"], ["g"]), helper.make_node("Flatten", ["g"], ["f"]),
         helper.make_node("MatMul", ["f", "fc"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], [numpy_helper.from_array(fc, "fc")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path.read_bytes()


@pytest.fixture
def tiny_entry(tmp_path, monkeypatch):
    data = tiny_model(tmp_path / "tiny-upstream.onnx")
    digest = hashlib.sha256(data).hexdigest()
    entry = catalogue.CatalogueEntry("tiny", "http://127.0.0.1:1/unused", digest, len(data), "CC-BY-NC-4.0",
                                     CARD, "a tiny test model")
    monkeypatch.setitem(catalogue.CATALOGUE, "tiny", entry)
    return entry, data


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``payload`` at any path, honouring 'Range: bytes=N-' (206), and counts requests."""

    payload = b""
    requests: list = []

    def do_GET(self) -> None:  # noqa: N802
        body, status = self.payload, 200
        rng = self.headers.get("Range")
        type(self).requests.append(rng)
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            body, status = self.payload[start:], 206
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def serve():
    servers = []

    def start(payload: bytes) -> tuple[str, type]:
        handler = type("H", (RangeHandler,), {"payload": payload, "requests": []})
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}/tiny.onnx", handler

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_install_downloads_checks_the_sha256_and_warns_about_a_non_commercial_licence(tiny_entry, serve,
                                                                                     data_dir):
    entry, data = tiny_entry
    url, handler = serve(data)
    res = run("models", "install", "tiny", "--url", url, "--no-calibrate")
    assert res.exit_code == 0, res.output
    assert "CC-BY-NC-4.0" in res.output and "does not allow commercial use" in res.output
    installed = data_dir / "models" / "tiny" / "tiny.onnx"
    assert installed.read_bytes() == data and (data_dir / "models" / "tiny" / "tiny.json").is_file()
    listed = json.loads(run("models", "list", "--json").output)
    row = next(r for r in listed if r["name"] == "tiny")
    assert row["installed"] and row["dim"] == 8 and row["points"] == "not calibrated"


def test_an_interrupted_download_resumes_with_a_range_request(tiny_entry, serve, data_dir):
    entry, data = tiny_entry
    part = data_dir / "downloads" / f"{entry.sha256}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[: len(data) // 2])
    url, handler = serve(data)
    res = run("models", "install", "tiny", "--url", url, "--no-calibrate")
    assert res.exit_code == 0, res.output
    assert handler.requests == [f"bytes={len(data) // 2}-"]
    assert (data_dir / "models" / "tiny" / "tiny.onnx").read_bytes() == data and not part.exists()


def test_a_download_whose_sha256_differs_installs_nothing(tiny_entry, serve, data_dir, tmp_path):
    other = tiny_model(tmp_path / "other.onnx", seed=1)
    url, _ = serve(other)
    res = run("models", "install", "tiny", "--url", url)
    assert res.exit_code == 1 and "sha256" in res.output and "nothing installed" in res.output
    assert not (data_dir / "models").exists() and catalogue.installed() == {}
    assert not list((data_dir / "downloads").glob("*"))
    # the same from a local copy
    res = run("models", "install", "tiny", "--from", str(tmp_path / "other.onnx"))
    assert res.exit_code == 1 and "nothing installed" in res.output and catalogue.installed() == {}


def test_install_from_a_local_copy_then_remove(tiny_entry, data_dir, tmp_path):
    res = run("models", "install", "tiny", "--from", str(tmp_path / "tiny-upstream.onnx"), "--no-calibrate")
    assert res.exit_code == 0, res.output
    assert catalogue.resolve_model("tiny") == data_dir / "models" / "tiny" / "tiny.onnx"
    assert run("models", "remove", "tiny").exit_code == 0
    assert catalogue.installed() == {} and not (data_dir / "models" / "tiny").exists()
    with pytest.raises(FileNotFoundError, match="models install tiny"):
        catalogue.resolve_model("tiny")


def test_add_keeps_the_model_where_it_is_and_its_card_in_the_data_folder_by_sha256(tmp_path, data_dir):
    ro = tmp_path / "readonly"
    ro.mkdir()
    model = ro / "mine.onnx"
    data = tiny_model(model)
    card = tmp_path / "card.json"
    card.write_text(json.dumps({k: v for k, v in CARD.items() if k != "licence"}))
    ro.chmod(0o555)
    try:
        res = run("models", "add", str(model), "--name", "mine", "--card", str(card), "--licence", "MIT")
        assert res.exit_code == 0, res.output
        stored = data_dir / "cards" / f"{hashlib.sha256(data).hexdigest()}.json"
        assert stored.is_file()
        from facebank.embed import create

        emb = create("onnx", model="mine")  # found by name; its card by the model's sha256
        assert emb.dim == 8 and emb.batch == 1
        assert emb.embed(np.zeros((3, 32, 32, 3), np.uint8)).shape == (3, 8)
    finally:
        ro.chmod(0o755)


def test_the_catalogue_pins_mobilefacenet_to_a_commit_and_its_sha256():
    e = catalogue.CATALOGUE["mobilefacenet"]
    assert "a6cc9032a659b615f477833e1a70b5e7931bcccc" in e.url and e.licence == "Apache-2.0"
    assert e.sha256 == "b7120c095d60094f28a4a54ba6a8bf51b297a6273fb40ef6350dfec1f63d9507"
    assert e.card["template"] == "arcface" and "output_dim" not in e.card
    assert replace(e, name="x").name == "x"


def test_onnx_model_implies_the_onnx_embedder_and_a_missing_model_is_one_error_line(tmp_path):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"not really a photo")
    res = run("verify", "--onnx-model", "no-such-model", str(photo), str(photo))
    assert res.exit_code == 1 and res.output.startswith("error: ") and "no-such-model" in res.output
    assert "models list" in res.output and "Traceback" not in res.output
