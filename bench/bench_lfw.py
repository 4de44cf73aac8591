"""LFW View 2 benchmark (all 6,000 pairs): mean accuracy +- std over 10 folds, TAR at FAR, mean threshold.

    .venv/bin/python bench/bench_lfw.py [--jitter 8] [--no-flip] [--report lfw.html]

Embeds the 7,701 photos once into the embedding cache (about 10-25 minutes on 2 cores with the
fast embedder; far longer with --jitter), then every rerun is instant. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from facebank.evaluate.cache import LFW_POLICY, EmbeddingCache, default_cache_path
from facebank.evaluate.lfw import lfw_settings, run_view2
from facebank.report.build import lfw_report, lfw_text
from facebank.settings import Settings

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lfw", type=Path, default=FACES / "lfw")
    ap.add_argument("--jitter", type=int, default=8, help="jittered copies per face (test-time augmentation)")
    ap.add_argument("--no-flip", action="store_true")
    ap.add_argument("--detector", default=None)
    ap.add_argument("--report", type=Path, default=None)
    ap.add_argument("--cache", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    update = {"flip": not args.no_flip}
    if args.detector:
        update["detector"] = args.detector
    settings = lfw_settings(Settings().model_copy(update=update))
    policy = replace(LFW_POLICY, jitter=args.jitter)
    t0 = time.perf_counter()
    with EmbeddingCache(args.cache or default_cache_path()) as cache:
        res = run_view2(args.lfw, settings, policy, cache, lambda it, **k: tqdm(it, mininterval=30, **k))
    print(lfw_text(res))
    summary = {**res.summary(), "pipeline": settings.pipeline_key(), "policy": policy.key(),
               "seconds": round(time.perf_counter() - t0, 1)}
    if args.report:
        lfw_report(res, f"{settings.pipeline_key()} | {policy.key()}").save(args.report)
        summary["report"] = str(args.report)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
