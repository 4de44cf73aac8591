"""The People view of the web page in a real browser (headless Debian Chromium via Playwright, as in
test_web_browser.py) against a real server: 5celeb/train enrolled, 5celeb/val and a photo of two
people scanned as unnamed faces and clustered with real embeddings. A cluster is named, a wrong
face taken out, two people merged; the page is saved to tests/artifacts/people.png."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from facebank.server import ServerConfig
from facebank.server.auth import ApiKeyStore
from facebank.server.testing import LiveServer, copy_gallery, enrolled_gallery, scanned_gallery
from facebank.settings import Settings
from tests.test_web_browser import ARTIFACTS, TIMEOUT_MS, browser  # noqa: F401 - the browser fixture

FACES = Path(os.environ.get("FACEBANK_SHARED_FACES") or Path(__file__).resolve().parents[2] / "shared/faces")
TRAIN = FACES / "5celeb" / "train"
VAL = FACES / "5celeb" / "val"
TWO_PEOPLE = FACES / "detection_edge" / "multi_face" / "face_recognition_obama_and_biden.jpg"
pytestmark = [pytest.mark.shared, pytest.mark.slow]

THUMBS_LOADED = """sel => {
    const imgs = [...document.querySelectorAll(sel)];
    return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); }"""


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory):  # noqa: F811 - the imported fixture
    if not TRAIN.is_dir() or not VAL.is_dir() or not TWO_PEOPLE.is_file():
        pytest.skip(f"../shared/faces not found: {FACES} needs 5celeb/train, 5celeb/val and "
                    f"detection_edge/multi_face/{TWO_PEOPLE.name}")
    library = tmp_path_factory.mktemp("library")  # an unsorted library: no person folders
    for p in sorted(VAL.glob("*/*")):
        (library / f"{p.parent.name}-{p.name}").write_bytes(p.read_bytes())
    (library / TWO_PEOPLE.name).write_bytes(TWO_PEOPLE.read_bytes())
    trained = enrolled_gallery(tmp_path_factory.getbasetemp() / "5celeb-train.db", TRAIN)
    scanned = scanned_gallery(tmp_path_factory.getbasetemp() / "5celeb-scanned-web.db", trained, library)
    gallery = copy_gallery(scanned, tmp_path_factory.mktemp("web-people") / "gallery.db")
    with ApiKeyStore(gallery) as keys:
        _, key = keys.create("people view test")
    with LiveServer(ServerConfig(settings=Settings(gallery=str(gallery)))) as live:
        live.key = key
        yield live


@pytest.fixture
def api(server):
    with httpx.Client(base_url=server.url, headers={"X-API-Key": server.key}, timeout=60) as c:
        yield c


@pytest.fixture
def page(browser, server):  # noqa: F811 - the imported fixture
    context = browser.new_context(viewport={"width": 1280, "height": 1800})  # thumbnails load when seen
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(server.url + "/")
    pg.fill("#key", server.key)
    pg.click("#save-key")
    pg.click("#tabs [data-view='people-view']")
    pg.wait_for_selector("#clusters li.cluster, #clusters-status:not(:empty)")  # groups, or why none
    pg.wait_for_selector("#named li[data-person='madonna']")
    yield pg
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def person(api: httpx.Client, name: str) -> dict | None:
    return next((p for p in api.get("/v1/people").json()["people"] if p["name"] == name), None)


def test_people_view_names_a_cluster_takes_a_face_out_and_merges_two_people(page, api):
    listed = api.get("/v1/clusters", params={"limit": 500, "faces": 1}).json()
    rows = page.locator("#clusters li.cluster")
    assert rows.count() == listed["total"] >= 3
    sizes = [int(t.split()[0]) for t in page.locator("#clusters li.cluster .size").all_inner_texts()]
    assert sizes == sorted(sizes, reverse=True) == [c["size"] for c in listed["clusters"]]
    page.wait_for_function(THUMBS_LOADED, arg="#clusters li.cluster:first-child .thumb img")

    # name the largest cluster that looks like an enrolled person as a new person
    target = next(c for c in listed["clusters"] if c["suggested"])
    row = f"#clusters li[data-cluster='{target['id']}']"
    assert f"looks like {target['suggested']}" in page.inner_text(row)
    new_name = "Nouvelle Personne"
    page.fill(f"{row} input.cluster-name", new_name)
    page.click(f"{row} .name-form button[type=submit]")
    page.wait_for_selector(f"#named li[data-person='{new_name}']")
    page.wait_for_selector(row, state="detached")
    assert "(new person)" in page.inner_text("#pv-status")
    assert person(api, new_name)["faces"] == target["size"]

    # take a wrong face out of another cluster: it is unnamed and alone afterwards
    remaining = api.get("/v1/clusters", params={"faces": 50}).json()["clusters"]
    other = next(c for c in remaining if c["size"] >= 2)
    row = f"#clusters li[data-cluster='{other['id']}']"
    face = other["faces"][-1]["id"]
    page.click(f"{row} .thumb[data-face='{face}'] button.out")
    page.wait_for_selector(f"{row} .thumb[data-face='{face}']", state="detached")
    assert page.inner_text(f"{row} .size") == f"{other['size'] - 1} faces"
    moved = api.get(f"/v1/faces/{face}").json()
    assert moved["person"] is None and moved["cluster"] is None

    # merge two: tick the new person and the enrolled one the cluster looked like
    into = target["suggested"]
    before = person(api, into)
    page.check(f"#named li[data-person='{new_name}'] input[type=checkbox]")
    page.check(f"#named li[data-person='{into}'] input[type=checkbox]")
    page.wait_for_selector("#mergebar:not([hidden])")
    page.wait_for_function(THUMBS_LOADED, arg="#named li.card img, #clusters .thumb img, #alone .thumb img")
    assert page.inner_text("#merge-text").startswith(f"Merge {new_name} into {into}")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "people.png"), full_page=True)
    assert (ARTIFACTS / "people.png").stat().st_size > 20_000
    page.click("#merge-go")
    page.wait_for_selector(f"#named li[data-person='{new_name}']", state="detached")
    assert f"{new_name} merged into {into}" in page.inner_text("#pv-status")
    assert person(api, new_name) is None
    assert person(api, into)["faces"] == before["faces"] + target["size"]


def test_accepting_a_suggestion_names_the_cluster_after_the_enrolled_person(page, api):
    listed = api.get("/v1/clusters", params={"faces": 1}).json()["clusters"]
    target = next(c for c in listed if c["suggested"])
    before = person(api, target["suggested"])
    row = f"#clusters li[data-cluster='{target['id']}']"
    page.click(f"{row} .suggested button.yes")
    page.wait_for_selector(row, state="detached")
    assert "added to the existing person" in page.inner_text("#pv-status")
    assert person(api, target["suggested"])["faces"] == before["faces"] + target["size"]


def test_ticking_two_clusters_names_both_and_a_cluster_with_a_person_adds_it(page, api):
    listed = api.get("/v1/clusters", params={"faces": 1}).json()["clusters"]
    assert len(listed) >= 3, listed
    a, b, c = listed[:3]
    for cl in (a, b):
        page.check(f"#clusters li[data-cluster='{cl['id']}'] input[type=checkbox]")
    page.wait_for_selector("#merge-name:not([hidden])")
    page.fill("#merge-name", "Both Rows")
    page.click("#merge-go")
    page.wait_for_selector("#named li[data-person='Both Rows']")
    assert person(api, "Both Rows")["faces"] == a["size"] + b["size"]
    page.check(f"#clusters li[data-cluster='{c['id']}'] input[type=checkbox]")
    page.check("#named li[data-person='Both Rows'] input[type=checkbox]")
    assert page.inner_text("#merge-text").startswith(f"Add the group of {c['size']} face(s) to Both Rows")
    page.click("#merge-go")
    page.wait_for_selector(f"#clusters li[data-cluster='{c['id']}']", state="detached")
    assert person(api, "Both Rows")["faces"] == a["size"] + b["size"] + c["size"]


def test_people_view_shows_a_persons_faces_and_finds_photos_with_people(page, api):
    page.click("#named li[data-person='elton_john'] .face-button")
    page.wait_for_selector("#person-faces .thumb img")
    page.locator("#person-faces .thumb").last.scroll_into_view_if_needed()  # thumbnails load when seen
    page.wait_for_function(THUMBS_LOADED, arg="#person-faces .thumb img")
    shown = page.locator("#person-faces .thumb").count()
    assert shown == person(api, "elton_john")["faces"]
    page.fill("#with-names", "elton_john")
    page.click("#with-form button[type=submit]")
    page.wait_for_selector("#with-photos .thumb img")
    page.locator("#with-photos .thumb").last.scroll_into_view_if_needed()
    page.wait_for_function(THUMBS_LOADED, arg="#with-photos .thumb img")
    total = api.get("/v1/photos", params={"with": "elton_john"}).json()["total"]
    assert page.inner_text("#with-status").startswith(f"{total} photo(s) with elton_john")
    page.fill("#with-names", "elton_john, nobody at all")
    page.click("#with-form button[type=submit]")
    page.wait_for_selector("#with-status.error")
    assert "person_not_found" in page.inner_text("#with-status")
