"""Name a group of faces of one person (a video track, a photo cluster, a loose face) from all of it.

A track or a cluster holds many faces of one person; a decision should use all of them and be
*calibrated for how much evidence there is*: a group of n independent faces of a stranger is far
less likely to look like an enrolled person on the whole than one photo is, so its threshold may
relax with n while it still names strangers at most as often as the single-photo rule does.

How a group is decided (``decide_group``):

1. **Effective faces, not frames.** Consecutive frames are nearly the same face, and a still with a
   pan or zoom is one face however long it is shown. ``thin`` keeps a face only when it is at least
   ``SPACING_S`` (0.5) seconds after the last kept one (tracks) *and* differs by more than
   ``distinct_l2`` (L2, per model, see ``distinct_l2``) from every face kept so far; at most
   ``MAX_FACES`` (64) are kept. The number kept is the effective number of independent faces.
2. **Group score** of a person: the median, over the kept faces, of the gallery's decision score
   (``facebank.decide``: the rule in use, its unit; lower = more alike). The candidate is the
   person with the lowest group score.
3. **Its threshold** for n effective faces (``GroupCalibration.threshold``). Strangers' faces score
   ``s = b + w`` against the gallery: ``b`` is the stranger's own level (their look), ``w`` the
   variation from photo to photo. The median of n faces keeps ``b`` and shrinks ``w`` (the median's
   variance is that of a mean of about ``2n/pi`` faces). With ``mu`` the strangers' typical score
   and ``rho`` the share of the variance that belongs to the person (intraclass correlation), the
   strangers' group score has the same false rate at
   ``thr_n = mu - (mu - thr_1) * sqrt(rho + (1 - rho) / m)``, ``m = max(2, 2n/pi)`` (n >= 3, else n),
   where ``thr_1`` is the gallery's single-photo threshold (``Decision.point.threshold``). So
   ``thr_1 = thr_n`` for one face, the bound relaxes as the evidence grows, and it never gets
   tighter than the single-photo threshold. ``mu`` and ``rho`` come from strangers' faces of known
   grouping: the gallery's own people (each in turn the stranger, as ``decide.impostor_scores``), a
   cohort (the other tracks of the same video, the unassigned clusters of the gallery) and, for a
   gallery too small for that, the model's calibrated impostor statistics
   (``OperatingPoints.impostor_l2``, ``extra["group_icc"]``). With too little of either the threshold
   stays the single-photo one.
4. **Never less certain than its faces:** when the single-photo rule names one person for a
   majority of the group's faces, the group names that person.

Units: ``score`` and ``threshold`` are in the decision rule's unit (``unit``; L2 distance for the
``distance`` rule); ``distance`` is an L2 distance between unit embeddings; times are seconds.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from facebank.decide import Decision, GalleryFaces, calibrate_gallery, gallery_faces, reorder
from facebank.embed.points import NotCalibrated, OperatingPoints, points_for
from facebank.gallery.base import Gallery
from facebank.gallery.index import PersonDistances

log = logging.getLogger(__name__)

SPACING_S = 0.5  # faces of a track closer in time than this are not independent evidence
MAX_FACES = 64  # faces used per group at most
# faces of one group differing by less than this share of the model's same-person distance are
# counted once (a still panned or zoomed moves a dlib embedding by ~0.01-0.05, two photos of one
# person are ~0.3 apart); a model may set its own ``extra["group_distinct_l2"]``
DISTINCT_SHARE = 0.25
MIN_STRANGER_SCORES = 30  # strangers' faces needed to estimate their typical score
MIN_STRANGER_GROUPS = 5  # strangers with >= 2 faces needed to estimate the intraclass correlation
# the intraclass correlation is never taken below this (a stranger who looks like someone keeps
# looking like them: a floor keeps the bound from relaxing on a lucky estimate)
MIN_ICC = 0.25

Distances = Callable[[np.ndarray], PersonDistances]


def distinct_l2(points: OperatingPoints | None) -> float:
    """L2 distance (unit embeddings) above which two faces of one group count as two pieces of
    evidence: the model's ``extra["group_distinct_l2"]``, else ``DISTINCT_SHARE`` x its
    ``same_person_l2``; 0 without points (every face counts)."""
    if points is None:
        return 0.0
    v = points.extra.get("group_distinct_l2")
    if v is not None and math.isfinite(float(v)) and 0.0 <= float(v) <= 2.0:
        return float(v)
    return DISTINCT_SHARE * points.same_person_l2


def unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """(n, d) float32 unit rows; ValueError for a shape or value that is no set of embeddings."""
    e = np.asarray(embeddings, np.float32)
    if e.ndim == 1:
        e = e[None, :]
    if e.ndim != 2 or e.shape[1] == 0:
        raise ValueError(f"embeddings must be an (n, d) array, not shape {e.shape}")
    if not np.isfinite(e).all():
        raise ValueError("embeddings hold NaN or infinite values")
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    if len(e) and (norms < 1e-6).any():
        raise ValueError("an embedding is all zeros")
    return e / np.maximum(norms, 1e-12)


def thin(embeddings: np.ndarray, times_s: Sequence[float] | np.ndarray | None = None,
         distinct: float = 0.0, spacing_s: float = SPACING_S, max_faces: int = MAX_FACES) -> np.ndarray:
    """Indices of the faces that count as independent evidence, in the given order.

    A face is kept when (with ``times_s``) it is at least ``spacing_s`` seconds after the last kept
    face and (always) farther than ``distinct`` (L2) from every kept face. More than ``max_faces``
    kept: ``max_faces`` of them, evenly spread (a group of more than ``4 * max_faces`` faces is
    thinned from that many of its faces, evenly spread)."""
    e = unit_rows(embeddings) if len(embeddings) else np.zeros((0, 1), np.float32)
    n = len(e)
    if n == 0:
        return np.zeros(0, np.int64)
    t = None
    if times_s is not None:
        t = np.asarray(times_s, np.float64).ravel()
        if len(t) != n or not np.isfinite(t).all():
            raise ValueError(f"times_s must hold one finite time per embedding ({n}), not {len(t)}")
    # a big group (a cluster of thousands): candidates evenly spread over it, a few per face kept
    cand = np.arange(n) if n <= 4 * max_faces else \
        np.unique(np.linspace(0, n - 1, 4 * max_faces).round().astype(np.int64))
    kept_vecs = np.empty((len(cand), e.shape[1]), np.float32)
    kept: list[int] = []
    last_t = -math.inf
    # max dot product = min distance; distance > distinct  <=>  dot < 1 - distinct^2 / 2
    max_dot = 1.0 - distinct * distinct / 2.0
    for i in cand.tolist():
        if t is not None and t[i] - last_t < spacing_s:
            continue
        if kept and distinct > 0 and float(np.max(kept_vecs[:len(kept)] @ e[i])) >= max_dot:
            continue
        kept_vecs[len(kept)] = e[i]
        kept.append(i)
        if t is not None:
            last_t = t[i]
    idx = np.asarray(kept, np.int64)
    if len(idx) > max_faces:
        idx = idx[np.unique(np.linspace(0, len(idx) - 1, max_faces).round().astype(np.int64))]
    return idx


# ---- calibration: the strangers' group score ------------------------------------------------------
@dataclass(frozen=True)
class GroupCalibration:
    """How the threshold relaxes with the evidence, for one gallery state and decision rule.

    ``threshold_1``: the single-photo threshold (rule's unit); ``stranger_score``: the strangers'
    typical (median) single-face score ``mu``; ``icc``: the intraclass correlation ``rho`` of
    strangers' scores (1 = no relaxation); ``stranger_faces`` / ``stranger_groups``: the data behind
    them; ``source``: where they come from (words)."""

    rule: str
    unit: str
    threshold_1: float
    stranger_score: float
    icc: float
    stranger_faces: int
    stranger_groups: int
    source: str

    def threshold(self, effective: float) -> float:
        """The threshold (rule's unit) for a group of ``effective`` independent faces."""
        n = max(1.0, float(effective))
        m = max(2.0, 2.0 * n / math.pi) if n >= 3 else n  # the median of n ~ the mean of 2n/pi
        mu, t1 = self.stranger_score, self.threshold_1
        if not math.isfinite(mu) or mu <= t1:
            return t1
        rho = min(1.0, max(0.0, self.icc))
        return float(mu - (mu - t1) * math.sqrt(rho + (1.0 - rho) / m))

    def summary(self) -> dict:
        return {"rule": self.rule, "unit": self.unit, "threshold_1": round(self.threshold_1, 5),
                "stranger_score": round(self.stranger_score, 5), "icc": round(self.icc, 4),
                "stranger_faces": self.stranger_faces, "stranger_groups": self.stranger_groups,
                "source": self.source, "threshold_8": round(self.threshold(8), 5),
                "threshold_64": round(self.threshold(64), 5)}


def _scores(decision: Decision, dist: PersonDistances, barred: np.ndarray | None = None) -> np.ndarray:
    """The rule's scores (m, p) in the decision's people order; ``barred`` (m, p) bool: pairs that
    may not match (their distances infinite before scoring)."""
    if dist.people != decision.people:
        dist = reorder(dist, decision.people)
    near = np.array(dist.nearest, np.float64)
    mean = np.array(dist.mean, np.float64)
    if barred is not None and barred.any():
        near[barred] = np.inf
        mean[barred] = np.inf
    s = np.asarray(decision.rule.scores(PersonDistances(decision.people, near, mean)), np.float64)
    s = np.where(np.isfinite(s), s, np.inf)
    if barred is not None and barred.any():
        s[barred] = np.inf
    return s


def gallery_stranger_groups(decision: Decision, gallery: GalleryFaces, sample: int = 3000,
                            seed: int = 0) -> list[np.ndarray]:
    """Each enrolled person in turn as the stranger: the best score of each of their faces among
    the other people (one array per person with a face sampled)."""
    n = len(gallery.vectors)
    if n == 0 or len(gallery.people) < 2 or gallery.people != decision.people:
        return []
    idx = np.arange(n)
    if n > sample:
        idx = np.sort(np.random.default_rng(seed).choice(idx, sample, replace=False))
    dist = gallery.person_distances(gallery.vectors[idx])
    own = gallery.labels[idx]
    barred = np.zeros((len(idx), len(gallery.people)), bool)
    barred[np.arange(len(idx)), own] = True
    best = _scores(decision, dist, barred).min(axis=1)
    return [best[own == j] for j in np.unique(own) if np.isfinite(best[own == j]).any()]


def cohort_groups(decision: Decision, distances: Distances, groups: Iterable[np.ndarray],
                  distinct: float = 0.0) -> list[np.ndarray]:
    """Faces of people not (known to be) in the gallery, e.g. the other tracks of a video or the
    unassigned clusters: the best score of each of their (thinned) faces against the gallery, one
    array per group. A group that is in fact an enrolled person only makes the bound stricter."""
    arrays = [unit_rows(g) for g in groups if len(g)]
    if not arrays or not decision.people:
        return []
    used = [a[thin(a, None, distinct)] for a in arrays]
    allv = np.concatenate(used)
    best = _scores(decision, distances(allv)).min(axis=1)
    out, start = [], 0
    for a in used:
        out.append(best[start:start + len(a)])
        start += len(a)
    return out


def _icc(groups: Sequence[np.ndarray]) -> float | None:
    """One-way ANOVA estimate of the intraclass correlation of the scores (None: too few groups)."""
    gs = [g[np.isfinite(g)] for g in groups]
    gs = [g for g in gs if len(g) >= 2]
    k = len(gs)
    if k < MIN_STRANGER_GROUPS:
        return None
    sizes = np.array([len(g) for g in gs], np.float64)
    total = sizes.sum()
    means = np.array([g.mean() for g in gs])
    grand = float(np.concatenate(gs).mean())
    msw = float(sum(((g - g.mean()) ** 2).sum() for g in gs) / max(total - k, 1.0))
    msb = float((sizes * (means - grand) ** 2).sum() / (k - 1))
    n0 = float((total - (sizes ** 2).sum() / total) / (k - 1))
    sb2 = max(0.0, (msb - msw) / max(n0, 1.0))
    if sb2 + msw <= 0:
        return None
    return sb2 / (sb2 + msw)


def _level(points: OperatingPoints, level: float) -> float | None:
    lv, l2 = np.asarray(points.impostor_levels, np.float64), np.asarray(points.impostor_l2, np.float64)
    if len(lv) < 2 or not (lv.min() <= level <= lv.max()):
        return None
    return float(np.interp(level, lv, l2))


def calibrate(decision: Decision, gallery: Sequence[np.ndarray] = (), cohort: Sequence[np.ndarray] = (),
              points: OperatingPoints | None = None) -> GroupCalibration:
    """The group calibration of ``decision`` from the strangers at hand, in this order: ``gallery``
    (the gallery's own people as strangers, from ``gallery_stranger_groups``); when they are too few,
    with ``cohort`` (other groups, from ``cohort_groups``: they may hold enrolled people, which only
    makes the bound stricter); and for what is still missing, the model's ``points``
    (``impostor_l2`` at level 0.5 for the ``distance`` rule, ``extra["group_icc"]``)."""
    own = [np.asarray(g, np.float64) for g in gallery if len(g)]
    coh = [np.asarray(c, np.float64) for c in cohort if len(c)]
    t1 = float(decision.point.threshold)
    unit = decision.rule.unit
    sources: list[str] = []

    def pooled(gs: list[np.ndarray]) -> np.ndarray:
        f = np.concatenate(gs) if gs else np.zeros(0)
        return f[np.isfinite(f)]

    groups = own
    mu: float | None = None
    icc: float | None = None
    if len(pooled(own)) >= MIN_STRANGER_SCORES and _icc(own) is not None:
        mu, icc = float(np.median(pooled(own))), _icc(own)
        sources.append(f"{len(own)} enrolled people as strangers")
    elif own or coh:
        groups = own + coh
        faces = pooled(groups)
        if len(faces) >= MIN_STRANGER_SCORES:
            mu = float(np.median(faces))
        icc = _icc(groups)
        sources.append(f"{len(own)} enrolled people as strangers and {len(coh)} cohort groups")
    if mu is None and points is not None and getattr(decision.rule, "name", "") == "distance":
        mu = _level(points, 0.5)
        if mu is not None:
            sources.append(f"model {points.model_id}'s impostor distances")
    if icc is None and points is not None and "group_icc" in points.extra:
        icc = float(points.extra["group_icc"])
        sources.append(f"model {points.model_id}'s intraclass correlation")
    n_faces = len(pooled(groups))
    if mu is None or icc is None or not math.isfinite(icc):
        why = "too few strangers' faces to relax the single-photo threshold"
        return GroupCalibration(decision.rule.key(), unit, t1, float("nan"), 1.0, n_faces, len(groups),
                                "; ".join(sources + [why]))
    return GroupCalibration(decision.rule.key(), unit, t1, mu, max(MIN_ICC, min(1.0, icc)), n_faces,
                            len(groups), "; ".join(sources))


# ---- the decision for one group ------------------------------------------------------------------
@dataclass(frozen=True)
class GroupDecision:
    """The person of a group of faces, or None.

    ``score``: the candidate's group score, the median over the faces used of the decision rule's
    score (``unit``; lower = more alike); ``threshold``: the bound for this many effective faces
    (same unit; named when ``score <= threshold``, or by the majority of single-photo decisions);
    ``candidate``: the best person even when not named; ``faces_used``: indices (into the faces
    given) of the independent faces used; ``effective``: their number; ``agree``: how many of them
    have the candidate as their own best person (``agree`` of ``len(faces_used)`` faces agree);
    ``distance``: median L2 distance (unit embeddings) of the faces used to the candidate (the
    rule's combination: nearest face, mean or both); ``reason``: why None (``no_match``,
    ``empty_gallery``, ``no_faces``), None when named."""

    person: str | None
    candidate: str | None
    score: float
    threshold: float
    unit: str
    faces_used: tuple[int, ...]
    effective: int
    agree: int
    distance: float
    reason: str | None = None
    by_majority: bool = False

    @property
    def faces(self) -> int:
        return len(self.faces_used)

    def agreement(self) -> str:
        return f"{self.agree} of {self.faces} faces agree"

    def to_json(self) -> dict:
        def num(x: float) -> float | None:
            return round(float(x), 6) if math.isfinite(x) else None

        return {"person": self.person, "candidate": self.candidate, "score": num(self.score),
                "threshold": num(self.threshold), "unit": self.unit, "faces_used": len(self.faces_used),
                "effective": self.effective, "agree": self.agree, "distance": num(self.distance),
                "reason": self.reason}


def distance_table(decision: Decision, dist: PersonDistances) -> np.ndarray:
    combine = getattr(decision.rule, "combine", "nearest")
    near, mean = np.asarray(dist.nearest, np.float64), np.asarray(dist.mean, np.float64)
    if combine == "mean":
        return mean
    if combine == "both":
        return 0.5 * (near + mean)
    return near


def decide_group(embeddings: np.ndarray, decision: Decision, distances: Distances,
                 calibration: GroupCalibration, times_s: Sequence[float] | np.ndarray | None = None,
                 distinct: float = 0.0, barred: Iterable[str] = (), max_faces: int = MAX_FACES,
                 threshold: float | None = None) -> GroupDecision:
    """Decide who the group of ``embeddings`` (unit rows; ``times_s`` for a track) is.

    ``distances``: the gallery's exact distances (e.g. ``index.person_distances``); ``barred``:
    people the group was told it is not (never named nor candidate); ``threshold`` (rule's unit)
    overrides the single-photo threshold (the group bound is then relaxed from it)."""
    e = unit_rows(embeddings) if len(embeddings) else np.zeros((0, 1), np.float32)
    if len(e) == 0 or not decision.people:
        return decide_scored(e, None, decision, calibration, np.zeros(0, np.int64), (), threshold)
    used = thin(e, times_s, distinct, max_faces=max_faces)
    return decide_scored(e, distances(e), decision, calibration, used, barred, threshold)


def decide_scored(e: np.ndarray, dist: PersonDistances | None, decision: Decision,
                  calibration: GroupCalibration, used: np.ndarray, barred: Iterable[str] = (),
                  threshold: float | None = None, scores: np.ndarray | None = None) -> GroupDecision:
    """``decide_group`` once the group's distances to the gallery (``dist``, rows of ``e``) and its
    independent faces (``used``, indices into ``e``) are known (lets callers batch the distances);
    ``scores``: the rule's scores of ``dist`` when already computed (nobody barred)."""
    unit = decision.rule.unit
    if len(e) == 0:
        return GroupDecision(None, None, math.inf, math.nan, unit, (), 0, 0, math.inf, "no_faces")
    if not decision.people or dist is None:
        return GroupDecision(None, None, math.inf, math.nan, unit, (), 0, 0, math.inf, "empty_gallery")
    cal = calibration
    if threshold is not None:
        cal = GroupCalibration(cal.rule, cal.unit, float(threshold), cal.stranger_score, cal.icc,
                               cal.stranger_faces, cal.stranger_groups, cal.source + "; threshold given")
    if dist.people != decision.people:
        dist = reorder(dist, decision.people)
    bar = np.zeros((len(e), len(decision.people)), bool)
    barred = set(barred)
    if barred:
        bar[:, [j for j, p in enumerate(decision.people) if p in barred]] = True
    if scores is not None and not barred:
        s = np.where(np.isfinite(scores), scores, np.inf)
    else:
        s = _scores(decision, dist, bar)
    used_t = tuple(int(i) for i in used)
    if not np.isfinite(s).any():
        return GroupDecision(None, None, math.inf, math.nan, unit, used_t, len(used), 0, math.inf, "no_match")
    t1 = cal.threshold_1
    thr = cal.threshold(len(used))
    med = np.median(s[used], axis=0)
    c = int(np.argmin(med))
    # never less certain than its faces: the single-photo rule's majority
    best = np.argmin(s, axis=1)
    named_single = s[np.arange(len(s)), best] <= t1
    votes = np.bincount(best[named_single], minlength=len(decision.people))
    top = int(np.argmax(votes))
    majority = bool(votes[top] * 2 > len(s))
    if majority and top != c and med[c] > thr:
        c = top
    d = float(np.median(distance_table(decision, dist)[used, c]))
    agree = int((best[used] == c).sum())
    named_by_score = bool(med[c] <= thr)
    named = named_by_score or (majority and top == c)
    return GroupDecision(decision.people[c] if named else None, decision.people[c], float(med[c]), float(thr),
                         unit, used_t, len(used), agree, d, None if named else "no_match",
                         by_majority=named and not named_by_score)


# ---- one gallery state, ready to decide groups ------------------------------------------------------
class BankLike(Protocol):
    """What ``GroupContext.of`` needs of a ``facebank.FaceBank``."""

    gallery: Gallery

    def decision(self) -> Decision: ...

    def index(self) -> Any: ...


@dataclass(frozen=True, eq=False)
class GroupContext:
    """A gallery state ready to decide groups: its decision, exact distances, its own people as
    strangers, the model's points and the distance that makes two faces distinct evidence."""

    decision: Decision
    distances: Distances
    gallery_groups: tuple[np.ndarray, ...]
    points: OperatingPoints | None
    distinct: float
    version: int
    gallery: GalleryFaces | None = None
    signature: str | None = None  # the named side: people, their faces, the settings deciding them
    _at_far: dict = field(default_factory=dict, repr=False)

    def at_far(self, far: float) -> GroupContext:
        """This context with the single-photo threshold estimated for another false accept rate
        (``decide.calibrate_gallery``; a threshold the user set is kept)."""
        point = self.decision.point
        if point.source == "settings" or point.far == far or self.gallery is None:
            return self
        key = round(far, 9)
        with _CACHE_LOCK:
            hit = self._at_far.get(key)
        if hit is not None:
            return hit
        scores = np.concatenate(self.gallery_groups) if self.gallery_groups else None
        new = calibrate_gallery(self.decision.rule, self.gallery, far, scores=scores)
        ctx = replace(self, decision=Decision(self.decision.rule, new, self.decision.people), _at_far={})
        with _CACHE_LOCK:
            self._at_far[key] = ctx
        return ctx

    def calibration(self, cohort: Sequence[np.ndarray] = ()) -> GroupCalibration:
        """The calibration from the gallery's people, ``cohort`` (from ``cohort_scores``) and points
        (a model without operating points: the single-photo threshold, as faces are not thinned)."""
        if self.points is None:
            return calibrate(self.decision)
        return calibrate(self.decision, self.gallery_groups, cohort, self.points)

    def cohort_scores(self, groups: Iterable[np.ndarray]) -> list[np.ndarray]:
        return cohort_groups(self.decision, self.distances, groups, self.distinct)

    def decide(self, embeddings: np.ndarray, times_s: Sequence[float] | np.ndarray | None = None,
               calibration: GroupCalibration | None = None, barred: Iterable[str] = (),
               threshold: float | None = None) -> GroupDecision:
        return decide_group(embeddings, self.decision, self.distances, calibration or self.calibration(),
                            times_s, self.distinct, barred, threshold=threshold)

    @classmethod
    def of(cls, bank: BankLike) -> GroupContext:
        """The context of ``bank``'s gallery as it is now (cached per bank until the gallery changes)."""
        version = bank.gallery.version()
        with _CACHE_LOCK:
            hit = _CACHE.get(bank)
            if hit is not None and hit.version == version:
                return hit
        index = bank.index()
        signature = _signature(bank, index)
        if hit is not None and signature is not None and hit.signature == signature:
            # a write that left the named people as they were (a scan, a clustering, a rejection)
            hit = replace(hit, version=version)
            with _CACHE_LOCK:
                _CACHE[bank] = hit
            return hit
        decision = bank.decision()
        if all(hasattr(index, a) for a in ("vectors", "labels", "people")):
            gallery: GalleryFaces | None = GalleryFaces.from_index(index)
        else:
            data = bank.gallery.embeddings()
            gallery = gallery_faces(data.vectors, data.names)
        if gallery is not None and not len(gallery.vectors):
            gallery = None
        model_id = bank.gallery.model_id
        try:
            points = points_for(model_id) if model_id else None
        except (NotCalibrated, ValueError) as exc:
            log.info("no operating points for groups of faces (%s): single-photo thresholds", exc)
            points = None
        own = tuple(gallery_stranger_groups(decision, gallery)) if gallery is not None and points else ()
        ctx = cls(decision, index.person_distances, own, points, distinct_l2(points), version, gallery,
                  signature)
        with _CACHE_LOCK:
            _CACHE[bank] = ctx
        return ctx


def _signature(bank: BankLike, index: object) -> str | None:
    """What a decision on ``bank`` depends on besides the unassigned faces: the named faces (ids and
    people), the model and the settings; None when the index does not tell its face ids."""
    ids = getattr(index, "face_ids", None)
    people = getattr(index, "people", None)
    labels = getattr(index, "labels", None)
    if ids is None or people is None or labels is None:
        return None
    h = hashlib.sha256()
    h.update(np.asarray(ids, np.int64).tobytes())
    h.update(np.asarray(labels, np.int64).tobytes())
    h.update("\x00".join(people).encode())
    settings = getattr(bank, "settings", None)
    knobs = [getattr(settings, k, None) for k in ("decision", "threshold", "target_far", "rule")]
    h.update(repr((bank.gallery.model_id, knobs)).encode())
    return h.hexdigest()


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()
