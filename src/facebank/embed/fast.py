"""dlib's ResNet face descriptor, converted to ONNX and run by onnxruntime (same function, faster).

dlib-bin is built without BLAS, so ``face_recognition_model_v1`` spends ~75 ms of one core per
150x150 chip. This module reads the shipped ``dlib_face_recognition_resnet_model_v1.dat`` with a
pure NumPy parser of dlib's serialisation format, rebuilds the network (the ``anet_type`` of dlib's
``examples/dnn_face_recognition_ex.cpp``) as an ONNX graph and runs it with onnxruntime on all
cores, batched. The descriptors agree with dlib's to ~4e-7 per dimension (float32 rounding).

Format notes (dlib/serialize.h, dlib/dnn/core.h, dlib/dnn/layers.h, dlib/cuda/tensor.h):

* integers: a control byte (low 4 bits = number of bytes, 0x80 = negative) then the magnitude's
  bytes, little endian;
* scalar floats/doubles: ``float_details``, i.e. mantissa (int64) then exponent (int16), both as
  integers above; the value is ``mantissa * 2**exponent``. Tensors, the bulk of the file, are NOT
  stored that way: after a version and four dimensions their data is raw float32 little endian;
* strings: length then bytes; bools: the ASCII byte ``'1'`` or ``'0'``;
* a network serialises from the outside in: the loss layer (version, its details), then every
  ``add_layer``/tag/skip writes its version and *then its subnetwork first*, and only afterwards its
  own details. So the file holds all the versions, outermost first, then the input layer, then the
  layers' details in forward order (input side first). Tags and skips write only a version.
* the shipped file (saved by a 2017 dlib) holds old layer versions: ``con_4`` (always a bias),
  ``affine_`` (no ``disabled`` flag), ``relu_``, ``fc_2``; the input's ``add_layer`` is version 3.
  A net saved straight from training would hold ``bn_con2`` where the affine layers are; dlib
  freezes those on load as ``gamma / sqrt(running_var + eps)``, ``beta - gamma' * running_mean``,
  and so does this parser (that path is not exercised by the shipped file).
* serialize.h's comment says a float is written exponent first; the code writes the mantissa
  first, and so does the file.

Geometry gotchas matched exactly: dlib's conv and pooling pad by ``size // 2`` only when the
stride is 1 (stride 2 means no padding), output size is ``1 + (n + 2p - k) // s``, and ``add_prev``
adds tensors of different shapes by zero-filling the smaller one at the end (the 256-filter
downsampling block adds a 3x3 conv output to a 4x4 pooled shortcut, and the shortcut of a
channel-doubling block has half the channels).
"""

from __future__ import annotations

import builtins
import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facebank import models
from facebank.embed.base import ChipSpec, embed_raw, register
from facebank.embed.dlib import DLIB_MODEL_ID

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

CACHE_ENV = "FACEBANK_CACHE_DIR"
ONNX_OPSET = 17
ONNX_IR_VERSION = 8
INPUT_NAME = "chips"
OUTPUT_NAME = "descriptors"

# float_details' special exponents (dlib/float_details.h)
_IS_INF, _IS_NINF, _IS_NAN = 32000, 32001, 32002


class DlibFormatError(ValueError):
    """The file is not the dlib ResNet face model this module knows how to read."""


# --------------------------------------------------------------------------------------------
# dlib's serialisation primitives


class DlibReader:
    """Sequential reader of dlib's serialisation format over a bytes-like buffer."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._buf = memoryview(data)
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self._buf)

    def _take(self, n: int) -> memoryview:
        if self.pos + n > len(self._buf):
            raise DlibFormatError(f"unexpected end of data at byte {self.pos} (wanted {n} more bytes)")
        chunk = self._buf[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            raise DlibFormatError(f"bad integer control byte 0x{control:02x} at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def float(self) -> float:
        """A scalar float/double: dlib's portable ``float_details`` (mantissa, then exponent)."""
        first = self._buf[self.pos] if self.pos < len(self._buf) else 0
        if first & 0x70:
            raise DlibFormatError(f"old ASCII float encoding at byte {self.pos} is not supported")
        mantissa = self.int()
        exponent = self.int()
        if exponent == _IS_INF:
            return math.inf
        if exponent == _IS_NINF:
            return -math.inf
        if exponent == _IS_NAN:
            return math.nan
        return math.ldexp(float(mantissa), exponent)

    def string(self) -> str:
        n = self.int()
        return bytes(self._take(n)).decode("latin-1")

    def bool(self) -> bool:
        ch = self._take(1)[0]
        if ch not in (ord("0"), ord("1")):
            raise DlibFormatError(f"bad bool byte 0x{ch:02x} at byte {self.pos - 1}")
        return ch == ord("1")

    def tensor(self) -> np.ndarray:
        """A ``resizable_tensor``: version 2, (n, k, nr, nc), raw little-endian float32 data."""
        version = self.int()
        if version != 2:
            raise DlibFormatError(f"tensor version {version} at byte {self.pos} (expected 2)")
        shape = tuple(self.int() for _ in range(4))
        count = math.prod(shape)
        data = np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32)
        return data.reshape(shape)

    def alias_tensor(self) -> tuple[builtins.int, builtins.int, builtins.int, builtins.int]:
        version = self.int()
        if version != 1:
            raise DlibFormatError(f"alias_tensor version {version} at byte {self.pos} (expected 1)")
        n, k, nr, nc = (self.int() for _ in range(4))
        return n, k, nr, nc


# --------------------------------------------------------------------------------------------
# The network: anet_type of dlib's dnn_face_recognition_ex.cpp, in forward order


@dataclass
class DlibLayer:
    """One layer of the parsed network, in forward order (input side first).

    ``kind`` is con, affine, relu, max_pool, avg_pool, add_prev, fc, tag or skip. ``tag`` is the
    tag id of tag/skip/add_prev layers. ``params`` holds the arrays and settings read from the
    file: con has weight (O, I, kh, kw), bias (O,) or None, stride, padding; affine has gamma and
    beta (C,); pools have size, stride, padding (size 0 = the whole input); fc has weight (in, out).
    """

    kind: str
    tag: int | None = None
    expect: dict[str, int] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class DlibNet:
    layers: list[DlibLayer]
    input_means: tuple[float, float, float]  # red, green, blue, in 0-255 pixel units
    input_size: int
    loss_margin: float
    loss_threshold: float


def anet_layers() -> list[DlibLayer]:
    """The layer list of dlib's face recognition ResNet (``anet_type``), input side first."""

    def con(n: int, k: int, s: int) -> DlibLayer:
        padding = k // 2 if s == 1 else 0  # dlib's default: pad only stride-1 convolutions
        return DlibLayer("con", expect={"filters": n, "size": k, "stride": s, "padding": padding})

    def ares(n: int) -> list[DlibLayer]:
        return [DlibLayer("tag", 1), con(n, 3, 1), DlibLayer("affine"), DlibLayer("relu"), con(n, 3, 1),
                DlibLayer("affine"), DlibLayer("add_prev", 1), DlibLayer("relu")]

    def ares_down(n: int) -> list[DlibLayer]:
        return [DlibLayer("tag", 1), con(n, 3, 2), DlibLayer("affine"), DlibLayer("relu"), con(n, 3, 1),
                DlibLayer("affine"), DlibLayer("tag", 2), DlibLayer("skip", 1),
                DlibLayer("avg_pool", expect={"size": 2, "stride": 2, "padding": 0}),
                DlibLayer("add_prev", 2), DlibLayer("relu")]

    layers = [con(32, 7, 2), DlibLayer("affine"), DlibLayer("relu"),
              DlibLayer("max_pool", expect={"size": 3, "stride": 2, "padding": 0})]
    for _ in range(3):
        layers += ares(32)
    layers += ares_down(64)
    for _ in range(3):
        layers += ares(64)
    layers += ares_down(128)
    for _ in range(2):
        layers += ares(128)
    layers += ares_down(256)
    for _ in range(2):
        layers += ares(256)
    layers += ares_down(256)
    layers += [DlibLayer("avg_pool", expect={"size": 0, "stride": 1, "padding": 0}),
               DlibLayer("fc", expect={"outputs": 128})]
    return layers


def _read_con(r: DlibReader, layer: DlibLayer) -> dict[str, Any]:
    version = r.string()
    if version not in ("con_4", "con_5", "con_6"):
        raise DlibFormatError(f"expected a con_ layer, found {version!r}")
    params = r.tensor().ravel()
    num_filters = r.int()
    nr, nc, stride_y, stride_x, pad_y, pad_x = (r.int() for _ in range(6))
    filters = r.alias_tensor()
    biases = r.alias_tensor()
    for _ in range(4):  # learning rate and weight decay multipliers
        r.float()
    use_bias = r.bool() if version in ("con_5", "con_6") else True
    use_relu = r.bool() if version == "con_6" else False
    if use_relu:
        raise DlibFormatError("con_ layers with a fused relu are not supported")
    if (nr, nc) != (layer.expect["size"],) * 2 or (stride_y, stride_x) != (layer.expect["stride"],) * 2 \
            or (pad_y, pad_x) != (layer.expect["padding"],) * 2 or num_filters != layer.expect["filters"]:
        raise DlibFormatError(
            f"con_ layer is {num_filters} filters {nr}x{nc} stride {stride_y},{stride_x} padding "
            f"{pad_y},{pad_x}; expected {layer.expect}")
    n_w = math.prod(filters)
    weight = params[:n_w].reshape(filters)
    bias = None
    if use_bias and math.prod(biases) > 0:
        bias = params[n_w:n_w + num_filters].copy()
    if len(params) < n_w + (num_filters if bias is not None else 0):
        raise DlibFormatError("con_ parameter tensor is smaller than its filters and biases")
    return {"weight": weight, "bias": bias, "stride": stride_y, "padding": pad_y}


def _read_affine(r: DlibReader) -> dict[str, Any]:
    version = r.string()
    if version == "bn_con2":
        # A batch-norm layer saved by training; dlib's affine_(const bn_&) freezes it (in float32).
        params = r.tensor().ravel()
        gamma_shape = r.alias_tensor()
        beta_shape = r.alias_tensor()
        for _ in range(2):  # means, invstds of the last training batch
            r.tensor()
        running_means = r.tensor().ravel()
        running_variances = r.tensor().ravel()
        r.int()  # num_updates
        r.int()  # running_stats_window_size
        for _ in range(4):  # learning rate and weight decay multipliers
            r.float()
        eps = np.float32(r.float())
        n_g = math.prod(gamma_shape)
        g = params[:n_g]
        b = params[n_g:n_g + math.prod(beta_shape)]
        gamma = (g / np.sqrt(running_variances + eps)).astype(np.float32)
        beta = (b - gamma * running_means).astype(np.float32)
        return {"gamma": gamma, "beta": beta}
    if version in ("affine_", "affine_2"):
        params = r.tensor().ravel()
        gamma_shape = r.alias_tensor()
        beta_shape = r.alias_tensor()
        mode = r.int()
        disabled = r.bool() if version == "affine_2" else False
        if disabled:
            return {"gamma": None, "beta": None}
        if mode != 0:  # layer_mode: CONV_MODE = 0, FC_MODE = 1
            raise DlibFormatError("affine_ in FC mode is not supported here")
        n_g = math.prod(gamma_shape)
        return {"gamma": params[:n_g].copy(), "beta": params[n_g:n_g + math.prod(beta_shape)].copy()}
    raise DlibFormatError(f"expected an affine_/bn_con2 layer, found {version!r}")


def _read_pool(r: DlibReader, layer: DlibLayer) -> dict[str, Any]:
    version = r.string()
    expected = f"{layer.kind}_2"
    if version != expected:
        raise DlibFormatError(f"expected {expected!r}, found {version!r}")
    nr, nc, stride_y, stride_x, pad_y, pad_x = (r.int() for _ in range(6))
    got = {"size": nr, "stride": stride_y, "padding": pad_y}
    if nr != nc or stride_y != stride_x or pad_y != pad_x or got != layer.expect:
        raise DlibFormatError(f"{layer.kind} is {nr}x{nc} stride {stride_y},{stride_x} padding "
                              f"{pad_y},{pad_x}; expected {layer.expect}")
    return got


def _read_fc(r: DlibReader, layer: DlibLayer) -> dict[str, Any]:
    version = r.string()
    if version not in ("fc_2", "fc_3"):
        raise DlibFormatError(f"expected an fc_ layer, found {version!r}")
    num_outputs = r.int()
    num_inputs = r.int()
    params = r.tensor().ravel()
    weights = r.alias_tensor()
    r.alias_tensor()  # biases
    bias_mode = r.int()
    for _ in range(4):
        r.float()
    if version == "fc_3":
        r.bool()  # use_bias
    if bias_mode != 1:  # FC_NO_BIAS
        raise DlibFormatError("expected fc_no_bias")
    if num_outputs != layer.expect["outputs"] or math.prod(weights) != num_inputs * num_outputs:
        raise DlibFormatError(f"fc_ layer {num_inputs}->{num_outputs} is not the expected shape")
    return {"weight": params[:num_inputs * num_outputs].reshape(num_inputs, num_outputs).copy()}


def _read_details(r: DlibReader, layer: DlibLayer) -> dict[str, Any]:
    if layer.kind == "con":
        return _read_con(r, layer)
    if layer.kind == "affine":
        return _read_affine(r)
    if layer.kind in ("max_pool", "avg_pool"):
        return _read_pool(r, layer)
    if layer.kind == "fc":
        return _read_fc(r, layer)
    version = r.string()
    if layer.kind == "relu":
        if version == "relu_2":
            return {"disabled": r.bool()}
        if version == "relu_":
            return {"disabled": False}
    elif layer.kind == "add_prev" and version == "add_prev_":
        return {}
    raise DlibFormatError(f"expected a {layer.kind} layer, found {version!r}")


def parse_dlib_resnet(data: bytes | bytearray | memoryview) -> DlibNet:
    """Parse the bytes of ``dlib_face_recognition_resnet_model_v1.dat`` into a ``DlibNet``."""
    r = DlibReader(data)
    if r.int() != 1:
        raise DlibFormatError("not a dlib network file (add_loss_layer version is not 1)")
    loss = r.string()
    if loss == "loss_metric_2":
        margin, threshold = r.float(), r.float()
    elif loss == "loss_metric_":
        margin, threshold = 0.1, 0.75
    else:
        raise DlibFormatError(f"expected the loss_metric layer of dlib's face ResNet, found {loss!r}")

    layers = anet_layers()
    # Versions, outermost layer first: add_layer 2 (3 for the one on the input), tag/skip 1.
    versions: list[int] = []
    for i, layer in reversed(list(enumerate(layers))):
        v = r.int()
        ok = (v == 1) if layer.kind in ("tag", "skip") else (v in (2, 3) if i == 0 else v == 2)
        if not ok:
            raise DlibFormatError(f"layer {i} ({layer.kind}): unexpected version {v} at byte {r.pos}")
        versions.append(v)
    first_version = versions[-1]

    kind = r.string()
    if kind not in ("input_rgb_image_sized", "input_rgb_image"):
        raise DlibFormatError(f"expected an input_rgb_image layer, found {kind!r}")
    means = (r.float(), r.float(), r.float())
    size = 150
    if kind == "input_rgb_image_sized":
        nr, nc = r.int(), r.int()
        if nr != nc:
            raise DlibFormatError(f"input layer is {nr}x{nc}, expected square chips")
        size = nr

    for i, layer in enumerate(layers):
        if layer.kind in ("tag", "skip"):
            continue
        layer.params = _read_details(r, layer)
        for _ in range(3):  # this_layer_setup_called, gradient_input_is_stale, ..._disabled
            r.bool()
        r.tensor()  # x_grad
        r.tensor()  # cached_output
        if i == 0:
            r.tensor()  # grad_final
            if first_version >= 3:
                r.int()  # _sample_expansion_factor
        else:
            r.tensor()  # params_grad
    if not r.at_end():
        raise DlibFormatError(f"{len(data) - r.pos} unexpected bytes after the network")
    return DlibNet(layers, (float(means[0]), float(means[1]), float(means[2])), size, margin, threshold)


# --------------------------------------------------------------------------------------------
# ONNX graph


def _tag(layer: DlibLayer) -> int:
    if layer.tag is None:
        raise DlibFormatError(f"a {layer.kind} layer without its tag id")
    return layer.tag


def _out_size(n: int, k: int, s: int, p: int) -> int:
    return 1 + (n + 2 * p - k) // s


def build_onnx(net: DlibNet) -> onnx.ModelProto:
    """The ONNX model (``onnx.ModelProto``) computing dlib's raw descriptors.

    Input ``chips``: (N, size, size, 3) uint8 RGB. Output ``descriptors``: (N, 128) float32.
    Every affine layer is folded into the conv before it.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    counter = {"n": 0}

    def name(prefix: str) -> str:
        counter["n"] += 1
        return f"{prefix}_{counter['n']}"

    def const(prefix: str, array: np.ndarray) -> str:
        n = name(prefix)
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), n))
        return n

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        out = name(op.lower())
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    size = net.input_size
    x = node("Cast", [INPUT_NAME], to=TensorProto.FLOAT)
    x = node("Transpose", [x], perm=[0, 3, 1, 2])
    means = np.asarray(net.input_means, np.float32).reshape(1, 3, 1, 1)
    x = node("Sub", [x, const("mean", means)])
    x = node("Mul", [x, const("scale", np.asarray(1.0 / 256.0, np.float32))])

    shape = (3, size, size)  # (C, H, W) of the current tensor
    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}
    layers = net.layers
    i = 0
    while i < len(layers):
        layer = layers[i]
        p = layer.params
        if layer.kind == "tag":
            tags[_tag(layer)] = (x, shape)
        elif layer.kind == "skip":
            x, shape = tags[_tag(layer)]
        elif layer.kind == "con":
            w = p["weight"].astype(np.float64)
            b = p["bias"].astype(np.float64) if p["bias"] is not None else np.zeros(w.shape[0])
            if i + 1 < len(layers) and layers[i + 1].kind == "affine":
                gamma, beta = layers[i + 1].params["gamma"], layers[i + 1].params["beta"]
                if gamma is not None:
                    w = w * gamma.astype(np.float64)[:, None, None, None]
                    b = b * gamma + beta
                i += 1
            k, s, pad = w.shape[2], p["stride"], p["padding"]
            x = node("Conv", [x, const("w", w.astype(np.float32)), const("b", b.astype(np.float32))],
                     kernel_shape=[k, k], strides=[s, s], pads=[pad] * 4)
            shape = (w.shape[0], _out_size(shape[1], k, s, pad), _out_size(shape[2], k, s, pad))
        elif layer.kind == "affine":
            if p["gamma"] is not None:
                x = node("Mul", [x, const("gamma", p["gamma"].reshape(1, -1, 1, 1))])
                x = node("Add", [x, const("beta", p["beta"].reshape(1, -1, 1, 1))])
        elif layer.kind == "relu":
            if not p["disabled"]:
                x = node("Relu", [x])
        elif layer.kind in ("max_pool", "avg_pool"):
            k, s, pad = p["size"], p["stride"], p["padding"]
            if k == 0:  # avg_pool_everything
                x = node("GlobalAveragePool" if layer.kind == "avg_pool" else "GlobalMaxPool", [x])
                shape = (shape[0], 1, 1)
            else:
                if pad:
                    raise DlibFormatError("padded pooling is not supported (dlib clips windows)")
                op = "MaxPool" if layer.kind == "max_pool" else "AveragePool"
                x = node(op, [x], kernel_shape=[k, k], strides=[s, s])
                shape = (shape[0], _out_size(shape[1], k, s, 0), _out_size(shape[2], k, s, 0))
        elif layer.kind == "add_prev":
            y, yshape = tags[_tag(layer)]
            full = (max(shape[0], yshape[0]), max(shape[1], yshape[1]), max(shape[2], yshape[2]))
            operands = []
            for t, tshape in ((x, shape), (y, yshape)):
                if tshape != full:  # dlib zero-fills the smaller tensor at the end of each axis
                    pads = [0, 0, 0, 0, 0] + [f - d for f, d in zip(full, tshape, strict=True)]
                    t = node("Pad", [t, const("pads", np.asarray(pads, np.int64))], mode="constant")
                operands.append(t)
            x = node("Add", operands)
            shape = full
        elif layer.kind == "fc":
            w = p["weight"]
            if w.shape[0] != math.prod(shape):
                raise DlibFormatError(f"fc_ expects {w.shape[0]} inputs, the network gives {shape}")
            x = node("Flatten", [x], axis=1)
            x = node("MatMul", [x, const("fc", w)])
        else:  # pragma: no cover - anet_layers only makes the kinds above
            raise DlibFormatError(f"unknown layer kind {layer.kind}")
        i += 1

    nodes.append(helper.make_node("Identity", [x], [OUTPUT_NAME], name="output"))
    graph = helper.make_graph(
        nodes, "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["N", size, size, 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 128])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
                              producer_name="facebank", doc_string="dlib ResNet face descriptor v1")
    model.ir_version = ONNX_IR_VERSION
    onnx.checker.check_model(model)
    return model


def convert_dlib_resnet(dat_path: str | Path, out_path: str | Path) -> Path:
    """Convert dlib's ResNet .dat to an ONNX file at ``out_path`` (written atomically)."""
    dat_path, out_path = Path(dat_path), Path(out_path)
    net = parse_dlib_resnet(dat_path.read_bytes())
    model = build_onnx(net)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out_path.name + ".", suffix=".tmp", dir=out_path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model.SerializeToString())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a cache file is an ordinary file
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path


# --------------------------------------------------------------------------------------------
# Cache and embedder


def cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("facebank"))


def cached_model_path(dat_path: str | Path | None = None) -> Path:
    dat = Path(dat_path) if dat_path is not None else models.dlib_model(models.RESNET)
    return cache_dir() / f"{DLIB_MODEL_ID}-{models.file_sha256(dat)[:16]}.onnx"


def ensure_converted(dat_path: str | Path | None = None) -> Path:
    """The cached ONNX conversion of dlib's ResNet, converting it first if it is not there yet."""
    dat = Path(dat_path) if dat_path is not None else models.dlib_model(models.RESNET)
    out = cached_model_path(dat)
    if not out.is_file():
        log.info("converting %s to ONNX at %s (once; takes a few seconds)", dat.name, out)
        t0 = time.perf_counter()
        convert_dlib_resnet(dat, out)
        log.info("converted dlib ResNet to ONNX in %.1f s", time.perf_counter() - t0)
    return out


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class FastDlibEmbedder:
    """dlib's ResNet descriptor (same ``model_id`` as the dlib embedder) through onnxruntime.

    ``flip=True`` sums the raw descriptors of the chip and of its mirror image before L2
    normalisation, as ``DlibEmbedder`` does. ``threads`` defaults to the usable cores;
    ``batch_size`` chips go through onnxruntime per call.
    """

    dim = 128
    chip = ChipSpec(size=150, padding=0.25)

    def __init__(self, flip: bool = False, threads: int | None = None, batch_size: int = 32) -> None:
        import onnxruntime as ort

        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.model_id = DLIB_MODEL_ID
        self.flip = flip
        self.batch_size = batch_size
        self.threads = threads or _cpu_count()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle threads sleep instead of spinning: faster when the cores are shared, and no
        # CPU burnt between calls.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        dat = models.dlib_model(models.RESNET)
        self.model_path: Path | None
        try:
            self.model_path = ensure_converted(dat)
        except OSError as exc:  # e.g. a read-only cache folder: convert in memory every time
            log.warning("cannot write the converted model to %s (%s); converting in memory",
                        cache_dir(), exc)
            self.model_path = None
            model = build_onnx(parse_dlib_resnet(dat.read_bytes())).SerializeToString()
            self._session = ort.InferenceSession(model, opts, providers=providers)
            return
        try:
            self._session = ort.InferenceSession(str(self.model_path), opts, providers=providers)
        except Exception as exc:  # a damaged cache file: convert again once
            log.warning("cached model %s did not load (%s); converting again", self.model_path, exc)
            convert_dlib_resnet(dat, self.model_path)
            self._session = ort.InferenceSession(str(self.model_path), opts, providers=providers)

    def raw(self, chips: np.ndarray) -> np.ndarray:
        """dlib-equivalent unnormalised descriptors (N, 128) for chips (N, 150, 150, 3) uint8 RGB."""
        chips = np.asarray(chips)
        size = self.chip.size
        if chips.ndim >= 1 and len(chips) == 0:
            return np.zeros((0, self.dim), np.float32)
        if chips.ndim != 4 or chips.shape[1:] != (size, size, 3):
            raise ValueError(f"chips must be (N, {size}, {size}, 3) uint8 RGB, got {chips.shape}")
        chips = chips.astype(np.uint8, copy=False)  # as DlibEmbedder does
        out = np.empty((len(chips), self.dim), np.float32)
        for start in range(0, len(chips), self.batch_size):
            batch = np.ascontiguousarray(chips[start:start + self.batch_size])
            out[start:start + len(batch)] = self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
        return out

    def embed(self, chips: np.ndarray) -> np.ndarray:
        return embed_raw(self.raw, chips, self.flip)


@register("fast")
def _make(flip: bool = False, threads: int | None = None, batch_size: int = 32,
          **_: object) -> FastDlibEmbedder:
    return FastDlibEmbedder(flip=flip, threads=threads, batch_size=batch_size)
