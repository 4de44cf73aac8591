"""Draw boxes and names on a photo (for --annotate, the demo and the web page)."""

from __future__ import annotations

import functools
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
        x1, y1, x2, y2 = f.face.box.as_list()
        color = KNOWN if f.match.name else UNKNOWN
        draw.rectangle([x1, y1, x2, y2], outline=color, width=width)
        d = f.match.distance
        label = f"{f.match.name or 'unknown'}" + (f" {d:.2f}" if np.isfinite(d) else "")
        tb = draw.textbbox((0, 0), label, font=font)
        th, tw = tb[3] - tb[1], tb[2] - tb[0]
        ty = y1 - th - 2 * width if y1 - th - 2 * width >= 0 else y2
        draw.rectangle([x1, ty, x1 + tw + 2 * width, ty + th + 2 * width], fill=color)
        draw.text((x1 + width, ty + width - tb[1]), label, fill=(255, 255, 255), font=font)
    return im


def face_thumbnail(rgb: np.ndarray, box: tuple[float, float, float, float] | None, size: int) -> Image.Image:
    """The face (its box plus a quarter of its side around it) or the whole photo, longer side
    at most ``size`` pixels."""
    im = Image.fromarray(rgb).convert("RGB")
    if box is not None:
        x1, y1, x2, y2 = box
        m = 0.25 * max(x2 - x1, y2 - y1)
        im = im.crop((max(0, int(x1 - m)), max(0, int(y1 - m)), min(im.width, int(x2 + m)),
                      min(im.height, int(y2 + m))))
    im.thumbnail((size, size))
    return im
