"""Property-based tests (Hypothesis): the image loader and name validation against any input.

The loader may refuse anything, but only with its own ``ImageError``; names are either refused
with ``GalleryError`` or come back clean, stable and safe as a single path part."""

from __future__ import annotations

import io
import unicodedata

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from facebank.gallery.base import GalleryError, name_key, validate_name
from facebank.images import ImageError, load_image, load_reduced

MAX_PIXELS = 4_000_000  # small: a generated header may claim any size


def encoded(fmt: str, mode: str, w: int, h: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (h, w, len(mode)) if len(mode) > 1 else (h, w), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(arr, mode).save(out, format=fmt)
    return out.getvalue()


FORMATS = st.sampled_from([("JPEG", "RGB"), ("PNG", "RGBA"), ("PNG", "L"), ("GIF", "L"), ("BMP", "RGB"),
                           ("WEBP", "RGB"), ("TIFF", "RGB"), ("PPM", "RGB")])
real_images = st.builds(lambda f, w, h, seed: encoded(f[0], f[1], w, h, seed), FORMATS,
                        st.integers(1, 40), st.integers(1, 40), st.integers(0, 2**16))


def loads_or_refuses(data: bytes) -> None:
    for load in (lambda: load_image(data, max_pixels=MAX_PIXELS),
                 lambda: load_reduced(data, min_side=8, max_pixels=MAX_PIXELS)):
        try:
            img = load()
        except ImageError as exc:
            assert str(exc) and exc.code
            continue
        assert img.rgb.dtype == np.uint8 and img.rgb.ndim == 3 and img.rgb.shape[2] == 3
        assert img.width * img.height <= MAX_PIXELS


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
@example(b"")
@example(b"\xff\xd8\xff")
@example(b"\x89PNG\r\n\x1a\n")
@example(b"GIF89a")
def test_random_bytes_load_or_raise_only_image_error(data):
    loads_or_refuses(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(real_images, st.data())
def test_truncated_and_corrupted_images_load_or_raise_only_image_error(data, draw):
    cut = draw.draw(st.integers(0, len(data)))
    loads_or_refuses(data[:cut])
    flips = draw.draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), max_size=8))
    mutated = bytearray(data)
    for pos, value in flips:
        mutated[pos] = value
    loads_or_refuses(bytes(mutated))


@settings(max_examples=200, deadline=None)
@given(real_images, st.binary(min_size=1, max_size=64), st.integers(0, 64))
def test_a_real_header_followed_by_anything_loads_or_raises_only_image_error(data, junk, keep):
    loads_or_refuses(data[:keep] + junk)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 60_000), st.integers(1, 60_000))
def test_a_png_header_claiming_any_size_is_refused_before_decoding_when_too_big(w, h):
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    data = header + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    try:
        load_image(data, max_pixels=MAX_PIXELS)
    except ImageError as exc:
        if w * h > MAX_PIXELS:
            assert exc.code == "image_too_large"


# -- names ------------------------------------------------------------------------------------------
@settings(max_examples=500, deadline=None)
@given(st.text(max_size=220))
@example("علی\u200cرضا")
@example("👨\u200d👩\u200d👧")
@example("a\u202eb")
@example("..")
def test_a_name_is_refused_or_comes_back_clean_and_path_safe(raw):
    try:
        name = validate_name(raw)
    except GalleryError as exc:
        assert str(exc)
        return
    assert name == unicodedata.normalize("NFC", name) == name.strip()
    assert 0 < len(name) <= 200 and name not in (".", "..")
    assert not any(c in name for c in "/\\\x00")
    assert all(not unicodedata.category(c).startswith("C") or c in "\u200c\u200d" for c in name)
    assert validate_name(name) == name  # idempotent


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(categories=["L", "N", "Zs"]), min_size=1, max_size=40))
def test_names_that_differ_only_by_case_have_the_same_key(raw):
    try:
        name = validate_name(raw)
    except GalleryError:
        return
    for variant in (name.upper(), name.lower(), name.swapcase(), name.title()):
        try:
            other = validate_name(variant)
        except GalleryError:
            continue
        if other.casefold() == name.casefold():
            assert name_key(other) == name_key(name)


@pytest.mark.parametrize("joiner", ["\u200c", "\u200d"])
def test_joiners_inside_a_name_are_kept(joiner):
    assert validate_name(f"a{joiner}b") == f"a{joiner}b"
