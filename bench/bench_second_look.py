"""Faces the detector misses: how many a second look finds (upsampled copy, turned copies, HOG).

    .venv/bin/python bench/bench_second_look.py [--sets lfw,5celeb,pins10]

For each set, the photos where the default pipeline (MTCNN) finds no face are taken from the
embedding cache (computed once, like the evaluations do), and each second look is tried on them
alone; the photos of ``detection_edge/no_face`` (no human face) show the false faces each look adds.
LFW misses are the photos that fell back to LFW's central box. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from tqdm import tqdm

from facebank import images
from facebank.evaluate.cache import (
    LFW_POLICY,
    EmbeddingCache,
    FacePolicy,
    default_cache_path,
    default_retry,
    embed_photos,
    labelled_photos,
)
from facebank.evaluate.lfw import lfw_settings
from facebank.pipeline import FacePipeline
from facebank.settings import Settings

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces"
LOOKS = ("upsample", "rotate", "hog", "upsample,rotate,hog")


def misses(name: str, cache: EmbeddingCache) -> tuple[int, list[str]]:
    """(photos, paths of the photos where the default pipeline found no face)."""
    if name == "lfw":
        settings = lfw_settings(Settings())
        paths = [p for _, p in labelled_photos(FACES / "lfw" / "images")]
        items = embed_photos(paths, settings, LFW_POLICY, cache)
        return len(items), [e.path for e in items if e.fallback or not e.ok]
    settings = Settings()
    roots = [FACES / "5celeb" / "train", FACES / "5celeb" / "val"] if name == "5celeb" else [FACES / name]
    paths = [p for r in roots for _, p in labelled_photos(r)]
    items = embed_photos(paths, settings, FacePolicy("largest", retry=default_retry()), cache)
    return len(items), [e.path for e in items if not e.ok]


def found_with(look: str, paths: list[str], base: Settings) -> list[str]:
    pipe = FacePipeline(base.model_copy(update={"second_look": look}))
    out = []
    for p in tqdm(paths, desc=look, mininterval=30):
        try:
            img = images.load_image(p)
        except images.ImageError:
            continue
        if pipe.detections(img.rgb):
            out.append(p)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sets", default="lfw,5celeb,pins10")
    ap.add_argument("--cache", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    summary: dict = {"bench": "second_look", "sets": {}}
    with EmbeddingCache(args.cache or default_cache_path()) as cache:
        for name in args.sets.split(","):
            total, missed = misses(name, cache)
            base = lfw_settings(Settings()) if name == "lfw" else Settings()
            # LFW photos have their crop fallback off; the others keep the default pipeline
            row = {"photos": total, "missed": len(missed)}
            for look in LOOKS:
                row[look] = len(found_with(look, missed, base))
            summary["sets"][name] = row
            print(f"{name}: {len(missed)} of {total} photos without a face; found by a second look: "
                  + ", ".join(f"{k} {row[k]}" for k in LOOKS), flush=True)
    no_face = [str(p) for p in images.iter_image_files(FACES / "detection_edge" / "no_face")]
    summary["no_face_false_faces"] = {look: len(found_with(look, no_face, Settings())) for look in LOOKS}
    print(f"detection_edge/no_face ({len(no_face)} photos): photos with a false face per look: "
          + ", ".join(f"{k} {v}" for k, v in summary["no_face_false_faces"].items()))
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
