"""Write tests/fixtures/mtcnn_reference.json with the ORIGINAL mtcnn 1.0.0 package (TensorFlow).

This script does NOT run in the project's virtualenv: the mtcnn package imports TensorFlow, which
facebank never installs. Run it once in a throwaway virtualenv outside the repo::

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu mtcnn==1.0.0 pillow
    /tmp/tfvenv/bin/python bench/make_mtcnn_reference.py            # from /work/main

It loads each photo exactly as facebank's tests do (PIL, EXIF transpose, RGB, np.asarray uint8),
runs ``MTCNN().detect_faces(image, output_type="numpy", box_format="xyxy")`` with the package
defaults and stores the unrounded boxes (x1, y1, x2, y2, clipped to the image by the package),
confidences and the five landmarks (left eye, right eye, nose, mouth left, mouth right) together
with the image shape and a SHA-256 of its pixels (so a decoder change is caught, not mistaken for a
detector difference). ``tests/test_detect_mtcnn.py`` compares facebank's ONNX MtcnnDetector to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FACES = REPO.parent / "shared" / "faces"
OUT = REPO / "tests" / "fixtures" / "mtcnn_reference.json"

PHOTOS = [
    "5celeb/val/ben_afflek/httpcsvkmeuaafdfjpg.jpg",
    "5celeb/val/jerry_seinfeld/httpaurorasblogcomwpcontentuploadsjerryseinfeldpublicityshotjpg.jpg",
    "5celeb/val/madonna/httpcdnfuncheapcomwpcontentuploadsVOGUEjpg.jpg",
    "detection_edge/multi_face/face_recognition_two_people.jpg",
    "detection_edge/multi_face/deepface_selfie-many-people.jpg",
    "detection_edge/multi_face/jurassic_example_01.jpg",
    "detection_edge/multi_face/facenet-pytorch_multiface.jpg",
    "kpop15/unlabeled_raw/seulgi2.jpg",
    "kpop15/unlabeled_raw/2-BLACKPINK-Lisa-with-no-bang.jpg",
    "detection_edge/no_face/skimage_chelsea.png",
]

COMMAND = "/tmp/tfvenv/bin/python bench/make_mtcnn_reference.py  (cwd: the repo root)"


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def main() -> None:
    from importlib.metadata import version

    import tensorflow as tf
    from mtcnn import MTCNN

    detector = MTCNN()
    photos = []
    for rel in PHOTOS:
        image = load_rgb(FACES / rel)
        rows = detector.detect_faces(image, output_type="numpy", box_format="xyxy")
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, 16)
        faces = []
        for r in rows:
            xs, ys = r[6:11], r[11:16]
            faces.append({
                "box": [round(float(v), 4) for v in r[1:5]],
                "confidence": round(float(r[5]), 6),
                "landmarks": [[round(float(x), 4), round(float(y), 4)] for x, y in zip(xs, ys, strict=True)],
            })
        photos.append({
            "path": rel,
            "height": int(image.shape[0]),
            "width": int(image.shape[1]),
            "pixels_sha256": hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest(),
            "faces": faces,
        })
        print(f"{rel}: {len(faces)} faces", file=sys.stderr)

    doc = {
        "about": "Output of the original mtcnn package (TensorFlow) on real photos; facebank's ONNX "
                 "MtcnnDetector is tested against it (tests/test_detect_mtcnn.py).",
        "mtcnn_version": version("mtcnn"),
        "tensorflow_version": tf.__version__,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "pillow_version": Image.__version__,
        "call": 'MTCNN().detect_faces(image, output_type="numpy", box_format="xyxy") with defaults '
                "(min_face_size=20, scale_factor=0.709, threshold_pnet=0.6, threshold_rnet=0.7, "
                "threshold_onet=0.8)",
        "command": COMMAND,
        "script": "bench/make_mtcnn_reference.py",
        "photos_root": "shared/faces (paths are relative to it)",
        "image_loading": "PIL.Image.open -> ImageOps.exif_transpose -> convert('RGB') -> np.asarray "
                         "(uint8 RGB)",
        "box_format": "[x1, y1, x2, y2] pixels, clipped by the package to [0, width-1] x [0, height-1]",
        "landmark_order": ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"],
        "photos": photos,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
