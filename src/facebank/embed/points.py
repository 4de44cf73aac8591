"""Operating points: every distance constant of facebank, kept per model.

Embeddings of different models live on different scales (dlib's same-person threshold is near
0.42, an ArcFace-trained MobileFaceNet's near 1.19), so no L2 constant belongs to the code: each
belongs to a model id and is looked up here. dlib's figures are dlib's operating points, built in;
any other model gets its points from a calibration (``facebank models calibrate``), stored in the
user's data folder keyed by the model id, apart from the model card (calibrating never changes a
model id, so it never invalidates a gallery's embeddings).

All distances are L2 distances between unit embeddings (0 = identical, 2 = opposite).

Use::

    from facebank.embed.points import points_for
    pts = points_for(model_id)          # raises NotCalibrated for a model with no points
    pts.verify_l2, pts.cluster_l2, pts.link_l2, ...
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class NotCalibrated(LookupError):
    """A model has no operating points yet: the message says which command measures them."""


@dataclass(frozen=True)
class OperatingPoints:
    """The distance constants of one model (``model_id``), all in L2 units between unit embeddings.

    - ``verify_l2``: largest distance for "same person" when verifying two photos (at ``far``).
    - ``identify_l2``: the ``distance`` rule's threshold when a gallery is too small to estimate its
      own (nearest enrolled face).
    - ``cluster_l2``: largest distance between two faces that links them when clustering.
    - ``link_l2``: the video tracker's gate: largest distance between a new face and its track.
    - ``prior_l2``: the thresholds large galleries estimate for themselves, per combination
      (``nearest``, ``mean``, ``both``): the prior a small gallery's estimate is pulled towards.
    - ``prior_margin_slope``: how much the margin rule's threshold falls per unit of weight.
    - ``prior_people``: how many people the prior counts as (the pull of a small gallery's estimate).
    - ``duplicate_l2`` / ``same_person_l2`` / ``outlier_l2``: the audit's bounds (copies and same
      person: at most; outliers: farther than this from everyone).
    - ``impostor_l2``: quantiles of a stranger's distance to the nearest face of a person, at the
      levels ``impostor_levels`` (ascending), for groups of faces in tiny galleries.
    - ``far``: the false accept rate the points aim at; ``source``: where they come from.
    """

    model_id: str
    verify_l2: float
    identify_l2: float
    cluster_l2: float
    link_l2: float
    prior_l2: dict[str, float]
    prior_margin_slope: float
    prior_people: float
    duplicate_l2: float
    same_person_l2: float
    outlier_l2: float
    far: float = 0.01
    impostor_levels: tuple[float, ...] = ()
    impostor_l2: tuple[float, ...] = ()
    source: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for f in ("verify_l2", "identify_l2", "cluster_l2", "link_l2", "duplicate_l2",
                  "same_person_l2", "outlier_l2"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or not 0.0 <= v <= 2.0:
                raise ValueError(f"operating points of {self.model_id}: {f} must be an L2 distance in "
                                 f"[0, 2], not {v!r}")
        if not isinstance(self.prior_l2, dict) or not {"nearest", "mean", "both"} <= set(self.prior_l2) \
                or not all(_number(v) and 0.0 <= v <= 2.0 for v in self.prior_l2.values()):
            raise ValueError(f"operating points of {self.model_id}: prior_l2 must map nearest, mean and both "
                             f"to L2 distances in [0, 2]")
        for f in ("prior_margin_slope", "prior_people"):
            v = getattr(self, f)
            if not _number(v) or not 0.0 <= v <= 1000.0:
                raise ValueError(f"operating points of {self.model_id}: {f} must be a number >= 0, not {v!r}")
        if not isinstance(self.extra, dict) or not all(_number(v) for v in self.extra.values()):
            raise ValueError(f"operating points of {self.model_id}: extra must map names to numbers")
        if not all(_number(v) and 0.0 <= v <= 2.0 for v in self.impostor_l2) \
                or not all(_number(v) and 0.0 < v < 1.0 for v in self.impostor_levels):
            raise ValueError(f"operating points of {self.model_id}: impostor_l2 must be L2 distances and "
                             f"impostor_levels shares in (0, 1)")
        if not _number(self.far) or not 0.0 < self.far < 1.0:
            raise ValueError(f"operating points of {self.model_id}: far must be in (0, 1), not {self.far!r}")
        if len(self.impostor_levels) != len(self.impostor_l2):
            raise ValueError(f"operating points of {self.model_id}: impostor_levels and impostor_l2 differ "
                             f"in length")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["impostor_levels"] = list(self.impostor_levels)
        d["impostor_l2"] = list(self.impostor_l2)
        return d

    @classmethod
    def from_json(cls, raw: dict[str, Any], where: str = "operating points") -> OperatingPoints:
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: not a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        try:
            data = dict(raw)
            for key in ("impostor_levels", "impostor_l2"):
                if key in data:
                    if not isinstance(data[key], list):
                        raise ValueError(f"{where}: {key} must be a list of numbers")
                    data[key] = tuple(data[key])
            return cls(**data)
        except TypeError as exc:
            raise ValueError(f"{where}: {exc}") from None


# dlib's ResNet (embedders "fast" and "dlib", same weights), with flip (the default). Measured by the
# project's benchmarks on development data only: verify on the LFW View 2 folds (0.417), identify on
# pins10 open set (FAR 1 % at 0.33), cluster on LFW people with 5-9 photos (bench/bench_cluster.py),
# priors on LFW's development people (calibrate_gallery at FAR 1 %, safety 0.5, mean of 5 splits).
DLIB_POINTS = OperatingPoints(
    model_id="dlib-resnet-v1",
    verify_l2=0.42,
    identify_l2=0.35,
    cluster_l2=0.36,
    link_l2=0.5,
    prior_l2={"nearest": 0.314, "mean": 0.304, "both": 0.312},
    prior_margin_slope=0.058,
    prior_people=20.0,
    duplicate_l2=0.42,
    same_person_l2=0.42,
    outlier_l2=0.6,
    far=0.01,
    source="built in: dlib's ResNet, measured by facebank's benchmarks on development data",
    # the t-norm (cohort 20), z-norm and spread rules' thresholds on LFW's development people, FAR 1 %
    extra={"tnorm_default": -7.4, "znorm_default": -4.6, "spread_default": 0.85},
)

_BUILTIN: dict[str, OperatingPoints] = {DLIB_POINTS.model_id: DLIB_POINTS}


def data_dir() -> Path:
    """The user's data folder (models, cards, operating points): FACEBANK_DATA_DIR or the platform's."""
    env = os.environ.get("FACEBANK_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("facebank"))


def points_dir() -> Path:
    return data_dir() / "points"


def _file_for(model_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id)[:200]
    return points_dir() / f"{safe}.json"


def base_model_id(model_id: str) -> str:
    """The model id without the suffixes of test-time options (``|flip``...), if any."""
    return model_id.split("|", 1)[0]


def points_key(model_id: str, flip: bool = True) -> str:
    """The key of the points of ``model_id`` with test-time flip on (the default: the model id itself) or
    off (``MODEL_ID|noflip``: distances shift with flip; ``points_for`` falls back to the flip points)."""
    return model_id if flip else f"{model_id}|noflip"


def points_for(model_id: str) -> OperatingPoints:
    """The operating points of ``model_id``: calibrated ones from the user's data folder first, then
    the built-in ones; ``NotCalibrated`` (saying how to calibrate) when there are none."""
    for mid in dict.fromkeys((model_id, base_model_id(model_id))):
        path = _file_for(mid)
        if path.is_file():
            try:
                raw = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise NotCalibrated(f"the operating points of model {mid} are unreadable ({exc}): run "
                                    f"'facebank models calibrate' again") from None
            try:
                return OperatingPoints.from_json(raw, f"operating points of {mid}")
            except ValueError as exc:
                raise NotCalibrated(f"{exc} (in {path.name}): run 'facebank models calibrate' "
                                    f"again") from None
        if mid in _BUILTIN:
            return _BUILTIN[mid]
    raise NotCalibrated(
        f"model {model_id} has no operating points (thresholds) yet: run "
        f"'facebank models calibrate NAME FOLDER' (NAME as 'facebank models list' shows it; FOLDER: "
        f"labelled photos, one sub-folder per person; or --lfw LFW_FOLDER) first"
    )


def model_id_of(embedder: str, onnx_model: str | None = None) -> str:
    """The model id of an embedder by name (dlib and fast without loading anything)."""
    if embedder in ("dlib", "fast"):
        from facebank.embed.dlib import DLIB_MODEL_ID

        return DLIB_MODEL_ID
    from facebank.embed import create

    return create(embedder, model=onnx_model).model_id


def points_for_settings(settings: object) -> OperatingPoints:
    """The operating points of the embedder a ``Settings`` names (its model, with its flip)."""
    mid = model_id_of(getattr(settings, "embedder", "fast"), getattr(settings, "onnx_model", None))
    return points_for(points_key(mid, bool(getattr(settings, "flip", True))))


def save_points(points: OperatingPoints) -> Path:
    """Store calibrated points for their model id in the user's data folder (atomically)."""
    path = _file_for(points.model_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(points.to_json(), indent=2, sort_keys=True))
    os.replace(tmp, path)
    log.info("operating points of %s saved to %s", points.model_id, path)
    return path


def remove_points(model_id: str) -> bool:
    path = _file_for(model_id)
    if path.is_file():
        path.unlink()
        return True
    return False
