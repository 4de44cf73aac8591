"""Photo -> faces with embeddings: load, detect, align, embed; one photo or a stream, in parallel.

``FacePipeline`` holds the models of one process. ``process_stream`` runs pipelines in worker
processes over a lazy stream of paths with a bounded window, so memory stays flat on folders of
any size and every core is busy.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facebank import align, detect, embed, images, models
from facebank.detect.crop import whole_photo_detection
from facebank.parallel import ordered_map
from facebank.settings import Settings
from facebank.types import Box, Detection, Face, FaceQuality, Landmarks

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class PhotoFaces:
    """Faces found in one photo (or the reason there are none usable)."""

    path: str
    faces: tuple[Face, ...] = ()
    error: str | None = None
    sha256: str = ""
    size_bytes: int = 0
    width: int = 0
    height: int = 0
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True, eq=False)
class PhotoBytes:
    """A photo already read (and hashed) by the caller: the worker decodes these bytes instead of
    reading the file again (one read and one hash per photo)."""

    path: str
    data: bytes
    sha256: str


class FacePipeline:
    """Detect -> landmarks -> align -> embed for one process. Build once, reuse for many photos."""

    def __init__(self, settings: Settings | None = None) -> None:
        import dlib

        self.settings = s = settings or Settings()
        self.detector = detect.create(s.detector, upsample=s.upsample, min_face=s.min_face,
                                      min_face_size=s.mtcnn_min_face)
        self.embedder = make_embedder(s)
        self._shape = dlib.shape_predictor(str(models.dlib_model(models.SHAPE5)))
        self._hog: detect.Detector | None = None
        self._mmod: detect.Detector | None = None

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    # -- stages ---------------------------------------------------------------------------------
    def detections(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in an RGB image, boxes in its own pixels; huge photos are searched shrunk."""
        s = self.settings
        if s.crop_fallback == "always":
            return [whole_photo_detection(rgb)]
        small, factor = images.downscale(rgb, s.detect_max_side)
        found = self.detector.detect(small)
        if factor != 1.0:
            found = [_scale_detection(d, factor) for d in found]
        tight = looks_like_face_crop(rgb, s.crop_fallback_max_side)
        if not found and tight and s.pad_crops > 0:
            found = self._detect_padded(rgb, s.pad_crops)
        if not found and s.second_look:
            found = self._second_look(small, factor)
        if not found and s.crop_fallback == "auto" and tight:
            found = [whole_photo_detection(rgb)]
        return found

    def _second_look(self, small: np.ndarray, factor: float) -> list[Detection]:
        """Look again at a photo where nothing was found (``settings.second_look``, in order, the
        first that finds a face wins): an upsampled copy, copies turned by +-30 degrees, HOG, dlib's
        MMOD CNN on the photo shrunk to ``settings.mmod_max_side`` (its cost grows with the pixels)."""
        import cv2

        for how in [w.strip() for w in self.settings.second_look.split(",") if w.strip()]:
            found: list[Detection] = []
            if how == "upsample" and max(small.shape[:2]) * 2 <= self.settings.detect_max_side:
                big = cv2.resize(small, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
                found = [_scale_detection(d, 0.5) for d in self.detector.detect(big)]
            elif how == "rotate":
                for angle in (30.0, -30.0):
                    found = _detect_rotated(self.detector, small, angle)
                    if found:
                        break
            elif how == "hog":
                if self._hog is None:
                    self._hog = detect.create("hog", upsample=1, min_face=self.settings.min_face)
                found = self._hog.detect(small)
            elif how == "mmod":
                found = self._mmod_look(small)
            elif how not in ("upsample", "rotate", "hog", "mmod"):
                raise ValueError(f"unknown second look {how!r}: upsample, rotate, hog or mmod")
            if found:
                log.debug("second look (%s) found %d face(s)", how, len(found))
                return [_scale_detection(d, factor) for d in found] if factor != 1.0 else found
        return []

    def _mmod_look(self, small: np.ndarray) -> list[Detection]:
        """MMOD's faces in ``small`` shrunk to at most ``mmod_max_side`` (without upsampling its window
        of ~80 px finds faces of about a third of 256 px and up), boxes in ``small``'s pixels,
        overlapping boxes merged (the best kept)."""
        if self._mmod is None:
            self._mmod = detect.create("mmod", upsample=self.settings.mmod_upsample)
        tiny, k = images.downscale(small, self.settings.mmod_max_side)
        found = self._mmod.detect(tiny)
        if k != 1.0:
            found = [_scale_detection(d, k) for d in found]
        return merge_boxes(found)

    def _detect_padded(self, rgb: np.ndarray, fraction: float) -> list[Detection]:
        """Search a tight crop again inside a black border: detectors miss faces cut by the edge."""
        h, w = rgb.shape[:2]
        pad = max(1, int(round(fraction * max(h, w))))
        padded = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)))
        out = []
        for d in self.detector.detect(padded):
            lm = d.landmarks
            if lm is not None:
                lm = Landmarks(tuple((x - pad, y - pad) for x, y in lm.points), lm.scheme)
            box = Box(d.box.x1 - pad, d.box.y1 - pad, d.box.x2 - pad, d.box.y2 - pad).clipped(w, h)
            if box.area > 0:
                out.append(Detection(box, d.score, d.detector, lm, d.fallback))
        if out:
            log.debug("found %d face(s) only with a %d px border", len(out), pad)
        return out

    def landmarks(self, rgb: np.ndarray, det: Detection) -> Landmarks:
        import dlib

        if det.landmarks is not None:
            return det.landmarks
        b = det.box
        rect = dlib.rectangle(int(round(b.x1)), int(round(b.y1)), int(round(b.x2)) - 1, int(round(b.y2)) - 1)
        shape = self._shape(rgb, rect)
        return Landmarks(tuple((float(p.x), float(p.y)) for p in shape.parts()), "dlib5")

    def chips(self, rgb: np.ndarray, dets: list[Detection]) -> tuple[np.ndarray, list[Landmarks]]:
        spec = self.embedder.chip
        lms = [self.landmarks(rgb, d) for d in dets]
        out = np.zeros((len(dets), spec.size, spec.size, 3), np.uint8)
        for i, (d, lm) in enumerate(zip(dets, lms, strict=True)):
            out[i] = align.align(rgb, d.box, lm, spec)
        return out, lms

    def faces(self, rgb: np.ndarray, dets: list[Detection] | None = None) -> list[Face]:
        """All faces of an RGB image with their embeddings, best detection first."""
        dets = self.detections(rgb) if dets is None else dets
        if not dets:
            return []
        chips, lms = self.chips(rgb, dets)
        vecs = self.embedder.embed(chips)
        qs = self.qualities(dets, lms, chips, vecs)
        return [
            Face(
                box=d.box, landmarks=lm, detector_score=d.score, embedding=v, model_id=self.model_id,
                detector=d.detector, fallback=d.fallback, quality=q,
            )
            for d, lm, v, q in zip(dets, lms, vecs, qs, strict=True)
        ]

    def qualities(self, dets: list[Detection], lms: list[Landmarks], chips: np.ndarray,
                  vecs: np.ndarray, scale: float = 1.0) -> list[FaceQuality]:
        """The quality record of each detection (boxes and landmarks in the same pixels, ``scale``
        photo pixels each; ``vecs`` their embeddings, for the model's 'not a face' classifier)."""
        from facebank.quality import measure

        pad, mid = self.embedder.chip.padding, self.model_id
        if self.settings.crop_fallback == "always":  # the user said every photo is a face
            return [measure(d, lm, c, pad, scale=scale) for d, lm, c in zip(dets, lms, chips, strict=True)]
        return [measure(d, lm, c, pad, v, mid, scale)
                for d, lm, c, v in zip(dets, lms, chips, vecs, strict=True)]

    def photo_faces(self, img: images.LoadedImage, data: bytes) -> list[Face]:
        """The faces of a photo decoded shrunk by ``images.load_reduced`` (``img.scale`` > 1), boxes
        and landmarks in the photo's own pixels.

        Detection runs on the shrunk pixels (the detector looks at ``detect_max_side`` anyway).
        A face chip is cut from the shrunk pixels when they hold at least the chip's resolution
        (one pixel per chip pixel); otherwise the photo is decoded again, once, as large as the
        smallest such face needs (JPEG DCT scaling; the whole photo at worst) and those chips are
        cut from it. ``data`` is the photo file's bytes."""
        if img.scale == 1.0:
            return self.faces(img.rgb)
        dets = self.detections(img.rgb)
        if not dets:
            return []
        spec = self.embedder.chip
        lms = [self.landmarks(img.rgb, d) for d in dets]
        # chip pixels per shrunk-photo pixel: the chip spans the box grown by the padding
        zoom = [spec.size / (max(d.box.width, d.box.height, 1.0) * (1.0 + 2.0 * spec.padding)) for d in dets]
        chips = np.zeros((len(dets), spec.size, spec.size, 3), np.uint8)
        sharp = [i for i, z in enumerate(zoom) if z > 1.0]
        for i in set(range(len(dets))) - set(sharp):
            chips[i] = align.align(img.rgb, dets[i].box, lms[i], spec)
        if sharp:
            side = max(img.photo_size)
            need = min(side, math.ceil(side * max(zoom[i] for i in sharp) / img.scale))
            big = images.load_reduced(data, need if need < side else 0, max_pixels=self.settings.max_pixels)
            k = img.scale / big.scale  # shrunk-photo pixel -> big pixel
            for i in sharp:
                chips[i] = align.align(big.rgb, dets[i].box.scaled(k), _scale_landmarks(lms[i], k), spec)
            log.debug("%d of %d face chips cut from the photo decoded at %dx%d", len(sharp), len(dets),
                      big.width, big.height)
        vecs = self.embedder.embed(chips)
        f = img.scale
        qs = self.qualities(dets, lms, chips, vecs, scale=f)  # sizes in photo pixels
        return [
            Face(box=d.box.scaled(f), landmarks=_scale_landmarks(lm, f), detector_score=d.score,
                 embedding=v, model_id=self.model_id, detector=d.detector, fallback=d.fallback, quality=q)
            for d, lm, v, q in zip(dets, lms, vecs, qs, strict=True)
        ]

    def photo(self, source: str | Path | bytes | PhotoBytes, name: str | None = None) -> PhotoFaces:
        """Load and process one photo; never raises for a bad photo (the error is in the result).
        Big JPEGs are decoded no larger than detection needs (``photo_faces``). A ``PhotoBytes`` is
        not read nor hashed again."""
        digest = None
        if isinstance(source, PhotoBytes):
            name, digest, source = name or source.path, source.sha256, source.data
        label = name or (str(source) if not isinstance(source, bytes | bytearray) else "<bytes>")
        s = self.settings
        try:
            data = images.read_bytes(source)
            img = images.load_reduced(data, s.detect_max_side, max_pixels=s.max_pixels, sha256=digest)
        except images.ImageError as exc:
            return PhotoFaces(label, error=str(exc))
        width, height = img.photo_size
        try:
            faces = self.photo_faces(img, data)
        except Exception as exc:  # a model failing on one odd photo must not end a batch
            log.exception("processing %s failed", label)
            return PhotoFaces(label, error=f"processing failed: {type(exc).__name__}: {exc}",
                              sha256=img.sha256, size_bytes=img.size_bytes, width=width, height=height)
        return PhotoFaces(label, tuple(faces), None, img.sha256, img.size_bytes, width, height)


def make_embedder(s: Settings) -> embed.Embedder:
    """The configured embedder; 'fast' falls back to dlib's own (same model) if it cannot start."""
    threads = s.threads or None
    try:
        return embed.create(s.embedder, flip=s.flip, model=s.onnx_model, threads=threads)
    except Exception as exc:
        if s.embedder != "fast":
            raise
        log.warning("the fast embedder could not start (%s); using dlib's own, same model, slower", exc)
        return embed.create("dlib", flip=s.flip)


CASCADE_LOOK = "mmod"  # the second look of scan, enroll and audit (bench/bench_cascade.py)


def with_cascade(settings: Settings) -> Settings:
    """``settings`` with the detection cascade of scan, enroll and audit: where MTCNN finds no face,
    dlib's MMOD looks again on the shrunk photo; a ``second_look`` the user set (even "") is kept."""
    if "second_look" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"second_look": CASCADE_LOOK})


def merge_boxes(found: list[Detection], overlap: float = 0.4) -> list[Detection]:
    """Detections best first with every box that overlaps a better one (IoU above ``overlap``)
    dropped: one face, one box."""
    kept: list[Detection] = []
    for d in sorted(found, key=lambda d: -d.score):
        if all(box_iou(d.box, k.box) <= overlap for k in kept):
            kept.append(d)
    return kept


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when either is empty)."""
    w = min(a.x2, b.x2) - max(a.x1, b.x1)
    h = min(a.y2, b.y2) - max(a.y1, b.y1)
    inter = max(0.0, w) * max(0.0, h)
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def looks_like_face_crop(rgb: np.ndarray, max_side: int) -> bool:
    """Small and near-square: the shape of the face crops of datasets such as kpop15 (160x160)."""
    h, w = rgb.shape[:2]
    return bool(max(h, w) <= max_side and 0.7 <= w / h <= 1.43)


def _scale_landmarks(lm: Landmarks, factor: float) -> Landmarks:
    return Landmarks(tuple((x * factor, y * factor) for x, y in lm.points), lm.scheme)


def _scale_detection(d: Detection, factor: float) -> Detection:
    lm = _scale_landmarks(d.landmarks, factor) if d.landmarks is not None else None
    return Detection(d.box.scaled(factor), d.score, d.detector, lm, d.fallback)


def choose_face(faces: list[Face], width: int, height: int, policy: str) -> Face | None:
    """The one face to keep of a photo that should show one person (None: policy 'skip')."""
    if len(faces) == 1:
        return faces[0]
    if policy == "largest":
        return max(faces, key=lambda f: f.box.area)
    if policy == "central":
        cx, cy = width / 2.0, height / 2.0
        return min(faces, key=lambda f: (f.box.center[0] - cx) ** 2 + (f.box.center[1] - cy) ** 2)
    return None


# ---- worker processes ---------------------------------------------------------------------------
_WORKER: FacePipeline | None = None


def _init_worker(settings_json: str) -> None:
    global _WORKER
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    settings = Settings.model_validate_json(settings_json)
    # one process per core already: each runs its models on one thread
    _WORKER = FacePipeline(settings.model_copy(update={"threads": 1}))


def _work(item: str | PhotoBytes) -> PhotoFaces:
    assert _WORKER is not None
    return _WORKER.photo(item)


def worker_count(settings: Settings) -> int:
    return settings.workers if settings.workers > 0 else (os.cpu_count() or 1)


def process_stream(paths: Iterable[str | Path | PhotoBytes], settings: Settings,
                   pipeline: FacePipeline | None = None) -> Iterator[PhotoFaces]:
    """Process photos in order of ``paths`` (consumed lazily), in worker processes when there are
    several cores. At most a few photos per worker are in flight, so memory stays bounded. Works
    from scripts without a ``__main__`` guard, notebooks and threads (see ``facebank.parallel``);
    where workers cannot start, the photos are processed in this process instead. A ``PhotoBytes``
    item travels with its bytes (the worker does not read the file again)."""
    def local() -> Callable[[str | PhotoBytes], PhotoFaces]:
        pipe = pipeline or FacePipeline(settings)
        return lambda p: pipe.photo(p)

    items = (p if isinstance(p, PhotoBytes) else str(p) for p in paths)
    yield from ordered_map(_work, items, worker_count(settings), local,
                           initializer=_init_worker, initargs=(settings.model_dump_json(),))


def box_from_list(b: list[float]) -> Box:
    return Box(*map(float, b))


def _detect_rotated(detector: detect.Detector, rgb: np.ndarray, angle: float) -> list[Detection]:
    """Faces found in a copy of ``rgb`` turned by ``angle`` degrees (the canvas grows to hold it),
    mapped back: landmarks exactly, the box as the upright box around the turned-back one."""
    import cv2

    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(round(h * sin + w * cos)), int(round(h * cos + w * sin))
    m[0, 2] += nw / 2.0 - w / 2.0
    m[1, 2] += nh / 2.0 - h / 2.0
    turned = cv2.warpAffine(rgb, m, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    back = cv2.invertAffineTransform(m)

    def undo(points: np.ndarray) -> np.ndarray:
        return points @ back[:, :2].T + back[:, 2]

    out = []
    for d in detector.detect(turned):
        b = d.box
        corners = undo(np.array([[b.x1, b.y1], [b.x2, b.y1], [b.x1, b.y2], [b.x2, b.y2]], np.float64))
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        box = Box(float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])).clipped(w, h)
        lm = d.landmarks
        if lm is not None:
            lm = Landmarks(tuple((float(x), float(y)) for x, y in undo(lm.as_array())), lm.scheme)
        if box.area > 0:
            out.append(Detection(box, d.score, d.detector, lm, d.fallback))
    return out
