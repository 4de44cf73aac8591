"""Decision rules over the gallery and the operating point estimated from the gallery itself."""

from __future__ import annotations

import numpy as np
import pytest

from facebank import decide
from facebank.gallery.base import Embeddings
from facebank.gallery.index import ExactIndex, PersonDistances
from facebank.identify import assign


def unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def synthetic_gallery(people: int = 12, per_person: int = 6, dim: int = 32, spread: float = 0.35,
                      seed: int = 0) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Faces scattered around one random centre per person; returns vectors, names, centres."""
    rng = np.random.default_rng(seed)
    centres = unit_rows(rng.normal(size=(people, dim)))
    vecs, names = [], []
    for j in range(people):
        v = unit_rows(centres[j] + spread * rng.normal(size=(per_person, dim)) / np.sqrt(dim))
        vecs.append(v)
        names += [f"p{j:02d}"] * per_person
    return np.concatenate(vecs), names, centres


def test_gallery_faces_person_distances_match_the_exact_index():
    vecs, names, _ = synthetic_gallery()
    rng = np.random.default_rng(1)
    q = unit_rows(rng.normal(size=(7, vecs.shape[1])))
    order = rng.permutation(len(names))  # GalleryFaces needs no sorted labels
    g = decide.gallery_faces(vecs[order], [names[i] for i in order])
    mine = g.person_distances(q)
    ref = ExactIndex(Embeddings(vecs, tuple(names), np.arange(len(names)))).person_distances(q)
    assert mine.people == ref.people
    np.testing.assert_allclose(mine.nearest, ref.nearest, atol=1e-5)
    np.testing.assert_allclose(mine.mean, ref.mean, atol=1e-5)


@pytest.mark.parametrize("name", decide.available())
def test_every_rule_ranks_people_like_the_distance_on_a_clear_case(name):
    vecs, names, centres = synthetic_gallery()
    g = decide.gallery_faces(vecs, names)
    rule = decide.create(name).fit(g)
    s = rule.scores(g.person_distances(centres))
    assert s.shape == (len(centres), len(g.people))
    assert (np.argmin(s, axis=1) == np.arange(len(centres))).all()


def test_margin_rule_penalises_a_face_between_two_people():
    # same distance 0.5 to the best person; one face is far from everyone else, one is not
    near = np.array([[0.5, 1.2, 1.3], [0.5, 0.55, 1.3]])
    s = decide.create("margin", weight=1.0).scores(PersonDistances(("a", "b", "c"), near, near))
    assert s[0, 0] < s[1, 0]
    assert s[0, 0] == pytest.approx(0.5 - 0.7) and s[1, 0] == pytest.approx(0.5 - 0.05)


def test_tnorm_standardises_against_the_other_people():
    near = np.array([[0.4, 1.0, 1.1, 1.2, 0.9]])
    s = decide.create("tnorm", cohort=4).scores(PersonDistances(tuple("abcde"), near, near))
    coh = near[0, 1:]
    assert s[0, 0] == pytest.approx((0.4 - coh.mean()) / coh.std())


def test_calibrated_threshold_names_about_the_target_share_of_new_strangers():
    vecs, names, _ = synthetic_gallery(people=40, per_person=5, seed=2)
    g = decide.gallery_faces(vecs, names)
    rule = decide.create("distance")
    point = decide.calibrate_gallery(rule, g, far=0.05)
    assert point.source == "gallery" and point.people == 40
    # fresh strangers drawn the same way as the gallery's people
    strangers, _, _ = synthetic_gallery(people=200, per_person=2, seed=3)
    best = rule.scores(g.person_distances(strangers)).min(axis=1)
    far = float((best <= point.threshold).mean())
    assert far <= 0.10, far  # target 5 %: the estimate is in the right range
    assert far > 0.0 or point.threshold < best.min()


def test_too_small_a_gallery_falls_back_to_the_rule_default():
    vecs, names, _ = synthetic_gallery(people=2)
    point = decide.calibrate_gallery(decide.create("distance"), decide.gallery_faces(vecs, names))
    assert point.source == "default" and point.threshold == decide.create("distance").default_threshold


def test_a_user_threshold_overrides_the_estimate():
    vecs, names, _ = synthetic_gallery()
    d = decide.decision_for(vecs, names, "distance", 0.01, threshold=0.42)
    assert d.point.source == "settings" and d.point.threshold == 0.42


def test_decision_names_with_scores_and_keeps_the_raw_distance():
    vecs, names, centres = synthetic_gallery()
    d = decide.decision_for(vecs, names, "tnorm", 0.01)
    index = ExactIndex(Embeddings(vecs, tuple(names), np.arange(len(names))))
    matches = d.name(index.person_distances(centres[:3]))
    for j, m in enumerate(matches):
        assert m.name == f"p{j:02d}"
        assert m.decision_score is not None and m.decision_score <= d.point.threshold
        assert m.distance == pytest.approx(m.nearest_face_distance)  # distance stays raw L2


def test_assign_with_negative_scores_still_pairs_one_person_per_face():
    near = np.array([[0.2, 0.9], [0.25, 0.3]])
    scores = np.array([[-5.0, -1.0], [-4.0, -3.5]])
    ms = assign(PersonDistances(("a", "b"), near, near), threshold=-3.0, scores=scores)
    assert [m.name for m in ms] == ["a", "b"]  # b would also prefer a; the pairing gives b to it


def test_parse_reads_rule_options_and_rejects_bad_ones():
    r = decide.parse("margin:weight=1.5,combine=mean")
    assert r.key() == "margin:mean:w=1.5"
    with pytest.raises(ValueError, match="unknown decision rule"):
        decide.parse("nope")
    with pytest.raises(ValueError, match="field=value"):
        decide.parse("margin:weight")
    with pytest.raises(ValueError, match="bad parameters"):
        decide.parse("margin:colour=1")
