"""Suggestions on the People view (issue 21), in a real browser against a real server (the gallery
of test_web_people.py: 5celeb/train enrolled, 5celeb/val + a group photo scanned and clustered):
every unnamed group that looks like someone says so with "k of n faces agree"; yes names it, no is
a cannot-link (the suggestion is gone after a reload and after `facebank cluster`), and ticked
suggestions are accepted all at once. Screenshot: tests/artifacts/people-suggestions.png."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from facebank.cli import app
from tests.test_web_browser import ARTIFACTS, browser  # noqa: F401 - the browser fixture
from tests.test_web_people import THUMBS_LOADED, api, page, person, server  # noqa: F401 - fixtures

pytestmark = [pytest.mark.shared, pytest.mark.slow]


def _suggested(api) -> list[dict]:  # noqa: F811
    listed = api.get("/v1/clusters", params={"limit": 500, "faces": 1}).json()["clusters"]
    return [c for c in listed if c["suggested"]]


def _cluster_faces(api, cluster: int) -> set[int]:  # noqa: F811
    return {f["id"] for f in api.get("/v1/faces", params={"cluster": cluster, "limit": 1000}).json()["faces"]}


def _show_again(page) -> None:  # noqa: F811
    page.reload()
    page.click("#tabs [data-view='people-view']")
    page.wait_for_selector("#clusters li.cluster, #clusters-status:not(:empty)")


def test_every_suggestion_says_how_many_faces_agree(page, api):  # noqa: F811
    suggested = _suggested(api)
    assert len(suggested) >= 3, "the 5celeb library should give several groups a suggestion"
    for c in suggested:
        text = page.inner_text(f"#clusters li[data-cluster='{c['id']}'] .suggestion-text")
        assert text.strip() == f"looks like {c['suggested']} — {c['agree']} of {c['faces_used']} faces agree"
    shown = page.locator("#clusters .suggested").count()
    assert shown == len(suggested)
    page.wait_for_function(THUMBS_LOADED, arg="#clusters li.cluster:first-child .thumb img")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "people-suggestions.png"), full_page=True)


def test_a_rejected_suggestion_is_gone_after_a_reload_and_after_clustering_again(page, api, server):  # noqa: F811
    c = _suggested(api)[-1]
    faces = _cluster_faces(api, c["id"])
    row = f"#clusters li[data-cluster='{c['id']}']"
    page.click(f"{row} .suggested button.no")
    page.wait_for_selector(f"{row} .suggested", state="detached")
    assert f"not {c['suggested']}" in page.inner_text("#pv-status")
    _show_again(page)
    page.wait_for_selector(row)
    assert page.locator(f"{row} .suggested").count() == 0
    # a later clustering keeps the "no": no group holding these faces is suggested as that person
    res = CliRunner().invoke(app, ["cluster", "-g", server.config.settings.gallery])
    assert res.exit_code == 0, res.output
    for other in api.get("/v1/clusters", params={"limit": 500, "faces": 0}).json()["clusters"]:
        if _cluster_faces(api, other["id"]) & faces:
            assert other["suggested"] != c["suggested"], other
    loose = api.get("/v1/faces", params={"alone": "true", "limit": 1000}).json()["faces"]
    assert not [f for f in loose if f["id"] in faces and f["suggested"] == c["suggested"]]
    _show_again(page)
    for f in faces:
        node = page.locator(f"#alone-faces .thumb[data-face='{f}'] .face-suggestion")
        assert node.count() == 0 or not node.inner_text().startswith(f"{c['suggested']}?")


def test_yes_names_a_group_as_suggested(page, api):  # noqa: F811
    c = _suggested(api)[0]
    before = (person(api, c["suggested"]) or {"faces": 0})["faces"]
    row = f"#clusters li[data-cluster='{c['id']}']"
    page.click(f"{row} .suggested button.yes")
    page.wait_for_selector(row, state="detached")
    assert person(api, c["suggested"])["faces"] == before + c["size"]
    assert c["id"] not in [x["id"] for x in api.get("/v1/clusters", params={"limit": 500}).json()["clusters"]]


def test_ticked_suggestions_are_accepted_all_at_once(page, api):  # noqa: F811
    todo = _suggested(api)
    assert len(todo) >= 2
    ticked = todo[:2]
    before = {c["suggested"]: (person(api, c["suggested"]) or {"faces": 0})["faces"] for c in ticked}
    for c in ticked:
        page.check(f"#clusters li[data-cluster='{c['id']}'] input.accept-pick")
    assert page.inner_text("#accept-ticked") == "accept 2 ticked suggestions"
    page.click("#accept-ticked")
    for c in ticked:
        page.wait_for_selector(f"#clusters li[data-cluster='{c['id']}']", state="detached")
    assert "2 group(s) accepted" in page.inner_text("#pv-status")
    gained: dict[str, int] = {}
    for c in ticked:
        gained[c["suggested"]] = gained.get(c["suggested"], 0) + c["size"]
    for name, n in gained.items():
        assert person(api, name)["faces"] == before[name] + n
    left = {c["id"] for c in _suggested(api)}
    assert not left & {c["id"] for c in ticked}
    # nothing ticked any more: the bulk button waits for the next tick
    assert page.is_disabled("#accept-ticked")


def test_a_loose_face_suggestion_can_be_rejected_and_accepted(page, api):  # noqa: F811
    c = _suggested(api)[0]  # two of its faces taken out: loose faces, that still look like someone
    for f in api.get("/v1/faces", params={"cluster": c["id"], "limit": 2}).json()["faces"]:
        assert api.post(f"/v1/faces/{f['id']}/move", json={"name": None}).status_code == 200
    _show_again(page)
    loose = api.get("/v1/faces", params={"alone": "true", "limit": 60}).json()["faces"]
    loose = [f for f in loose if f["suggested"]]
    assert len(loose) >= 2
    no, yes = loose[0], loose[1]
    page.wait_for_selector(f"#alone-faces .thumb[data-face='{no['id']}'] .face-suggestion")
    page.click(f"#alone-faces .thumb[data-face='{no['id']}'] .face-suggestion button.no")
    gone = """([id, name]) => { const n = document.querySelector(`#alone-faces .thumb[data-face='${id}']`);
        const s = n && n.querySelector('.face-suggestion');
        return !!n && (!s || !s.textContent.startsWith(name + '?')); }"""
    page.wait_for_function(gone, arg=[str(no["id"]), no["suggested"]])
    assert api.get(f"/v1/faces/{no['id']}").json()["person"] is None
    before = (person(api, yes["suggested"]) or {"faces": 0})["faces"]
    page.click(f"#alone-faces .thumb[data-face='{yes['id']}'] .face-suggestion button.yes")
    page.wait_for_selector(f"#alone-faces .thumb[data-face='{yes['id']}']", state="detached")
    assert api.get(f"/v1/faces/{yes['id']}").json()["person"] == yes["suggested"]
    assert person(api, yes["suggested"])["faces"] == before + 1


def test_rejecting_a_face_of_nobody_or_for_nobody_is_a_clear_404(api):  # noqa: F811
    r = api.post("/v1/faces/999999999/reject", json={"name": "madonna"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "face_not_found"
    face = api.get("/v1/faces", params={"person": "madonna", "limit": 1}).json()["faces"][0]
    r = api.post(f"/v1/faces/{face['id']}/reject", json={"name": "nobody by that name"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "person_not_found"
    assert api.post(f"/v1/faces/{face['id']}/reject", json={"name": ""}).status_code == 422


def test_are_these_the_same_person_yes_merges_and_no_keeps_apart(page, api):  # noqa: F811
    pairs = api.get("/v1/clusters/borderline", params={"limit": 50}).json()["pairs"]
    suggested = {c["id"] for c in _suggested(api)}
    for p in pairs:  # split evidence only: never a group already suggested, always some faces agreeing
        assert p["cluster"] not in suggested and p["agree"] >= 1 and p["score"] > p["threshold"]
    if not pairs:
        pytest.skip("no group with split evidence in this library")
    _show_again(page)
    first = pairs[0]
    row = f"#same-person-pairs li[data-pair='{first['cluster']}:{first['candidate']}']"
    page.wait_for_selector(row)
    page.locator("#same-person").screenshot(path=str(ARTIFACTS / "people-same-person.png"))
    page.click(f"{row} button.no")
    page.wait_for_selector(row, state="detached")
    again = api.get("/v1/clusters/borderline", params={"limit": 50}).json()["pairs"]
    # that question is never asked again (the group may be asked about its next nearest person)
    assert (first["cluster"], first["candidate"]) not in [(p["cluster"], p["candidate"]) for p in again]
    if again:
        p = again[0]
        before = (person(api, p["candidate"]) or {"faces": 0})["faces"]
        page.wait_for_selector(f"#same-person-pairs li[data-pair='{p['cluster']}:{p['candidate']}']")
        page.click(f"#same-person-pairs li[data-pair='{p['cluster']}:{p['candidate']}'] button.yes")
        page.wait_for_selector(f"#same-person-pairs li[data-cluster='{p['cluster']}']", state="detached")
        assert person(api, p["candidate"])["faces"] == before + p["size"]


def test_a_face_taken_out_of_a_named_person_is_a_loose_face_at_once_never_suggested_as_them(api):  # noqa: F811
    name = "madonna"
    face = api.get("/v1/faces", params={"person": name, "limit": 1}).json()["faces"][0]["id"]
    assert api.post(f"/v1/faces/{face}/move", json={"name": None}).status_code == 200
    # no `facebank cluster` run: the face is in the unnamed pool (loose) right away
    listed = api.get("/v1/faces", params={"alone": "true", "limit": 1000}).json()["faces"]
    loose = {f["id"]: f for f in listed}
    assert face in loose
    assert loose[face]["suggested"] != name
