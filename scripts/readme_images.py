"""The two pictures of the README, made from ../shared/faces with every face blurred: the shared
photos belong to their owners and are never copied into the repository, so what is kept is
facebank's own drawing (boxes, names, the People page) over faces no one can recognise.

    .venv/bin/python scripts/readme_images.py [--faces ../shared/faces] [--out docs/assets]

Writes ``annotated.jpg`` (``facebank identify --annotate`` on a 5celeb/val photo, gallery
5celeb/train) and ``people-view.png`` (the web page's People view on 5celeb/val scanned as an
unsorted library, in headless Chromium).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
BLUR_CSS = "img { filter: blur(7px) !important; }"


def blur_faces(rgb: np.ndarray, boxes: list[list[float]]) -> np.ndarray:
    """Each face box (enlarged by a third) pixelated and blurred beyond recognition."""
    im = Image.fromarray(rgb)
    for x1, y1, x2, y2 in boxes:
        w, h = x2 - x1, y2 - y1
        box = tuple(int(v) for v in (max(0, x1 - w / 3), max(0, y1 - h / 3),
                                     min(im.width, x2 + w / 3), min(im.height, y2 + h / 3)))
        region = im.crop(box)
        small = region.resize((6, 6), Image.Resampling.BILINEAR)
        im.paste(small.resize(region.size, Image.Resampling.NEAREST).filter(ImageFilter.GaussianBlur(6)), box)
    return np.asarray(im)


def annotated(faces: Path, out: Path, work: Path) -> Path:
    from facebank import FaceBank
    from facebank.draw import annotate
    from facebank.images import load_image

    with FaceBank(work / "train.db") as fb:
        fb.enroll_folder(faces / "5celeb" / "train")
        # a collage of one named photo of each of three people (plus one stranger: a face from
        # multi_face nobody enrolled), so that one picture shows names and "unknown"
        tiles = []
        for person in sorted(p for p in (faces / "5celeb" / "val").iterdir() if p.is_dir())[:3]:
            for photo in sorted(person.iterdir()):
                res = fb.identify(photo)
                if len(res.faces) == 1 and res.faces[0].match.name:
                    tiles.append(load_image(photo).rgb)
                    break
        stranger = faces / "detection_edge" / "multi_face" / "face_recognition_obama_and_biden.jpg"
        if stranger.is_file():
            tiles.append(load_image(stranger).rgb)
        height = 320
        tiles = [np.asarray(Image.fromarray(t).resize((max(1, t.shape[1] * height // t.shape[0]), height)))
                 for t in tiles]
        rgb = np.concatenate(tiles, axis=1)
        res = fb.identify(rgb)
        rgb = blur_faces(rgb, [f.face.box.as_list() for f in res.faces])
        im = annotate(rgb, res)
    im.thumbnail((900, 900))
    dst = out / "annotated.jpg"
    im.save(dst, quality=80)
    return dst


def people_view(faces: Path, out: Path, work: Path) -> Path:
    from playwright.sync_api import sync_playwright

    from facebank.server import ServerConfig
    from facebank.server.auth import ApiKeyStore
    from facebank.server.testing import LiveServer, enrolled_gallery, scanned_gallery
    from facebank.settings import Settings

    library = work / "library"
    library.mkdir()
    for p in sorted((faces / "5celeb" / "val").glob("*/*")):
        (library / f"{p.parent.name}-{p.name}").write_bytes(p.read_bytes())
    trained = enrolled_gallery(work / "people-train.db", faces / "5celeb" / "train")
    gallery = scanned_gallery(work / "scanned.db", trained, library)
    with ApiKeyStore(gallery) as keys:
        _, key = keys.create("readme")
    dst = out / "people-view.png"
    with LiveServer(ServerConfig(settings=Settings(gallery=str(gallery)))) as live, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1100, "height": 760}, bypass_csp=True)
        page.goto(live.url + "/")
        page.add_style_tag(content=BLUR_CSS)
        page.fill("#key", key)
        page.click("#save-key")
        page.click("#tabs [data-view='people-view']")
        page.wait_for_selector("#clusters li.cluster, #clusters-status:not(:empty)")
        page.wait_for_timeout(1500)  # thumbnails
        page.screenshot(path=str(dst))
        browser.close()
    im = Image.open(dst)
    im.thumbnail((900, 900))
    im.save(dst, optimize=True)
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=Path, default=REPO.parent / "shared" / "faces")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "assets")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for made in (annotated(args.faces, args.out, work), people_view(args.faces, args.out, work)):
            print(f"wrote {made} ({made.stat().st_size // 1024} kB)")


if __name__ == "__main__":
    main()
