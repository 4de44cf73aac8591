"""``facebank scan --engine ray``: the library scan on the same Ray Data path as enrollment, into
PostgreSQL; the same unassigned faces as a local scan, a rerun adds nothing, clustering runs on the
stored embeddings."""

from __future__ import annotations

import numpy as np

from facebank import FaceBank
from facebank.cluster.engine import method_from_settings, recluster
from facebank.cluster.scan import scan_library, scan_with_ray
from facebank.gallery import open_gallery
from facebank.settings import Settings
from tests.pg_fixtures import new_database_url
from tests.test_ray_enroll import ray_cluster, small_folder  # noqa: F401 (fixtures)


def _sorted(vectors: np.ndarray) -> np.ndarray:
    return vectors[np.lexsort(vectors.T[::-1])]


def test_a_ray_scan_into_postgres_equals_a_local_scan(ray_cluster, small_folder, tmp_path):  # noqa: F811
    settings = Settings(workers=1)
    url = new_database_url()
    report = scan_with_ray(small_folder, url, settings)
    with FaceBank(tmp_path / "plain.db", settings=settings) as plain:
        expected = scan_library(plain, small_folder)
        plain_faces = plain.gallery.unassigned_faces()
    assert report.photos_seen == expected.photos_seen == 10
    assert report.faces_added == expected.faces_added >= 10
    assert sorted(report.problems) == sorted(expected.problems)
    g = open_gallery(url)
    try:
        assert g.people() == []
        faces = g.unassigned_faces()
        np.testing.assert_allclose(_sorted(faces.vectors), _sorted(plain_faces.vectors), atol=1e-5)
        summary = recluster(g, method_from_settings(settings), settings.threshold)
        assert summary.faces == len(faces) and summary.clusters >= 2
        assert g.integrity() == []
    finally:
        g.close()
    again = scan_with_ray(small_folder, url, settings)
    assert again.faces_added == 0 and again.photos_skipped_known == report.photos_enrolled
