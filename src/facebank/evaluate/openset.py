"""Open-set identification of decision rules: name the enrolled people, and no one else.

Two ways to draw splits from a folder-per-person photo set (embeddings from the cache):

- ``lfw_splits``: every person with at least 2 photos is known (about half of their photos enrolled,
  at least one; the rest are probes), everyone else is a stranger. People are divided once, by a
  hash of their name, into a ``dev`` third (to choose settings on) and a ``test`` two thirds (to
  report on); ``part="all"`` takes everyone.
- ``people_splits``: ``known`` people drawn at random per split (half their photos enrolled), the
  other people's photos are strangers (pins10's open set).

Per rule and split: DIR (detected and identified rate: the share of probes named correctly) at the
threshold giving FAR 1 % / 0.1 % of strangers named, closed-set rank-1, and the operating point the
rule estimates from the gallery alone (``decide.calibrate_gallery``) with the FAR and DIR it really
gives -- what ``facebank identify`` does with no threshold. Photos with no face stay in: a probe
without a face is a miss, a stranger without one is never named.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facebank.decide import DecisionRule, GalleryFaces, calibrate_gallery
from facebank.embed.points import OperatingPoints
from facebank.evaluate.cache import LFW_POLICY, EmbeddingCache, FacePolicy
from facebank.evaluate.metrics import mean_std
from facebank.evaluate.protocols import Dataset, OpenSetRun, load_dataset
from facebank.settings import Settings

Progress = Callable[..., Iterable]

log = logging.getLogger(__name__)

FARS = (0.01, 0.001)
PARTS = ("test", "dev", "all")


@dataclass(frozen=True, eq=False)
class OpenSetSplit:
    """Indices into a Dataset: enrolled photos, probes of known people, photos of strangers."""

    gallery: np.ndarray
    probes: np.ndarray
    strangers: np.ndarray


def person_part(name: str) -> str:
    """``dev`` for about a third of the names, ``test`` for the rest; fixed by the name alone."""
    return "dev" if hashlib.sha256(name.encode()).digest()[0] < 86 else "test"


def lfw_splits(ds: Dataset, splits: int = 10, seed: int = 0, part: str = "test",
               enroll_fraction: float = 0.5) -> list[OpenSetSplit]:
    """Known = people with >= 2 photos (of the ``part``), strangers = people with one photo."""
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}: one of {', '.join(PARTS)}")
    counts = ds.counts()
    keep = {p for p in counts if part == "all" or person_part(p) == part}
    known = sorted(p for p in keep if counts[p] >= 2)
    strangers = np.flatnonzero([counts[lab] == 1 and lab in keep for lab in ds.labels])
    if not known or not len(strangers):
        raise ValueError(f"the {part} part has {len(known)} people with >= 2 photos and {len(strangers)} "
                         f"with one: an open set needs both")
    by_person = {p: np.flatnonzero(ds.labels == p) for p in known}
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(splits):
        gal, probe = [], []
        for p in known:
            idx = rng.permutation(by_person[p])
            n = min(len(idx) - 1, max(1, int(round(enroll_fraction * len(idx)))))
            gal += idx[:n].tolist()
            probe += idx[n:].tolist()
        out.append(OpenSetSplit(np.sort(gal), np.sort(probe), strangers))
    return out


def people_splits(ds: Dataset, known: int | None = None, splits: int = 10, seed: int = 0,
                  enroll_fraction: float = 0.5) -> list[OpenSetSplit]:
    """``known`` people (default half) drawn per split; the draw is the one of
    ``protocols.evaluate_open_set`` with the same seed (same people, same enrolled photos)."""
    people = ds.people
    n_known = known if known is not None else max(1, len(people) // 2)
    if not 1 <= n_known < len(people):
        raise ValueError(f"open set needs 1 <= known < {len(people)} people, got {n_known}")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(splits):
        chosen = sorted(rng.choice(people, n_known, replace=False).tolist())
        gal, probe = [], []
        for p in chosen:
            idx = rng.permutation(np.flatnonzero(ds.labels == p))
            n = max(1, int(round(enroll_fraction * len(idx))))
            gal += idx[:n].tolist()
            probe += idx[n:].tolist()
        strangers = np.flatnonzero(~np.isin(ds.labels, chosen))
        out.append(OpenSetSplit(np.asarray(gal), np.asarray(probe), strangers))
    return out


@dataclass(frozen=True)
class OperatingResult:
    """What a threshold really did on one split: strangers named / strangers, probes named right /
    probes (DIR), and the threshold (in the rule's unit)."""

    threshold: float
    far: float
    dir: float


@dataclass
class RuleResult:
    rule: str
    unit: str
    runs: list[OpenSetRun] = field(default_factory=list)
    auto: list[OperatingResult] = field(default_factory=list)
    fixed: list[OperatingResult] = field(default_factory=list)

    def dir_at(self, far: float) -> tuple[float, float]:
        return mean_std([r.roc().tar_at(far) for r in self.runs])

    def rank1(self) -> tuple[float, float]:
        return mean_std([float(np.mean(r.genuine_ok)) if len(r.genuine_ok) else float("nan")
                         for r in self.runs])

    @staticmethod
    def _point(points: list[OperatingResult]) -> dict:
        if not points:
            return {}
        far, far_s = mean_std([p.far for p in points])
        d, d_s = mean_std([p.dir for p in points])
        t, t_s = mean_std([p.threshold for p in points])
        return {"threshold": round(t, 5), "threshold_std": round(t_s, 5), "far": round(far, 5),
                "far_std": round(far_s, 5), "dir": round(d, 5), "dir_std": round(d_s, 5),
                "miss": round(1 - d, 5)}

    def summary(self) -> dict:
        out: dict = {"unit": self.unit}
        for far in FARS:
            tag = f"{far * 100:g}%".replace(".", "_")
            m, s = self.dir_at(far)
            out[f"dir_at_far_{tag}"] = round(m, 5)
            out[f"dir_at_far_{tag}_std"] = round(s, 5)
        r, rs = self.rank1()
        out["rank1"], out["rank1_std"] = round(r, 5), round(rs, 5)
        out["auto"] = self._point(self.auto)
        if self.fixed:
            out["fixed"] = self._point(self.fixed)
        return out


@dataclass
class OpenSetStudy:
    protocol: str
    dataset: str
    part: str
    splits: int
    known_people: float
    gallery_faces: float
    probes: float
    strangers: float
    no_face: int
    target_far: float
    results: dict[str, RuleResult]

    def summary(self) -> dict:
        return {"protocol": self.protocol, "dataset": self.dataset, "part": self.part, "splits": self.splits,
                "known_people": round(self.known_people, 1), "gallery_faces": round(self.gallery_faces, 1),
                "probes": round(self.probes, 1), "strangers": round(self.strangers, 1),
                "no_face": self.no_face, "target_far": self.target_far,
                "results": {k: v.summary() for k, v in self.results.items()}}


def _gallery(ds: Dataset, idx: np.ndarray) -> GalleryFaces:
    idx = idx[ds.ok[idx]]
    people = tuple(sorted(set(ds.labels[idx].tolist())))
    pos = {p: i for i, p in enumerate(people)}
    return GalleryFaces(ds.x[idx].astype(np.float32), np.array([pos[v] for v in ds.labels[idx]], np.int64),
                        people)


def _best(rule: DecisionRule, gallery: GalleryFaces, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not len(x):
        return np.zeros(0, np.int64), np.zeros(0)
    s = rule.scores(gallery.person_distances(x))
    top = np.argmin(s, axis=1)
    return top, s[np.arange(len(top)), top]


def _at(threshold: float, run: OpenSetRun) -> OperatingResult:
    named = run.impostor <= threshold
    right = run.genuine_ok & (run.genuine <= threshold)
    return OperatingResult(float(threshold), float(named.mean()) if len(named) else 0.0,
                           float(right.mean()) if len(right) else float("nan"))


def run_rules(ds: Dataset, splits: Sequence[OpenSetSplit], rules: Sequence[DecisionRule],
              target_far: float = 0.01, fixed: dict[str, float] | None = None, protocol: str = "open-set",
              part: str = "all") -> OpenSetStudy:
    """Every rule on every split. ``fixed``: rule key -> a fixed threshold to measure as well."""
    results = {r.key(): RuleResult(r.key(), r.unit) for r in rules}
    for k, sp in enumerate(splits):
        gallery = _gallery(ds, sp.gallery)
        pos = {p: i for i, p in enumerate(gallery.people)}
        probe_ok = ds.ok[sp.probes]
        str_ok = ds.ok[sp.strangers]
        truth = np.array([pos.get(v, -1) for v in ds.labels[sp.probes]])
        for rule in rules:
            rule.fit(gallery)
            g = np.full(len(sp.probes), np.inf)
            g_ok = np.zeros(len(sp.probes), bool)
            top, best = _best(rule, gallery, ds.x[sp.probes[probe_ok]])
            g[probe_ok] = best
            g_ok[probe_ok] = top == truth[probe_ok]
            imp = np.full(len(sp.strangers), np.inf)
            imp[str_ok] = _best(rule, gallery, ds.x[sp.strangers[str_ok]])[1]
            run = OpenSetRun(list(gallery.people), [], g, g_ok, imp)
            res = results[rule.key()]
            res.runs.append(run)
            op = calibrate_gallery(rule, gallery, target_far)
            res.auto.append(_at(op.threshold, run))
            if fixed and rule.key() in fixed:
                res.fixed.append(_at(fixed[rule.key()], run))
        log.info("open-set split %d/%d done", k + 1, len(splits))
    n = max(len(splits), 1)
    used: set[int] = set()
    for sp in splits:
        used |= set(sp.gallery.tolist()) | set(sp.probes.tolist()) | set(sp.strangers.tolist())
    return OpenSetStudy(
        protocol, ds.root, part, len(splits),
        sum(len(set(ds.labels[s.gallery].tolist())) for s in splits) / n,
        sum(int(ds.ok[s.gallery].sum()) for s in splits) / n,
        sum(len(s.probes) for s in splits) / n, sum(len(s.strangers) for s in splits) / n,
        int(sum(1 for i in used if not ds.ok[i])), target_far, results)


def study_text(study: OpenSetStudy) -> str:
    s = study
    lines = [f"{s.protocol} on {s.dataset} (part {s.part}): {s.splits} splits, {s.known_people:.0f} known "
             f"people, {s.gallery_faces:.0f} enrolled faces, {s.probes:.0f} probes, "
             f"{s.strangers:.0f} stranger photos, {s.no_face} photos without a face",
             f"{'rule':<34} {'DIR@FAR1%':>16} {'DIR@FAR0.1%':>16} {'rank-1':>16}   "
             f"auto threshold (target FAR {100 * s.target_far:g}%): FAR / miss"]
    for key, r in s.results.items():
        (a, sa), (b, sb), (c, sc) = r.dir_at(0.01), r.dir_at(0.001), r.rank1()
        auto = r.summary()["auto"]
        line = (f"{key:<34} {100 * a:7.2f} ± {100 * sa:5.2f}  {100 * b:7.2f} ± {100 * sb:5.2f}  "
                f"{100 * c:7.2f} ± {100 * sc:5.2f}   {auto['threshold']:.4f}: {100 * auto['far']:.2f}% / "
                f"{100 * auto['miss']:.2f}%")
        if r.fixed:
            fx = r.summary()["fixed"]
            line += f"   (fixed {fx['threshold']:.3f}: {100 * fx['far']:.2f}% / {100 * fx['miss']:.2f}%)"
        lines.append(line)
    return "\n".join(lines)


STANDARD_RULES = ("distance", "distance:combine=mean", "margin", "tnorm", "znorm", "spread")


def rules_for(spec: str, default: str) -> list[DecisionRule]:
    """``all`` (the standard rules and ``default``) or a ';'-separated list of rule specs."""
    from facebank.decide import parse

    specs = list(STANDARD_RULES) + [default] if spec == "all" else [s for s in spec.split(";") if s.strip()]
    rules, seen = [], set()
    for s in specs:
        r = parse(s.strip())
        if r.key() not in seen:
            seen.add(r.key())
            rules.append(r)
    return rules


def lfw_root_images(root: str | Path) -> Path:
    """The folder-per-person photos of an LFW folder (``root/images``, or ``root`` itself)."""
    root = Path(root)
    return root / "images" if (root / "images").is_dir() else root


def run_lfw_open_set(root: str | Path, settings: Settings, rules: Sequence[DecisionRule],
                     policy: FacePolicy = LFW_POLICY, cache: EmbeddingCache | None = None,
                     progress: Progress | None = None, splits: int = 10, seed: int = 0, part: str = "test",
                     target_far: float = 0.01) -> OpenSetStudy:
    """The LFW open set (see ``lfw_splits``) over the photos of ``root`` (the LFW folder)."""
    pts = with_points(rules, settings)
    ds = load_dataset(lfw_root_images(root), settings, policy, cache, progress)
    sp = lfw_splits(ds, splits, seed, part)
    return run_rules(ds, sp, rules, target_far, _fixed(rules, pts), "lfw-open-set", part)


def run_folder_open_set(folder: str | Path, settings: Settings, rules: Sequence[DecisionRule],
                        policy: FacePolicy, cache: EmbeddingCache | None = None,
                        progress: Progress | None = None, known: int | None = None, splits: int = 10,
                        seed: int = 0, target_far: float = 0.01) -> OpenSetStudy:
    """``known`` people enrolled per split, the others strangers (pins10's open set)."""
    pts = with_points(rules, settings)
    ds = load_dataset(folder, settings, policy, cache, progress)
    sp = people_splits(ds, known, splits, seed)
    return run_rules(ds, sp, rules, target_far, _fixed(rules, pts), "open-set", f"seed {seed}")


def with_points(rules: Sequence[DecisionRule], settings: Settings) -> OperatingPoints:
    """The operating points of ``settings``' model, given to every rule (their priors and defaults);
    ``NotCalibrated`` for a model without them."""
    from facebank.embed.points import points_for_settings

    pts = points_for_settings(settings)
    for r in rules:
        if hasattr(r, "points"):
            r.points = pts
    return pts


def _fixed(rules: Sequence[DecisionRule], points: OperatingPoints) -> dict[str, float]:
    """The model's fixed L2 threshold (``identify_l2``), measured beside the estimated one for the
    raw-distance rules."""
    return {r.key(): points.identify_l2 for r in rules if r.name == "distance"}
