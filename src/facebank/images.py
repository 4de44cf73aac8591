"""Photo bytes -> RGB uint8 array, surviving what real photo folders contain.

Handles EXIF orientation, every Pillow mode (RGBA/LA/P/CMYK/16-bit/grayscale/float) to RGB,
content sniffing (a WebP named .jpg is still read), animated images (first frame), a pixel limit
checked from the header BEFORE decoding (decompression bombs), and gives one clear
``ImageError`` for empty, truncated, corrupt and non-image files.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import stat
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from facebank import dbfiles
from facebank.folders import IMAGE_SUFFIXES, is_image_path, iter_image_files

__all__ = ["IMAGE_SUFFIXES", "ImageError", "LoadedImage", "decode", "downscale", "is_image_path",
           "iter_image_files", "load_image", "read_bytes", "to_rgb"]

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 80_000_000  # 80 megapixels: bigger than any phone photo, far below a bomb
MAX_FILE_BYTES = 512 * 1024 * 1024  # no photo file is this big; reading stops here (memory bound)


class ImageError(ValueError):
    """A photo that cannot be used, with a reason a person can act on.

    ``code`` is stable for programs: empty_file, file_not_found, unreadable_file, not_an_image,
    image_too_large, truncated_image, corrupt_image.
    """

    def __init__(self, message: str, code: str = "corrupt_image") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """An RGB uint8 image (H, W, 3), upright, plus facts about the file it came from."""

    rgb: np.ndarray
    sha256: str
    size_bytes: int
    format: str
    scale: float = 1.0  # decoded shrunk: photo pixel = rgb pixel * scale
    full_size: tuple[int, int] | None = None  # the photo's own upright (width, height) when shrunk

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def photo_size(self) -> tuple[int, int]:
        """(width, height) of the photo itself, in its own pixels (upright)."""
        if self.full_size is not None:
            return self.full_size
        return round(self.width * self.scale), round(self.height * self.scale)


def read_bytes(source: str | Path | bytes, max_bytes: int = MAX_FILE_BYTES,
               within: str | Path | None = None) -> bytes:
    """The bytes of a photo file. Any failure to read it (missing, a folder, permission denied, an
    I/O error, a device or FIFO, a special file that has no data ready, bigger than ``max_bytes``)
    is an ``ImageError`` naming the file.

    ``within``: a real (resolved) folder the file must lie in. The file opened is checked, not its
    name: the real path of the open descriptor must be inside ``within`` (a link swapped in
    between the walk and this open cannot lead out), and the message names nothing outside."""
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    path = Path(source)
    if dbfiles.held_by_sqlite(path):  # opening and closing it would drop SQLite's locks on it
        raise ImageError(f"is a database in use (the gallery), not a photo: {path}", "unreadable_file")
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; regular files ignore the flag
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise ImageError(f"file not found: {path}", "file_not_found") from None
    except IsADirectoryError:
        raise ImageError(f"is a folder, not a photo: {path}", "file_not_found") from None
    except PermissionError:
        raise ImageError(f"permission denied: {path}", "unreadable_file") from None
    except OSError as exc:
        raise ImageError(f"cannot open {path}: {exc.strerror or exc}", "unreadable_file") from None
    try:
        if within is not None and not opened_inside(fd, within, path):
            raise ImageError(f"not read: {path} leads outside the folder it may be read from",
                             "outside_root")
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ImageError(f"is a folder, not a photo: {path}", "file_not_found")
        if not stat.S_ISREG(st.st_mode):
            raise ImageError(f"not a regular file (a device, FIFO or socket): {path}", "unreadable_file")
        if st.st_size == 0:
            # an empty file, or a kernel file (/proc, /sys) that shows no size: neither is a photo,
            # and reading the second kind may block, never end or consume data (/proc/kmsg)
            if _is_kernel_file(fd):
                raise ImageError(f"not a photo: {path} is a kernel file (/proc, /sys); not read",
                                 "unreadable_file")
            raise ImageError(f"empty file (0 bytes): {path}", "empty_file")
        data = _read_all(fd, path, max_bytes, st.st_size)
    finally:
        os.close(fd)
    return data


def _is_kernel_file(fd: int) -> bool:
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return False
    return real.startswith(("/proc/", "/sys/"))


def _read_all(fd: int, path: Path, max_bytes: int, size: int) -> bytes:
    """Every byte of an open regular file of ``size`` bytes (at most ``max_bytes`` + 1): a read
    that gives nothing (no data ready) or fewer bytes than the file holds is this file's error."""
    chunks: list[bytes] = []
    total = 0
    while total <= max_bytes:
        try:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
        except BlockingIOError:
            raise ImageError(f"cannot read {path}: no data ready (a special file, not a photo)",
                             "unreadable_file") from None
        except OSError as exc:
            raise ImageError(f"cannot read {path}: {exc.strerror or exc}", "unreadable_file") from None
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > max_bytes:
        raise ImageError(f"file too large: {path} is over {max_bytes // 2**20} MiB, no photo is",
                         "image_too_large")
    if total < size:
        raise ImageError(f"cannot read {path}: read {total} of its {size} bytes (the file shrank while "
                         "being read, or a read failed)", "unreadable_file")
    return b"".join(chunks)


def opened_inside(fd: int, folder: str | Path, path: str | Path | None = None) -> bool:
    """Does the open descriptor ``fd`` refer to a file inside the real folder ``folder``? Checked
    through ``/proc/self/fd`` (the file actually opened, whatever links its name went through);
    where there is no ``/proc``, by the real path of ``path`` AND its (device, inode) being the
    open file's."""
    real_root = Path(os.path.realpath(folder))
    try:
        real = Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        if path is None:
            return False
        real = Path(os.path.realpath(path))
        try:
            st, opened = os.stat(real), os.fstat(fd)
        except OSError:
            return False
        if (st.st_dev, st.st_ino) != (opened.st_dev, opened.st_ino):
            return False
    return real.is_absolute() and (real == real_root or real_root in real.parents)


def load_image(source: str | Path | bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Decode a photo file (or its bytes) to an upright RGB uint8 array.

    Raises ``ImageError`` with a clear reason for anything that is not a usable photo.
    """
    data = read_bytes(source)
    if not data:
        raise ImageError("empty file (0 bytes)", "empty_file")
    digest = hashlib.sha256(data).hexdigest()
    rgb, fmt = decode(data, max_pixels=max_pixels)
    return LoadedImage(rgb=rgb, sha256=digest, size_bytes=len(data), format=fmt)


def load_reduced(source: str | Path | bytes, min_side: int,
                 max_pixels: int = DEFAULT_MAX_PIXELS, any_format: bool = False,
                 sha256: str | None = None) -> LoadedImage:
    """Decode a photo at the smallest size the JPEG decoder can give whose longer side is still at
    least ``min_side`` (DCT scaling by 1/2, 1/4 or 1/8: a 16 MP photo needed at 1,280 px decodes at
    2,000 px in a fraction of the time and memory of a full decode). Other formats, and photos
    whose longer side is at most ``min_side`` (or ``min_side`` <= 0), decode whole, as
    ``load_image``. ``scale`` maps back: photo pixel = rgb pixel * scale; ``photo_size`` is the
    photo's own (upright) size. Same errors as ``load_image``.

    ``any_format``: other formats too are reduced, by the largest integer factor that keeps the
    longer side at least ``min_side``, right after decoding and before the RGB copy (the server:
    a 77 kB PNG of 8,900 x 8,900 pixels then costs its 79 MB grey decode, not 240 MB of RGB).

    ``sha256``: the digest of ``source``'s bytes when the caller has it already (not hashed again).
    """
    data = read_bytes(source)
    if not data:
        raise ImageError("empty file (0 bytes)", "empty_file")
    digest = sha256 or hashlib.sha256(data).hexdigest()
    rgb, fmt = decode(data, max_pixels=max_pixels, draft_min_side=max(0, min_side),
                      reduce_min_side=max(0, min_side) if any_format else 0)
    scale, size = 1.0, None
    if (fmt == "JPEG" or any_format) and 0 < min_side <= max(rgb.shape[:2]):  # never reduced below
        with Image.open(io.BytesIO(data)) as im:  # the header again: the photo's own size
            w, h = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF orientation turns it sideways
                w, h = h, w
        scale, size = max(w, h) / max(rgb.shape[:2]), (w, h)
    return LoadedImage(rgb=rgb, sha256=digest, size_bytes=len(data), format=fmt, scale=scale,
                       full_size=size)


def decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
           draft_min_side: int = 0, reduce_min_side: int = 0) -> tuple[np.ndarray, str]:
    try:
        with warnings.catch_warnings():
            # Pillow's own guard warns above its limit: an error here, unless ours is higher
            warnings.simplefilter("error" if max_pixels <= (Image.MAX_IMAGE_PIXELS or 0) else "ignore",
                                  Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            fmt = im.format or "unknown"
            w, h = im.size
            if w <= 0 or h <= 0:
                raise ImageError(f"invalid image size {w}x{h}", "corrupt_image")
            if w * h > max_pixels:
                raise ImageError(
                    f"image too large: {w}x{h} = {_mp(w * h)} megapixels exceeds the limit of "
                    f"{_mp(max_pixels)} megapixels (a decompression bomb or a huge scan)",
                    "image_too_large",
                )
            if getattr(im, "n_frames", 1) > 1:
                im.seek(0)  # animated GIF/WebP/TIFF: the first frame
            if draft_min_side and fmt == "JPEG" and max(w, h) > draft_min_side:
                k = max(w, h) / draft_min_side  # JPEG DCT scaling to a size >= draft_min_side
                im.draft(None, (max(1, round(w / k)), max(1, round(h / k))))
            im.load()
            frame: Image.Image = im
            if reduce_min_side and max(frame.size) >= 2 * reduce_min_side:
                frame = _reduce(frame, max(frame.size) // reduce_min_side)
            frame = ImageOps.exif_transpose(frame) or frame
            rgb = to_rgb(frame)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not an image: the file's content is no photo format Pillow can read",
                         "not_an_image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's message quotes Pillow's limit: say the configured one (and the size, if known)
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = int(found.group(1)) if found else 0
        size = f"{_mp(pixels)} megapixels" if pixels else "the image"
        if pixels and pixels <= max_pixels:  # allowed here, but beyond what the decoder opens
            opens = _mp(2 * (Image.MAX_IMAGE_PIXELS or 0))
            limit = f"the largest image the decoder opens ({opens} megapixels)"
        else:
            limit = f"the limit of {_mp(max_pixels)} megapixels"
        raise ImageError(f"image too large: {size} exceeds {limit} (a decompression bomb or a huge scan)",
                         "image_too_large") from None
    except OSError as exc:
        msg = str(exc)
        if "truncated" in msg.lower():
            raise ImageError(f"truncated image: the file ends before the picture does ({msg})",
                             "truncated_image") from None
        raise ImageError(f"corrupt image: {msg}") from None
    except (ValueError, SyntaxError, struct.error, MemoryError, TypeError, KeyError, IndexError,
            EOFError, ZeroDivisionError, OverflowError) as exc:
        # what Pillow's format plugins raise on damaged headers (found by tests/test_properties.py)
        raise ImageError(f"corrupt image: {type(exc).__name__}: {exc}") from None
    except Exception as exc:  # any other decoder failure is still this file's problem, not the batch's
        log.debug("unexpected decoder error", exc_info=True)
        raise ImageError(f"corrupt image: {type(exc).__name__}: {exc}") from None
    return rgb, fmt


def _mp(pixels: int) -> str:
    """Pixels as megapixels for messages: 80, 2.5, 0.3."""
    return f"{pixels / 1e6:.3g}"


def _reduce(im: Image.Image, factor: int) -> Image.Image:
    """The image shrunk by an integer factor in its own mode (box filter; nearest for modes such as
    P and 1 that reduce() does not take). EXIF metadata stays, so orientation is applied after."""
    try:
        return im.reduce(factor)
    except (ValueError, NotImplementedError):
        w, h = im.size
        return im.resize((max(1, w // factor), max(1, h // factor)), Image.Resampling.NEAREST)


def to_rgb(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> (H, W, 3) uint8 RGB. Transparent pixels are laid on white."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(np.min(arr)), float(np.max(arr))
        if mode.startswith("I;16"):
            lo, hi = 0.0, 65535.0
        elif hi <= lo:
            hi = lo + 1.0
        scaled = np.clip((arr - lo) / (hi - lo) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.stack([scaled] * 3, axis=-1))
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    if im.mode != "RGB":
        im = im.convert("RGB")  # L, 1, P, CMYK (Pillow inverts Adobe CMYK JPEGs), YCbCr, LAB, HSV
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def downscale(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Shrink so the longer side is at most ``max_side``. Returns (image, factor) with
    ``original_coordinate = small_coordinate * factor``."""
    h, w = rgb.shape[:2]
    side = max(h, w)
    if max_side <= 0 or side <= max_side:
        return rgb, 1.0
    import cv2

    scale = max_side / side
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return small, side / max_side


ImageFile.LOAD_TRUNCATED_IMAGES = False
