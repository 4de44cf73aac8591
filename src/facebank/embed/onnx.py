"""Any user-supplied ONNX face model (FaceNet, ArcFace, SFace style) through onnxruntime.

The model comes with a small model card, a JSON file beside it named ``<model>.json`` (or passed
explicitly), for example::

    {"name": "arcface-r100", "input_size": 112, "padding": 0.0,
     "mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5],
     "channels": "RGB", "layout": "NCHW", "output_dim": 512}

``mean``/``std`` are in 0-255 pixel units, per channel in the ``channels`` order. ``layout`` is
NCHW or NHWC. ``padding`` is the dlib-style chip padding (fraction of the face width on each
side), used when no ``template`` is given.

Optional keys:

- ``template``: where the five landmarks (eyes, nose tip, mouth corners as seen in the photo) must
  land in the chip: ``"arcface"`` (the 112x112 five-point template of ArcFace, SFace and
  MobileFaceNet models, scaled to ``input_size``) or five ``[x, y]`` positions in chip pixels.
  Without it, faces are cut in the dlib chip layout (right for dlib-style models only).
- ``output``: which output is the embedding, by name or position (default: the first).
- ``dtype``: ``"float32"`` (default: ``(pixel - mean) / std``) or ``"uint8"`` (raw pixels, no
  normalisation: for models that normalise inside).

The model id holds the card's whole content: editing the card never reuses embeddings made with
the old one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from facebank import models
from facebank.embed.base import ChipSpec, arcface_template, l2_normalise, register

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelCard:
    input_size: int
    output_dim: int
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (127.5, 127.5, 127.5)
    channels: str = "RGB"
    layout: str = "NCHW"
    padding: float = 0.0
    name: str = "onnx-face-model"
    template: str | tuple[tuple[float, float], ...] | None = None
    output: str | int = 0
    dtype: str = "float32"

    @classmethod
    def load(cls, path: str | Path) -> ModelCard:
        try:
            raw = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise FileNotFoundError(
                f"model card {path} not found: write a JSON file with input_size, output_dim, mean, std"
            ) from None
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"model card {path}: unknown keys {sorted(unknown)}")
        for key in ("input_size", "output_dim"):
            if key not in raw:
                raise ValueError(f"model card {path}: {key!r} is required")
        if isinstance(raw.get("template"), list):
            try:
                raw["template"] = tuple((float(x), float(y)) for x, y in raw["template"])
            except (TypeError, ValueError):
                raise ValueError(f"model card {path}: template must be \"arcface\" or five [x, y] chip "
                                 f"positions") from None
        card = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
        if card.layout not in ("NCHW", "NHWC") or card.channels not in ("RGB", "BGR"):
            raise ValueError(f"model card {path}: layout must be NCHW/NHWC and channels RGB/BGR")
        if card.dtype not in ("float32", "uint8"):
            raise ValueError(f"model card {path}: dtype must be float32 or uint8, not {card.dtype!r}")
        t = card.template
        if isinstance(t, str) and t != "arcface":
            raise ValueError(f"model card {path}: unknown template {t!r} (\"arcface\" or five [x, y] points)")
        if isinstance(t, tuple) and len(t) != 5:
            raise ValueError(f"model card {path}: template needs five [x, y] points, got {len(t)}")
        if not isinstance(card.output, (str, int)) or isinstance(card.output, bool):
            raise ValueError(f"model card {path}: output must be an output name or position")
        return card

    def chip_template(self) -> tuple[tuple[float, float], ...] | None:
        if self.template == "arcface":
            return arcface_template(self.input_size)
        return self.template if isinstance(self.template, tuple) else None

    def digest(self) -> str:
        """A hash of the card's whole content (every field, defaults included)."""
        text = json.dumps(asdict(self), sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()


class OnnxEmbedder:
    def __init__(self, model: str | Path, card: str | Path | None = None, flip: bool = False,
                 threads: int | None = None) -> None:
        import onnxruntime as ort

        model = Path(model)
        if not model.is_file():
            raise FileNotFoundError(f"ONNX model {model} not found")
        self.card = ModelCard.load(card or model.with_suffix(".json"))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or os.cpu_count() or 1
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        outputs = [o.name for o in self._session.get_outputs()]
        out = self.card.output
        if isinstance(out, int):
            if not 0 <= out < len(outputs):
                raise ValueError(f"model card: output {out} does not exist; {model} has outputs {outputs}")
            self._output = outputs[out]
        elif out in outputs:
            self._output = out
        else:
            raise ValueError(f"model card: no output named {out!r}; {model} has outputs {outputs}")
        self.dim = self.card.output_dim
        self.chip = ChipSpec(size=self.card.input_size, padding=self.card.padding,
                             template=self.card.chip_template())
        self.model_id = (f"onnx:{self.card.name}:{models.file_sha256(model)[:16]}:"
                         f"card-{self.card.digest()[:12]}")
        self.flip = flip

    def _prepare(self, chips: np.ndarray) -> np.ndarray:
        if self.card.dtype == "uint8":
            x = np.asarray(chips, np.uint8)
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

    def raw(self, chips: np.ndarray) -> np.ndarray:
        chips = np.asarray(chips)
        if len(chips) == 0:
            return np.zeros((0, self.dim), np.float32)
        size = self.card.input_size
        if chips.shape[1:] != (size, size, 3):
            raise ValueError(f"chips must be (N, {size}, {size}, 3), got {chips.shape}")
        out = self._session.run([self._output], {self._input: self._prepare(chips)})[0]
        out = np.asarray(out, np.float32).reshape(len(chips), -1)
        if out.shape[1] != self.dim:
            raise ValueError(f"model gave {out.shape[1]}-d output, its card says {self.dim}")
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
        raise ValueError("the onnx embedder needs a model file: --onnx-model PATH (with PATH.json card)")
    return OnnxEmbedder(model, card=card, flip=flip, threads=threads)
