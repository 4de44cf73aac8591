"""Look at an ONNX face model and run one face through it, in a separate process with a time limit.

``probe(model, card)`` starts ``python -m facebank.embed.probe MODEL [CARD]``: a graph that runs
forever (or allocates without end) is killed after ``timeout_s`` and reported, and the caller's
process never loads an unchecked model. The child checks the file first (``inspect_model``: size
limit, external tensors inside the model's folder, no custom operator domains), then fills in what
the graph tells (input size, layout, batch, dtype, output, output size) and runs two different
random faces through it: the outputs must be finite, one vector per face, and differ.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PROBE_TIMEOUT_S = 60.0


class ProbeError(RuntimeError):
    """The model failed its probe: the message says why, in one line."""


@dataclass(frozen=True)
class ProbeReport:
    """What the probe saw: inputs/outputs with their shapes, the fixed batch (None = any), the card
    fields the graph tells (``graph_card``), the output size, ms per face and the mean output norm."""

    inputs: list[Any] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    batch: int | None = None
    graph_card: dict[str, Any] = field(default_factory=dict)
    output_dim: int = 0
    ms_per_face: float = 0.0
    size_bytes: int = 0
    domains: list[Any] = field(default_factory=list)


def graph_card(info: Any) -> dict[str, Any]:
    """Card fields the graph tells: layout (where the 3 channels are), input size, dtype, output."""
    out: dict[str, Any] = {}
    shape: Sequence[Any] = info.inputs[0].shape if info.inputs else ()
    if len(shape) == 4:
        if shape[1] == 3 and shape[3] != 3:
            out["layout"] = "NCHW"
        elif shape[3] == 3 and shape[1] != 3:
            out["layout"] = "NHWC"
        hw = shape[2:4] if out.get("layout", "NCHW") == "NCHW" else shape[1:3]
        if all(isinstance(d, int) for d in hw) and hw[0] == hw[1]:
            out["input_size"] = int(hw[0])
    if info.inputs and info.inputs[0].dtype == "UINT8":
        out["dtype"] = "uint8"
    if len(info.outputs) == 1:
        out["output"] = info.outputs[0].name
    return out


def _run_child(model: str, card_json: str | None) -> dict[str, Any]:
    from facebank.embed.onnx import ModelCard, OnnxEmbedder, inspect_model

    info = inspect_model(model)
    found = graph_card(info)
    raw = json.loads(card_json) if card_json else {}
    card = ModelCard.from_dict({**found, **raw}, "model card")
    emb = OnnxEmbedder(model, card=card, threads=1)
    size = emb.chip.size
    rng = np.random.default_rng(0)
    chips = rng.integers(0, 256, size=(2, size, size, 3), dtype=np.uint8)
    t0 = time.process_time()
    out = emb.raw(chips)
    ms = (time.process_time() - t0) * 1000.0 / 2
    norms = np.linalg.norm(out, axis=1)
    if not (norms > 0).all():
        raise ValueError("the model gives all-zero outputs: not an embedding")
    unit = out / norms[:, None]
    if abs(float(unit[0] @ unit[1])) > 1.0 - 1e-6:  # one direction (up to sign) for every face
        raise ValueError("the model gives the same output for different faces: not an embedding")
    return {"inputs": [[t.name, list(t.shape), t.dtype] for t in info.inputs],
            "outputs": [[t.name, list(t.shape), t.dtype] for t in info.outputs],
            "batch": info.batch, "graph_card": found, "output_dim": int(out.shape[1]),
            "ms_per_face": round(ms, 3), "size_bytes": info.size_bytes, "domains": list(info.domains)}


def probe(model: str | Path, card: dict[str, Any] | None = None,
          timeout_s: float | None = None) -> ProbeReport:
    """Probe ``model`` (with ``card``'s fields over what the graph tells) in a child process."""
    timeout_s = timeout_s or float(os.environ.get("FACEBANK_PROBE_TIMEOUT", PROBE_TIMEOUT_S))
    model = Path(model)
    if not model.is_file():
        raise ProbeError(f"ONNX model {model} not found")
    cmd = [sys.executable, "-m", "facebank.embed.probe", str(model)] + ([json.dumps(card)] if card else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise ProbeError(f"{model}: one face took longer than {timeout_s:g} s (a graph that does not end?); "
                         f"refused") from None
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = (res.stderr.strip().splitlines() or ["no output"])[-1][:300]
        raise ProbeError(f"{model}: the probe failed ({tail})")
    answer = json.loads(lines[-1])
    if "error" in answer:
        raise ProbeError(answer["error"])
    return ProbeReport(**answer)


def main(argv: list[str]) -> int:
    try:
        answer = _run_child(argv[0], argv[1] if len(argv) > 1 else None)
    except Exception as exc:  # noqa: BLE001 - every failure is the probe's one-line answer
        print(json.dumps({"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}))
        return 1
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
