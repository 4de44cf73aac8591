"""Image loading survives what real photo folders contain (the test makes the bad files itself)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from facebank.images import ImageError, downscale, iter_image_files, load_image


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def _gradient(w: int = 64, h: int = 48) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.uint8)
    arr = np.stack([np.tile(x, (h, 1)), np.full((h, w), 100, np.uint8), np.zeros((h, w), np.uint8)], -1)
    return Image.fromarray(arr, "RGB")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size: the pixel limit must refuse it before decoding."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)  # a few bytes of pixels for a picture of 400 megapixels
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_zero_byte_file_is_a_clear_error(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(ImageError, match="empty file"):
        load_image(p)


def test_text_file_named_jpg_is_not_an_image(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("these are not pixels\n")
    with pytest.raises(ImageError, match="not an image"):
        load_image(p)


def test_truncated_jpeg_is_a_clear_error(tmp_path):
    data = _jpeg(_gradient(400, 300))
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated|corrupt"):
        load_image(p)


def test_huge_png_header_is_refused_before_decoding(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(png_header_only(20000, 20000))
    with pytest.raises(ImageError, match="too large"):
        load_image(p, max_pixels=80_000_000)


def test_missing_file_and_folder_are_clear_errors(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)


def test_cmyk_jpeg_becomes_rgb():
    img = _gradient().convert("CMYK")
    loaded = load_image(_jpeg(img))
    assert loaded.rgb.shape == (48, 64, 3) and loaded.rgb.dtype == np.uint8
    # the red ramp survives the CMYK round trip
    assert loaded.rgb[:, -1, 0].mean() > 200 and loaded.rgb[:, 0, 0].mean() < 60


def test_exif_rotated_photo_is_turned_upright():
    img = _gradient(64, 48)  # landscape, red increases to the right
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    loaded = load_image(_jpeg(img, exif=exif.tobytes()))
    assert loaded.rgb.shape == (64, 48, 3)  # portrait after orientation
    # after a 90 degree clockwise turn the ramp runs top to bottom
    assert loaded.rgb[-1, :, 0].mean() > loaded.rgb[0, :, 0].mean() + 100


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "L", "1", "I;16", "I", "F"])
def test_every_pillow_mode_becomes_rgb_uint8(mode):
    base = _gradient()
    if mode == "I;16":
        img = Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 257).convert("I;16")
    elif mode in ("I", "F"):
        img = base.convert("L").convert(mode)
    else:
        img = base.convert(mode)
    buf = io.BytesIO()
    img.save(buf, "TIFF" if mode in ("I;16", "I", "F") else "PNG")
    loaded = load_image(buf.getvalue())
    assert loaded.rgb.shape == (48, 64, 3) and loaded.rgb.dtype == np.uint8
    if mode not in ("1", "P"):
        assert loaded.rgb[:, -1].mean() > loaded.rgb[:, 0].mean()  # the ramp is still there


def test_transparent_pixels_are_laid_on_white():
    img = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    assert load_image(buf.getvalue()).rgb.min() == 255


def test_webp_named_jpg_is_read_by_content(tmp_path):
    p = tmp_path / "photo.jpg"
    _gradient().save(p, "WEBP")
    loaded = load_image(p)
    assert loaded.format == "WEBP" and loaded.rgb.shape == (48, 64, 3)


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    rgb = load_image(buf.getvalue()).rgb
    assert rgb[..., 0].mean() > 200 and rgb[..., 2].mean() < 50


def test_sha256_and_size_describe_the_file(tmp_path):
    import hashlib

    data = _jpeg(_gradient())
    loaded = load_image(data)
    assert loaded.sha256 == hashlib.sha256(data).hexdigest() and loaded.size_bytes == len(data)


def test_downscale_maps_back_to_original_coordinates():
    rgb = np.zeros((3000, 4000, 3), np.uint8)
    small, factor = downscale(rgb, 1000)
    assert max(small.shape[:2]) == 1000
    assert factor == pytest.approx(4.0)
    same, f1 = downscale(rgb[:500, :500], 1000)
    assert f1 == 1.0 and same.shape == (500, 500, 3)


def test_folder_walk_is_sorted_and_skips_non_images(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "2.jpg").write_bytes(b"x")
    (tmp_path / "a" / "1.png").write_bytes(b"x")
    (tmp_path / "a" / "readme.txt").write_text("x")
    (tmp_path / "a" / ".hidden.jpg").write_bytes(b"x")
    names = [p.name for p in iter_image_files(tmp_path)]
    assert names == ["1.png", "2.jpg"]


@pytest.mark.parametrize(("side", "limit", "said"), [(10000, 80_000_000, "80 megapixels"),
                                                     (20000, 80_000_000, "80 megapixels"),
                                                     (3000, 2_500_000, "2.5 megapixels")])
def test_the_pixel_limit_error_quotes_the_configured_limit(side, limit, said):
    with pytest.raises(ImageError) as err:
        load_image(png_header_only(side, side), max_pixels=limit)
    assert err.value.code == "image_too_large"
    assert f"limit of {said}" in str(err.value) and "89478485" not in str(err.value)
    assert f"{side * side / 1e6:.3g} megapixels" in str(err.value)
