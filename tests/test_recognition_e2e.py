"""End-to-end on the real photos in ../shared/faces: enroll, identify, edge cases, bad input."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facebank import FaceBank
from facebank.gallery.sqlite import SqliteGallery
from facebank.images import iter_image_files


def test_5celeb_val_is_named_correctly_and_every_photo_has_a_face(celeb_gallery, faces_dir):
    fb = FaceBank(celeb_gallery)
    paths = list(iter_image_files(faces_dir / "5celeb" / "val"))
    assert len(paths) == 25
    correct = 0
    for result in fb.identify_many(paths):
        assert result.error is None and result.faces, f"no face in {result.path}"
        best = min(result.faces, key=lambda f: f.match.distance)
        correct += best.match.name == Path(result.path).parent.name
    assert correct / len(paths) >= 0.96, f"top-1 {correct}/{len(paths)}"


def test_photos_without_faces_report_none(celeb_gallery, faces_dir):
    fb = FaceBank(celeb_gallery)
    paths = list(iter_image_files(faces_dir / "detection_edge" / "no_face"))
    results = list(fb.identify_many(paths))
    assert len(results) == len(paths) >= 10
    for r in results:
        assert r.error is None and r.faces == (), f"{r.path}: {r.faces}"


def test_group_photos_give_at_least_two_faces_each(celeb_gallery, faces_dir):
    fb = FaceBank(celeb_gallery)
    paths = list(iter_image_files(faces_dir / "detection_edge" / "multi_face"))
    for r in fb.identify_many(paths):
        assert r.error is None
        assert len(r.faces) >= 2, f"{r.path}: {len(r.faces)} faces"
        named = [f.match.name for f in r.faces if f.match.name]
        assert len(named) == len(set(named)), "one person named twice in one photo"


def make_bad_corpus(folder: Path, faces_dir: Path) -> dict[str, str]:
    """Bad and odd files; value = what must happen ('error' or 'ok')."""
    from tests.test_images import png_header_only

    folder.mkdir(parents=True)
    good = next(iter_image_files(faces_dir / "5celeb" / "val" / "madonna"))
    data = good.read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("hello, I am a text file\n")
    (folder / "bomb.png").write_bytes(png_header_only(20000, 20000))
    rgb = Image.open(good).convert("RGB")
    rgb.convert("CMYK").save(folder / "cmyk.jpg")
    exif = Image.Exif()
    exif[0x0112] = 8  # stored rotated: displays after a 90 degree turn
    rgb.rotate(-90, expand=True).save(folder / "rotated.jpg", exif=exif.tobytes())
    shutil.copy(good, folder / "good.jpg")
    return {"truncated.jpg": "error", "zero.jpg": "error", "text.jpg": "error", "bomb.png": "error",
            "cmyk.jpg": "ok", "rotated.jpg": "ok", "good.jpg": "ok"}


def test_bad_input_batch_finishes_with_clear_errors_and_a_consistent_gallery(tmp_path, faces_dir):
    expect = make_bad_corpus(tmp_path / "photos" / "madonna", faces_dir)
    for odd in iter_image_files(faces_dir / "detection_edge" / "partial_or_odd"):
        shutil.copy(odd, tmp_path / "photos" / "madonna" / f"odd_{odd.name}")
    fb = FaceBank(tmp_path / "g.db")
    report = fb.enroll_folder(tmp_path / "photos")
    problems = {Path(p).name: reason for p, reason in report.problems}
    for name, outcome in expect.items():
        if outcome == "error":
            assert name in problems and problems[name], f"{name} should be reported"
        else:
            assert name not in problems, f"{name}: {problems.get(name)}"
    assert "too large" in problems["bomb.png"] and "empty" in problems["zero.jpg"]
    assert "not an image" in problems["text.jpg"]
    assert report.photos_seen == len(list(iter_image_files(tmp_path / "photos")))
    g = SqliteGallery(tmp_path / "g.db")
    assert g.integrity() == []
    # the three readable photos of the same person are recognised as her
    fb2 = FaceBank(tmp_path / "g.db")
    for name in ("cmyk.jpg", "rotated.jpg"):
        r = fb2.identify(tmp_path / "photos" / "madonna" / name)
        assert r.faces and r.faces[0].match.name == "madonna"
    # a rerun does nothing new and reports nothing twice
    again = fb2.enroll_folder(tmp_path / "photos")
    assert again.faces_added == 0 and again.photos_skipped_known + len(again.problems) == report.photos_seen


def test_partial_and_odd_photos_get_a_result_or_a_clear_error(celeb_gallery, faces_dir):
    fb = FaceBank(celeb_gallery)
    paths = list(iter_image_files(faces_dir / "detection_edge" / "partial_or_odd"))
    results = list(fb.identify_many(paths))
    assert len(results) == len(paths)
    for r in results:
        assert r.error is None or len(r.error) > 10
    found = sum(bool(r.faces) for r in results)
    assert found >= len(paths) - 2


def test_identify_accepts_arrays_and_bytes(celeb_gallery, faces_dir):
    fb = FaceBank(celeb_gallery)
    path = next(iter_image_files(faces_dir / "5celeb" / "val" / "elton_john"))
    by_bytes = fb.identify(path.read_bytes())
    by_array = fb.identify(np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB")))
    assert by_bytes.faces[0].match.name == by_array.faces[0].match.name == "elton_john"


def test_verify_says_same_and_different(faces_dir):
    import itertools

    fb = FaceBank(":memory:")
    people = ("madonna", "jerry_seinfeld", "mindy_kaling")
    photos = {p: list(iter_image_files(faces_dir / "5celeb" / "val" / p))[:3] for p in people}
    same = [fb.verify(a, b) for p in people for a, b in itertools.combinations(photos[p], 2)]
    diff = [fb.verify(photos[p][0], photos[q][i]) for p, q in itertools.combinations(people, 2)
            for i in range(3)]
    assert sum(v.same for v in same) >= 0.75 * len(same)
    assert not any(v.same for v in diff)
    assert max(v.distance for v in same) < min(v.distance for v in diff) + 0.1
    with pytest.raises(ValueError, match="no face"):
        fb.verify(photos["madonna"][0], next(iter_image_files(faces_dir / "detection_edge" / "no_face")))


def test_huge_photos_are_searched_shrunk_with_boxes_in_original_pixels(faces_dir):
    from facebank.pipeline import FacePipeline

    path = next(iter_image_files(faces_dir / "5celeb" / "val" / "madonna"))
    small = np.asarray(Image.open(path).convert("RGB"))
    factor = 4000 / max(small.shape[:2])
    big = np.asarray(Image.fromarray(small).resize((round(small.shape[1] * factor),
                                                     round(small.shape[0] * factor))))
    pipe = FacePipeline()
    (a,) = pipe.faces(small)[:1]
    (b,) = pipe.faces(big)[:1]
    assert b.box.iou(a.box.scaled(factor)) > 0.8
    assert float(np.linalg.norm(a.embedding - b.embedding)) < 0.25  # the same face


def test_crop_fallback_is_used_only_when_asked_or_for_small_crops_and_is_flagged(faces_dir):
    from facebank import Settings
    from facebank.pipeline import FacePipeline

    crop = next(iter_image_files(faces_dir / "kpop15" / "train"))
    always = FacePipeline(Settings(crop_fallback="always")).photo(crop)
    assert len(always.faces) == 1 and always.faces[0].fallback
    never = FacePipeline(Settings(crop_fallback="never")).photo(faces_dir / "detection_edge" / "no_face"
                                                                / "skimage_coins.png")
    assert never.faces == ()
    auto = FacePipeline(Settings(crop_fallback="auto")).photo(faces_dir / "detection_edge" / "no_face"
                                                              / "skimage_coins.png")
    assert auto.faces == ()  # 384x303 coins: not a face crop
