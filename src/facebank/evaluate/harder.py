"""Harder libraries for clustering benchmarks: a fixed share of a labelled set's photos made worse.

The recipe and the seed were fixed before the first measured run (issue 21, "Clustering recall") and
must not be tuned on any result: each photo is picked (or not) and given ONE degradation by a random
generator seeded with ``HARDER_SEED`` and the photo's ``person/file`` name, so the same photo gets the
same change on every machine and in every run, whatever else the set holds.

Degradations (``HARDER_RECIPE``; sizes relative to the photo, so crops and full photos alike):

* ``rotate``: 12-30 degrees either way, about the centre, corners filled black;
* ``blur``: Gaussian blur, radius 1-2 % of the photo's shorter side;
* ``downscale``: shrunk to 25-45 % of its size (bilinear) and back to its size (the detail is lost);
* ``tint``: blended 25-45 % with one strong colour, and brightness x 0.6-1.1;
* ``crop``: 12-25 % cut off one or two sides.

The changed photos are written as JPEG (quality 90) under ``out_dir/<person>/``; unchanged photos
keep their own path, so the evaluation cache only embeds the changed ones.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

HARDER_SEED = 2112  # fixed before the first measured run; never tuned
HARDER_SHARE = 0.3  # share of each set's photos changed
HARDER_RECIPE = ("rotate", "blur", "downscale", "tint", "crop")
_TINTS = ((255, 140, 40), (60, 120, 255), (80, 255, 120), (255, 60, 200), (40, 40, 40))


@dataclass(frozen=True)
class HarderPhoto:
    """One photo of a harder library: its label, the file to read, and what was done (``""`` = none)."""

    person: str
    path: Path
    change: str


def photo_rng(person: str, name: str, seed: int = HARDER_SEED) -> np.random.Generator:
    """The random generator of one photo: from the seed and its ``person/name`` only."""
    digest = hashlib.sha256(f"{seed}/{person}/{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def degrade(image: Image.Image, change: str, rng: np.random.Generator) -> Image.Image:
    """``image`` (a PIL RGB image) with one degradation of ``HARDER_RECIPE`` drawn from ``rng``."""
    from PIL import Image, ImageEnhance, ImageFilter

    assert isinstance(image, Image.Image)
    w, h = image.size
    if change == "rotate":
        angle = float(rng.uniform(12, 30)) * (1 if rng.random() < 0.5 else -1)
        return image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))
    if change == "blur":
        radius = max(1.0, float(rng.uniform(0.01, 0.02)) * min(w, h))
        return image.filter(ImageFilter.GaussianBlur(radius=radius))
    if change == "downscale":
        f = float(rng.uniform(0.25, 0.45))
        small = image.resize((max(8, round(w * f)), max(8, round(h * f))), Image.Resampling.BILINEAR)
        return small.resize((w, h), Image.Resampling.BILINEAR)
    if change == "tint":
        colour = _TINTS[int(rng.integers(len(_TINTS)))]
        tinted = Image.blend(image, Image.new("RGB", (w, h), colour), float(rng.uniform(0.25, 0.45)))
        return ImageEnhance.Brightness(tinted).enhance(float(rng.uniform(0.6, 1.1)))
    if change == "crop":
        cut = [0.0, 0.0, 0.0, 0.0]  # left, top, right, bottom
        for side in rng.choice(4, size=int(rng.integers(1, 3)), replace=False):
            cut[int(side)] = float(rng.uniform(0.12, 0.25))
        box = (round(w * cut[0]), round(h * cut[1]), round(w * (1 - cut[2])), round(h * (1 - cut[3])))
        return image.crop(box)
    raise ValueError(f"unknown degradation {change!r}: one of {', '.join(HARDER_RECIPE)}")


def harder_library(pairs: Sequence[tuple[str, Path]], out_dir: str | Path, share: float = HARDER_SHARE,
                   seed: int = HARDER_SEED) -> list[HarderPhoto]:
    """The photos ``(person, path)`` with ``share`` of them degraded (written under ``out_dir``), in order.

    A photo that cannot be read is kept as it is (the embedding step counts it as a failure)."""
    from PIL import Image, ImageOps

    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be within 0..1, not {share}")
    out = Path(out_dir)
    result: list[HarderPhoto] = []
    for person, path in pairs:
        path = Path(path)
        rng = photo_rng(person, path.name, seed)
        if rng.random() >= share:
            result.append(HarderPhoto(person, path, ""))
            continue
        change = HARDER_RECIPE[int(rng.integers(len(HARDER_RECIPE)))]
        target = out / person / f"{path.stem}.{change}.jpg"
        if not target.is_file():
            try:
                with Image.open(path) as im:
                    image = ImageOps.exif_transpose(im).convert("RGB")
            except (OSError, ValueError) as exc:
                log.warning("%s: unreadable (%s); kept as it is", path, exc)
                result.append(HarderPhoto(person, path, ""))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            degrade(image, change, rng).save(tmp, "JPEG", quality=90)
            tmp.replace(target)
        result.append(HarderPhoto(person, target, change))
    return result
