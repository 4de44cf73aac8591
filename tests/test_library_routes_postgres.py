"""The REST routes of the People view for a photo library (issue 21) on a PostgreSQL gallery: the
tests of tests/test_library_routes.py, collected again with a PostgreSQL ``server`` (they answered
501 "not_supported" there before): flagged faces and "not a face", covers, hiding, hostile ids, two
clients on one cluster, undo and its 409, bulk move, the timeline."""

from __future__ import annotations

import pytest

from facebank.cluster.engine import recluster
from facebank.cluster.methods import create
from facebank.gallery import open_gallery
from facebank.server import ServerConfig
from facebank.server.auth import ApiKeyStore
from facebank.server.testing import LiveServer
from facebank.settings import Settings
from facebank.types import FaceQuality
from tests.pg_fixtures import new_database_url
from tests.test_cluster import MODEL, blobs
from tests.test_library_routes import (  # noqa: F401 - collected again with the server below
    _photo,
    api,
    test_a_cover_is_chosen_and_a_face_of_someone_else_is_refused,
    test_a_persons_timeline_is_paged_and_an_unknown_person_is_404,
    test_bulk_move_is_all_or_nothing,
    test_flagged_faces_are_listed_apart_and_not_a_face_deletes_one,
    test_hide_and_show_a_person_and_a_cluster_and_search_by_name,
    test_hostile_ids_are_clear_4xx_and_change_nothing,
    test_two_clients_naming_one_cluster_one_wins_the_other_gets_404,
    test_undo_takes_back_the_last_actions_and_answers_409_on_a_conflict,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    url = new_database_url()
    x, _ = blobs([6, 5, 4], seed=7)
    g = open_gallery(url)
    g.add_photos([_photo(i, x[i:i + 1], "Ann" if i < 3 else None) for i in range(11)], MODEL)
    junk = FaceQuality(12.0, 0.9, 0.0, 0.9, "not_face")
    g.add_photos([_photo(20 + i, x[11 + i:12 + i], quality=junk) for i in range(4)], MODEL)
    recluster(g, create("chinese-whispers", threshold=0.5))
    g.close()
    keys_db = tmp_path_factory.mktemp("routes-pg") / "keys.db"
    with ApiKeyStore(keys_db) as keys:
        _, key = keys.create("routes test")
    with LiveServer(ServerConfig(settings=Settings(gallery=url), keys_db=keys_db)) as live:
        live.key = key
        yield live
