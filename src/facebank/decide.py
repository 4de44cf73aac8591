"""Who is this face, or nobody? Decision rules over the gallery, and their operating point.

A rule turns the L2 distances from query faces to every person of the gallery
(``PersonDistances``: nearest enrolled face, mean embedding) into a *decision score* per person,
lower = more alike, in the rule's own unit. The best-scoring person is named when the score is at
most the rule's threshold. Rules may learn per-person statistics from the gallery (``fit``).

- ``distance``: the raw L2 distance to the person's nearest face (or mean, ``rule="mean"``); the
  historical rule, threshold in L2 units.
- ``margin``: L2 distance minus ``weight`` x the gap to the next-best other person: a face about as
  near to someone else as to its best match is less likely that person.
- ``tnorm``: the distance standardised against the query's own cohort (the ``cohort`` nearest
  other people of the gallery): (d - mean) / std of the cohort's distances.
- ``znorm``: the distance standardised against each person's impostor distribution (how far the
  gallery's other people's faces are from that person).
- ``spread``: the distance divided by the person's own spread (median distance between their
  enrolled faces), a per-person threshold.

Registry: ``create("margin")``, ``available()``, ``register(name)``.

The operating point: ``calibrate_gallery`` estimates the threshold that names at most ``far`` of
strangers from the gallery itself: each person in turn plays the stranger (their enrolled faces are
scored against everyone else), and the threshold is the ``far`` quantile of those impostor scores.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from facebank.embed.points import DLIB_POINTS, OperatingPoints
from facebank.gallery.index import PersonDistances, l2_from_dot

if TYPE_CHECKING:
    from facebank.types import Match

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class GalleryFaces:
    """The enrolled faces a rule may learn from: unit vectors (n, d) and person index per face."""

    vectors: np.ndarray
    labels: np.ndarray  # int index into ``people``
    people: tuple[str, ...]

    @classmethod
    def from_index(cls, index: object) -> GalleryFaces:
        return cls(np.asarray(index.vectors, np.float32), np.asarray(index.labels),  # type: ignore[attr-defined]
                   tuple(index.people))  # type: ignore[attr-defined]

    def person_distances(self, queries: np.ndarray) -> PersonDistances:
        """Exact (nearest, mean) distances from ``queries`` to every person (labels need not be sorted)."""
        q = np.asarray(queries, np.float32).reshape(len(queries), -1)
        p = len(self.people)
        if p == 0 or len(q) == 0:
            empty = np.zeros((len(q), p), np.float32)
            return PersonDistances(self.people, empty, empty)
        order = np.argsort(self.labels, kind="stable")
        vecs, labs = self.vectors[order], self.labels[order]
        starts = np.flatnonzero(np.r_[True, labs[1:] != labs[:-1]])
        present = labs[starts]
        best = np.full((len(q), p), -np.inf, np.float32)
        best[:, present] = np.maximum.reduceat(q @ vecs.T, starts, axis=1)
        sums = np.zeros((p, self.vectors.shape[1]), np.float32)
        sums[present] = np.add.reduceat(vecs, starts, axis=0)
        means = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        return PersonDistances(self.people, l2_from_dot(best), l2_from_dot(q @ means.T))


class DecisionRule(Protocol):
    """Scores per (query face, person), lower = more alike; ``threshold`` names a face when its best
    score is at most it (in ``unit``)."""

    name: str
    unit: str

    @property
    def default_threshold(self) -> float: ...

    def fit(self, gallery: GalleryFaces) -> DecisionRule: ...

    def scores(self, dist: PersonDistances) -> np.ndarray: ...

    def key(self) -> str: ...


# The prior a small gallery's own estimate is pulled towards: the thresholds galleries of a model's
# development people estimate for themselves (``calibrate_gallery`` at FAR 1 %, safety 0.5, mean of 5
# splits), per combination (``prior_l2``), how the margin rule's threshold falls per unit of weight
# (``prior_margin_slope``) and the other rules' defaults (``extra``): all per model, from the model's
# operating points (``facebank.embed.points``; measured by ``facebank models calibrate``). A rule
# built without points (``points=None``) uses dlib's, the default model's.


def rule_points(rule: object) -> OperatingPoints:
    """The operating points a rule's defaults come from (dlib's when the rule was given none)."""
    return getattr(rule, "points", None) or DLIB_POINTS


def _extra_default(rule: object, name: str) -> float:
    pts = rule_points(rule)
    if f"{name}_default" in pts.extra:
        return float(pts.extra[f"{name}_default"])
    log.warning("model %s has no %s default in its operating points; using dlib's", pts.model_id, name)
    return float(DLIB_POINTS.extra[f"{name}_default"])


def _table(dist: PersonDistances, combine: str) -> np.ndarray:
    if combine == "nearest":
        return np.asarray(dist.nearest, np.float64)
    if combine == "mean":
        return np.asarray(dist.mean, np.float64)
    if combine == "both":
        return 0.5 * (np.asarray(dist.nearest, np.float64) + np.asarray(dist.mean, np.float64))
    raise ValueError(f"unknown combination {combine!r}: nearest, mean or both")


def _others_min(d: np.ndarray) -> np.ndarray:
    """For each entry (i, j): the smallest finite d[i, k] with k != j (inf when there is none)."""
    m, p = d.shape
    if p < 2:
        return np.full_like(d, np.inf)
    order = np.argsort(d, axis=1)
    first = np.take_along_axis(d, order[:, :1], 1)
    second = np.take_along_axis(d, order[:, 1:2], 1)
    is_first = np.zeros_like(d, bool)
    np.put_along_axis(is_first, order[:, :1], True, 1)
    return np.where(is_first, second, first)


@dataclass
class DistanceRule:
    """The raw L2 distance to each person (``combine``: nearest face, mean embedding or both)."""

    combine: str = "nearest"
    name: str = "distance"
    unit: str = "L2 distance between unit embeddings"
    valid_range: ClassVar[tuple[float, float]] = (0.0, 2.0)  # two unit vectors are 0 to 2 apart
    points: OperatingPoints | None = None

    @property
    def default_threshold(self) -> float:
        return rule_points(self).prior_l2[self.combine]

    def fit(self, gallery: GalleryFaces) -> DistanceRule:
        return self

    def scores(self, dist: PersonDistances) -> np.ndarray:
        return _table(dist, self.combine)

    def key(self) -> str:
        return f"{self.name}:{self.combine}"


@dataclass
class MarginRule:
    """d - weight * (d_other - d): the distance, lowered by the gap to the nearest other person."""

    weight: float = 0.5
    combine: str = "nearest"
    name: str = "margin"
    unit: str = "L2 distance minus weight x gap to the next person"
    valid_range: ClassVar[tuple[float, float]] = (-math.inf, math.inf)  # may be negative; finite
    points: OperatingPoints | None = None

    @property
    def default_threshold(self) -> float:
        pts = rule_points(self)
        return pts.prior_l2[self.combine] - pts.prior_margin_slope * self.weight

    def fit(self, gallery: GalleryFaces) -> MarginRule:
        return self

    def scores(self, dist: PersonDistances) -> np.ndarray:
        d = _table(dist, self.combine)
        other = _others_min(d)
        gap = np.where(np.isfinite(other), other - d, 0.0)
        return d - self.weight * np.clip(gap, -1.0, 1.0)

    def key(self) -> str:
        return f"{self.name}:{self.combine}:w={self.weight:g}"


@dataclass
class TNormRule:
    """(d - cohort mean) / cohort std, the cohort being the query's ``cohort`` nearest other people."""

    cohort: int = 20
    combine: str = "nearest"
    name: str = "tnorm"
    unit: str = "standard deviations from the query's cohort of other people"
    valid_range: ClassVar[tuple[float, float]] = (-math.inf, math.inf)  # a z-score: any finite number
    points: OperatingPoints | None = None

    @property
    def default_threshold(self) -> float:  # the model's development people, FAR 1 %, cohort 20
        return _extra_default(self, "tnorm")

    def fit(self, gallery: GalleryFaces) -> TNormRule:
        return self

    def scores(self, dist: PersonDistances) -> np.ndarray:
        d = _table(dist, self.combine)
        m, p = d.shape
        if p < 3:
            return d  # no cohort to speak of
        k = min(self.cohort, p - 1)
        srt = np.sort(np.where(np.isfinite(d), d, np.nan), axis=1)
        # the cohort of each column excludes that column: for the best column, ranks 2..k+1
        coh = srt[:, 1:k + 1]
        mu = np.nanmean(coh, axis=1, keepdims=True)
        sd = np.maximum(np.nanstd(coh, axis=1, keepdims=True), 1e-3)
        out: np.ndarray = (d - mu) / sd
        return out

    def key(self) -> str:
        return f"{self.name}:{self.combine}:k={self.cohort}"


@dataclass
class ZNormRule:
    """(d - mu_j) / sd_j with each person's impostor distances (other people's faces to them)."""

    combine: str = "nearest"
    sample: int = 2000
    name: str = "znorm"
    unit: str = "standard deviations from the person's impostor distances"
    valid_range: ClassVar[tuple[float, float]] = (-math.inf, math.inf)  # a z-score: any finite number
    points: OperatingPoints | None = None
    _mu: np.ndarray | None = None
    _sd: np.ndarray | None = None

    @property
    def default_threshold(self) -> float:  # the model's development people, FAR 1 %
        return _extra_default(self, "znorm")

    def fit(self, gallery: GalleryFaces) -> ZNormRule:
        p = len(gallery.people)
        rng = np.random.default_rng(0)
        idx = np.arange(len(gallery.vectors))
        if len(idx) > self.sample:
            idx = np.sort(rng.choice(idx, self.sample, replace=False))
        d = _table(gallery.person_distances(gallery.vectors[idx]), self.combine)
        own = gallery.labels[idx]
        d[np.arange(len(idx)), own] = np.nan
        with np.errstate(all="ignore"):
            mu = np.nanmean(d, axis=0) if len(idx) else np.zeros(p)
            sd = np.nanstd(d, axis=0) if len(idx) else np.ones(p)
        gm = float(np.nanmean(mu)) if np.isfinite(mu).any() else 1.0
        gs = float(np.nanmean(sd)) if np.isfinite(sd).any() else 0.1
        self._mu = np.where(np.isfinite(mu), mu, gm)
        self._sd = np.maximum(np.where(np.isfinite(sd) & (sd > 0), sd, gs), 1e-3)
        return self

    def scores(self, dist: PersonDistances) -> np.ndarray:
        d = _table(dist, self.combine)
        if self._mu is None or self._sd is None or len(self._mu) != d.shape[1]:
            raise RuntimeError("znorm rule used before fit() on this gallery")
        out: np.ndarray = (d - self._mu[None, :]) / self._sd[None, :]
        return out

    def key(self) -> str:
        return f"{self.name}:{self.combine}"


@dataclass
class SpreadRule:
    """d / s_j: the distance in units of the person's own spread (median distance between their
    enrolled faces; people with one face get the gallery's median spread)."""

    combine: str = "nearest"
    name: str = "spread"
    unit: str = "L2 distance / the person's own spread"
    valid_range: ClassVar[tuple[float, float]] = (0.0, math.inf)  # a distance over a spread: >= 0, finite
    points: OperatingPoints | None = None
    _spread: np.ndarray | None = None

    @property
    def default_threshold(self) -> float:  # the model's development people, FAR 1 %
        return _extra_default(self, "spread")

    def fit(self, gallery: GalleryFaces) -> SpreadRule:
        p = len(gallery.people)
        spread = np.full(p, np.nan)
        for j in range(p):
            v = gallery.vectors[gallery.labels == j]
            if len(v) >= 2:
                d = l2_from_dot(v @ v.T)[np.triu_indices(len(v), 1)]
                spread[j] = float(np.median(d))
        fill = float(np.nanmedian(spread)) if np.isfinite(spread).any() else rule_points(self).verify_l2
        self._spread = np.maximum(np.where(np.isfinite(spread), spread, fill), 0.05)
        return self

    def scores(self, dist: PersonDistances) -> np.ndarray:
        d = _table(dist, self.combine)
        if self._spread is None or len(self._spread) != d.shape[1]:
            raise RuntimeError("spread rule used before fit() on this gallery")
        out: np.ndarray = d / self._spread[None, :]
        return out

    def key(self) -> str:
        return f"{self.name}:{self.combine}"


_REGISTRY: dict[str, Callable[..., DecisionRule]] = {
    "distance": DistanceRule, "margin": MarginRule, "tnorm": TNormRule, "znorm": ZNormRule,
    "spread": SpreadRule,
}


def register(name: str) -> Callable[[Callable[..., DecisionRule]], Callable[..., DecisionRule]]:
    def deco(factory: Callable[..., DecisionRule]) -> Callable[..., DecisionRule]:
        _REGISTRY[name] = factory
        return factory

    return deco


def available() -> list[str]:
    return sorted(_REGISTRY)


def create(name: str, **params: object) -> DecisionRule:
    """A rule by name; ``params`` set its fields (e.g. ``create("margin", weight=1.0)``)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown decision rule {name!r}: one of {', '.join(available())}")
    return _REGISTRY[name](**params)


def parse(spec: str) -> DecisionRule:
    """``name`` or ``name:field=value,field=value`` (e.g. ``margin:weight=1,combine=mean``), or a
    rule's own ``key()`` as ``people list`` prints it (e.g. ``margin:both:w=0.5``, ``tnorm:nearest:k=20``):
    a bare ``nearest``/``mean``/``both`` is the combination, ``w`` the weight, ``k`` the cohort."""
    name, _, rest = spec.partition(":")
    params: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in rest.replace(":", ",").split(","))):
        k, eq, v = part.partition("=")
        if not eq and part in ("nearest", "mean", "both"):
            k, v = "combine", part
        elif not eq:
            raise ValueError(f"bad rule parameter {part!r} in {spec!r}: want field=value")
        k = RULE_FIELD_ALIASES.get(k.strip(), k.strip())
        try:
            params[k] = float(v) if k not in ("combine",) else v.strip()
            if k in ("cohort", "sample"):
                params[k] = int(float(v))
        except ValueError:
            raise ValueError(f"bad value {v!r} for {k!r} in {spec!r}") from None
    try:
        return create(name.strip(), **params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for rule {name!r}: {exc}") from None


RULE_FIELD_ALIASES = {"w": "weight", "k": "cohort"}  # the short names key() prints


def names_combine(spec: str) -> bool:
    """Does the rule spec choose its combination (``combine=mean`` or a bare ``mean``)?"""
    parts = [p.strip() for p in spec.partition(":")[2].replace(":", ",").split(",")]
    return any(p.startswith("combine=") or p in ("nearest", "mean", "both") for p in parts)


# ---- the operating point, estimated from the gallery itself ---------------------------------------
def threshold_range(rule: DecisionRule) -> tuple[float, float]:
    """The closed range of thresholds that mean something in ``rule``'s unit (always finite values:
    an infinite bound means "any finite number"). Rules that declare none take any finite number."""
    low, high = getattr(rule, "valid_range", (-math.inf, math.inf))
    return float(low), float(high)


def check_threshold(rule: DecisionRule | str, value: float) -> float:
    """``value`` as a threshold of ``rule`` (a rule or a spec such as ``"margin:weight=0.5"``), or a
    ``ValueError`` saying the rule's range: NaN and infinities are never thresholds (``inf`` would
    name every stranger), and an L2 distance lies in [0, 2]."""
    r = parse(rule) if isinstance(rule, str) else rule
    low, high = threshold_range(r)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"threshold {value!r} is not a number") from None
    if not math.isfinite(v) or not low <= v <= high:
        if math.isinf(low) and math.isinf(high):
            want = "any finite number"
        elif math.isinf(high):
            want = f"a finite number >= {low:g}"
        else:
            want = f"a number from {low:g} to {high:g}"
        raise ValueError(f"threshold {value!r} is out of range for the {r.name} rule: its unit is "
                         f"{r.unit}, so the threshold must be {want}")
    return v


@dataclass(frozen=True)
class OperatingPoint:
    """The threshold (in the rule's unit) for a target false accept rate, and how it was found.

    ``source``: ``gallery`` (estimated from the gallery's own people), ``default`` (too few people
    to estimate: the rule's default), or ``settings`` (set by the user: FACEBANK_THRESHOLD / flag)."""

    rule: str
    threshold: float
    far: float
    source: str
    impostor_scores: int = 0
    people: int = 0

    def summary(self) -> dict[str, Any]:
        return {"rule": self.rule, "threshold": round(self.threshold, 5), "target_far": self.far,
                "source": self.source, "impostor_scores": self.impostor_scores, "people": self.people}


MIN_PEOPLE = 3
MIN_IMPOSTORS = 50
# chosen on the development data only (LFW dev people, pins10 splits of seed 1): a gallery's own
# estimate counts as much as the prior once it holds ``prior_people`` people (the model's operating
# points: 20 for dlib), and aims at half the target FAR
# (a stranger meets all P people, a person left out only P - 1; and the estimate is noisy)
SAFETY = 0.5


def impostor_scores(rule: DecisionRule, gallery: GalleryFaces, sample: int = 3000,
                    seed: int = 0) -> np.ndarray:
    """Each enrolled face scored as a stranger: its own person removed, the best score among the
    others (one value per sampled face)."""
    n = len(gallery.vectors)
    idx = np.arange(n)
    if n > sample:
        idx = np.sort(np.random.default_rng(seed).choice(idx, sample, replace=False))
    if not len(idx) or len(gallery.people) < 2:
        return np.zeros(0)
    dist = gallery.person_distances(gallery.vectors[idx])
    own = gallery.labels[idx]
    rows = np.arange(len(idx))
    near = np.array(dist.nearest, np.float64)
    mean = np.array(dist.mean, np.float64)
    near[rows, own] = np.inf
    mean[rows, own] = np.inf
    s = rule.scores(PersonDistances(dist.people, near, mean))
    s = np.where(np.isfinite(s), s, np.inf)
    s[rows, own] = np.inf
    best: np.ndarray = s.min(axis=1)
    return best


def calibrate_gallery(rule: DecisionRule, gallery: GalleryFaces, far: float = 0.01,
                      safety: float = SAFETY, prior_people: float | None = None,
                      scores: np.ndarray | None = None) -> OperatingPoint:
    """The threshold naming at most ``far`` of strangers, estimated from the gallery's own people
    (each person in turn a stranger); the rule's default when the gallery is too small to tell.

    A gallery of few people says little about strangers (its estimate rests on a handful of pairs
    of people), so the estimate is pulled towards the rule's default threshold as if that came
    from ``prior_people`` people: ``(P * estimate + prior_people * default) / (P + prior_people)``.
    ``safety`` < 1 aims at ``safety * far``. ``scores``: the impostor scores when already computed
    (``impostor_scores``), e.g. to estimate the threshold at several rates."""
    prior_people = rule_points(rule).prior_people if prior_people is None else prior_people
    people = len(gallery.people)
    if people < MIN_PEOPLE:
        return OperatingPoint(rule.key(), rule.default_threshold, far, "default", 0, people)
    s = impostor_scores(rule, gallery) if scores is None else np.asarray(scores, np.float64)
    s = s[np.isfinite(s)]
    if len(s) < MIN_IMPOSTORS:
        return OperatingPoint(rule.key(), rule.default_threshold, far, "default", len(s), people)
    target = far * safety
    srt = np.sort(s)
    k = int(np.floor(target * len(srt)))  # accept at most k impostors: threshold just below srt[k]
    thr = float(srt[k] - 1e-9) if k < len(srt) else float(srt[-1])
    if k == 0:
        thr = float(srt[0] - 1e-9)
    if prior_people > 0:
        thr = (people * thr + prior_people * rule.default_threshold) / (people + prior_people)
    return OperatingPoint(rule.key(), thr, far, "gallery", len(s), people)


# ---- the decision a FaceBank applies: rule fitted on its gallery + operating point ----------------
CALIBRATION_FACES = 20_000


@dataclass(frozen=True, eq=False)
class Decision:
    """A rule fitted on one gallery state, with the operating point in use."""

    rule: DecisionRule
    point: OperatingPoint
    people: tuple[str, ...]

    def name(self, dist: PersonDistances, threshold: float | None = None) -> list[Match]:
        """``identify.assign`` on the rule's scores (``threshold`` in the rule's unit overrides)."""
        from facebank.identify import assign

        if dist.people != self.people:
            dist = reorder(dist, self.people)
        thr = self.point.threshold if threshold is None else check_threshold(self.rule, threshold)
        combine = getattr(self.rule, "combine", "nearest")
        return assign(dist, thr, combine if combine in ("nearest", "mean") else "nearest",
                      scores=self.rule.scores(dist) if dist.nearest.shape[1] else None)

    def summary(self) -> dict[str, Any]:
        return {**self.point.summary(), "unit": self.rule.unit}


def reorder(dist: PersonDistances, people: tuple[str, ...]) -> PersonDistances:
    """``dist`` with its columns in the order of ``people`` (a person ``dist`` lacks: infinite)."""
    pos = {p: i for i, p in enumerate(dist.people)}
    m = dist.nearest.shape[0]
    near = np.full((m, len(people)), np.inf, np.float32)
    mean = np.full((m, len(people)), np.inf, np.float32)
    for j, p in enumerate(people):
        if p in pos:
            near[:, j] = dist.nearest[:, pos[p]]
            mean[:, j] = dist.mean[:, pos[p]]
    return PersonDistances(people, near, mean)


def gallery_faces(vectors: np.ndarray, names: tuple[str, ...] | list[str],
                  limit: int = CALIBRATION_FACES, seed: int = 0) -> GalleryFaces:
    """GalleryFaces of stored embeddings (people sorted by name, as the indexes order them); above
    ``limit`` faces a random sample of them (the rule's statistics and operating point are then
    estimated on the sample)."""
    names_arr = np.asarray(list(names), dtype=object)
    people = tuple(sorted(set(names_arr.tolist())))
    pos = {p: i for i, p in enumerate(people)}
    idx = np.arange(len(names_arr))
    if len(idx) > limit:
        idx = np.sort(np.random.default_rng(seed).choice(idx, limit, replace=False))
    vecs = np.asarray(vectors, np.float32)[idx] if len(idx) else np.zeros((0, 0), np.float32)
    return GalleryFaces(vecs, np.array([pos[v] for v in names_arr[idx]], np.int64), people)


def decision_for(vectors: np.ndarray, names: tuple[str, ...] | list[str], spec: str, far: float,
                 threshold: float | None = None, combine: str | None = None,
                 points: OperatingPoints | None = None) -> Decision:
    """The rule ``spec`` fitted on a gallery's embeddings, with its operating point: ``threshold``
    when given (the user's, e.g. FACEBANK_THRESHOLD), else estimated from the gallery for ``far``.
    ``combine`` (nearest / mean) applies when ``spec`` names none; ``points``: the model's operating
    points (the priors of small galleries)."""
    rule = parse(spec)
    if points is not None and hasattr(rule, "points"):
        rule.points = points
    if combine is not None and not names_combine(spec) and hasattr(rule, "combine"):
        rule.combine = combine
    g = gallery_faces(vectors, names)
    rule.fit(g)
    if threshold is not None:
        point = OperatingPoint(rule.key(), check_threshold(rule, threshold), far, "settings", 0,
                               len(g.people))
    else:
        point = calibrate_gallery(rule, g, far)
    log.info("decision %s: threshold %.4f (%s) for %d people", rule.key(), point.threshold, point.source,
             len(g.people))
    return Decision(rule, point, g.people)
