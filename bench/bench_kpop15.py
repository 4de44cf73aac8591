"""kpop15 stratified 5-fold: top-1/top-5 of every classifier in one table.

    .venv/bin/python bench/bench_kpop15.py [--jitter 8] [--no-flip] [--report kpop.html]

kpop15 photos are tight 160x160 crops: MTCNN finds most faces, the crop fallback (auto) takes the
rest. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from facebank.evaluate.cache import EmbeddingCache, FacePolicy, default_cache_path, default_retry
from facebank.evaluate.protocols import evaluate_kfold, load_dataset
from facebank.learn.classifiers import ClassifierSpec, available
from facebank.report.build import evaluation_report, evaluation_text
from facebank.settings import Settings

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=FACES / "kpop15" / "train")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--jitter", type=int, default=8)
    ap.add_argument("--no-flip", action="store_true")
    ap.add_argument("--crop-fallback", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report", type=Path, default=None)
    ap.add_argument("--cache", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings().model_copy(update={"flip": not args.no_flip, "crop_fallback": args.crop_fallback})
    policy = FacePolicy("largest", retry=default_retry(), jitter=args.jitter)
    t0 = time.perf_counter()
    with EmbeddingCache(args.cache or default_cache_path()) as cache:
        ds = load_dataset(args.data, settings, policy, cache)
    ev = evaluate_kfold(ds, [ClassifierSpec(n) for n in available()], args.folds, args.seed)
    print(evaluation_text(ev))
    summary = {**ev.summary(), "pipeline": settings.pipeline_key(), "policy": policy.key(),
               "seconds": round(time.perf_counter() - t0, 1)}
    if args.report:
        evaluation_report(ev, f"{settings.pipeline_key()} | {policy.key()}").save(args.report)
        summary["report"] = str(args.report)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
