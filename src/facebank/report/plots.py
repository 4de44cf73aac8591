"""Plots for evaluation reports, each returned as PNG bytes (matplotlib, Agg backend, no display)."""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

log = logging.getLogger(__name__)

MISTAKE = "#d62728"
RIGHT = "#2a7a2a"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def photos_per_person(counts: Mapping[str, int], title: str = "Photos per person") -> bytes:
    names = sorted(counts, key=lambda k: (-counts[k], k))
    h = max(2.5, 0.28 * len(names) + 1)
    fig, ax = plt.subplots(figsize=(7, min(h, 14)))
    shown = names[:50]
    ax.barh(range(len(shown)), [counts[n] for n in shown], color="#4c72b0")
    ax.set_yticks(range(len(shown)), [n[:30] for n in shown], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("photos")
    more = f" (50 of {len(names)} shown)" if len(names) > 50 else ""
    ax.set_title(f"{title}{more}: {sum(counts.values())} photos, {len(names)} people")
    return _png(fig)


def training_curves(history: Sequence, title: str = "MLP training") -> bytes:
    """Loss and accuracy per epoch (train and validation) from a list of EpochRecord."""
    ep = [r.epoch for r in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    a1.plot(ep, [r.train_loss for r in history], label="train")
    if any(r.val_loss is not None for r in history):
        a1.plot(ep, [r.val_loss for r in history], label="validation")
    a1.set_xlabel("epoch")
    a1.set_ylabel("cross-entropy loss")
    a1.set_yscale("log")
    a1.legend()
    a2.plot(ep, [r.train_accuracy for r in history], label="train")
    if any(r.val_accuracy is not None for r in history):
        a2.plot(ep, [r.val_accuracy for r in history], label="validation")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy")
    a2.set_ylim(0, 1.02)
    a2.legend()
    fig.suptitle(title)
    return _png(fig)


def confusion_matrix(m: np.ndarray, rows: Sequence[str], cols: Sequence[str],
                     title: str = "Confusion matrix") -> bytes:
    n = max(len(rows), len(cols))
    size = min(14, max(4.5, 0.45 * n + 2))
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(cols)), [c[:18] for c in cols], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [r[:18] for r in rows], fontsize=8)
    if n <= 30:
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if m[i, j]:
                    off = i != j
                    ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                            color=MISTAKE if off else ("white" if norm[i, j] > 0.5 else "black"),
                            fontweight="bold" if off else "normal")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _png(fig)


def roc_det(curves: Mapping[str, Any], title: str = "ROC and DET",
            marks: Sequence[float] = (0.01, 0.001)) -> bytes:
    """ROC (TAR vs FAR, log FAR) and DET (FRR vs FAR, log-log) for several metrics.Roc curves."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, r in curves.items():
        far, tar = np.asarray(r.far), np.asarray(r.tar)
        floor = 1.0 / 10 ** 5
        a1.plot(np.maximum(far, floor), tar, label=label, drawstyle="steps-post")
        a2.plot(np.maximum(far, floor), np.maximum(1 - tar, floor), label=label, drawstyle="steps-post")
    for f in marks:
        a1.axvline(f, color="grey", ls=":", lw=0.8)
        a2.axvline(f, color="grey", ls=":", lw=0.8)
    a1.set_xscale("log")
    a1.set_xlim(1e-4, 1)
    a1.set_ylim(max(0.0, min(0.8, a1.get_ylim()[0])), 1.005)
    a1.set_xlabel("false accept rate (FAR)")
    a1.set_ylabel("true accept rate (TAR)")
    a1.set_title("ROC")
    a1.grid(alpha=0.3)
    a1.legend(fontsize=8, loc="lower right")
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.set_xlim(1e-4, 1)
    a2.set_xlabel("false accept rate (FAR)")
    a2.set_ylabel("false reject rate (FRR)")
    a2.set_title("DET")
    a2.grid(alpha=0.3, which="both")
    fig.suptitle(title)
    return _png(fig)


def distance_histogram(genuine: np.ndarray, impostor: np.ndarray, threshold: float | None = None,
                       title: str = "Distances",
                       labels: tuple[str, str] = ("same person", "different")) -> bytes:
    fig, ax = plt.subplots(figsize=(7, 3.4))
    g = np.asarray(genuine)[np.isfinite(genuine)]
    i = np.asarray(impostor)[np.isfinite(impostor)]
    bins = np.linspace(0, max(1.4, float(np.max(np.concatenate([g, i, [0]])))), 70)
    ax.hist(g, bins=bins.tolist(), alpha=0.6, label=labels[0], color=RIGHT)
    ax.hist(i, bins=bins.tolist(), alpha=0.6, label=labels[1], color=MISTAKE)
    if threshold is not None:
        ax.axvline(threshold, color="black", ls="--", label=f"threshold {threshold:.3f}")
    ax.set_xlabel("L2 distance between unit embeddings")
    ax.set_ylabel("count")
    ax.legend()
    ax.set_title(title)
    return _png(fig)


@dataclass(frozen=True)
class GridItem:
    path: str
    truth: str
    pred: str
    box: tuple[float, float, float, float] | None = None
    caption: str | None = None  # the title instead of "True: .../Pred: ..." (colours still by truth/pred)


def photo_grid(items: Sequence[GridItem], columns: int = 6, title: str = "Test photos",
               thumb: int = 150) -> bytes:
    """Thumbnails titled True/Pred; mistakes get red titles and a red border."""
    from PIL import Image

    from facebank.images import ImageError, load_image

    n = max(1, len(items))
    cols = min(columns, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.1, rows * 2.5), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, it in zip(axes.ravel(), items, strict=False):
        try:
            rgb = load_image(it.path).rgb
            if it.box is not None:
                x1, y1, x2, y2 = it.box
                w, h = x2 - x1, y2 - y1
                x1, y1 = max(0, int(x1 - 0.3 * w)), max(0, int(y1 - 0.3 * h))
                x2, y2 = min(rgb.shape[1], int(x2 + 0.3 * w)), min(rgb.shape[0], int(y2 + 0.3 * h))
                if x2 > x1 and y2 > y1:
                    rgb = rgb[y1:y2, x1:x2]
            im = Image.fromarray(rgb)
            im.thumbnail((thumb, thumb))
            ax.imshow(np.asarray(im))
        except ImageError as exc:
            ax.text(0.5, 0.5, f"unreadable\n{exc}"[:60], ha="center", va="center", fontsize=6)
        wrong = it.truth != it.pred
        color = MISTAKE if wrong else RIGHT
        label = it.caption if it.caption is not None else f"True: {it.truth[:18]}\nPred: {it.pred[:18]}"
        ax.set_title(label, fontsize=7.5, color=color, fontweight="bold" if wrong else "normal")
        ax.axis("on")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_edgecolor(color)
            spine.set_linewidth(4 if wrong else 1)
    fig.suptitle(title)
    return _png(fig)


def gallery_size_curve(curves: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                       title: str = "Accuracy vs photos per person") -> bytes:
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, (n, m, s) in curves.items():
        ax.errorbar(n, m, yerr=s, marker="o", capsize=4, label=label)
    ax.set_xscale("log")
    ns = sorted({int(v) for c in curves.values() for v in c[0]})
    ax.set_xticks(ns, [str(v) for v in ns])
    ax.set_xlabel("photos enrolled per person")
    ax.set_ylabel("top-1 accuracy (mean +- std over repeats)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    return _png(fig)


def embedding_map(x: np.ndarray, labels: Sequence[str], method: str = "pca",
                  title: str | None = None, seed: int = 0) -> bytes:
    """2-D map of embeddings (PCA, or t-SNE) coloured by person."""
    x = np.asarray(x, np.float64)
    names = np.asarray(labels, dtype=object)
    if method == "tsne" and len(x) > 5:
        from sklearn.manifold import TSNE

        xy = TSNE(2, random_state=seed, perplexity=min(30, len(x) - 1), init="pca").fit_transform(x)
    else:
        from sklearn.decomposition import PCA

        method = "pca"
        xy = PCA(2, random_state=seed).fit_transform(x) if len(x) >= 2 else np.zeros((len(x), 2))
    people = sorted(set(names.tolist()))
    cmap = plt.get_cmap("tab20" if len(people) > 10 else "tab10")
    fig, ax = plt.subplots(figsize=(7.5, 6))
    for k, p in enumerate(people):
        sel = names == p
        ax.scatter(xy[sel, 0], xy[sel, 1], s=14, color=cmap(k % cmap.N), label=p[:20], alpha=0.8)
    if len(people) <= 25:
        ax.legend(fontsize=7, markerscale=1.5, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title(title or f"Embeddings, {method.upper()} 2-D map ({len(x)} faces, {len(people)} people)")
    ax.set_xticks([])
    ax.set_yticks([])
    return _png(fig)


def bar_chart(values: Mapping[str, tuple[float, float]], ylabel: str, title: str) -> bytes:
    names = list(values)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(names) + 1), 3.5))
    m = [values[n][0] for n in names]
    s = [values[n][1] for n in names]
    ax.bar(names, m, yerr=s, capsize=4, color="#4c72b0")
    lo = max(0.0, min(m) - 0.1) if m else 0.0
    ax.set_ylim(lo, 1.0 + 0.12 * (1.0 - lo))
    for i, v in enumerate(m):
        ax.text(i, v, f"{v:.3f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return _png(fig)


def timeline(rows: Sequence[tuple[str, float, float, bool]], duration_s: float,
             title: str = "Who is on screen when") -> bytes:
    """One line per label, a bar per (label, start seconds, end seconds, known); unknown bars red."""
    labels = sorted({r[0] for r in rows}, key=lambda s: (s.startswith("unknown"), s))
    fig, ax = plt.subplots(figsize=(10, 0.45 * max(2, len(labels)) + 1.2))
    min_w = max(duration_s, 1.0) / 400.0
    for y, label in enumerate(labels):
        spans = [(s, max(e - s, min_w)) for lab, s, e, _ in rows if lab == label]
        known = any(k for lab, _, _, k in rows if lab == label)
        ax.broken_barh(spans, (y - 0.35, 0.7), color=RIGHT if known else MISTAKE)
    ax.set_yticks(range(len(labels)), labels=[lab[:30] for lab in labels])
    ax.set_ylim(-0.6, len(labels) - 0.4)
    ax.set_xlim(0, max(duration_s, 1e-3))
    ax.invert_yaxis()
    ax.set_xlabel("seconds of video")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def image_grid(items: Sequence[tuple[np.ndarray, str, bool]], columns: int = 8,
               title: str = "") -> bytes:
    """RGB arrays with captions in a grid; items flagged False get a red caption and border."""
    n = max(1, len(items))
    cols = min(columns, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 2.0), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (rgb, caption, ok) in zip(axes.ravel(), items, strict=False):
        ax.imshow(rgb)
        ax.axis("on")
        ax.set_xticks([])
        ax.set_yticks([])
        color = RIGHT if ok else MISTAKE
        ax.set_title(caption, fontsize=7, color=color)
        for spine in ax.spines.values():
            spine.set_edgecolor(color)
    if title:
        fig.suptitle(title)
    return _png(fig)
