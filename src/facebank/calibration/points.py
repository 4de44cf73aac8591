"""Measure a model's operating points (``facebank models calibrate``) on development photos.

Every distance constant facebank uses is measured here the same way for every model, dlib's
included, on a folder-per-person development set (never on the sets figures are reported on):

- ``verify_l2``: the largest distance naming at most ``far`` of the different-person pairs "same"
  (all pairs of different people's photos, up to ``MAX_PAIRS`` sampled);
- ``identify_l2``: the ``distance`` rule's threshold (nearest enrolled face) naming at most ``far``
  of strangers, each person of the set in turn a stranger to the others (``calibrate_gallery``,
  no safety margin, no prior);
- ``prior_l2`` (per combination), ``prior_margin_slope``, and the t-norm / z-norm / spread rules'
  defaults (in ``extra``): the thresholds galleries of the set's people estimate for themselves
  (``calibrate_gallery`` at ``far``, its safety, no prior), the mean over ``SPLITS`` random halves
  of the people; this is how ``decide.PRIOR_L2`` was measured for dlib;
- ``cluster_l2``: the threshold of the default clustering (chinese-whispers) with the best B-cubed
  F1 on the set's people with at least ``CLUSTER_MIN_PHOTOS`` (5) photos (the README's clustering
  development set is LFW's people with 5-9 photos), searched on a grid around ``verify_l2``;
- ``link_l2`` (video tracker gate) and ``outlier_l2`` (audit: nobody's face): the distance at FAR
  ``LINK_FAR`` (20 %) and ``OUTLIER_FAR`` (50 %: the median stranger) of the different-person pairs,
  loose bounds; these two FARs were chosen so that dlib's measured points land near its historic
  0.5 and 0.6 (pins10: 0.49 and 0.55);
- ``duplicate_l2`` / ``same_person_l2``: ``verify_l2``;
- ``impostor_l2``: quantiles (``IMPOSTOR_LEVELS``) of a stranger's distance to the nearest face of
  a person (each face against every other person of the set).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebank.embed.points import OperatingPoints, points_key, save_points
from facebank.settings import Settings

log = logging.getLogger(__name__)

MAX_PAIRS = 400_000
SPLITS = 5
LINK_FAR = 0.20
OUTLIER_FAR = 0.50
IMPOSTOR_LEVELS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5)
PRIOR_PEOPLE = 20.0  # how many people the prior counts as (a weight, not a distance: not measured)
MIN_PEOPLE = 4
CLUSTER_MIN_PHOTOS = 5


@dataclass(frozen=True)
class Measured:
    """The points and what they were measured on (counts of photos, people, pairs)."""

    points: OperatingPoints
    photos: int
    people: int
    same_pairs: int
    different_pairs: int
    verify_accuracy: float  # accuracy of verify_l2 on the set's balanced pairs (a dev figure)
    cluster_f1: float


def _pairs(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(labels)
    total = n * (n - 1) // 2
    if total <= MAX_PAIRS:
        a, b = np.triu_indices(n, 1)
    else:
        a = rng.integers(0, n, MAX_PAIRS)
        b = rng.integers(0, n, MAX_PAIRS)
        keep = a != b
        a, b = a[keep], b[keep]
        # all same-person pairs too (they are few)
        sa, sb = [], []
        for lab in np.unique(labels):
            idx = np.flatnonzero(labels == lab)
            if len(idx) >= 2:
                i, j = np.triu_indices(len(idx), 1)
                sa.append(idx[i])
                sb.append(idx[j])
        if sa:
            a, b = np.concatenate([a, *sa]), np.concatenate([b, *sb])
    return a, b, labels[a] == labels[b]


def _at_far(impostor: np.ndarray, far: float) -> float:
    """The largest threshold accepting at most ``far`` of ``impostor`` distances."""
    srt = np.sort(impostor)
    k = int(np.floor(far * len(srt)))
    return float(srt[min(k, len(srt) - 1)] - 1e-6)


def _cluster_edge(x: np.ndarray, labels: np.ndarray, around: float) -> tuple[float, float]:
    from facebank.cluster.methods import create
    from facebank.evaluate.metrics import bcubed

    best = (around, -1.0)
    for f in np.arange(0.6, 1.31, 0.05):
        thr = float(round(around * f, 3))
        if not 0 < thr < 2:
            continue
        lab = create("chinese-whispers", threshold=thr).labels(x)
        f1 = bcubed(lab, labels).f1
        if f1 > best[1]:
            best = (thr, f1)
    return best


def _self_estimates(x: np.ndarray, labels: np.ndarray, far: float,
                    rng: np.random.Generator) -> dict[str, float]:
    """The thresholds galleries of half the people estimate for themselves (no prior), per rule."""
    from facebank.decide import calibrate_gallery, create, gallery_faces

    rules = {"nearest": create("distance", combine="nearest"), "mean": create("distance", combine="mean"),
             "both": create("distance", combine="both"),
             "margin-0.5": create("margin", combine="both", weight=0.5),
             "margin-1": create("margin", combine="both", weight=1.0),
             "tnorm": create("tnorm"), "znorm": create("znorm"), "spread": create("spread")}
    people = np.unique(labels)
    multi = [p for p in people if (labels == p).sum() >= 2]
    got: dict[str, list[float]] = {k: [] for k in rules}
    for _ in range(SPLITS):
        chosen = set(rng.choice(multi, max(MIN_PEOPLE, len(multi) // 2), replace=False).tolist())
        idx = np.flatnonzero([lab in chosen for lab in labels])
        g = gallery_faces(x[idx], labels[idx].tolist())
        for key, rule in rules.items():
            rule.fit(g)
            pt = calibrate_gallery(rule, g, far, prior_people=0.0)
            if pt.source == "gallery":
                got[key].append(pt.threshold)
    out = {k: float(np.mean(v)) for k, v in got.items() if v}
    if not {"nearest", "mean", "both", "margin-0.5", "margin-1"} <= set(out):
        raise ValueError("too few people with two photos or more to estimate the priors")
    return out


def _impostor_quantiles(x: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                        levels: tuple[float, ...]) -> tuple[float, ...]:
    """Quantiles of the distance from a face to the nearest face of another person."""
    people = np.unique(labels)
    idx = np.arange(len(x))
    if len(idx) > 3000:
        idx = np.sort(rng.choice(idx, 3000, replace=False))
    vals = []
    for p in people:
        members = x[labels == p]
        q = idx[labels[idx] != p]
        if not len(q):
            continue
        d = np.sqrt(np.maximum(2.0 - 2.0 * (x[q] @ members.T), 0.0)).min(axis=1)
        vals.append(d)
    allv = np.concatenate(vals)
    return tuple(float(np.quantile(allv, lv)) for lv in levels)


def measure_points(vectors: np.ndarray, labels: np.ndarray | list, model_id: str, far: float = 0.01,
                   source: str = "", seed: int = 0) -> Measured:
    """Every operating point of a model from unit embeddings ``vectors`` of labelled photos."""
    x = np.asarray(vectors, np.float32)
    lab = np.asarray([str(v) for v in labels], dtype=object)
    if len(x) != len(lab) or x.ndim != 2:
        raise ValueError("vectors and labels differ in length")
    if not 0.0 < far < 0.5:
        raise ValueError(f"far must be in (0, 0.5), not {far}")
    people = np.unique(lab)
    if len(people) < MIN_PEOPLE or sum((lab == p).sum() >= 2 for p in people) < MIN_PEOPLE:
        raise ValueError(f"calibration needs at least {MIN_PEOPLE} people with two photos or more; got "
                         f"{len(people)} people")
    rng = np.random.default_rng(seed)
    a, b, same = _pairs(lab, rng)
    d = np.sqrt(np.maximum(2.0 - 2.0 * np.einsum("ij,ij->i", x[a], x[b]), 0.0))
    imp, gen = d[~same], d[same]
    verify = _at_far(imp, far)
    acc = 0.5 * (float((gen <= verify).mean()) + float((imp > verify).mean()))
    from facebank.decide import calibrate_gallery, create, gallery_faces

    g = gallery_faces(x, lab.tolist())
    identify = calibrate_gallery(create("distance", combine="nearest"), g, far, safety=1.0,
                                 prior_people=0.0).threshold
    est = _self_estimates(x, lab, far, rng)
    slope = float(np.mean([(est["both"] - est["margin-0.5"]) / 0.5, (est["both"] - est["margin-1"]) / 1.0]))
    # clusters are judged on people with several photos (as the default clustering was chosen, on LFW
    # people with 5-9 photos): people with CLUSTER_MIN_PHOTOS photos or more when there are enough
    many = [p for p in people if (lab == p).sum() >= CLUSTER_MIN_PHOTOS]
    multi = np.isin(lab, many if len(many) >= MIN_PEOPLE else [p for p in people if (lab == p).sum() >= 2])
    cx, cl = x[multi], lab[multi]
    if len(cx) > 2000:
        keep = np.sort(rng.choice(len(cx), 2000, replace=False))
        cx, cl = cx[keep], cl[keep]
    cluster, f1 = _cluster_edge(cx, cl, verify)
    clip = lambda v: float(min(max(v, 0.0), 2.0))  # noqa: E731
    extra = {k: est[k] for k in ("tnorm", "znorm", "spread") if k in est}
    pts = OperatingPoints(
        model_id=model_id, verify_l2=clip(verify), identify_l2=clip(identify), cluster_l2=clip(cluster),
        link_l2=clip(_at_far(imp, LINK_FAR)), prior_l2={k: est[k] for k in ("nearest", "mean", "both")},
        prior_margin_slope=slope, prior_people=PRIOR_PEOPLE, duplicate_l2=clip(verify),
        same_person_l2=clip(verify), outlier_l2=clip(_at_far(imp, OUTLIER_FAR)), far=far,
        impostor_levels=IMPOSTOR_LEVELS, impostor_l2=_impostor_quantiles(x, lab, rng, IMPOSTOR_LEVELS),
        source=source, extra={**{f"{k}_default": v for k, v in extra.items()},
                              "verify_dev_accuracy": acc, "cluster_dev_bcubed_f1": f1})
    return Measured(pts, len(x), len(people), int(same.sum()), int((~same).sum()), acc, f1)


# -- the calibration sets -----------------------------------------------------------------------------


def lfw_dev_photos(root: str | Path) -> list[tuple[str, Path]]:
    """LFW's development people: the third of LFW's names the LFW open set keeps for choosing settings
    (``evaluate.openset.person_part``), never its test people (the LFW View 1 pairs' people overlap
    them)."""
    from facebank.evaluate.cache import labelled_photos
    from facebank.evaluate.openset import lfw_root_images, person_part

    return [(p, f) for p, f in labelled_photos(lfw_root_images(root)) if person_part(p) == "dev"]


def subset(photos: list[tuple[str, Path]], limit: int | None, seed: int = 0) -> list[tuple[str, Path]]:
    """At most ``limit`` photos, the same share of every person's (at least two each)."""
    if limit is None or len(photos) <= limit:
        return photos
    by: dict[str, list[Path]] = {}
    for p, f in photos:
        by.setdefault(p, []).append(f)
    share = limit / len(photos)
    rng = np.random.default_rng(seed)
    out = []
    for p in sorted(by):
        files = by[p]
        n = min(len(files), max(2, int(round(share * len(files)))))
        out += [(p, files[i]) for i in sorted(rng.choice(len(files), n, replace=False).tolist())]
    return out


def calibrate(settings: Settings, folder: str | Path | None = None, lfw: str | Path | None = None,
              limit: int | None = None, far: float = 0.01, progress=None, save: bool = True) -> Measured:
    """Embed the development photos (a folder-per-person ``folder``, else LFW's development people under
    ``lfw``) with ``settings``' embedder, measure the operating points and (``save``) store them."""
    from facebank.evaluate.cache import FacePolicy, default_retry, embed_photos, labelled_photos, model_id_for
    from facebank.evaluate.lfw import LFW_POLICY, lfw_settings

    if folder is not None:
        photos = labelled_photos(folder)
        policy, where = FacePolicy("largest", retry=default_retry()), str(folder)
    elif lfw is not None:
        photos = lfw_dev_photos(lfw)
        settings, policy, where = lfw_settings(settings), LFW_POLICY, f"LFW development people ({lfw})"
    else:
        raise ValueError("calibration needs a folder of labelled photos or the LFW folder")
    photos = subset(photos, limit)
    if not photos:
        raise ValueError(f"no labelled photos in {where}")
    kwargs = {"progress": progress} if progress is not None else {}
    items = embed_photos([f for _, f in photos], settings, policy, **kwargs)
    kept = [(i, e.embedding) for i, e in enumerate(items) if e.embedding is not None]
    ok = [i for i, _ in kept]
    x = np.stack([v for _, v in kept]) if kept else np.zeros((0, 1), np.float32)
    labels = [photos[i][0] for i in ok]
    model_id = points_key(model_id_for(settings), settings.flip)
    m = measure_points(x, labels, model_id, far,
                       source=f"facebank models calibrate: {len(ok)} photos of {where}, FAR {far:g}")
    if save:
        save_points(m.points)
    return m
