"""Two models at once: is a fused embedding of dlib's ResNet and MobileFaceNet better than either?

    FACEBANK_DATA_DIR=... nice .venv/bin/python bench/bench_fusion.py [--model mobilefacenet]

Fusion = the concatenation of the two unit vectors weighted ``sqrt(w)`` and ``sqrt(1 - w)`` (so the
squared L2 distance is ``w * d_dlib**2 + (1 - w) * d_other**2``), then normalised. ``w`` is chosen
on LFW View 1 (pairsDevTrain, best 10-fold-free accuracy) only; figures are reported on LFW View 2
(10 folds, thresholds from the other 9 folds as in the protocol) for dlib alone, the other model
alone and the fusion. Embeddings come from the evaluation cache (flip on, MTCNN landmarks). Ends
with ONE JSON line, recorded as ``fusion``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import record  # noqa: E402

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces"


def pair_distances(root: Path, pairs_file: str, settings) -> tuple[list, dict]:
    from facebank.evaluate.cache import embed_photos
    from facebank.evaluate.lfw import LFW_POLICY, lfw_settings, read_pairs

    pairs = read_pairs(root / pairs_file)
    rels = sorted({p.a for p in pairs} | {p.b for p in pairs})
    items = embed_photos([root / r for r in rels], lfw_settings(settings), LFW_POLICY)
    return pairs, {r: e.embedding for r, e in zip(rels, items, strict=True)}


def fused(a: dict, b: dict, w: float) -> dict:
    out = {}
    for k in a:
        if a[k] is None or b.get(k) is None:
            out[k] = None
            continue
        v = np.concatenate([np.sqrt(w) * a[k], np.sqrt(1 - w) * b[k]])
        out[k] = v / np.linalg.norm(v)
    return out


def open_set(root: Path, dlib_s, other_s, w: float, name: str) -> dict:
    """LFW open set (test people, 10 splits, margin rule) for each model alone and the fusion."""
    from dataclasses import replace

    from facebank.decide import parse
    from facebank.evaluate.lfw import LFW_POLICY, lfw_settings
    from facebank.evaluate.openset import lfw_root_images, lfw_splits, run_rules
    from facebank.evaluate.protocols import load_dataset

    ds_d = load_dataset(lfw_root_images(root), lfw_settings(dlib_s), LFW_POLICY)
    ds_o = load_dataset(lfw_root_images(root), lfw_settings(other_s), LFW_POLICY)
    assert list(ds_d.labels) == list(ds_o.labels)
    x = np.concatenate([np.sqrt(w) * ds_d.x, np.sqrt(1 - w) * ds_o.x], axis=1)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    ds_f = replace(ds_d, x=x.astype(np.float32), ok=ds_d.ok & ds_o.ok)
    out = {}
    for label, ds in (("dlib", ds_d), (name, ds_o), ("fusion", ds_f)):
        rule = parse("margin:combine=both,weight=0.5")
        study = run_rules(ds, lfw_splits(ds, 10, 0, "test"), [rule], 0.01, None, "lfw-open-set", "test")
        r = study.summary()["results"][rule.key()]
        out[label] = {k: r[k] for k in ("dir_at_far_1%", "dir_at_far_1%_std", "dir_at_far_0_1%", "rank1")}
    return out


def main() -> None:
    from facebank.evaluate import metrics
    from facebank.evaluate.lfw import evaluate_pairs
    from facebank.settings import Settings

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--faces", type=Path, default=FACES)
    ap.add_argument("--model", default="mobilefacenet")
    a = ap.parse_args()
    root = a.faces / "lfw"
    dlib_s, other_s = Settings(embedder="fast"), Settings(embedder="onnx", onnx_model=a.model)
    dev_pairs, dev_d = pair_distances(root, "pairsDevTrain.txt", dlib_s)
    _, dev_o = pair_distances(root, "pairsDevTrain.txt", other_s)
    same = np.array([p.same for p in dev_pairs])
    dev_acc = {}
    for w in np.round(np.arange(0.0, 1.01, 0.1), 2):
        emb = fused(dev_d, dev_o, float(w))
        d = np.array([np.linalg.norm(emb[p.a] - emb[p.b]) if emb[p.a] is not None and emb[p.b] is not None
                      else np.inf for p in dev_pairs])
        fin = np.isfinite(d)
        thr = metrics.best_accuracy_threshold(same[fin], d[fin])
        dev_acc[float(w)] = float(((d <= thr) == same)[fin].mean())
    w_best = max(dev_acc, key=lambda k: (dev_acc[k], -abs(k - 0.5)))
    pairs, v2_d = pair_distances(root, "pairs.txt", dlib_s)
    _, v2_o = pair_distances(root, "pairs.txt", other_s)
    figures = {"w_dlib_chosen_on_view1": w_best, "view1_accuracy_by_w": dev_acc}
    for name, emb in (("dlib", v2_d), (a.model, v2_o), ("fusion", fused(v2_d, v2_o, w_best))):
        dist, accs, _ = evaluate_pairs(pairs, emb)
        figures[name] = {"lfw_view2_accuracy": round(float(accs.mean()), 5),
                         "std": round(float(accs.std(ddof=1)), 5)}
    figures["lfw_openset_test"] = open_set(root, dlib_s, other_s, w_best, a.model)
    line = record("fusion", figures, notes="weight chosen on LFW View 1 pairsDevTrain; reported on View 2 "
                  "and the LFW open set's test people (margin rule, DIR at FAR from the strangers' scores)")
    print(json.dumps(line))


if __name__ == "__main__":
    main()
