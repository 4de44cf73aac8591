"""Pick the "unknown" threshold for a target false accept rate from held-out people.

Repeated open-set splits of a folder-per-person set: some people are enrolled, the others play
strangers; the threshold (L2 distance between unit embeddings) at which at most ``far`` of the
strangers' faces are accepted is taken on each split, and the mean is the calibrated threshold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from facebank.evaluate.protocols import Dataset, OpenSetEvaluation, evaluate_open_set
from facebank.learn.classifiers import ClassifierSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Calibration:
    classifier: str
    far: float
    threshold: float  # L2 distance between unit embeddings: accept when distance <= threshold
    threshold_std: float
    tar: float  # true accept (and correctly named) rate at that FAR, mean over repeats
    tar_std: float
    repeats: int

    def summary(self) -> dict:
        return {"protocol": "calibrate", "classifier": self.classifier, "far": self.far,
                "threshold": round(self.threshold, 4), "threshold_std": round(self.threshold_std, 4),
                "tar": round(self.tar, 5), "tar_std": round(self.tar_std, 5), "repeats": self.repeats}


def calibrate(ds: Dataset, spec: ClassifierSpec, far: float = 0.01, known: int | None = None,
              repeats: int = 5, seed: int = 0) -> tuple[Calibration, OpenSetEvaluation]:
    ev = evaluate_open_set(ds, [spec], known=known, repeats=repeats, seed=seed)
    res = ev.results[spec.name]
    thr, thr_std = res.threshold_at(far)
    tar, tar_std = res.tar_at(far)
    cal = Calibration(spec.name, far, thr, thr_std, tar, tar_std, repeats)
    log.info("calibrated %s at FAR %.3g: threshold %.4f +- %.4f (TAR %.4f)", spec.name, far, thr, thr_std,
             tar)
    return cal, ev
