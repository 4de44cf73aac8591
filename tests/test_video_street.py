"""Real footage: ../shared/faces/video/street_1080p.mp4 (4.2 s, 1080p, people walking towards the
camera in an arcade, no cut). No track may hold two people: judged by the OTHER model (the shared
MobileFaceNet re-embeds every face of every track, face by face; the tracker's dlib embeddings
decided the links and cannot judge them). A track holds two people when, at some moment, the mean
MobileFaceNet embedding of its faces before and of its faces after (three at least each) are
farther apart than its same-person distance. (Single faces are not compared pairwise: small,
blurred and turning faces of one person are often farther apart than that; by eye, every track of
the footage flagged so was one person, except the switch this test was written for: a woman
walking past in front of a man, whose track continued on him.) Every-frame figures:
bench/bench_video_street.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")

from facebank import FaceBank, align  # noqa: E402
from facebank.video import analyze_video  # noqa: E402

pytestmark = pytest.mark.shared

# counted by eye once (frames 0, 35, 70 and 104 viewed at 960x540): people whose face is visible and
# large enough to name at some moment; a few tiny faces far behind are not counted
STREET_PEOPLE = 11
# MobileFaceNet's same-person L2 distance (../shared/models/README.md: LFW threshold near 1.19)
MFN_SAME_L2 = 1.19
MFN_CARD = {"name": "mobilefacenet-foamliu", "input_size": 112, "output_dim": 128,
            "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375], "channels": "RGB",
            "layout": "NCHW", "template": "arcface"}


@pytest.fixture(scope="module")
def mobilefacenet(faces_dir, tmp_path_factory):
    from facebank.embed.onnx import OnnxEmbedder

    model = Path(faces_dir).parent / "models" / "mobilefacenet" / "MobileFaceNet.onnx"
    if not model.is_file():
        pytest.skip(f"{model} not found")
    card = tmp_path_factory.mktemp("mfn") / "MobileFaceNet.json"
    card.write_text(json.dumps(MFN_CARD))
    return OnnxEmbedder(model, card=card)


@pytest.fixture(scope="module")
def street(faces_dir, tmp_path_factory, mobilefacenet):
    other: dict[tuple[float, tuple[int, ...]], np.ndarray] = {}

    def on_faces(frame, faces) -> None:
        for f in faces:
            if f.landmarks is not None:
                chip = align.align(frame.rgb, f.box, f.landmarks, mobilefacenet.chip)
                key = (round(frame.time_s, 3), tuple(int(round(v)) for v in f.box.as_list()))
                other[key] = mobilefacenet.embed(chip[None])[0]

    with FaceBank(tmp_path_factory.mktemp("street") / "empty.db") as fb:
        res = analyze_video(fb, faces_dir / "video" / "street_1080p.mp4", fps=5.0, on_faces=on_faces)
    return res, other


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def change_of_person(e: np.ndarray, least: int = 3) -> tuple[float, int]:
    """(largest L2 between the mean unit embedding before and after a moment, that moment)."""
    e = np.stack([_unit(x) for x in e])
    return max(((float(np.linalg.norm(_unit(e[:k].mean(0)) - _unit(e[k:].mean(0)))), k)
                for k in range(least, len(e) - least + 1)), default=(0.0, 0))


def test_no_track_of_the_street_footage_holds_two_people(street):
    res, other = street
    checked = 0
    for t in res.tracks:
        keys = [(round(tm, 3), tuple(int(round(v)) for v in box))
                for tm, box in zip(t.times_s.tolist(), t.boxes.tolist(), strict=True)]
        e = [other[k] for k in keys if k in other]
        if len(e) < 6:
            continue
        checked += 1
        far, at = change_of_person(np.stack(e))
        assert far <= MFN_SAME_L2, f"track #{t.id} ({t.frames} frames) changes person at face {at}: {far:.2f}"
    assert checked >= 4


def test_the_street_footage_has_no_cut_and_about_as_many_people_as_counted_by_eye(street):
    res, _ = street
    assert res.cuts_s == ()
    people = {res.label(t) for t in res.tracks if t.frames >= 5}
    assert 4 <= len(people) <= STREET_PEOPLE + 3, [t.to_json() for t in res.tracks]
