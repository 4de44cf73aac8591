"""pins10 open set: 5 people enrolled, 5 strangers, repeated splits; TAR at FAR 1% / 0.1% per classifier
and the threshold that gives FAR 1%.

    .venv/bin/python bench/bench_pins10_openset.py [--repeats 10] [--report pins.html]

Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from facebank.evaluate.cache import EmbeddingCache, FacePolicy, default_cache_path, default_retry
from facebank.evaluate.protocols import evaluate_open_set, load_dataset
from facebank.learn.classifiers import ClassifierSpec, available
from facebank.report.build import open_set_report, open_set_text
from facebank.settings import Settings

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=FACES / "pins10")
    ap.add_argument("--known", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--no-flip", action="store_true", help="no mirror-image averaging (default: flip)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report", type=Path, default=None)
    ap.add_argument("--cache", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings().model_copy(update={"flip": not args.no_flip})
    policy = FacePolicy("largest", retry=default_retry())
    t0 = time.perf_counter()
    with EmbeddingCache(args.cache or default_cache_path()) as cache:
        ds = load_dataset(args.data, settings, policy, cache)
    ev = evaluate_open_set(ds, [ClassifierSpec(n) for n in available()], known=args.known,
                           repeats=args.repeats, seed=args.seed)
    print(open_set_text(ev))
    summary = {**ev.summary(), "pipeline": settings.pipeline_key(), "policy": policy.key(),
               "seconds": round(time.perf_counter() - t0, 1)}
    if args.report:
        open_set_report(ev, f"{settings.pipeline_key()} | {policy.key()}").save(args.report)
        summary["report"] = str(args.report)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
