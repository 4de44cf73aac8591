"""The web page in a real browser: headless Debian Chromium driven by Playwright, against a real
server whose gallery has 5celeb/train enrolled.

Chromium is /usr/bin/chromium (Debian package `chromium`, installed by scripts/system-deps.sh);
Playwright's own browser download is never used. Without Chromium or Playwright the tests skip
locally and FAIL in CI (CI=true), so a broken CI image cannot pass silently.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest

from facebank.server import ServerConfig
from facebank.server.auth import ApiKeyStore
from facebank.server.testing import LiveServer, copy_gallery, enrolled_gallery
from facebank.settings import Settings

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces"
TRAIN = FACES / "5celeb" / "train"
VAL = FACES / "5celeb" / "val"
CHROMIUM = Path(os.environ.get("FACEBANK_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000
pytestmark = [pytest.mark.shared, pytest.mark.slow]


def _browser_missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{reason} (CI=true: the browser tests must run in CI; see scripts/system-deps.sh)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _browser_missing("Playwright for Python is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        _browser_missing(f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory):
    if not TRAIN.is_dir() or not VAL.is_dir():
        pytest.skip(f"../shared/faces not found: {FACES} has no 5celeb/train and 5celeb/val")
    trained = enrolled_gallery(tmp_path_factory.getbasetemp() / "5celeb-train.db", TRAIN)
    gallery = copy_gallery(trained, tmp_path_factory.mktemp("web") / "gallery.db")
    with ApiKeyStore(gallery) as keys:
        _, key = keys.create("browser test")
    with LiveServer(ServerConfig(settings=Settings(gallery=str(gallery)))) as live:
        live.key = key
        yield live


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(server.url + "/")
    pg.fill("#key", server.key)
    pg.click("#save-key")
    pg.wait_for_selector("#people li[data-name]")
    yield pg
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def first_val_photo(person: str) -> Path:
    return sorted(p for p in (VAL / person).iterdir() if p.is_file())[0]


def test_uploading_a_photo_shows_the_right_name_and_box(page, server):
    person = "mindy_kaling"
    photo = first_val_photo(person)
    page.set_input_files("#photo", str(photo))
    page.wait_for_selector("#faces li.face")
    faces = page.locator("#faces li.face")
    assert faces.count() >= 1
    assert person in faces.first.inner_text()
    assert page.locator("#faces li.known .name").first.inner_text() == person
    size = page.eval_on_selector("#canvas", "c => [c.width, c.height]")
    assert size[0] >= 200 and size[1] >= 200
    # the canvas shows the photo (not blank): its pixels vary
    spread = page.eval_on_selector("#canvas", """c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let lo = 255, hi = 0;
        for (let i = 0; i < d.length; i += 401) { lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); }
        return hi - lo; }""")
    assert spread > 50
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web_identify.png"), full_page=True)
    assert (ARTIFACTS / "web_identify.png").stat().st_size > 10_000


def test_a_stricter_threshold_on_the_page_turns_the_match_unknown(page, server):
    photo = first_val_photo("madonna")
    with httpx.Client(base_url=server.url, headers={"X-API-Key": server.key}, timeout=60) as c:
        face = c.post("/v1/identify", files={"photo": (photo.name, photo.read_bytes())}).json()["faces"][0]
    assert face["name"] == "madonna"
    page.set_input_files("#photo", str(photo))
    page.wait_for_selector("#faces li.known")
    strict = round(face["distance"] / 2, 2)
    set_to = f"el => {{ el.value = {strict}; el.dispatchEvent(new Event('input')); }}"
    page.eval_on_selector("#threshold", set_to)
    page.wait_for_selector("#faces li.unknown")
    assert "madonna" in page.inner_text("#faces li.unknown")  # named as the nearest candidate
    assert page.inner_text("#threshold-value") == f"{strict:.2f}"


def test_browsing_a_person_shows_their_face_thumbnails(page):
    page.click("#people li[data-name='madonna'] .name")
    imgs = "#people li[data-name='madonna'] .thumb img"
    counts_sel = "#people li[data-name='madonna'] .counts"
    page.wait_for_function(f"""() => {{
        const imgs = [...document.querySelectorAll("{imgs}")];
        const want = parseInt(document.querySelector("{counts_sel}").innerText, 10);
        return imgs.length >= want && imgs.every(i => i.complete && i.naturalWidth > 0); }}""")
    n = page.locator(imgs).count()
    counts = page.inner_text("#people li[data-name='madonna'] .counts")
    assert n >= int(counts.split()[0])  # every ok photo (and any problem photo) has a thumbnail


def test_adding_a_person_from_photos_then_deleting_them(page, server):
    name = "김지수"
    photos = sorted(p for p in (VAL / "jerry_seinfeld").iterdir() if p.is_file())[:2]
    page.fill("#new-name", name)
    page.set_input_files("#new-photos", [str(p) for p in photos])
    page.click("#add-form button[type=submit]")
    page.wait_for_selector(f"#people li[data-name='{name}']")
    assert "2 face(s) added" in page.inner_text("#add-status")
    page.click(f"#people li[data-name='{name}'] .name")
    page.wait_for_function(f"""() => {{
        const imgs = [...document.querySelectorAll("#people li[data-name='{name}'] .thumb img")];
        return imgs.length === 2 && imgs.every(i => i.complete && i.naturalWidth > 0); }}""")
    photos_dir = Path(str(server.config.settings.gallery) + ".photos")
    stored = {f.name for f in photos_dir.iterdir()}
    assert stored == {hashlib.sha256(p.read_bytes()).hexdigest() + ".jpg" for p in photos}

    page.once("dialog", lambda d: d.accept())
    page.click(f"#people li[data-name='{name}'] button:has-text('delete')")
    page.wait_for_selector(f"#people li[data-name='{name}']", state="detached")
    assert not any(photos_dir.iterdir())
    with httpx.Client(base_url=server.url, headers={"X-API-Key": server.key}, timeout=60) as c:
        assert all(p["name"] != name for p in c.get("/v1/people").json()["people"])
