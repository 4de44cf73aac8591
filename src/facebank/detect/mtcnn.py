"""MTCNN face detector (Zhang et al., 2016) on onnxruntime, without TensorFlow or torch.

The trained weights are the ones shipped by the ``mtcnn`` package on PyPI (MIT, Iván de Paz
Centeno): ``mtcnn/assets/weights/{pnet,rnet,onet}.lz4``, each a joblib list of NumPy arrays in
Keras layout (conv kernels HWIO, biases, PReLU slopes, dense kernels (in, out)). The ``mtcnn``
package itself imports TensorFlow, so it is never imported here: ``facebank.models.mtcnn_weights``
finds the files. At first use the three networks are rebuilt as small ONNX graphs in memory
(``onnx.helper``) and run with onnxruntime; nothing is written to disk.

The cascade follows mtcnn 1.0.0 step by step so the results match it (tested against a fixture
made with the original package, ``tests/fixtures/mtcnn_reference.json``):

* pixels are scaled ``(x - 127.5) / 128``, channels RGB, no transposition of the image;
* pyramid: ``round(-(log(min_side / 12) / log(factor) + 1))`` scales ``(12 / min_face_size) *
  factor**k``, each level resized to ``floor(side * scale)`` with area interpolation;
* P-Net cells with probability > t1 become boxes ``(2i+1, 2i+12)`` plus 11 times the regression
  offsets, divided by the scale; NMS 0.5 (IoU) per scale, then 0.7 over all scales, then square;
* R-Net and O-Net patches are cut with TensorFlow's ``crop_and_resize`` convention (bilinear,
  normalised coordinates times ``side - 1``, zero outside the image), regression offsets are
  scaled by ``side + 1``; R-Net keeps p > t2, NMS 0.7 (IoU), square; O-Net keeps p > t3, NMS 0.7
  over the smaller area ("min");
* the package's NMS drops a box when ANY higher-scored box overlaps it more than the threshold
  (even one that was itself dropped), which is replicated;
* boxes are finally clipped to ``[0, width-1] x [0, height-1]``; landmarks are not clipped.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from facebank import models
from facebank.detect.base import register
from facebank.types import Box, Detection, Landmarks

if TYPE_CHECKING:
    import onnx
    import onnxruntime

log = logging.getLogger(__name__)

# Mean positions of MTCNN's five points (left eye, right eye, nose, mouth left, mouth right; left
# as seen in the image) inside a dlib face chip with padding 0, as fractions of the chip side, in
# the convention of ``facebank.align.similarity_chip`` (chip pixel = (u + padding) / (1 + 2 *
# padding) * size). Measured by bench/measure_mtcnn_template.py on 1,240 faces in 1,193 photos
# (every 8th LFW photo, 1,100, plus 5celeb/train): dlib HOG (upsample 1) + dlib's 5-point shape
# predictor gave the dlib chip (get_face_chip_details, size 150, padding 0.25; the script checks
# its geometry against dlib.get_face_chip), this MtcnnDetector gave the five points of the face
# with box IoU >= 0.4; the points were mapped into the chip, converted with the inverse of the
# formula above and averaged. Spread (sd) 0.02 for the eyes, 0.05-0.06 for nose and mouth.
TEMPLATE_IN_DLIB_CHIP = np.array(
    [
        [0.2184, 0.1980],
        [0.7568, 0.1970],
        [0.4845, 0.5143],
        [0.2462, 0.7884],
        [0.7242, 0.7882],
    ],
    dtype=np.float64,
)

DEFAULT_THRESHOLDS: tuple[float, float, float] = (0.6, 0.7, 0.8)  # mtcnn 1.0.0: pnet, rnet, onet

_OPSET = 17
_IR_VERSION = 8


# --------------------------------------------------------------------------------------------
# ONNX graphs built from the Keras weights
# --------------------------------------------------------------------------------------------


class _GraphBuilder:
    """Collects nodes and initializers for one small NHWC-input network."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._count = 0

    def _fresh(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self._fresh(stem)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], **attrs: Any) -> str:  # attribute values of any kind
        from onnx import helper

        out = self._fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def conv_prelu(self, x: str, kernel: np.ndarray, bias: np.ndarray, slope: np.ndarray | None) -> str:
        w = self.const("w", np.transpose(kernel, (3, 2, 0, 1)))  # HWIO -> OIHW
        b = self.const("b", bias)
        y = self.op("Conv", [x, w, b], kernel_shape=list(kernel.shape[:2]), strides=[1, 1])
        if slope is None:
            return y
        a = self.const("a", np.reshape(slope, (-1, 1, 1)))  # (1, 1, C) -> (C, 1, 1) for NCHW
        return self.op("PRelu", [y, a])

    def max_pool(self, x: str, k: int, s: int, pads: Sequence[int] | None = None,
                 same_upper: bool = False) -> str:
        if same_upper:
            return self.op("MaxPool", [x], kernel_shape=[k, k], strides=[s, s], auto_pad="SAME_UPPER")
        return self.op("MaxPool", [x], kernel_shape=[k, k], strides=[s, s], pads=list(pads or [0, 0, 0, 0]))

    def dense(self, x: str, kernel: np.ndarray, bias: np.ndarray) -> str:
        return self.op("Gemm", [x, self.const("w", kernel), self.const("b", bias)])

    def flatten_keras(self, x: str) -> str:
        # Keras: Permute((2, 1, 3)) on NHWC then Flatten == NCHW -> (N, W, H, C) then flatten.
        return self.op("Flatten", [self.op("Transpose", [x], perm=[0, 3, 2, 1])], axis=1)

    def model(self, inp_shape: list[int | str],
              outputs: list[tuple[str, str, list[int | str]]]) -> onnx.ModelProto:
        from onnx import TensorProto, helper

        inp = helper.make_tensor_value_info("image", TensorProto.FLOAT, inp_shape)
        outs = []
        for out_name, src, shape in outputs:
            self.nodes.append(helper.make_node("Identity", [src], [out_name]))
            outs.append(helper.make_tensor_value_info(out_name, TensorProto.FLOAT, shape))
        graph = helper.make_graph(self.nodes, self.name, [inp], outs, self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)],
                              producer_name="facebank")
        m.ir_version = _IR_VERSION
        return m


def _load_weights(stage: str) -> list[np.ndarray]:
    import joblib

    weights = joblib.load(models.mtcnn_weights(stage))
    return [np.asarray(w, dtype=np.float32) for w in weights]


def build_pnet(w: list[np.ndarray]) -> onnx.ModelProto:
    """P-Net: (N, H, W, 3) -> regression (N, 4, h, w), probabilities (N, 2, h, w)."""
    g = _GraphBuilder("mtcnn_pnet")
    x = g.op("Transpose", ["image"], perm=[0, 3, 1, 2])
    x = g.conv_prelu(x, w[0], w[1], w[2])
    x = g.max_pool(x, 2, 2, same_upper=True)
    x = g.conv_prelu(x, w[3], w[4], w[5])
    x = g.conv_prelu(x, w[6], w[7], w[8])
    reg = g.conv_prelu(x, w[9], w[10], None)
    prob = g.op("Softmax", [g.conv_prelu(x, w[11], w[12], None)], axis=1)
    return g.model(["n", "h", "w", 3], [("reg", reg, ["n", 4, "oh", "ow"]),
                                        ("prob", prob, ["n", 2, "oh", "ow"])])


def build_rnet(w: list[np.ndarray]) -> onnx.ModelProto:
    """R-Net: (N, 24, 24, 3) -> regression (N, 4), probabilities (N, 2)."""
    g = _GraphBuilder("mtcnn_rnet")
    x = g.op("Transpose", ["image"], perm=[0, 3, 1, 2])
    x = g.conv_prelu(x, w[0], w[1], w[2])  # 22
    x = g.max_pool(x, 3, 2, pads=[0, 0, 1, 1])  # TF "same": 11
    x = g.conv_prelu(x, w[3], w[4], w[5])  # 9
    x = g.max_pool(x, 3, 2)  # 4
    x = g.conv_prelu(x, w[6], w[7], w[8])  # 3
    x = g.flatten_keras(x)
    x = g.op("PRelu", [g.dense(x, w[9], w[10]), g.const("a", w[11])])
    reg = g.dense(x, w[12], w[13])
    prob = g.op("Softmax", [g.dense(x, w[14], w[15])], axis=1)
    return g.model(["n", 24, 24, 3], [("reg", reg, ["n", 4]), ("prob", prob, ["n", 2])])


def build_onet(w: list[np.ndarray]) -> onnx.ModelProto:
    """O-Net: (N, 48, 48, 3) -> regression (N, 4), landmarks (N, 10), probabilities (N, 2)."""
    g = _GraphBuilder("mtcnn_onet")
    x = g.op("Transpose", ["image"], perm=[0, 3, 1, 2])
    x = g.conv_prelu(x, w[0], w[1], w[2])  # 46
    x = g.max_pool(x, 3, 2, pads=[0, 0, 1, 1])  # TF "same": 23
    x = g.conv_prelu(x, w[3], w[4], w[5])  # 21
    x = g.max_pool(x, 3, 2)  # 10
    x = g.conv_prelu(x, w[6], w[7], w[8])  # 8
    x = g.max_pool(x, 2, 2)  # 4 (TF "same", no padding needed)
    x = g.conv_prelu(x, w[9], w[10], w[11])  # 3
    x = g.flatten_keras(x)
    x = g.op("PRelu", [g.dense(x, w[12], w[13]), g.const("a", w[14])])
    reg = g.dense(x, w[15], w[16])
    marks = g.dense(x, w[17], w[18])
    prob = g.op("Softmax", [g.dense(x, w[19], w[20])], axis=1)
    return g.model(["n", 48, 48, 3], [("reg", reg, ["n", 4]), ("landmarks", marks, ["n", 10]),
                                      ("prob", prob, ["n", 2])])


@functools.lru_cache(maxsize=4)
def _sessions(threads: int) -> tuple[onnxruntime.InferenceSession, ...]:
    """The three onnxruntime sessions (P, R, O), built once per thread count."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads > 1:
        # do not busy-wait between the many small runs; the machine is shared
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sessions = []
    for stage, build in (("pnet", build_pnet), ("rnet", build_rnet), ("onet", build_onet)):
        model = build(_load_weights(stage))
        sessions.append(ort.InferenceSession(model.SerializeToString(), opts,
                                             providers=["CPUExecutionProvider"]))
    log.debug("built MTCNN onnxruntime sessions with %d thread(s)", threads)
    return tuple(sessions)


# --------------------------------------------------------------------------------------------
# The cascade (NumPy), following mtcnn 1.0.0
# --------------------------------------------------------------------------------------------


def pyramid_scales(height: int, width: int, min_face_size: int, scale_factor: float,
                   min_size: int = 12) -> np.ndarray:
    """mtcnn's ``build_scale_pyramid``: the count comes from the unscaled short side."""
    min_dim = min(width, height)
    count = round(-((math.log(min_dim / min_size) / math.log(scale_factor)) + 1))
    m = min_size / min_face_size
    return m * scale_factor ** np.arange(max(count, 0))


def _sort_desc(scores: np.ndarray) -> np.ndarray:
    return np.argsort(scores)[::-1]


def nms_keep(boxes: np.ndarray, threshold: float, method: str = "union") -> np.ndarray:
    """Indices kept by mtcnn 1.0.0's NMS on boxes (N, 4) already in priority order.

    Box j is dropped when any earlier box i < j (kept or not) overlaps it by more than
    ``threshold``: IoU for "union", intersection over the smaller area for "min". Areas have no +1.
    """
    n = len(boxes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2 = (boxes[:, k] for k in range(4))
    area = (x2 - x1) * (y2 - y1)
    dropped = np.zeros(n, dtype=bool)
    block = 256
    with np.errstate(divide="ignore", invalid="ignore"):
        for start in range(0, n - 1, block):
            stop = min(n, start + block)
            i = slice(start, stop)
            j = slice(start + 1, n)
            iw = np.maximum(0.0, np.minimum(x2[i, None], x2[None, j]) - np.maximum(x1[i, None], x1[None, j]))
            ih = np.maximum(0.0, np.minimum(y2[i, None], y2[None, j]) - np.maximum(y1[i, None], y1[None, j]))
            inter = iw * ih
            if method == "union":
                ratio = inter / (area[i, None] + area[None, j] - inter)
            elif method == "min":
                ratio = inter / np.minimum(area[i, None], area[None, j])
            else:
                raise ValueError("method must be 'union' or 'min'")
            rows = np.arange(start, stop)[:, None]
            cols = np.arange(start + 1, n)[None, :]
            hit = (ratio > threshold) & (cols > rows)
            dropped[start + 1:] |= hit.any(axis=0)
    return np.flatnonzero(~dropped)


def square(boxes: np.ndarray) -> np.ndarray:
    """mtcnn's ``resize_to_square``: grow the short side about the centre (no rounding)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def crop_and_resize(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """``tf.image.crop_and_resize`` of pixel boxes (N, 4 = x1, y1, x2, y2) as mtcnn calls it.

    mtcnn divides the pixel box by the image side and TF multiplies by ``side - 1``; samples are
    bilinear and points outside the image are 0 (mid grey in the normalised image).
    """
    h, w = image.shape[:2]
    n = len(boxes)
    if n == 0:
        return np.zeros((0, size, size, image.shape[2]), np.float32)
    b = boxes.astype(np.float32)
    y1, x1, y2, x2 = b[:, 1] / h, b[:, 0] / w, b[:, 3] / h, b[:, 2] / w
    steps = np.arange(size, dtype=np.float32)[None, :]
    ys = y1[:, None] * (h - 1) + steps * ((y2 - y1) * (h - 1) / (size - 1))[:, None]  # (N, S)
    xs = x1[:, None] * (w - 1) + steps * ((x2 - x1) * (w - 1) / (size - 1))[:, None]
    ok_y = (ys >= 0) & (ys <= h - 1)
    ok_x = (xs >= 0) & (xs <= w - 1)
    fy, fx = np.floor(ys), np.floor(xs)
    top = np.clip(fy, 0, h - 1).astype(np.intp) * w
    bottom = np.clip(np.ceil(ys), 0, h - 1).astype(np.intp) * w
    left = np.clip(fx, 0, w - 1).astype(np.intp)
    right = np.clip(np.ceil(xs), 0, w - 1).astype(np.intp)
    ly = (ys - fy)[:, :, None, None]
    lx = (xs - fx)[:, None, :, None]
    flat = image.reshape(h * w, -1)

    def gather(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        patch: np.ndarray = np.take(flat, rows[:, :, None] + cols[:, None, :], axis=0)  # (N, S, S, C)
        return patch

    tl = gather(top, left)
    t = tl + (gather(top, right) - tl) * lx
    bl = gather(bottom, left)
    bt = bl + (gather(bottom, right) - bl) * lx
    out: np.ndarray = t + (bt - t) * ly
    out[~(ok_y[:, :, None] & ok_x[:, None, :])] = 0.0
    return out.astype(np.float32, copy=False)


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """mtcnn's ``adjust_bboxes``: offsets times (side + 1)."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    regressed: np.ndarray = boxes + offsets * np.stack([w, h, w, h], axis=1)
    return regressed


class MtcnnDetector:
    """Three-stage MTCNN cascade; ``detect`` returns boxes, probabilities and five landmarks.

    ``thresholds`` are the P-, R- and O-Net probabilities a candidate must exceed (mtcnn 1.0.0's
    defaults 0.6, 0.7, 0.8). ``threads`` is onnxruntime's intra-op thread count.
    """

    name = "mtcnn"

    def __init__(
        self,
        min_face_size: int = 20,
        scale_factor: float = 0.709,
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
        threads: int = 1,
        **_: object,
    ) -> None:
        if min_face_size <= 0:
            raise ValueError("min_face_size must be positive")
        if not 0.0 < scale_factor < 1.0:
            raise ValueError("scale_factor must be between 0 and 1")
        if len(thresholds) != 3:
            raise ValueError("thresholds must be three probabilities (P-Net, R-Net, O-Net)")
        self.min_face_size = int(min_face_size)
        self.scale_factor = float(scale_factor)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.threads = max(1, int(threads))
        self._pnet, self._rnet, self._onet = _sessions(self.threads)

    # -- stages --------------------------------------------------------------------------

    def _stage1(self, norm: np.ndarray) -> np.ndarray:
        import cv2

        h, w = norm.shape[:2]
        found: list[np.ndarray] = []
        for scale in pyramid_scales(h, w, self.min_face_size, self.scale_factor):
            # tf.image.resize(size=shape*scale) truncates the float size; AREA == cv2.INTER_AREA
            hs, ws = int(h * scale), int(w * scale)
            if min(hs, ws) < 12:
                continue  # P-Net needs 12x12 (TF would raise); never the case with the defaults
            level = cv2.resize(norm, (ws, hs), interpolation=cv2.INTER_AREA)
            reg, prob = self._pnet.run(None, {"image": level[None]})
            score = prob[0, 1]
            ys, xs = np.nonzero(score > self.thresholds[0])
            if len(ys) == 0:
                continue
            r = reg[0][:, ys, xs].astype(np.float64)  # (4, K)
            conf = score[ys, xs].astype(np.float64)
            ux, uy = xs * 2 + 1, ys * 2 + 1
            bx, by = xs * 2 + 12, ys * 2 + 12
            boxes: np.ndarray = np.stack(
                [ux + r[0] * 11, uy + r[1] * 11, bx + r[2] * 11, by + r[3] * 11, conf], axis=1)
            boxes = boxes[_sort_desc(conf)]
            boxes[:, :4] /= scale
            boxes = boxes[nms_keep(boxes[:, :4], 0.5, "union")]
            found.append(boxes)
        if not found:
            return np.zeros((0, 5))
        boxes = np.concatenate(found, axis=0)
        boxes = boxes[_sort_desc(boxes[:, 4])]
        boxes = boxes[nms_keep(boxes[:, :4], 0.7, "union")]
        boxes[:, :4] = square(boxes[:, :4])
        return boxes

    def _stage2(self, norm: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        patches = crop_and_resize(norm, boxes[:, :4], 24)
        reg, prob = self._rnet.run(None, {"image": patches})
        boxes = boxes.copy()
        boxes[:, 4] = prob[:, 1]
        boxes[:, :4] = _regress(boxes[:, :4], reg.astype(np.float64))
        boxes = boxes[boxes[:, 4] > self.thresholds[1]]
        boxes = boxes[_sort_desc(boxes[:, 4])]
        boxes = boxes[nms_keep(boxes[:, :4], 0.7, "union")]
        boxes[:, :4] = square(boxes[:, :4])
        return boxes

    def _stage3(self, norm: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        patches = crop_and_resize(norm, boxes[:, :4], 48)
        reg, marks, prob = self._onet.run(None, {"image": patches})
        marks = marks.astype(np.float64)
        w = boxes[:, 2:3] - boxes[:, 0:1] + 1
        h = boxes[:, 3:4] - boxes[:, 1:2] + 1
        lx = w * marks[:, 0:5] + boxes[:, 0:1] - 1
        ly = h * marks[:, 5:10] + boxes[:, 1:2] - 1
        out: np.ndarray = np.concatenate([boxes[:, :4], prob[:, 1:2].astype(np.float64), lx, ly], axis=1)
        out[:, :4] = _regress(boxes[:, :4], reg.astype(np.float64))
        out = out[out[:, 4] > self.thresholds[2]]
        out = out[_sort_desc(out[:, 4])]
        kept: np.ndarray = out[nms_keep(out[:, :4], 0.7, "min")]
        return kept

    def detect_array(self, image: np.ndarray) -> np.ndarray:
        """Rows (x1, y1, x2, y2, probability, 5 landmark x, 5 landmark y), best first."""
        image = _as_rgb(image)
        norm = (image.astype(np.float32) - 127.5) / 128.0
        boxes = self._stage1(norm)
        if len(boxes):
            boxes = self._stage2(norm, boxes)
        if len(boxes) == 0:
            return np.zeros((0, 15))
        rows = self._stage3(norm, boxes)
        h, w = image.shape[:2]
        rows[:, [0, 2]] = np.clip(rows[:, [0, 2]], 0, w - 1)
        rows[:, [1, 3]] = np.clip(rows[:, [1, 3]], 0, h - 1)
        return rows

    def detect(self, image: np.ndarray) -> list[Detection]:
        rows = self.detect_array(image)
        out = []
        for r in rows:
            points = tuple((float(x), float(y)) for x, y in zip(r[5:10], r[10:15], strict=True))
            out.append(Detection(Box(float(r[0]), float(r[1]), float(r[2]), float(r[3])), float(r[4]),
                                 self.name, Landmarks(points, "mtcnn5")))
        log.debug("mtcnn found %d face(s) in a %dx%d image", len(out), image.shape[1], image.shape[0])
        return out


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
    return image


@register("mtcnn")
def _make(
    min_face_size: int = 20,
    scale_factor: float = 0.709,
    thresholds: tuple[float, float, float] = DEFAULT_THRESHOLDS,
    threads: int = 1,
    **_: object,
) -> MtcnnDetector:
    return MtcnnDetector(min_face_size=min_face_size, scale_factor=scale_factor, thresholds=thresholds,
                         threads=threads)
