"""dlib's ResNet against installed ONNX models, one column per model (docs/models.md).

    FACEBANK_DATA_DIR=... nice .venv/bin/python bench/bench_models.py [--models fast,mobilefacenet]
        [--faces ../shared/faces] [--calibrate] [--only lfw,lfw_openset,kpop15,celeb,pins10,speed]

Per model (``fast`` = dlib's ResNet; any other name = an installed model, ``facebank models
install``): with ``--calibrate`` first its operating points on LFW's development people
(``facebank models calibrate MODEL --lfw``; for dlib measured the same way and compared with the
built-in points, which are kept). Then, never on the calibration people:

* ``lfw``: LFW View 2 10-fold accuracy (mean +- std; flip on, MTCNN landmarks), TAR at FAR 0.1 %,
  and the accuracy of ``verify`` at the model's calibrated ``verify_l2`` over the 6,000 pairs;
* ``lfw_openset``: LFW open set, test people, 10 splits: DIR at FAR 1 % / 0.1 % (margin rule, the
  product's default) and what the automatic threshold really did;
* ``kpop15``: ``evaluate kpop15/train --open-set`` (centroid, svm): TAR at FAR 1 %;
* ``celeb``: ``evaluate 5celeb/train --test 5celeb/val``: top-1 of centroid and svm;
* ``pins10``: chinese-whispers at the model's ``cluster_l2``: B-cubed precision/recall/F1; and the
  pins10 open set (``benchmark openset``): DIR at FAR 1 %;
* ``speed``: identify CPU ms per photo (5celeb val against a gallery of 5celeb train, one worker).

Each command runs as ``facebank ... --json`` in a child process (the embedding cache makes reruns
cheap); ends with ONE JSON line, recorded with ``bench/record.py`` as ``models``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import record  # noqa: E402

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces"
FB = [sys.executable, "-m", "facebank"]


def model_flags(model: str) -> list[str]:
    return ["--embedder", model] if model in ("fast", "dlib") else ["--onnx-model", model]


def cli(*args: str) -> dict:
    t0 = time.time()
    res = subprocess.run([*FB, *args, "--json"], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {res.stderr.strip().splitlines()[-1:]}")
    out = res.stdout
    data = json.loads(out[out.index("{"):])
    data["_seconds"] = round(time.time() - t0, 1)
    return data


def settings_for(model: str):
    from facebank.settings import Settings

    if model in ("fast", "dlib"):
        return Settings(embedder=model)
    return Settings(embedder="onnx", onnx_model=model)


def calibrate(model: str, faces: Path) -> dict:
    from facebank.calibration.points import calibrate as run
    from facebank.embed.points import DLIB_POINTS

    m = run(settings_for(model), lfw=faces / "lfw", save=model not in ("fast", "dlib"))
    p = m.points.to_json()
    out = {"points": p, "photos": m.photos, "people": m.people, "dev_verify_accuracy": m.verify_accuracy,
           "dev_cluster_f1": m.cluster_f1}
    if model in ("fast", "dlib"):  # measured the same way, compared with the built-in points (kept)
        built = DLIB_POINTS.to_json()
        out["builtin"] = {k: built[k] for k in ("verify_l2", "identify_l2", "cluster_l2", "link_l2",
                                                "outlier_l2", "prior_l2", "prior_margin_slope")}
    return out


def lfw(model: str, faces: Path) -> dict:
    from facebank.embed.points import points_for_settings
    from facebank.evaluate.lfw import lfw_settings, run_view2

    s = lfw_settings(settings_for(model))
    res = run_view2(faces / "lfw", s)
    same = np.array([p.same for p in res.pairs])
    d = np.asarray(res.distance)
    thr = points_for_settings(s).verify_l2
    ok = np.isfinite(d)
    verify_acc = float(((d <= thr) == same)[ok].mean())
    return {"verify_l2": thr, "verify_accuracy_at_verify_l2": round(verify_acc, 4), "pairs": int(ok.sum()),
            "summary": res.summary()}


def pins10(model: str, faces: Path) -> dict:
    from facebank.cluster.methods import create
    from facebank.embed.points import points_for_settings
    from facebank.evaluate.cache import FacePolicy, default_retry, embed_photos, labelled_photos
    from facebank.evaluate.metrics import bcubed

    s = settings_for(model)
    pairs = labelled_photos(faces / "pins10")
    items = embed_photos([f for _, f in pairs], s, FacePolicy("largest", retry=default_retry()))
    ok = [i for i, e in enumerate(items) if e.embedding is not None]
    x = np.stack([items[i].embedding for i in ok])
    y = np.asarray([pairs[i][0] for i in ok], dtype=object)
    thr = points_for_settings(s).cluster_l2
    b = bcubed(create("chinese-whispers", threshold=thr).labels(x), y)
    openset = cli("benchmark", "openset", str(faces / "pins10"), "--rules", "margin:combine=both,weight=0.5",
                  *model_flags(model))
    return {"cluster_l2": thr, "bcubed_precision": b.precision, "bcubed_recall": b.recall, "bcubed_f1": b.f1,
            "faces": len(ok), "openset": openset}


def speed(model: str, faces: Path) -> dict:
    from facebank import FaceBank

    with tempfile.TemporaryDirectory() as tmp:
        s = settings_for(model).model_copy(update={"workers": 1})
        with FaceBank(Path(tmp) / "g.db", settings=s) as fb:
            fb.enroll_folder(faces / "5celeb" / "train")
            photos = sorted((faces / "5celeb" / "val").rglob("*.*"))
            list(fb.identify_many(photos[:2]))  # warm: models loaded
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            results = list(fb.identify_many(photos))
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) + (c1.ru_utime + c1.ru_stime - c0.ru_utime
                                                                      - c0.ru_stime)
    return {"identify_cpu_ms_per_photo": round(1000 * cpu / len(results), 1), "photos": len(results)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default="fast,mobilefacenet")
    ap.add_argument("--faces", type=Path, default=FACES)
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--only", default="lfw,lfw_openset,kpop15,celeb,pins10,speed")
    a = ap.parse_args()
    only = set(a.only.split(","))
    f = a.faces
    table: dict[str, dict] = {}
    for model in a.models.split(","):
        row: dict = {}
        if a.calibrate:
            row["calibration"] = calibrate(model, f)
        jobs = {
            "lfw": lambda m=model: lfw(m, f),
            "lfw_openset": lambda m=model: cli("benchmark", "lfw-openset", str(f / "lfw"), "--rules",
                                               "margin:combine=both,weight=0.5", *model_flags(m)),
            "kpop15": lambda m=model: cli("evaluate", str(f / "kpop15" / "train"), "--open-set", "-c",
                                          "centroid,svm", *model_flags(m)),
            "celeb": lambda m=model: cli("evaluate", str(f / "5celeb" / "train"), "--test",
                                         str(f / "5celeb" / "val"), "-c", "centroid,svm", *model_flags(m)),
            "pins10": lambda m=model: pins10(m, f),
            "speed": lambda m=model: speed(m, f),
        }
        for name, job in jobs.items():
            if name in only:
                try:
                    row[name] = job()
                except Exception as exc:  # noqa: BLE001 - one failing figure is reported, the rest goes on
                    row[name] = {"error": f"{type(exc).__name__}: {exc}"}
        table[model] = row
    line = record("models", table, notes=f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus; "
                  "calibration on LFW development people only")
    print(json.dumps(line))


if __name__ == "__main__":
    main()
