"""Face quality (issue 21): one record per stored face, and the flag that keeps junk out of People.

Each detection gets a ``FaceQuality``: the shorter side of its box, blur of the aligned chip the
embedder sees (``audit.quality.blur_ratio``: 0 sharp .. 1 no detail), head turn from the landmarks
and the detector's score. ``flag_for`` calls a face 'not_face' (likely no face at all: MTCNN's false
faces on textures, fur, fabric) or 'low_quality' (too small or too blurred to recognise anyone).
Flagged faces are kept in the gallery, form no cluster and get no suggestion by default, and the
page shows them collapsed. The floors were chosen on a development half of the negatives and of
pins10 (bench/bench_quality.py), never on the halves it reports.
"""

from __future__ import annotations

import numpy as np

from facebank.types import Detection, FaceQuality, Landmarks

# chosen on the dev halves by bench/bench_quality.py (grid search: most false faces flagged with at
# most 1.5 % of real faces flagged). On the report halves they flag 20 % of the false detections
# and 1.0 % of pins10 / 2.5 % of 5celeb real faces: MTCNN's false faces are sharp, frontal-looking
# and scored high, so size, blur, pose and score alone cannot tell most of them (bench/results).
MIN_SIDE_PX = 0.0          # shorter side of the box (0: size alone flags nothing)
MAX_BLUR = 0.65            # blur ratio of the face on the chip; above: heavily blurred
MTCNN_NOT_FACE = 0.90      # MTCNN probability below which a 'face' is likely none
MAX_YAW_NOT_FACE = 70.0    # landmarks that say the head is turned past this are no face's


def measure(det: Detection, landmarks: Landmarks | None, chip: np.ndarray, padding: float) -> FaceQuality:
    """The quality record of one detection (``chip``: its aligned RGB chip, ``padding`` of the chip)."""
    from facebank.audit.quality import chip_measures, yaw_degrees  # audit imports the pipeline

    blur = float(chip_measures(chip, padding)[0])
    yaw = yaw_degrees(landmarks)
    size = float(min(det.box.width, det.box.height))
    q = FaceQuality(size, blur, yaw, float(det.score))
    flag = flag_for(q, det.detector, det.fallback)
    return FaceQuality(q.size_px, q.blur, q.yaw_deg, q.detector_score, flag)


def flag_for(q: FaceQuality, detector: str, fallback: bool = False) -> str | None:
    """'not_face', 'low_quality' or None. A crop taken whole (``fallback``) is never flagged: the
    user said the photo is a face."""
    if fallback:
        return None
    if detector == "mtcnn" and q.detector_score < MTCNN_NOT_FACE:
        return "not_face"
    if q.yaw_deg is not None and abs(q.yaw_deg) > MAX_YAW_NOT_FACE:
        return "not_face"
    if q.size_px < MIN_SIDE_PX or (q.blur is not None and q.blur > MAX_BLUR):
        return "low_quality"
    return None
