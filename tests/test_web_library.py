"""The People view as a photo library user expects it (issue 21), in a real browser against a real
server (the gallery of test_web_people.py: 5celeb/train enrolled, 5celeb/val + a group photo
scanned and clustered): cluster ids shown, search by name, choose a cover, take a face out and move
one with every count right at once, hide and show a person and a cluster, flagged faces collapsed
and deleted as "not a face". Screenshot: tests/artifacts/people-library.png."""

from __future__ import annotations

import pytest

from tests.test_web_browser import ARTIFACTS, browser  # noqa: F401 - the browser fixture
from tests.test_web_people import THUMBS_LOADED, api, page, person, server  # noqa: F401 - fixtures

# a function, not an expression: the page's Content Security Policy forbids eval
TEXT_IS = "([sel, text]) => { const n = document.querySelector(sel); return !!n && n.textContent === text; }"
FACE_IS = "([sel, id]) => { const n = document.querySelector(sel); return !!n && n.dataset.face === id; }"

pytestmark = [pytest.mark.shared, pytest.mark.slow]


def test_cluster_ids_are_shown_and_people_are_searched_by_name(page, api):  # noqa: F811
    listed = api.get("/v1/clusters", params={"faces": 1}).json()["clusters"]
    for c in listed:
        assert page.inner_text(f"#clusters li[data-cluster='{c['id']}'] .cluster-id") == f"#{c['id']}"
    page.fill("#people-search", "ELT")
    visible = [n for n in page.locator("#named li[data-person]").evaluate_all(
        "els => els.filter(e => !e.hidden).map(e => e.dataset.person)")]
    assert visible == ["elton_john"]
    page.fill("#people-search", "")
    listed = api.get("/v1/people").json()["people"]
    assert page.locator("#named li[data-person]:not([hidden])").count() == len(listed)


def test_cover_take_out_and_move_keep_every_count_right_without_a_reload(page, api):  # noqa: F811
    name = "elton_john"
    card = f"#named li[data-person='{name}']"
    page.click(f"{card} .face-button")
    page.wait_for_selector("#person-faces .thumb img")
    faces = [f["id"] for f in api.get("/v1/faces", params={"person": name, "limit": 1000}).json()["faces"]]
    n = len(faces)
    assert page.inner_text("#person-faces .panel-count") == f"{n} faces"
    # the cover: the face chosen with the star
    chosen = faces[1]
    page.click(f"#person-faces .thumb[data-face='{chosen}'] button.cover")
    page.wait_for_function(FACE_IS, arg=[f"{card} img", str(chosen)])
    assert api.get(f"/v1/people/{name}/cover").json()["id"] == chosen
    # take a face out: the panel heading and the card count at once
    out = faces[-1]
    page.click(f"#person-faces .thumb[data-face='{out}'] button.out:not(.cover):not(.move)")
    page.wait_for_selector(f"#person-faces .thumb[data-face='{out}']", state="detached")
    assert page.inner_text("#person-faces .panel-count") == f"{n - 1} faces"
    assert page.inner_text(f"{card} .count") == f"{n - 1} faces"
    assert api.get(f"/v1/faces/{out}").json()["person"] is None
    # move a face to another person
    moved = faces[-2]
    before = person(api, "madonna")["faces"]
    page.once("dialog", lambda d: d.accept("madonna"))
    page.click(f"#person-faces .thumb[data-face='{moved}'] button.move")
    page.wait_for_selector(f"#person-faces .thumb[data-face='{moved}']", state="detached")
    assert page.inner_text("#person-faces .panel-count") == f"{n - 2} faces"
    assert api.get(f"/v1/faces/{moved}").json()["person"] == "madonna"
    page.wait_for_function(TEXT_IS, arg=["#named li[data-person='madonna'] .count", f"{before + 1} faces"])


def test_hide_and_show_a_person_and_a_cluster(page, api):  # noqa: F811
    page.click("#named li[data-person='madonna'] button.hide")
    page.wait_for_selector("#named li[data-person='madonna']", state="detached")
    assert "hidden" in page.inner_text("#pv-status")
    assert "madonna" not in [p["name"] for p in api.get("/v1/people").json()["people"]]
    c = api.get("/v1/clusters", params={"faces": 1}).json()["clusters"][0]["id"]
    page.click(f"#clusters li[data-cluster='{c}'] button.hide")
    page.wait_for_selector(f"#clusters li[data-cluster='{c}']", state="detached")
    page.check("#show-hidden")
    page.wait_for_selector("#named li.hidden-item[data-person='madonna']")
    page.wait_for_selector(f"#clusters li.hidden-item[data-cluster='{c}']")
    page.wait_for_function(THUMBS_LOADED, arg="#named li.card img")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "people-library.png"), full_page=True)
    page.click("#named li[data-person='madonna'] button.hide")
    page.wait_for_selector("#named li[data-person='madonna']:not(.hidden-item)")
    page.click(f"#clusters li[data-cluster='{c}'] button.hide")
    page.wait_for_selector(f"#clusters li[data-cluster='{c}']:not(.hidden-item)")
    assert "madonna" in [p["name"] for p in api.get("/v1/people").json()["people"]]


def test_flagged_faces_show_collapsed_and_not_a_face_deletes_one(page, api):  # noqa: F811
    flagged = api.get("/v1/flagged-faces").json()
    if not flagged["total"]:
        pytest.skip("no face of this gallery is flagged")  # the rule flags none of these faces
    page.wait_for_selector("#flagged:not([hidden])")
    assert not page.locator("#flagged").evaluate("d => d.open")  # collapsed
    assert page.inner_text("#flagged-count") == str(flagged["total"])
    page.click("#flagged summary")
    f = flagged["faces"][0]
    page.click(f"#flagged .thumb[data-face='{f['id']}'] button.out")
    page.wait_for_selector(f"#flagged .thumb[data-face='{f['id']}']", state="detached")
    assert page.inner_text("#flagged-count") == str(flagged["total"] - 1)
    assert api.get(f"/v1/faces/{f['id']}").status_code == 404
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "people-flagged.png"), full_page=True)


def test_undo_takes_back_a_take_out_and_says_what_it_undid(page, api):  # noqa: F811
    name = "ben_afflek"  # the data set's spelling
    card = f"#named li[data-person='{name}']"
    n = person(api, name)["faces"]
    page.click(f"{card} .face-button")
    page.wait_for_selector("#person-faces .thumb img")
    face = api.get("/v1/faces", params={"person": name}).json()["faces"][0]["id"]
    page.click(f"#person-faces .thumb[data-face='{face}'] button.out:not(.cover):not(.move)")
    page.wait_for_selector(f"#person-faces .thumb[data-face='{face}']", state="detached")
    page.wait_for_function(TEXT_IS, arg=["#undo-last", f"last: take face {face} out"])
    page.click("#undo")
    page.wait_for_function(TEXT_IS, arg=[f"{card} .count", f"{n} faces"])
    assert f"undone: take face {face} out" in page.inner_text("#pv-status")
    assert api.get(f"/v1/faces/{face}").json()["person"] == name


def test_tick_faces_and_move_them_all_at_once(page, api):  # noqa: F811
    name = "jerry_seinfeld"
    card = f"#named li[data-person='{name}']"
    n = person(api, name)["faces"]
    page.click(f"{card} .face-button")
    page.wait_for_selector("#person-faces .thumb img")
    faces = [f["id"] for f in api.get("/v1/faces", params={"person": name}).json()["faces"]][:2]
    for f in faces:
        page.check(f"#person-faces .thumb[data-face='{f}'] input.pick")
    page.once("dialog", lambda d: d.accept("Jerry Two"))
    page.click("#person-faces button.bulk-move")
    page.wait_for_selector("#named li[data-person='Jerry Two']")
    assert page.inner_text("#person-faces .panel-count") == f"{n - 2} faces"
    assert page.inner_text(f"{card} .count") == f"{n - 2} faces"
    moved = api.get("/v1/faces", params={"person": "Jerry Two"}).json()["faces"]
    assert sorted(f["id"] for f in moved) == sorted(faces)


def test_a_persons_timeline_has_year_headings_and_loads_more_as_it_scrolls(page, api):  # noqa: F811
    name = "mindy_kaling"
    total = api.get(f"/v1/people/{name}/timeline").json()["total"]
    assert total > 12  # more than one page
    page.click(f"#named li[data-person='{name}'] .face-button")
    page.wait_for_selector("#person-faces button.show-timeline")
    page.click("#person-faces button.show-timeline")
    page.wait_for_selector("#person-faces .timeline h4.year")
    years = page.locator("#person-faces .timeline h4.year").all_inner_texts()
    assert years and all(y.isdigit() or y == "date unknown" for y in years)
    page.locator("#person-faces .timeline-more").scroll_into_view_if_needed()
    page.wait_for_function(TEXT_IS, arg=["#person-faces .timeline-more", f"{total} photos"])
    assert page.locator("#person-faces .timeline .thumb").count() == total
    page.wait_for_function(THUMBS_LOADED, arg="#person-faces .timeline .thumb img")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "people-timeline.png"), full_page=True)
