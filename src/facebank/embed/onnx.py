"""Any user-supplied ONNX face model (FaceNet, ArcFace, SFace style) through onnxruntime.

The model comes with a small **model card** (JSON). One rule finds it (see ``find_card``): the
file ``MODEL.json`` beside ``MODEL.onnx`` (same name, ``.json`` instead of ``.onnx``), else
``cards/SHA256.json`` in the user's data folder, where SHA256 is the model file's sha256 (what
``facebank models add`` writes, for models in read-only folders). For example, the ArcFace-trained
MobileFaceNet::

    {"name": "mobilefacenet", "input_size": 112, "template": "arcface",
     "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375],
     "channels": "RGB", "layout": "NCHW", "output": "output0"}

``mean``/``std`` are in 0-255 pixel units, per channel in the ``channels`` order. ``layout`` is
NCHW or NHWC. ``input_size`` and ``output_dim`` may be left out when the graph declares them.

Optional keys:

- ``template``: where the five landmarks (eyes, nose tip, mouth corners as seen in the photo) must
  land in the chip: ``"arcface"`` (the 112x112 five-point template of ArcFace, SFace and
  MobileFaceNet models, scaled to ``input_size``) or five ``[x, y]`` positions in chip pixels.
  Without it, faces are cut in the dlib chip layout (right for dlib-style models only: an
  ArcFace-family model falls from 99.1 % to 75.2 % on LFW without ``"template": "arcface"``).
- ``padding``: the dlib-style chip padding (fraction of the face width on each side), used when no
  ``template`` is given.
- ``output``: which output is the embedding, by name or position (default: the first).
- ``dtype``: ``"float32"`` (default: ``(pixel - mean) / std``) or ``"uint8"`` (raw pixels, no
  normalisation: for models that normalise inside).
- ``name``, ``licence``: shown by ``facebank models list``; they do not change the model id.

The model id is the model file's sha256 and a digest of the card fields that change embeddings
(input size, mean, std, channels, layout, padding, template, output, dtype): editing those never
reuses embeddings made with the old card. The operating points (thresholds) are kept apart
(``facebank.embed.points``), so calibrating never changes a model id.

Any batch size: a model whose batch dimension is fixed (many exported models take exactly one
face) is run in chunks of that size. Model files are data, never code: custom-operator domains
are refused (they would need a native library), external tensors must stay inside the model's
folder, and files above ``MAX_MODEL_BYTES`` are refused before loading.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from facebank import models
from facebank.embed.base import ChipSpec, arcface_template, l2_normalise, register

log = logging.getLogger(__name__)

# the largest model file (with its external tensors) loaded, in bytes; FACEBANK_MAX_MODEL_BYTES overrides
MAX_MODEL_BYTES = 1 << 30
# operator domains onnxruntime implements itself; any other domain needs native code: refused
STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft", "ai.onnx.preview.training"})
# the card fields that change embeddings (and so the model id)
EMBEDDING_FIELDS = ("input_size", "mean", "std", "channels", "layout", "padding", "template", "output",
                    "dtype")


class ModelError(ValueError):
    """A model file or its card that facebank refuses: the message names the file and the reason."""


def max_model_bytes() -> int:
    env = os.environ.get("FACEBANK_MAX_MODEL_BYTES")
    try:
        return int(env) if env else MAX_MODEL_BYTES
    except ValueError:
        return MAX_MODEL_BYTES


@dataclass(frozen=True)
class ModelCard:
    input_size: int | None = None
    output_dim: int | None = None
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (127.5, 127.5, 127.5)
    channels: str = "RGB"
    layout: str = "NCHW"
    padding: float = 0.0
    name: str = "onnx-face-model"
    template: str | tuple[tuple[float, float], ...] | None = None
    output: str | int = 0
    dtype: str = "float32"
    licence: str = ""

    @classmethod
    def from_dict(cls, raw: object, where: str = "model card") -> ModelCard:
        if not isinstance(raw, dict):
            raise ModelError(f"{where}: not a JSON object")
        raw = dict(raw)
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ModelError(f"{where}: unknown keys {sorted(unknown)}")
        for key in ("input_size", "output_dim"):
            v = raw.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 4096):
                raise ModelError(f"{where}: {key} must be a whole number from 1 to 4096, not {v!r}")
        for key in ("mean", "std"):
            if key in raw:
                v = raw[key]
                ok = isinstance(v, list) and len(v) == 3 and all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)
                if not ok:
                    raise ModelError(f"{where}: {key} must be three finite numbers, not {v!r}")
                if key == "std" and any(x == 0 for x in v):
                    raise ModelError(f"{where}: std must not be 0")
        pad = raw.get("padding", 0.0)
        if isinstance(pad, bool) or not isinstance(pad, (int, float)) or not 0.0 <= pad <= 1.0:
            raise ModelError(f"{where}: padding must be a number from 0 to 1, not {pad!r}")
        for key in ("name", "licence", "channels", "layout", "dtype"):
            if key in raw and not isinstance(raw[key], str):
                raise ModelError(f"{where}: {key} must be a string, not {raw[key]!r}")
        if isinstance(raw.get("template"), list):
            try:
                raw["template"] = tuple((float(x), float(y)) for x, y in raw["template"])
            except (TypeError, ValueError):
                raise ModelError(f"{where}: template must be \"arcface\" or five [x, y] chip "
                                 f"positions") from None
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        card = cls(**fields)
        if card.layout not in ("NCHW", "NHWC") or card.channels not in ("RGB", "BGR"):
            raise ModelError(f"{where}: layout must be NCHW/NHWC and channels RGB/BGR")
        if card.dtype not in ("float32", "uint8"):
            raise ModelError(f"{where}: dtype must be float32 or uint8, not {card.dtype!r}")
        t = card.template
        if isinstance(t, str) and t != "arcface":
            raise ModelError(f"{where}: unknown template {t!r} (\"arcface\" or five [x, y] points)")
        if isinstance(t, tuple) and len(t) != 5:
            raise ModelError(f"{where}: template needs five [x, y] points, got {len(t)}")
        if t is not None and not isinstance(t, (str, tuple)):
            raise ModelError(f"{where}: template must be \"arcface\" or five [x, y] chip positions")
        if not isinstance(card.output, (str, int)) or isinstance(card.output, bool):
            raise ModelError(f"{where}: output must be an output name or position")
        return card

    @classmethod
    def load(cls, path: str | Path) -> ModelCard:
        path = Path(path)
        try:
            if path.stat().st_size > 1 << 20:
                raise ModelError(f"model card {path}: larger than 1 MB")
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(
                f"model card {path} not found: write a JSON file with input_size, mean, std, template "
                f"(see 'facebank models check MODEL.onnx')") from None
        except (UnicodeDecodeError, ValueError) as exc:
            if isinstance(exc, ModelError):
                raise
            raise ModelError(f"model card {path}: not valid JSON ({exc})") from None
        return cls.from_dict(raw, f"model card {path}")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        if isinstance(self.template, tuple):
            d["template"] = [list(p) for p in self.template]
        return {k: v for k, v in d.items() if v is not None and v != ""}

    def chip_template(self) -> tuple[tuple[float, float], ...] | None:
        assert self.input_size is not None
        if self.template == "arcface":
            return arcface_template(self.input_size)
        return self.template if isinstance(self.template, tuple) else None

    def digest(self) -> str:
        """A hash of the card fields that change embeddings (``EMBEDDING_FIELDS``, defaults included)."""
        d = asdict(self)
        text = json.dumps({k: d[k] for k in EMBEDDING_FIELDS}, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()


def cards_dir() -> Path:
    from facebank.embed.points import data_dir

    return data_dir() / "cards"


def card_path_in_data(model: str | Path) -> Path:
    """Where ``facebank models add`` keeps the card of ``model``: data folder/cards/SHA256.json."""
    return cards_dir() / f"{models.file_sha256(Path(model).resolve())}.json"


def find_card(model: str | Path) -> Path:
    """The card of ``model``: MODEL.json beside it, else cards/SHA256.json in the user's data folder."""
    model = Path(model)
    beside = model.with_suffix(".json")
    if beside.is_file():
        return beside
    stored = card_path_in_data(model)
    if stored.is_file():
        return stored
    raise FileNotFoundError(
        f"no model card for {model}: none at {beside.name} beside it nor in the data folder; run "
        f"'facebank models add {model}' (it reads what the graph tells and asks for the rest)")


# -- looking at a model file without running it -------------------------------------------------


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int | str | None, ...]
    dtype: str


@dataclass(frozen=True)
class GraphInfo:
    """What an ONNX file declares: its inputs and outputs (dims: int = fixed, str/None = free),
    opset domains, size on disk in bytes (external tensors included)."""

    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    domains: tuple[str, ...]
    size_bytes: int
    external: tuple[str, ...] = field(default_factory=tuple)

    @property
    def batch(self) -> int | None:
        """The fixed batch size of the first input, None when any batch goes."""
        b = self.inputs[0].shape[0] if self.inputs and self.inputs[0].shape else None
        return b if isinstance(b, int) and b > 0 else None


def _dims(value_info: Any) -> tuple[int | str | None, ...]:
    out: list[int | str | None] = []
    for d in value_info.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append(None)
    return tuple(out)


def _walk_nodes(graph: Any) -> Iterator[Any]:
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.g is not None and attr.HasField("g"):
                yield from _walk_nodes(attr.g)
            for g in attr.graphs:
                yield from _walk_nodes(g)


def inspect_model(path: str | Path) -> GraphInfo:
    """Check an ONNX file before onnxruntime loads it: size limit (file and external tensors),
    external tensors inside the model's folder, only standard operator domains. ``ModelError``
    names the file and what is wrong."""
    import onnx
    from onnx import TensorProto

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model {path} not found")
    limit = max_model_bytes()
    size = path.stat().st_size
    if size > limit:
        raise ModelError(f"ONNX model {path} is {size / 1e6:,.0f} MB, above the {limit / 1e6:,.0f} MB limit "
                         f"(FACEBANK_MAX_MODEL_BYTES)")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - any parse failure of a hostile file is one error
        raise ModelError(f"{path} is not an ONNX model ({type(exc).__name__})") from None
    folder = path.resolve().parent
    external: list[str] = []
    total = size
    for tensor in list(proto.graph.initializer) + [
            a.t for n in _walk_nodes(proto.graph) for a in n.attribute if a.HasField("t")]:
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        loc = info.get("location", "")
        target = (folder / loc).resolve()
        if os.path.isabs(loc) or not target.is_relative_to(folder):
            raise ModelError(f"ONNX model {path}: tensor {tensor.name!r} points outside the model's folder "
                             f"({loc!r}); refused")
        if not target.is_file():
            raise ModelError(f"ONNX model {path}: external tensor file {loc!r} is missing")
        try:
            claimed = int(info.get("length", "0") or 0)
        except ValueError:
            raise ModelError(f"ONNX model {path}: tensor {tensor.name!r} has a bad external length") from None
        if loc not in external:
            external.append(loc)
            total += target.stat().st_size
        total = max(total, size + claimed)
        if total > limit:
            raise ModelError(f"ONNX model {path} with its external tensors is above the "
                             f"{limit / 1e6:,.0f} MB limit (FACEBANK_MAX_MODEL_BYTES)")
    local = {f.domain for f in proto.functions}
    domains = {o.domain for o in proto.opset_import}
    used = {n.domain for n in _walk_nodes(proto.graph)} | domains
    custom = sorted(d for d in used - local if d not in STANDARD_DOMAINS)
    if custom:
        raise ModelError(f"ONNX model {path} uses custom operators (domain {custom[0]!r}), which would need "
                         f"native code: refused")
    inits = {t.name for t in proto.graph.initializer}

    def infos(values: Iterable[Any]) -> tuple[TensorInfo, ...]:
        return tuple(TensorInfo(v.name, _dims(v), TensorProto.DataType.Name(v.type.tensor_type.elem_type))
                     for v in values if v.name not in inits)

    return GraphInfo(infos(proto.graph.input), infos(proto.graph.output), tuple(sorted(domains)), total,
                     tuple(external))


def card_from_graph(card: ModelCard, info: GraphInfo, where: str) -> ModelCard:
    """``card`` with ``input_size`` and ``output_dim`` filled from the graph (and checked against it)."""
    if not info.inputs:
        raise ModelError(f"{where}: the model has no input")
    shape = info.inputs[0].shape
    if len(shape) != 4:
        raise ModelError(f"{where}: input {info.inputs[0].name!r} has shape {list(shape)}; a face model "
                         f"takes a batch of images (4 dimensions)")
    hw = shape[2:4] if card.layout == "NCHW" else shape[1:3]
    ch = shape[1] if card.layout == "NCHW" else shape[3]
    if isinstance(ch, int) and ch != 3:
        raise ModelError(f"{where}: input has {ch} channels where the card's layout {card.layout} puts them; "
                         f"3 expected (is the layout right?)")
    fixed = [d for d in hw if isinstance(d, int)]
    size = card.input_size
    if size is None:
        if len(fixed) != 2 or fixed[0] != fixed[1]:
            raise ModelError(f"{where}: the graph does not declare a square input size: give input_size")
        size = fixed[0]
    elif fixed and any(d != size for d in fixed):
        raise ModelError(f"{where}: card says input_size {size}, the graph takes {list(hw)}")
    return replace(card, input_size=size)


class OnnxEmbedder:
    def __init__(self, model: str | Path, card: str | Path | ModelCard | None = None, flip: bool = False,
                 threads: int | None = None) -> None:
        import onnxruntime as ort

        model = Path(model)
        info = inspect_model(model)
        if isinstance(card, ModelCard):
            self.card, where = card, f"model card of {model}"
        else:
            card_path = Path(card) if card is not None else find_card(model)
            self.card, where = ModelCard.load(card_path), f"model card {card_path}"
        self.card = card_from_graph(self.card, info, where)
        self.info = info
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or os.cpu_count() or 1
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own errors, one line
            raise ModelError(f"onnxruntime cannot load {model}: {str(exc).splitlines()[0][:300]}") from None
        self._input = self._session.get_inputs()[0].name
        outputs = [o.name for o in self._session.get_outputs()]
        out = self.card.output
        if isinstance(out, int):
            if not 0 <= out < len(outputs):
                raise ModelError(f"model card: output {out} does not exist; {model} has outputs {outputs}")
            self._output = outputs[out]
        elif out in outputs:
            self._output = out
        else:
            raise ModelError(f"model card: no output named {out!r}; {model} has outputs {outputs}")
        declared = next(o.shape for o in info.outputs if o.name == self._output) if any(
            o.name == self._output for o in info.outputs) else ()
        graph_dim = self._graph_dim(declared, model)
        if self.card.output_dim is not None and graph_dim is not None and graph_dim != self.card.output_dim:
            raise ModelError(f"model card says output_dim {self.card.output_dim}; output {self._output!r} of "
                             f"{model} has {graph_dim}")
        dim = self.card.output_dim or graph_dim
        if dim is None:
            raise ModelError(f"{where}: the graph does not declare the size of output {self._output!r}: give "
                             f"output_dim")
        self.card = replace(self.card, output_dim=dim)
        self.dim = dim
        self.batch = info.batch
        self.chip = ChipSpec(size=self.card.input_size or 0, padding=self.card.padding,
                             template=self.card.chip_template())
        self.sha256 = models.file_sha256(model.resolve())
        self.model_id = f"onnx:{self.sha256[:16]}:card-{self.card.digest()[:12]}"
        self.flip = flip
        self.path = model

    @staticmethod
    def _graph_dim(shape: tuple[Any, ...], model: Path) -> int | None:
        if not shape:
            return None
        rest = shape[1:]
        fixed = [d for d in rest if isinstance(d, int)]
        if len(fixed) == len(rest) and rest:
            big = [d for d in rest if d != 1]
            if len(big) > 1:
                raise ModelError(f"{model}: output of shape {list(shape)} is not an embedding (one "
                                 f"vector per face expected)")
            dim = big[0] if big else 1
            if dim < 2:
                raise ModelError(f"{model}: output of shape {list(shape)} is not an embedding (one "
                                 f"number per face)")
            return dim
        return None

    def _prepare(self, chips: np.ndarray) -> np.ndarray:
        if self.card.dtype == "uint8":
            x: np.ndarray = np.asarray(chips, np.uint8)
            if self.card.channels == "BGR":
                x = x[..., ::-1]
            return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if self.card.layout == "NCHW" else x)
        x = chips.astype(np.float32)
        if self.card.channels == "BGR":
            x = x[..., ::-1]
        x = (x - np.asarray(self.card.mean, np.float32)) / np.asarray(self.card.std, np.float32)
        if self.card.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x)

    def _run(self, chips: np.ndarray) -> np.ndarray:
        out = self._session.run([self._output], {self._input: self._prepare(chips)})[0]
        out = np.asarray(out, np.float32)
        if out.ndim == 0 or out.shape[0] != len(chips):
            raise ModelError(f"model gave output of shape {list(out.shape)} for {len(chips)} faces: not one "
                             f"embedding per face")
        return out.reshape(len(chips), -1)

    def raw(self, chips: np.ndarray) -> np.ndarray:
        """The model's unnormalised outputs (N, dim); a fixed-batch model runs in chunks of its batch."""
        chips = np.asarray(chips)
        if len(chips) == 0:
            return np.zeros((0, self.dim), np.float32)
        size = self.card.input_size
        if chips.shape[1:] != (size, size, 3):
            raise ValueError(f"chips must be (N, {size}, {size}, 3), got {chips.shape}")
        if self.batch is None:
            out = self._run(chips)
        else:
            parts = []
            for start in range(0, len(chips), self.batch):
                chunk = chips[start:start + self.batch]
                n = len(chunk)
                if n < self.batch:  # the last chunk is padded with copies, their outputs dropped
                    chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch - n, axis=0)])
                parts.append(self._run(chunk)[:n])
            out = np.concatenate(parts)
        if out.shape[1] != self.dim:
            raise ModelError(f"model gave {out.shape[1]}-d output, its card says {self.dim}")
        if not np.isfinite(out).all():
            raise ModelError("model gave NaN or infinite outputs: the model or its card (mean/std, dtype) is "
                             "broken")
        return out

    def embed(self, chips: np.ndarray) -> np.ndarray:
        chips = np.asarray(chips)
        vecs = self.raw(chips)
        if self.flip and len(chips):
            vecs = l2_normalise(vecs) + l2_normalise(self.raw(chips[:, :, ::-1, :]))
        return l2_normalise(vecs)


@register("onnx")
def _make(model: str | Path | None = None, card: str | Path | None = None, flip: bool = False,
          threads: int | None = None, **_: object) -> OnnxEmbedder:
    if model is None:
        raise ValueError("the onnx embedder needs a model: --onnx-model PATH (card PATH.json beside it) or "
                         "the name of an installed model ('facebank models list')")
    from facebank.embed.catalogue import resolve_model

    return OnnxEmbedder(resolve_model(model), card=card, flip=flip, threads=threads)
