"""Clustering of unassigned faces: methods on synthetic embeddings, stable ids, suggestions,
reclustering that keeps named people; the CLI commands on a gallery of synthetic faces."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from facebank.cli import app
from facebank.cluster import methods
from facebank.cluster.engine import recluster, stable_ids
from facebank.gallery import open_gallery
from facebank.gallery.base import FaceRecord, PhotoRecord

MODEL = "test-model-v1"
DIM = 128


def blobs(sizes: list[int], spread: float = 0.015, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around random centres: same-blob L2 ~ 0.24, different blobs ~ 1.4."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(sizes), DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x, y = [], []
    for i, n in enumerate(sizes):
        pts = centres[i] + spread * rng.standard_normal((n, DIM))
        x.append(pts / np.linalg.norm(pts, axis=1, keepdims=True))
        y += [i] * n
    return np.concatenate(x).astype(np.float32), np.asarray(y)


def same_partition(labels: np.ndarray, truth: np.ndarray) -> bool:
    """Equal up to renaming, -1 counting as 'alone' (a face in no cluster)."""
    a = {i: labels[i] for i in range(len(labels))}
    pairs_a = {(i, j) for i in a for j in a if i < j and a[i] >= 0 and a[i] == a[j]}
    pairs_t = {(i, j) for i in a for j in a if i < j and truth[i] >= 0 and truth[i] == truth[j]}
    return pairs_a == pairs_t


@pytest.mark.parametrize("name", ["chinese-whispers", "components", "agglomerative", "dbscan", "hdbscan"])
def test_every_method_finds_well_separated_people_and_leaves_a_face_seen_once_alone(name):
    x, y = blobs([12, 8, 5, 1])
    labels = methods.create(name, threshold=0.5, min_size=3).labels(x)
    truth = np.where(y == 3, -1, y)
    assert same_partition(labels, truth), labels
    assert labels[-1] == -1
    assert labels[0] == 0  # the largest cluster is number 0
    assert methods.create(name, threshold=0.5).labels(np.zeros((0, DIM), np.float32)).shape == (0,)


def test_a_threshold_below_the_spread_leaves_everyone_alone():
    x, _ = blobs([6, 6])
    assert (methods.create("chinese-whispers", threshold=0.05).labels(x) == -1).all()


def test_unknown_methods_are_refused_with_the_list():
    with pytest.raises(ValueError, match="chinese-whispers"):
        methods.create("kmeans", threshold=0.4)


def test_exact_and_ann_knn_graphs_agree():
    x, _ = blobs([300] * 5, spread=0.03)
    exact = methods.knn(x, 10)
    ann = methods._ann_knn(x, 10)
    assert (exact.index[:, 0] != np.arange(len(x))).all()
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact.index, ann.index, strict=True)])
    assert recall > 0.95
    np.testing.assert_allclose(np.sort(exact.distance, 1), np.sort(exact.distance, 1))
    assert np.all(np.diff(exact.distance, axis=1) >= -1e-6)


def test_cluster_ids_survive_a_reclustering():
    old = np.array([7, 7, 7, 3, 3, -1, -1])
    new = np.array([0, 0, 0, 1, 1, 1, 2])  # 7 kept its faces, 3 grew, a new one appeared... of size 1
    assert stable_ids(new, old).tolist() == [7, 7, 7, 3, 3, 3, 8]
    assert stable_ids(np.array([-1, 0]), np.array([-1, -1])).tolist() == [-1, 0]


def _photo(n: int, vecs: np.ndarray, person: str | None = None, tag: str = "lib"):
    sha = hashlib.sha256(f"{tag}{n}".encode()).hexdigest()
    faces = [FaceRecord((10.0 * i, 0.0, 10.0 * i + 8, 9.0), v, "test", 1.0) for i, v in enumerate(vecs)]
    return PhotoRecord(person, f"/lib/{tag}{n}.jpg", sha, 100, 64, 64, "ok"), faces


@pytest.fixture
def library(tmp_path):
    """A gallery with Ann enrolled (3 photos) and 16 scanned photos: 8 of Ann-like faces, 6 of
    person B, 1 of person C, one group photo of B + C (17 unassigned faces: 8 + 7 + 2)."""
    x, _ = blobs([11, 7, 2], seed=3)
    g = open_gallery(tmp_path / "g.db")
    g.add_photos([_photo(i, x[i:i + 1], "Ann", tag="enrolled") for i in range(3)], MODEL)
    items = [_photo(i, x[3 + i:4 + i]) for i in range(8)]
    items += [_photo(10 + i, x[11 + i:12 + i]) for i in range(6)]
    items += [_photo(20, x[19:20]), _photo(21, np.stack([x[17], x[18]]))]
    g.add_photos(items, MODEL)
    yield g, x
    g.close()


def test_reclustering_suggests_enrolled_people_and_keeps_named_clusters(library):
    g, x = library
    s = recluster(g, methods.create("chinese-whispers", threshold=0.5), suggest_threshold=0.5)
    assert (s.faces, s.clusters, s.alone) == (17, 3, 0)
    faces = g.faces(unassigned=True)
    ann_like = {f.cluster for f in faces if f.path.startswith("/lib/lib") and int(f.path[8:-4]) < 8}
    assert len(ann_like) == 1 and None not in ann_like
    ann_cluster = ann_like.pop()
    assert {f.suggested for f in faces if f.cluster == ann_cluster} == {"Ann"}
    b_cluster = next(f.cluster for f in faces if f.path == "/lib/lib10.jpg")
    assert {f.suggested for f in faces if f.cluster == b_cluster} == {None}
    assert g.name_cluster(b_cluster, "Bea") == 7
    # new photos of Bea arrive; a recluster keeps Ann's cluster id and suggests Bea for the new faces
    more = blobs([11, 7, 2], seed=3)[0]  # same centres, same points: perturb them a little
    new = more[11:14] + 0.01 * np.random.default_rng(9).standard_normal((3, DIM)).astype(np.float32)
    new /= np.linalg.norm(new, axis=1, keepdims=True)
    g.add_photos([_photo(30 + i, new[i:i + 1]) for i in range(3)], MODEL)
    recluster(g, methods.create("chinese-whispers", threshold=0.5), suggest_threshold=0.5)
    faces = {f.path: f for f in g.faces(unassigned=True)}
    assert faces["/lib/lib0.jpg"].cluster == ann_cluster
    assert {faces[f"/lib/lib{30 + i}.jpg"].suggested for i in range(3)} == {"Bea"}
    assert [p.faces for p in g.people() if p.name == "Bea"] == [7]  # named faces stay named


def test_cli_cluster_json_name_move_merge_and_photos_with(library, tmp_path):
    g, _ = library
    loc = str(g.path)
    run = CliRunner().invoke
    res = run(app, ["cluster", "-g", loc, "--json", "-t", "0.5", "--report", str(tmp_path / "c.html")])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 17 and all(set(r) == {"face", "path", "box", "cluster", "suggested", "score"}
                                   for r in rows)
    assert rows[0]["box"] == [0, 0, 8, 9] and isinstance(rows[0]["cluster"], int)
    assert sum(r["cluster"] is None for r in rows) == 0 and len({r["cluster"] for r in rows}) == 3
    assert (tmp_path / "c.html").read_text().count("cluster ") >= 2
    b = next(r["cluster"] for r in rows if r["path"] == "/lib/lib10.jpg")
    assert run(app, ["people", "name", str(b), "Bea", "-g", loc]).exit_code == 0
    c_face = next(f.face_id for f in g.faces(unassigned=True) if f.path == "/lib/lib20.jpg")
    assert run(app, ["people", "move", str(c_face), "Cy", "-g", loc]).exit_code == 0
    group = [f.face_id for f in g.faces() if f.path == "/lib/lib21.jpg"]
    assert run(app, ["people", "move", str(group[1]), "Cy", "-g", loc]).exit_code == 0
    res = run(app, ["photos", "--with", "Bea", "--with", "Cy", "-g", loc, "--json"])
    assert res.exit_code == 0, res.output
    assert [json.loads(line)["path"] for line in res.stdout.splitlines() if line.startswith("{")] == \
        ["/lib/lib21.jpg"]
    res = run(app, ["people", "merge", "Cy", "Bea", "-g", loc])
    assert res.exit_code == 0 and "2 faces" in res.output
    assert {p.name: p.faces for p in g.people()} == {"Ann": 3, "Bea": 9}
    # bad input: one line, no traceback
    bad = [(["people", "name", "999", "X", "-g", loc], 1), (["photos", "--with", "Nobody", "-g", loc], 2),
           (["cluster", "-g", loc, "--method", "kmeans"], 2), (["people", "move", "5", "a/b", "-g", loc], 1)]
    for args, code in bad:
        res = run(app, args)
        assert res.exit_code == code, (args, res.output)
        assert res.output.startswith("error: ") and "Traceback" not in res.output
