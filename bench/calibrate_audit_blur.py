"""Where does ``blurry`` start? The audit's blur threshold, chosen on photos the README's audit
figures are NOT measured on (default: 5celeb train+val and the LFW people with >= 10 photos).

    nice -n 10 .venv/bin/python bench/calibrate_audit_blur.py [--folders A B ...] [--sigma 2]

"Blurry" is defined as "as flat as a face chip blurred by a Gaussian of ``--sigma`` px" (on the
150 px chip the embedder sees, whose face proper spans 100 px: sigma 2 px is a visibly soft face).
For the main face of every photo the script measures the blur ratio (Crete et al. 2007, see
facebank.audit.quality.blur_ratio) of its chip as it is and blurred by sigma, and prints the
threshold where the share of sharp chips above it equals the share of blurred chips below it
(the equal-error point). Ends with ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from facebank import images
from facebank.audit.quality import chip_measures
from facebank.pipeline import FacePipeline
from facebank.settings import Settings

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces"


def dev_photos(folders: list[Path], min_photos: int) -> list[Path]:
    out = []
    for folder in folders:
        for person in sorted(p for p in folder.iterdir() if p.is_dir()):
            photos = sorted(p for p in person.iterdir() if p.is_file() and images.is_image_path(p))
            if len(photos) >= min_photos:
                out.extend(photos)
    return out


def equal_error(sharp: np.ndarray, blurred: np.ndarray) -> float:
    grid = np.unique(np.concatenate([sharp, blurred]))
    errs = [abs(float((sharp > t).mean()) - float((blurred <= t).mean())) for t in grid]
    return float(grid[int(np.argmin(errs))])


def main() -> None:
    import cv2
    from tqdm import tqdm

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folders", type=Path, nargs="+",
                    default=[FACES / "5celeb" / "train", FACES / "5celeb" / "val", FACES / "lfw" / "images"])
    ap.add_argument("--min-photos", type=int, default=10, help="people with fewer photos are left out "
                    "(LFW's single photos); 5celeb people all have more")
    ap.add_argument("--sigma", type=float, default=2.0)
    args = ap.parse_args()
    pipe = FacePipeline(Settings(threads=1))
    padding = pipe.embedder.chip.padding
    sharp, blurred = [], []
    for path in tqdm(dev_photos(args.folders, args.min_photos), mininterval=5):
        try:
            rgb = images.load_image(path).rgb
        except images.ImageError:
            continue
        dets = [d for d in pipe.detections(rgb) if not d.fallback]
        if not dets:
            continue
        det = max(dets, key=lambda d: d.box.area)
        chips, _ = pipe.chips(rgb, [det])
        sharp.append(chip_measures(chips[0], padding)[0])
        soft = cv2.GaussianBlur(chips[0], (0, 0), args.sigma)
        blurred.append(chip_measures(soft, padding)[0])
    s, b = np.array(sharp), np.array(blurred)
    t = equal_error(s, b)
    q = [5, 25, 50, 75, 95]
    print(f"{len(s)} faces; blur ratio as they are: percentiles {q} = "
          f"{np.percentile(s, q).round(3).tolist()}")
    print(f"blurred by sigma {args.sigma} px: percentiles {q} = {np.percentile(b, q).round(3).tolist()}")
    print(f"equal-error threshold {t:.3f}: {float((s > t).mean()):.1%} of the faces as they are are "
          f"above it, {float((b <= t).mean()):.1%} of the blurred ones below it")
    print(json.dumps({"faces": len(s), "sigma_px": args.sigma, "threshold": round(t, 3),
                      "sharp_above": round(float((s > t).mean()), 4),
                      "blurred_below": round(float((b <= t).mean()), 4)}))


if __name__ == "__main__":
    main()
