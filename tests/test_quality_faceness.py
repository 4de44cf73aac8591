"""The 'not a face' classifier of the embedding model (facebank.quality, issue 21): made non-faces
are flagged, real faces of 5celeb are not, a damaged or missing classifier file flags nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facebank import quality


def _doc(model_id: str = "m", **kw) -> str:
    doc = {"model_id": model_id, "weights": [1.0, 0.0, 0.0], "bias": 0.0, "threshold": 0.5}
    doc.update(kw)
    return json.dumps(doc)


def test_classifier_file_is_read_and_scores_linearly():
    m = quality.parse_faceness(_doc(bias=0.25), "m")
    assert m.score(np.array([1.0, 0.0, 0.0])) == pytest.approx(1.25)
    assert m.threshold == 0.5


@pytest.mark.parametrize("text, words", [
    ("{not json", "not JSON"),
    ("[1, 2]", "JSON object"),
    (_doc("other"), "not 'm'"),
    (_doc(weights=[]), "'weights'"),
    (_doc(weights=[1.0, "x"]), "'weights'"),
    (_doc(weights=[1.0, 1e999]), "finite"),
    (_doc(bias=None), "'bias'"),
    (_doc(threshold=True), "'threshold'"),
    (_doc(threshold=float("nan")), "'threshold'"),
])
def test_a_damaged_classifier_file_is_refused_saying_why(text, words):
    with pytest.raises(ValueError, match=words):
        quality.parse_faceness(text, "m")


def test_a_model_without_classifier_or_odd_embedding_is_never_flagged():
    assert quality.faceness_model("no-such-model") is None
    assert not quality.not_face_by_embedding(np.ones(128, np.float32), "no-such-model")
    assert not quality.not_face_by_embedding(None, "dlib-resnet-v1")
    assert not quality.not_face_by_embedding(np.ones(7, np.float32), "dlib-resnet-v1")
    assert not quality.not_face_by_embedding(np.full(128, np.nan, np.float32), "dlib-resnet-v1")


def test_a_model_id_cannot_name_a_file_outside_the_classifier_folder():
    path = quality.faceness_path("../../etc/passwd")
    assert path.parent == quality.FACENESS_DIR and "/" not in path.name


def test_the_shipped_classifier_of_the_default_model_loads():
    m = quality.faceness_model("dlib-resnet-v1")
    assert m is not None and m.weights.shape == (128,)


@pytest.fixture(scope="module")
def pipe():
    from facebank.pipeline import FacePipeline
    from facebank.settings import Settings

    return FacePipeline(Settings(threads=1))


def _textures() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(21)
    y, x = np.mgrid[:200, :200]
    stripes = ((np.sin(x / 4.0 + y / 9.0) + 1) * 127).astype(np.uint8)
    return {
        "noise": rng.integers(0, 256, (200, 200, 3), dtype=np.uint8),
        "stripes": np.dstack([stripes, stripes // 2, 255 - stripes]),
        "checker": (((x // 20 + y // 20) % 2) * 255).astype(np.uint8)[..., None].repeat(3, 2),
    }


@pytest.mark.parametrize("name", sorted(_textures()))
def test_a_made_texture_taken_as_a_face_is_flagged_not_a_face(pipe, name):
    faces = pipe.faces(_textures()[name])
    assert faces, "a small square photo with no face is taken whole (crop fallback)"
    assert all(f.quality is not None and f.quality.flag == "not_face" for f in faces)


def test_a_texture_is_not_flagged_when_the_user_says_every_photo_is_a_face():
    from facebank.pipeline import FacePipeline
    from facebank.settings import Settings

    faces = FacePipeline(Settings(threads=1, crop_fallback="always")).faces(_textures()["noise"])
    assert len(faces) == 1 and faces[0].quality is not None and faces[0].quality.flag is None


@pytest.mark.shared
def test_real_faces_of_5celeb_are_not_flagged_not_a_face(pipe, faces_dir):
    from facebank import images

    flagged, seen = [], 0
    for path in sorted((faces_dir / "5celeb" / "val").rglob("*.jpg")):
        faces = pipe.faces(images.load_image(path).rgb)
        if not faces:
            continue
        seen += 1
        best = max(faces, key=lambda f: f.box.area)
        if quality.not_face_by_embedding(best.embedding, best.model_id):
            flagged.append(path.name)
    assert seen >= 20
    assert len(flagged) <= 0.02 * seen, flagged


def test_the_size_floor_counts_photo_pixels_not_the_pixels_of_a_shrunk_decode():
    from facebank.types import Box, Detection

    det = Detection(Box(0.0, 0.0, 20.0, 20.0), 0.99, "mtcnn", None)
    rng = np.random.default_rng(3)
    chip = rng.integers(0, 256, (150, 150, 3), dtype=np.uint8)
    small = quality.measure(det, None, chip, 0.25)
    big = quality.measure(det, None, chip, 0.25, scale=3.0)  # the photo was decoded shrunk 3 times
    assert small.size_px == 20.0 and small.flag == "low_quality"
    assert big.size_px == 60.0 and big.flag is None
