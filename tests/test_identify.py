"""Identification: nearest person, unknown threshold, one person per photo at most once."""

from __future__ import annotations

import numpy as np
import pytest

from facebank.gallery.base import Embeddings
from facebank.gallery.index import ExactIndex
from facebank.identify import assign, cosine_from_l2


def unit(v) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def index() -> ExactIndex:
    vecs = np.stack([unit([1, 0, 0, 0]), unit([1, 0.1, 0, 0]), unit([0, 1, 0, 0]), unit([0, 0, 1, 0])])
    return ExactIndex(Embeddings(vecs, ("ann", "ann", "bob", "cy"), np.arange(4)))


def test_nearest_face_and_mean_distances_are_both_exposed(index):
    d = index.person_distances(unit([1, 0.1, 0, 0])[None])
    assert d.people == ("ann", "bob", "cy")
    assert d.nearest[0, 0] == pytest.approx(0.0, abs=1e-3)
    assert 0 < d.mean[0, 0] < 0.1
    assert d.nearest[0, 1] == pytest.approx(np.sqrt(2 - 2 * unit([1, 0.1, 0, 0])[1]), abs=1e-5)


def test_a_face_far_from_everyone_is_unknown_but_names_its_candidate(index):
    d = index.person_distances(unit([0, 0, 0, 1])[None])
    (m,) = assign(d, threshold=0.5)
    assert m.name is None and m.candidate in ("ann", "bob", "cy")
    assert m.distance == pytest.approx(np.sqrt(2), abs=1e-5)
    assert m.score == pytest.approx(cosine_from_l2(m.distance))


def test_two_faces_in_one_photo_never_get_the_same_person(index):
    q = np.stack([unit([1, 0.05, 0, 0]), unit([1, 0.02, 0, 0])])  # both look like ann
    matches = assign(index.person_distances(q), threshold=0.5)
    assert [m.name for m in matches].count("ann") == 1
    assert sum(m.name is None for m in matches) == 1


def test_assignment_prefers_the_pairing_with_least_total_distance(index):
    q = np.stack([unit([1, 0.6, 0, 0]), unit([1, 0, 0, 0])])
    matches = assign(index.person_distances(q), threshold=1.0)
    assert [m.name for m in matches] == ["bob", "ann"]


def test_mean_rule_uses_the_mean_embedding(index):
    q = unit([1, 0.05, 0, 0])[None]
    (m,) = assign(index.person_distances(q), threshold=0.5, rule="mean")
    assert m.name == "ann" and m.distance == pytest.approx(m.mean_distance)


def test_empty_gallery_makes_every_face_unknown():
    idx = ExactIndex(Embeddings(np.zeros((0, 0), np.float32), (), np.zeros(0, np.int64)))
    (m,) = assign(idx.person_distances(unit([1, 0])[None]), threshold=0.5)
    assert m.name is None


def test_search_returns_nearest_faces_first(index):
    ids, dist = index.search(unit([0, 1, 0.1, 0]), k=2)
    assert ids.tolist()[0] == 2 and dist[0] < dist[1]


def test_an_unknown_face_says_why():
    from facebank.gallery.index import PersonDistances
    from facebank.identify import assign

    d = np.array([[0.20, 0.90], [0.25, 0.95], [0.80, 0.70]])
    dist = PersonDistances(("ann", "ben"), d, d)
    closer, taken, far = assign(dist, threshold=0.4)
    assert (closer.name, closer.reason) == ("ann", None)
    assert (taken.name, taken.candidate, taken.reason) == (None, "ann", "taken")
    assert "another face" in taken.explain()
    assert (far.name, far.reason) == (None, "no_match")
    empty = PersonDistances((), np.zeros((1, 0)), np.zeros((1, 0)))
    (nobody,) = assign(empty, threshold=0.4)
    assert nobody.reason == "empty_gallery" and nobody.explain() == "gallery is empty"
