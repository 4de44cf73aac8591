"""The generated reels of the video benchmarks (bench_video.py, bench_video_shots.py): which photos,
which are enrolled, which reels are for development and which are reported.

Photos: 5celeb (5 people). Every photo with exactly one face found is measured once (face box,
landmark yaw = horizontal offset of the nose from the eyes' midpoint, in eye distances; cached in
the work folder). Enrolled: ONE photo per person, the most frontal of 5celeb/train. Development
reels (settings are chosen on them): the other 5celeb/train photos, seeds 0 and 1. Reported reels:
5celeb/val photos only (never seen while choosing), seeds 2 and 3, plus the old standard reel of
5celeb/val. Turned faces: photos with |yaw| >= 0.25 (genuinely turned heads, not rotated stills),
shown in the panning shots. Not a test: a helper imported by the bench scripts.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TURNED_YAW = 0.25


@dataclass(frozen=True)
class PhotoFace:
    person: str
    split: str
    path: Path
    box: tuple[float, float, float, float]
    yaw: float


def measure_photos(faces: Path, work: Path) -> list[PhotoFace]:
    cache = work / "photo_faces.json"
    if cache.is_file():
        rows = json.loads(cache.read_text())
        return [PhotoFace(r["person"], r["split"], Path(r["path"]), tuple(r["box"]), r["yaw"]) for r in rows]
    from facebank import FaceBank
    from facebank.images import load_image

    out = []
    with FaceBank(work / "measure.db") as fb:
        for split in ("train", "val"):
            for person in sorted((faces / "5celeb" / split).iterdir()):
                for p in sorted(person.iterdir()):
                    try:
                        found = fb.pipeline.faces(load_image(p).rgb)
                    except Exception as exc:  # a photo the loader refuses is left out
                        print(f"skipped {p.name}: {exc}", file=sys.stderr)
                        continue
                    if len(found) != 1 or found[0].landmarks is None:
                        continue
                    lm = found[0].landmarks.as_array()
                    mid = (lm[0] + lm[1]) / 2.0
                    iod = max(float(np.linalg.norm(lm[1] - lm[0])), 1e-6)
                    b = found[0].box
                    out.append(PhotoFace(person.name, split, p, (b.x1, b.y1, b.x2, b.y2),
                                         float((lm[2][0] - mid[0]) / iod)))
    cache.write_text(json.dumps([{**r.__dict__, "path": str(r.path)} for r in out]))
    return out


def enrolled(photos: list[PhotoFace]) -> dict[str, Path]:
    best: dict[str, PhotoFace] = {}
    for p in photos:
        if p.split == "train" and (p.person not in best or abs(p.yaw) < abs(best[p.person].yaw)):
            best[p.person] = p
    return {k: v.path for k, v in best.items()}


def build_gallery(photos: list[PhotoFace], work: Path) -> Path:
    from facebank import FaceBank

    path = work / "one_photo_each.db"
    with FaceBank(path) as fb:
        if not fb.people():
            for person, photo in enrolled(photos).items():
                fb.enroll_photos(person, [photo])
    return path


def reel_photos(photos: list[PhotoFace], split: str) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    """(frontal-ish photos, turned photos) per person of a split, the enrolled ones left out."""
    skip = set(enrolled(photos).values())
    front: dict[str, list[Path]] = {}
    turned: dict[str, list[Path]] = {}
    for p in photos:
        if p.split != split or p.path in skip:
            continue
        (turned if abs(p.yaw) >= TURNED_YAW else front).setdefault(p.person, []).append(p.path)
    return front, turned


def face_boxes(photos: list[PhotoFace]) -> dict[Path, tuple[float, float, float, float]]:
    return {p.path: p.box for p in photos}


def make_reels(photos: list[PhotoFace], work: Path, seconds: float = 2.0) -> dict[str, list]:
    """{"dev": [SyntheticVideo, ...], "report": [...]} (written once into ``work``)."""
    from facebank.video.synthetic import mixed_shots, standard_shots

    out: dict[str, list] = {"dev": [], "report": []}
    for kind, split, seeds in (("dev", "train", (0, 1)), ("report", "val", (2, 3))):
        front, turned = reel_photos(photos, split)
        for seed in seeds:
            shots = mixed_shots(front, seconds, seed, turned)
            out[kind].append(cached_video(work / f"{kind}_{seed}_{seconds:g}s.mp4", shots))
    std = standard_shots(photos[0].path.parents[2] / "val", seconds=seconds)
    out["report"].append(cached_video(work / f"report_standard_{seconds:g}s.mp4", std))
    return out


def cached_video(path: Path, shots: list, width: int = 1280, height: int = 720):
    """The reel at ``path``, rendered unless a previous run left it there (same shots: seeded)."""
    from facebank.video.synthetic import SyntheticVideo, make_video

    if path.is_file():
        return SyntheticVideo(path, tuple(shots), 25, width, height)
    return make_video(path, shots, width=width, height=height)
