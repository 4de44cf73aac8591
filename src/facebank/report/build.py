"""Reports of each kind of run (evaluation, open set, LFW, gallery-size study), as html.Report objects,
and the plain-text summaries the commands print."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from facebank.evaluate import metrics
from facebank.evaluate.lfw import LfwResult
from facebank.evaluate.protocols import Dataset, Evaluation, OpenSetEvaluation
from facebank.evaluate.study import RULES, GallerySizeStudy
from facebank.report import plots
from facebank.report.html import Report

log = logging.getLogger(__name__)

PROTOCOL_TEXT = {
    "fixed": "fixed train/test folders",
    "kfold": "stratified k-fold cross-validation",
    "repeated": "repeated stratified random splits",
}


def _pct(v: float) -> str:
    return "-" if v != v else f"{100 * v:.2f}%"


def _dataset_section(rep: Report, ds: Dataset, title: str, settings_text: str | None = None) -> None:
    rep.heading(f"Data: {title}")
    fails = ds.failures()
    rep.text(f"{len(ds.items)} photos of {len(ds.people)} people; {len(fails)} photos gave no usable face "
             "(they count as failures, never dropped).")
    if settings_text:
        rep.text(f"Pipeline: {settings_text}")
    rep.image(plots.photos_per_person(ds.counts()), "Distribution of photos per person")
    if fails:
        rep.table(["photo", "reason"], fails[:50])


def _embedding_map(rep: Report, ds: Dataset, tsne: bool) -> None:
    if ds.ok.sum() >= 3:
        rep.image(plots.embedding_map(ds.x[ds.ok], ds.labels[ds.ok], "pca"),
                  "Embeddings coloured by person (PCA to 2-D)")
        if tsne:
            rep.image(plots.embedding_map(ds.x[ds.ok], ds.labels[ds.ok], "tsne"),
                      "Embeddings coloured by person (t-SNE)")


def evaluation_text(ev: Evaluation) -> str:
    lines = [f"{PROTOCOL_TEXT[ev.protocol]} on {ev.dataset}: {len(ev.people)} people, "
             f"{ev.splits} split(s)"]
    lines.append(f"{'classifier':<10} {'top-1':>16} {'top-5':>16} {'no face':>8}")
    for name, r in ev.results.items():
        (t1, s1), (t5, s5) = r.top1, r.top5
        lines.append(f"{name:<10} {_pct(t1):>8} +- {100 * s1:5.2f} {_pct(t5):>8} +- {100 * s5:5.2f} "
                     f"{r.summary()['failures']:>8}")
    lines.append(f"best: {ev.best().name}")
    return "\n".join(lines)


def evaluation_report(ev: Evaluation, settings_text: str = "", tsne: bool = False,
                      grid_size: int = 36) -> Report:
    rep = Report(f"facebank evaluation: {ev.dataset}")
    rep.text(f"Protocol: {PROTOCOL_TEXT[ev.protocol]}"
             + (f", {ev.splits} folds" if ev.protocol == "kfold" else "")
             + (f", {ev.splits} repeats" if ev.protocol == "repeated" else "")
             + ". Closed-set identification (every face is named); top-1/top-5 accuracy over all test "
             "photos, photos with no face counted wrong. Standardisation is fit on training data only.")
    best = ev.best()
    rep.heading("Results")
    names = list(ev.results)
    rows = []
    for name in names:
        r = ev.results[name]
        (t1, s1), (t5, s5) = r.top1, r.top5
        rows.append([name, _pct(t1), f"{100 * s1:.2f}", _pct(t5), f"{100 * s5:.2f}", r.summary()["failures"],
                     f"{r.summary()['seconds']:.1f}", ", ".join(f"{k}={v}" for k, v in r.params.items())])
    rep.table(["classifier", "top-1", "std (pp)", "top-5", "std (pp)", "no face", "seconds", "parameters"],
              rows, highlight=names.index(best.name))
    rep.image(plots.bar_chart({n: ev.results[n].top1 for n in names}, "top-1 accuracy",
                              "Top-1 accuracy per classifier (mean +- std over splits)"))
    _dataset_section(rep, ev.train, ev.train.root + (f" (train); {ev.test.root} (test)" if ev.test else ""),
                     settings_text)
    if ev.test is not None:
        rep.image(plots.photos_per_person(ev.test.counts(), "Test photos per person"))
    for name in names:
        hist = ev.results[name].splits[0].history
        if hist:
            rep.heading(f"Training curves: {name}")
            rep.image(plots.training_curves(hist, f"{name}: loss and accuracy per epoch (first split)"),
                      "Per-epoch training and validation loss and accuracy; the best validation epoch's "
                      "weights are kept")
    truth, pred = best.pooled()
    rep.heading(f"Best classifier: {best.name}")
    m, cols = metrics.confusion(truth, pred, ev.people)
    rep.image(plots.confusion_matrix(m, ev.people, cols, f"Confusion matrix ({best.name}, all test photos)"))
    pp = metrics.per_person(truth, pred, ev.people)
    rep.table(["person", "precision", "recall", "test photos"],
              [[p.name, p.precision, p.recall, p.support] for p in pp])
    grid = plots.photo_grid(_grid_items(ev, best, grid_size),
                            title=f"Test photos ({best.name}): mistakes first, in red")
    rep.image(grid, "True and predicted names; mistakes highlighted red")
    data = ev.train if ev.test is None else _concat(ev.train, ev.test)
    rep.heading("Embedding map")
    _embedding_map(rep, data, tsne)
    rep.heading("Summary (JSON)")
    rep.json(ev.summary())
    return rep


def _concat(a: Dataset, b: Dataset) -> Dataset:
    return Dataset(a.root, np.concatenate([a.labels, b.labels]), a.items + b.items,
                   np.concatenate([a.x, b.x]), np.concatenate([a.ok, b.ok]))


def _grid_items(ev: Evaluation, res, n: int) -> list[plots.GridItem]:
    wrong: list[plots.GridItem] = []
    right: list[plots.GridItem] = []
    for split in res.splits:
        data = ev.data_for(split)
        for j, idx in enumerate(split.test_index):
            item = data.items[int(idx)]
            b = item.box
            g = plots.GridItem(item.path, split.truth[j], split.pred[j],
                               None if b is None else (b.x1, b.y1, b.x2, b.y2))
            (wrong if g.truth != g.pred else right).append(g)
    rng = np.random.default_rng(0)
    right = [right[i] for i in rng.permutation(len(right))]
    return (wrong + right)[:n]


# ---- open set ----------------------------------------------------------------------------------------
def open_set_text(ev: OpenSetEvaluation) -> str:
    lines = [f"open set on {ev.dataset}: {ev.known_people} known, {len(ev.data.people) - ev.known_people} "
             f"unknown people, {ev.repeats} repeats"]
    lines.append(f"{'classifier':<10} {'TAR@FAR1%':>18} {'TAR@FAR0.1%':>18} {'thr@FAR1%':>10}")
    for name, r in ev.results.items():
        (a, sa), (b, sb), (t, _) = r.tar_at(0.01), r.tar_at(0.001), r.threshold_at(0.01)
        lines.append(f"{name:<10} {_pct(a):>9} +- {100 * sa:5.2f} {_pct(b):>9} +- {100 * sb:5.2f} {t:>10.4f}")
    lines.append(f"best: {ev.best().name}")
    return "\n".join(lines)


def open_set_section(rep: Report, ev: OpenSetEvaluation) -> None:
    rep.heading("Open set: known people vs strangers")
    rep.text(f"{ev.repeats} repeats: {ev.known_people} random people are enrolled with half of their photos; "
             "their other photos must be named correctly and accepted (TAR), every photo of the other "
             f"{len(ev.data.people) - ev.known_people} people must be rejected as unknown (FAR = share "
             "accepted). The threshold is on the L2 distance from the face to the predicted person. "
             "FAR 0.1% is resolved only when there are >= 1000 stranger photos per repeat.")
    rows = []
    names = list(ev.results)
    for name in names:
        r = ev.results[name]
        (a, sa), (b, sb) = r.tar_at(0.01), r.tar_at(0.001)
        (t, ts), (t2, _) = r.threshold_at(0.01), r.threshold_at(0.001)
        rows.append([name, _pct(a), f"{100 * sa:.2f}", _pct(b), f"{100 * sb:.2f}", f"{t:.4f} +- {ts:.4f}",
                     f"{t2:.4f}", _pct(r.closed_top1()[0])])
    rep.table(["classifier", "TAR @ FAR 1%", "std (pp)", "TAR @ FAR 0.1%", "std (pp)",
               "threshold @ FAR 1%", "threshold @ FAR 0.1%", "closed-set top-1"], rows,
              highlight=names.index(ev.best().classifier))
    rep.image(plots.roc_det({n: ev.results[n].pooled_roc() for n in names},
                            "Open-set ROC / DET (all repeats pooled)"),
              "TAR counts a known face only when it is accepted AND named correctly")
    best = ev.best()
    g = np.concatenate([r.genuine for r in best.runs])
    im = np.concatenate([r.impostor for r in best.runs])
    rep.image(plots.distance_histogram(g, im, best.threshold_at(0.01)[0],
                                       f"{best.name}: distance to the predicted person",
                                       ("known people", "strangers")),
              "Calibrated threshold at FAR 1% (mean over repeats) dashed")


def open_set_report(ev: OpenSetEvaluation, settings_text: str = "", tsne: bool = False) -> Report:
    rep = Report(f"facebank open-set evaluation: {ev.dataset}")
    open_set_section(rep, ev)
    _dataset_section(rep, ev.data, ev.dataset, settings_text)
    rep.heading("Embedding map")
    _embedding_map(rep, ev.data, tsne)
    rep.heading("Summary (JSON)")
    rep.json(ev.summary())
    return rep


# ---- LFW ------------------------------------------------------------------------------------------------
def lfw_text(res: LfwResult) -> str:
    s = res.summary()
    return (f"LFW View 2 ({s['folds']} folds, {s['pairs']} pairs): accuracy {_pct(s['accuracy'])} +- "
            f"{100 * s['std']:.2f} pp; threshold {s['threshold']:.4f} +- {s['threshold_std']:.4f}; "
            f"TAR@FAR1% {_pct(s['tar_at_far_1%'])}, TAR@FAR0.1% {_pct(s['tar_at_far_0_1%'])}; "
            f"{s['photos']} photos, {s['no_face']} without a face, {s['fallback_box']} used the central box")


def lfw_report(res: LfwResult, settings_text: str = "", grid_pairs: int = 18) -> Report:
    rep = Report("facebank benchmark: LFW View 2")
    s = res.summary()
    rep.text("Protocol: LFW View 2, 10 folds of 300 same + 300 different pairs; on each fold the "
             "distance threshold that maximises accuracy on the other 9 folds is applied. Pairs with a "
             "photo that gave no face count as 'different'.")
    if settings_text:
        rep.text(f"Pipeline: {settings_text}")
    rep.heading("Results")
    rep.table(["accuracy", "std", "mean threshold (L2)", "TAR @ FAR 1%", "TAR @ FAR 0.1%", "photos",
               "no face", "central box used"],
              [[_pct(s["accuracy"]), f"{100 * s['std']:.2f} pp", f"{s['threshold']:.4f}",
                _pct(s["tar_at_far_1%"]), _pct(s["tar_at_far_0_1%"]), s["photos"], s["no_face"],
                s["fallback_box"]]])
    rep.table(["fold", "accuracy", "threshold"],
              [[k + 1, _pct(a), f"{t:.4f}"]
               for k, (a, t) in enumerate(zip(res.fold_accuracy, res.fold_threshold, strict=True))])
    rep.image(plots.roc_det({"LFW View 2": res.roc()}, "LFW View 2 ROC / DET (all 6000 pairs)"))
    same = res.same
    rep.image(plots.distance_histogram(res.distance[same], res.distance[~same],
                                       float(res.fold_threshold.mean()), "LFW pair distances"),
              "Mean fold threshold dashed")
    # mistaken pairs, each as two thumbnails
    thr = res.fold_threshold[np.array([p.fold for p in res.pairs])]
    pred_same = res.distance <= thr
    wrong = [k for k in range(len(res.pairs)) if pred_same[k] != same[k]]
    items: list[plots.GridItem] = []
    for k in wrong[:grid_pairs]:
        p = res.pairs[k]
        t, q = ("same" if p.same else "different"), ("same" if pred_same[k] else "different")
        for rel in (p.a, p.b):
            e = res.items[rel]
            b = e.box
            items.append(plots.GridItem(e.path, f"{t} ({res.distance[k]:.2f})", q,
                                        None if b is None else (b.x1, b.y1, b.x2, b.y2)))
    if items:
        title = f"Mistaken pairs ({len(wrong)} of {len(res.pairs)}), side by side; true (dist.) / predicted"
        rep.image(plots.photo_grid(items, columns=6, title=title),
                  "Every pair shown is a mistake (red)")
    if res.failures:
        rep.table(["photo", "reason"], res.failures[:50])
    rep.heading("Summary (JSON)")
    rep.json(s)
    return rep


# ---- gallery-size study ---------------------------------------------------------------------------------
def study_text(study: GallerySizeStudy) -> str:
    lines = [f"gallery-size study on {study.dataset}: {study.repeats} repeats, "
             f"{study.test_per_person} test photos per person"]
    lines.append(f"{'per person':>10} " + " ".join(f"{r:>18}" for r in RULES))
    for n in study.per_person:
        cells = []
        for r in RULES:
            m, s = metrics.mean_std(study.accuracy[r][n])
            cells.append(f"{_pct(m):>9} +- {100 * s:5.2f}")
        lines.append(f"{n:>10} " + " ".join(f"{c:>18}" for c in cells))
    return "\n".join(lines)


def study_report(study: GallerySizeStudy, ds: Dataset, settings_text: str = "") -> Report:
    rep = Report(f"facebank study: gallery size on {study.dataset}")
    rep.text(f"{study.repeats} repeats: {study.test_per_person} photos per person are held out for testing, "
             "galleries of n photos per person are drawn from the rest; 'centroid' names the nearest mean "
             "embedding, 'nearest' the person of the nearest enrolled face.")
    rep.image(plots.gallery_size_curve({r: study.curve(r) for r in RULES}),
              "Top-1 accuracy vs photos per person; error bars = std over repeats")
    rows = []
    for n in study.per_person:
        row: list[object] = [n]
        for r in RULES:
            m, s = metrics.mean_std(study.accuracy[r][n])
            row += [_pct(m), f"{100 * s:.2f}"]
        rows.append(row)
    rep.table(["photos per person", "centroid", "std (pp)", "nearest face", "std (pp)"], rows)
    _dataset_section(rep, ds, ds.root, settings_text)
    rep.heading("Embedding map")
    _embedding_map(rep, ds, False)
    rep.heading("Summary (JSON)")
    rep.json(study.summary())
    return rep


def names_table(values: Sequence[tuple[str, float]]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in values)
