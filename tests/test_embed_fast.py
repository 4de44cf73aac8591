"""The fast embedder: dlib's ResNet converted to ONNX computes the same descriptors as dlib-bin.

The agreement tests cut real face chips from ../shared/faces (5celeb and LFW) exactly as the
pipeline does (HOG detector, 5-point landmarks, ``dlib.get_face_chip`` 150 px, padding 0.25) and
compare raw descriptors dimension by dimension.
"""

from __future__ import annotations

import logging
import math
import struct
from pathlib import Path

import numpy as np
import pytest

from facebank import models
from facebank.embed import create
from facebank.embed.dlib import DLIB_MODEL_ID, DlibEmbedder
from facebank.embed.fast import (
    CACHE_ENV,
    DlibReader,
    FastDlibEmbedder,
    cached_model_path,
    parse_dlib_resnet,
)

TOLERANCE = 1e-3  # max |fast - dlib| per descriptor dimension (measured: ~3e-7)
FACES_PER_SOURCE = 20


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    """A private FACEBANK_CACHE_DIR for the module, so tests never touch the user's cache."""
    path = tmp_path_factory.mktemp("facebank-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(path))
        yield path


@pytest.fixture(scope="module")
def fast(module_cache) -> FastDlibEmbedder:
    return FastDlibEmbedder(threads=2, batch_size=8)


@pytest.fixture(scope="module")
def reference() -> DlibEmbedder:
    return DlibEmbedder()


def _load_rgb(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        if max(im.size) > 1000:  # big web photos: detect on a smaller copy, the chip is still real
            im.thumbnail((1000, 1000))
        return np.asarray(im)


def cut_chips(paths: list[Path], limit: int) -> np.ndarray:
    """The first face of each photo as a dlib chip (150 px, padding 0.25), up to ``limit`` chips."""
    import dlib

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(models.dlib_model(models.SHAPE5)))
    chips = []
    for path in paths:
        img = _load_rgb(path)
        found = detector(img, 1 if max(img.shape[:2]) <= 500 else 0)
        if not found:
            continue
        box = max(found, key=lambda r: r.area())
        chips.append(dlib.get_face_chip(img, predictor(img, box), size=150, padding=0.25))
        if len(chips) == limit:
            break
    return np.stack(chips) if chips else np.zeros((0, 150, 150, 3), np.uint8)


@pytest.fixture(scope="module")
def real_chips(faces_dir: Path) -> dict[str, np.ndarray]:
    """Chips from 5celeb (train and val) and LFW; faces_dir (conftest) skips without ../shared."""
    celeb = sorted((faces_dir / "5celeb").rglob("*.jpg"))
    lfw = sorted((faces_dir / "lfw" / "images").rglob("*.jpg"))
    # every n-th file, so the sample spans many people
    return {
        "5celeb": cut_chips(celeb[::3], FACES_PER_SOURCE),
        "lfw": cut_chips(lfw[:: max(1, len(lfw) // (2 * FACES_PER_SOURCE))], FACES_PER_SOURCE),
    }


@pytest.mark.shared
@pytest.mark.parametrize("source", ["5celeb", "lfw"])
def test_raw_descriptors_match_dlib_on_real_faces(source, real_chips, fast, reference):
    chips = real_chips[source]
    assert len(chips) >= FACES_PER_SOURCE // 2, f"too few faces found in {source}"
    want = reference.raw(chips)
    got = fast.raw(chips)
    assert got.shape == want.shape == (len(chips), 128)
    assert got.dtype == np.float32
    worst = float(np.abs(got - want).max())
    assert worst <= TOLERANCE, f"{source}: max |fast - dlib| = {worst:.2e} over {len(chips)} faces"


@pytest.mark.shared
def test_flipped_embeddings_match_dlib_flip(real_chips, fast, reference, module_cache):
    chips = real_chips["lfw"][:4]
    flip_fast = FastDlibEmbedder(flip=True, threads=2)
    flip_dlib = DlibEmbedder(flip=True)
    got, want = flip_fast.embed(chips), flip_dlib.embed(chips)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert float(np.abs(got - want).max()) <= TOLERANCE
    # and flipping changes the vector (the augmentation really happens)
    assert float(np.abs(got - fast.embed(chips)).max()) > 1e-3


def test_second_construction_reuses_cached_model(tmp_path, monkeypatch, caplog):
    import facebank.embed.fast as fast_mod

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    with caplog.at_level(logging.INFO, logger="facebank.embed.fast"):
        FastDlibEmbedder(threads=1)
    path = cached_model_path()
    assert path.parent == tmp_path and path.is_file()
    dat_sha = models.file_sha256(models.dlib_model(models.RESNET))
    assert path.name == f"dlib-resnet-v1-{dat_sha[:16]}.onnx"
    assert any("converting" in r.getMessage() for r in caplog.records)
    assert not list(tmp_path.glob("*.tmp")), "the temporary file of the atomic write was left behind"
    mtime = path.stat().st_mtime_ns

    def no_conversion(*args, **kwargs):
        raise AssertionError("the cached model should have been reused")

    monkeypatch.setattr(fast_mod, "convert_dlib_resnet", no_conversion)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="facebank.embed.fast"):
        again = FastDlibEmbedder(threads=1)
    assert again.model_path == path and path.stat().st_mtime_ns == mtime
    assert not any("converting" in r.getMessage() for r in caplog.records)


def test_damaged_cache_file_is_converted_again(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    path = cached_model_path()
    path.write_bytes(b"not an onnx model")
    embedder = FastDlibEmbedder(threads=1)
    assert embedder.model_path == path and path.stat().st_size > 1_000_000
    assert embedder.raw(np.zeros((1, 150, 150, 3), np.uint8)).shape == (1, 128)


# -- dlib's serialisation format -----------------------------------------------------------------


def dlib_int(value: int) -> bytes:
    """dlib's integer encoding (ser_helper::pack_int): control byte, then |value| little endian."""
    magnitude = abs(value)
    body = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + body


def dlib_float(value: float) -> bytes:
    """dlib's float encoding (float_details from a C++ float): mantissa then exponent, as ints."""
    if math.isnan(value):
        return dlib_int(0) + dlib_int(32002)
    if math.isinf(value):
        return dlib_int(0) + dlib_int(32000 if value > 0 else 32001)
    value = struct.unpack("<f", struct.pack("<f", value))[0]  # as a C++ float
    digits = 24
    frac, exp = math.frexp(value)
    mantissa, exponent = int(frac * (1 << digits)), exp - digits
    for _ in range(8):
        if mantissa & 0xFF:
            break
        mantissa >>= 8
        exponent += 8
    return dlib_int(mantissa) + dlib_int(exponent)


def dlib_string(text: str) -> bytes:
    return dlib_int(len(text)) + text.encode()


def dlib_tensor(array: np.ndarray) -> bytes:
    """resizable_tensor: version 2, (n, k, nr, nc), raw little-endian float32."""
    shape = (1,) * (4 - array.ndim) + array.shape
    return dlib_int(2) + b"".join(dlib_int(d) for d in shape) + array.astype("<f4").tobytes()


def dlib_alias(*shape: int) -> bytes:
    return dlib_int(1) + b"".join(dlib_int(d) for d in shape)


def test_batch_norm_layer_is_frozen_like_dlib_affine():
    from facebank.embed.fast import _read_affine

    g, b = np.array([1.0, 2.0, -0.5], np.float32), np.array([0.1, -0.2, 0.3], np.float32)
    mean, var, eps = np.array([0.5, -1.0, 2.0], np.float32), np.array([4.0, 0.25, 1.0], np.float32), 1e-5
    column = (1, 3, 1, 1)
    data = (dlib_string("bn_con2") + dlib_tensor(np.concatenate([g, b]).reshape(1, 6)) + dlib_alias(*column)
            + dlib_alias(*column) + dlib_tensor(np.zeros(column, np.float32)) * 2
            + dlib_tensor(mean.reshape(column)) + dlib_tensor(var.reshape(column))
            + dlib_int(1000) + dlib_int(100) + dlib_float(1.0) * 4 + dlib_float(eps))
    r = DlibReader(data)
    affine = _read_affine(r)
    assert r.at_end()
    gamma = g / np.sqrt(var + np.float32(eps))
    np.testing.assert_allclose(affine["gamma"], gamma, rtol=1e-6)
    np.testing.assert_allclose(affine["beta"], b - gamma * mean, rtol=1e-6)


def test_reader_decodes_dlib_integers():
    data = b"\x01\x02" + b"\x81\x1c" + b"\x02\x00\x01" + b"\x01\x00" + dlib_int(-123456789)
    r = DlibReader(data)
    assert [r.int() for _ in range(5)] == [2, -28, 256, 0, -123456789]
    assert r.at_end()


def test_reader_decodes_known_dlib_floats():
    # The loss layer's margin and distance threshold as stored at the top of the model file.
    r = DlibReader(b"\x03\x0a\xd7\xa3\x81\x1c" + b"\x03\x9a\x99\x99\x81\x18")
    assert np.float32(r.float()) == np.float32(0.04)
    assert np.float32(r.float()) == np.float32(0.6)


@pytest.mark.parametrize("value", [0.0, 1.0, -1.0, 0.5, 0.04, 122.782, -104.298, 3.0e38, -1.5e-30,
                                   2.0 ** -140, math.inf, -math.inf])
def test_float_encoding_round_trips(value):
    got = DlibReader(dlib_float(value)).float()
    assert np.float32(got) == np.float32(value)


def test_float_encoding_of_nan():
    assert math.isnan(DlibReader(dlib_float(math.nan)).float())


def test_parser_reads_the_face_resnet_layers():
    net = parse_dlib_resnet(models.dlib_model(models.RESNET).read_bytes())
    kinds = [layer.kind for layer in net.layers]
    convs = [layer.params for layer in net.layers if layer.kind == "con"]
    assert len(convs) == 29 and kinds.count("affine") == 29
    assert convs[0]["weight"].shape == (32, 3, 7, 7) and convs[0]["stride"] == 2
    assert convs[-1]["weight"].shape == (256, 256, 3, 3)
    assert [c["weight"].shape[0] for c in convs if c["stride"] == 2] == [32, 64, 128, 256, 256]
    assert all(c["padding"] == (1 if c["stride"] == 1 else 0) for c in convs)
    assert net.layers[-1].params["weight"].shape == (256, 128)
    np.testing.assert_allclose(net.input_means, (122.782, 117.001, 104.298), atol=1e-4)
    assert net.input_size == 150
    assert net.loss_threshold == pytest.approx(0.6)


# -- the Embedder contract -----------------------------------------------------------------------


def test_empty_batch_gives_0_by_128(fast):
    empty = np.zeros((0, 150, 150, 3), np.uint8)
    assert fast.embed(empty).shape == (0, 128)
    assert fast.raw(empty).shape == (0, 128)
    assert fast.embed(empty).dtype == np.float32


def test_embeddings_are_unit_vectors_and_batching_does_not_matter(fast):
    rng = np.random.default_rng(1)
    chips = rng.integers(0, 256, size=(11, 150, 150, 3), dtype=np.uint8)
    vecs = fast.embed(chips)  # batch_size 8: a full and a partial batch
    assert vecs.shape == (11, 128) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    one_by_one = np.concatenate([fast.embed(chips[i:i + 1]) for i in range(len(chips))])
    np.testing.assert_allclose(vecs, one_by_one, atol=1e-5)


def test_wrong_chip_shape_is_refused(fast):
    with pytest.raises(ValueError, match="150, 150, 3"):
        fast.embed(np.zeros((2, 112, 112, 3), np.uint8))


def test_registered_as_fast_with_the_dlib_model_id(module_cache):
    embedder = create("fast", threads=1)
    assert isinstance(embedder, FastDlibEmbedder)
    assert embedder.model_id == DLIB_MODEL_ID == "dlib-resnet-v1"
    assert embedder.dim == 128 and embedder.chip.size == 150 and embedder.chip.padding == 0.25
