"""Draw boxes and names on a photo (for --annotate, the demo and the web page)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from facebank.types import PhotoResult

KNOWN = (40, 200, 80)
UNKNOWN = (230, 60, 50)


@functools.lru_cache(maxsize=8)
def label_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:  # matplotlib ships DejaVu Sans: wide Unicode coverage, no system font needed
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        return ImageFont.truetype(str(path), size)
    except Exception:
        return ImageFont.load_default()


def annotate(rgb: np.ndarray, result: PhotoResult) -> Image.Image:
    im = Image.fromarray(rgb).convert("RGB")
    draw = ImageDraw.Draw(im)
    side = max(im.size)
    width = max(2, side // 300)
    font = label_font(max(12, side // 40))
    for f in result.faces:
        d = f.match.distance
        label = f"{f.match.name or 'unknown'}" + (f" {d:.2f}" if np.isfinite(d) else "")
        labelled_box(draw, f.face.box.as_list(), label, KNOWN if f.match.name else UNKNOWN, font, width)
    return im


def labelled_box(draw: ImageDraw.ImageDraw, box: Sequence[float] | np.ndarray, label: str,
                 color: tuple[int, int, int], font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
                 width: int) -> None:
    """A box outline of ``width`` pixels with ``label`` in white on ``color`` above it (below when
    there is no room above)."""
    x1, y1, x2, y2 = box
    draw.rectangle([x1, y1, x2, y2], outline=color, width=width)
    tb = draw.textbbox((0, 0), label, font=font)
    th, tw = tb[3] - tb[1], tb[2] - tb[0]
    ty = y1 - th - 2 * width if y1 - th - 2 * width >= 0 else y2
    draw.rectangle([x1, ty, x1 + tw + 2 * width, ty + th + 2 * width], fill=color)
    draw.text((x1 + width, ty + width - tb[1]), label, fill=(255, 255, 255), font=font)


def face_crop(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """The face's box plus a quarter of its side around it, inside a ``width`` x ``height`` photo."""
    x1, y1, x2, y2 = box
    m = 0.25 * max(x2 - x1, y2 - y1)
    return max(0, int(x1 - m)), max(0, int(y1 - m)), min(width, int(x2 + m)), min(height, int(y2 + m))


def face_thumbnail(rgb: np.ndarray, box: tuple[float, float, float, float] | None, size: int) -> Image.Image:
    """The face (``face_crop``) or the whole photo, longer side at most ``size`` pixels."""
    im = Image.fromarray(rgb).convert("RGB")
    if box is not None:
        im = im.crop(face_crop(box, im.width, im.height))
    im.thumbnail((size, size))
    return im
