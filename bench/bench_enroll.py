"""Enrollment speed and top-1 accuracy: facebank vs the ``face_recognition`` package, same photos,
same embedding model (dlib's ResNet), in one run.

    .venv/bin/python bench/bench_enroll.py [--faces ../shared/faces] [--sets pins10,5celeb]
        [--embedder fast] [--detector DEFAULT] [--workers 0] [--fr-processes 1,N]

* face_recognition runs in its own venv (bench/.venv-fr, made on first use: face_recognition
  --no-deps + dlib-bin, face_recognition_models, numpy, pillow, click, so dlib is not compiled),
  in a subprocess: ``load_image_file`` + ``face_encodings`` with its defaults (HOG, upsample 1),
  keeping the largest face; once in one process (the API as documented) and once with one process
  per core (what its CLI's ``--cpus -1`` does). Timed inside the subprocess, after imports.
* facebank: ``FaceBank.enroll_folder`` into a fresh gallery, ``workers`` = cores, embedder
  ``fast`` when it is available (else dlib), the default detector unless --detector; timed by the
  enrollment report (pool start-up and gallery writes included).
* top-1 on 5celeb: enroll 5celeb/train, then each val photo's largest face is named by its nearest
  enrolled face (no threshold) by both; a photo without a face counts as wrong.

* ``--big-mp 12``: the set ``big`` is made by the bench: the first ``--big-photos`` photos of
  5celeb/train (round robin over the people, folder per person) upscaled (bicubic) to 12
  megapixels, JPEG quality 90, like phone photos; add ``big`` to ``--sets`` to time it
  (face_recognition on it only with as many processes as facebank has workers: HOG on 12 MP
  photos takes tens of seconds a photo).

Ends with ONE JSON line: photos/s of both, the ratios, and both top-1 accuracies.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from facebank import FaceBank, Settings
from facebank.images import iter_image_files

REPO = Path(__file__).resolve().parents[1]
FR_VENV = REPO / "bench" / ".venv-fr"
FR_PACKAGES = ["dlib-bin", "face_recognition_models", "numpy", "pillow", "click"]

FR_SCRIPT = r'''
import json, sys, time
from multiprocessing import Pool
import face_recognition

def encode(path):
    try:
        img = face_recognition.load_image_file(path)
    except Exception as exc:
        return None, f"load: {exc}"
    boxes = face_recognition.face_locations(img, number_of_times_to_upsample=1, model="hog")
    if not boxes:
        return None, "no face"
    # the largest face (top, right, bottom, left)
    box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
    enc = face_recognition.face_encodings(img, known_face_locations=[box])
    return [float(x) for x in enc[0]], None

if __name__ == "__main__":
    paths = json.load(open(sys.argv[1]))
    procs = int(sys.argv[2])
    t = time.perf_counter()
    if procs > 1:
        with Pool(procs) as pool:
            out = pool.map(encode, paths, chunksize=4)
    else:
        out = [encode(p) for p in paths]
    seconds = time.perf_counter() - t
    json.dump({"seconds": seconds, "results": out}, sys.stdout)
'''


def ensure_fr_venv() -> Path:
    py = FR_VENV / "bin" / "python"
    stamp = FR_VENV / ".installed"
    if stamp.exists():
        return py
    print(f"creating {FR_VENV} with face_recognition (no dlib compile)...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(FR_VENV)], check=True)
    pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run(pip + ["--no-deps", "face_recognition"], check=True)
    subprocess.run(pip + FR_PACKAGES, check=True)
    subprocess.run([str(py), "-c", "import face_recognition"], check=True)
    stamp.write_text("ok\n")
    return py


def run_fr(py: Path, paths: list[Path], processes: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-fr-") as tmp:
        script = Path(tmp) / "fr.py"
        script.write_text(FR_SCRIPT)
        listing = Path(tmp) / "paths.json"
        listing.write_text(json.dumps([str(p) for p in paths]))
        proc = subprocess.run([str(py), str(script), str(listing), str(processes)], capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"face_recognition subprocess failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout)


def facebank_settings(args) -> tuple[Settings, str]:
    over: dict = {"workers": args.workers}
    if args.detector:
        over["detector"] = args.detector
    embedder = args.embedder
    if embedder == "fast":
        try:
            from facebank.embed import create

            create("fast")
        except Exception as exc:  # not available in this installation
            print(f"fast embedder unavailable ({exc}); using dlib", file=sys.stderr)
            embedder = "dlib"
    over["embedder"] = embedder
    s = Settings(**over)
    return s, embedder


def enroll_speed(folder: Path, settings: Settings) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-enroll-") as tmp, \
            FaceBank(Path(tmp) / "g.db", settings=settings) as fb:
        report = fb.enroll_folder(folder)
    return {"photos": report.photos_seen, "photos_enrolled": report.photos_enrolled,
            "faces": report.faces_added, "seconds": round(report.seconds, 2),
            "photos_per_s": round(report.photos_per_second, 3)}


def fr_speed(py: Path, folder: Path, processes: int) -> dict:
    paths = list(iter_image_files(folder))
    out = run_fr(py, paths, processes)
    found = sum(1 for enc, _ in out["results"] if enc is not None)
    return {"processes": processes, "photos": len(paths), "photos_with_face": found,
            "seconds": round(out["seconds"], 2), "photos_per_s": round(len(paths) / out["seconds"], 3)}


def make_big_set(train: Path, out: Path, megapixels: float, count: int) -> Path:
    """Phone-sized photos made from real ones: the first photos of each person in turn, upscaled."""
    from PIL import Image

    from facebank.images import load_image

    queues = [sorted(iter_image_files(d)) for d in sorted(train.iterdir()) if d.is_dir()]
    chosen: list[Path] = []
    while len(chosen) < count and any(queues):
        for q in queues:
            if q and len(chosen) < count:
                chosen.append(q.pop(0))
    for p in chosen:
        im = Image.fromarray(load_image(p).rgb)
        scale = (megapixels * 1e6 / (im.width * im.height)) ** 0.5
        target = out / p.parent.name / (p.stem + ".jpg")
        target.parent.mkdir(parents=True, exist_ok=True)
        im.resize((round(im.width * scale), round(im.height * scale)), Image.BICUBIC).save(target, quality=90)
    return out


def labelled(folder: Path) -> list[tuple[str, Path]]:
    return [(d.name, p) for d in sorted(folder.iterdir()) if d.is_dir() for p in iter_image_files(d)]


def fr_top1(py: Path, train: Path, val: Path) -> dict:
    tr, va = labelled(train), labelled(val)
    out = run_fr(py, [p for _, p in tr] + [p for _, p in va], 1)["results"]
    enc_tr = [(name, np.asarray(e)) for (name, _), (e, _) in zip(tr, out[: len(tr)], strict=True) if e]
    known = np.stack([e for _, e in enc_tr])
    correct = no_face = 0
    for (name, _), (e, _) in zip(va, out[len(tr):], strict=True):
        if e is None:
            no_face += 1
            continue
        nearest = int(np.argmin(np.linalg.norm(known - np.asarray(e), axis=1)))
        correct += enc_tr[nearest][0] == name
    return {"val_photos": len(va), "correct": correct, "no_face": no_face,
            "top1": round(correct / len(va), 4), "train_faces": len(enc_tr)}


def fb_top1(settings: Settings, train: Path, val: Path) -> dict:
    va = labelled(val)
    correct = no_face = 0
    with tempfile.TemporaryDirectory(prefix="bench-top1-") as tmp, \
            FaceBank(Path(tmp) / "g.db", settings=settings) as fb:
        report = fb.enroll_folder(train)
        for name, path in va:
            result = fb.identify(path, threshold=10.0)  # nearest person, no unknowns
            if not result.faces:
                no_face += 1
                continue
            largest = max(result.faces, key=lambda f: f.face.box.area)
            correct += largest.match.candidate == name
    return {"val_photos": len(va), "correct": correct, "no_face": no_face,
            "top1": round(correct / len(va), 4), "train_faces": report.faces_added}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=REPO.parent / "shared" / "faces")
    ap.add_argument("--sets", default="pins10,5celeb", help="photo sets to time enrollment on")
    ap.add_argument("--embedder", default="fast")
    ap.add_argument("--detector", default=None, help="facebank detector (default: facebank's default)")
    ap.add_argument("--workers", type=int, default=0, help="facebank worker processes (0 = one per core)")
    ap.add_argument("--fr-processes", default=f"1,{os.cpu_count() or 1}",
                    help="face_recognition process counts to time")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--big-mp", type=float, default=12.0, help="megapixels of the photos of set 'big'")
    ap.add_argument("--big-photos", type=int, default=16, help="photos in set 'big'")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    fr_procs = sorted({int(x) for x in args.fr_processes.split(",") if x})
    py = ensure_fr_venv()
    settings, embedder = facebank_settings(args)
    started = time.time()
    summary: dict = {"bench": "enroll", "cores": cores, "facebank_embedder": embedder,
                     "facebank_detector": settings.detector, "facebank_workers": settings.workers or cores,
                     "face_recognition": "HOG upsample 1, largest face, dlib ResNet (same model)", "sets": {}}
    big_tmp = tempfile.TemporaryDirectory(prefix="bench-enroll-big-")
    for name in [s for s in args.sets.split(",") if s]:
        folder = args.faces / name if name != "5celeb" else args.faces / "5celeb" / "train"
        procs = fr_procs
        if name == "big":
            folder = make_big_set(args.faces / "5celeb" / "train", Path(big_tmp.name), args.big_mp,
                                  args.big_photos)
            procs = [settings.workers or cores]
            summary["big_set"] = {"megapixels": args.big_mp, "photos": args.big_photos,
                                  "from": "5celeb/train, bicubic upscale, JPEG q90"}
        row: dict = {"facebank": enroll_speed(folder, settings)}
        print(f"[{name}] facebank {row['facebank']}", file=sys.stderr, flush=True)
        for n in procs:
            key = f"face_recognition_{n}proc"
            row[key] = fr_speed(py, folder, n)
            print(f"[{name}] {key} {row[key]}", file=sys.stderr, flush=True)
        fb_rate = row["facebank"]["photos_per_s"]
        row["ratio_vs_fr_1proc"] = round(fb_rate / row["face_recognition_1proc"]["photos_per_s"], 2) \
            if "face_recognition_1proc" in row else None
        same = f"face_recognition_{settings.workers or cores}proc"
        row["ratio_vs_fr_same_processes"] = \
            round(fb_rate / row[same]["photos_per_s"], 2) if same in row else None
        summary["sets"][name] = row
    big_tmp.cleanup()
    if not args.skip_accuracy:
        train, val = args.faces / "5celeb" / "train", args.faces / "5celeb" / "val"
        summary["top1_5celeb_val"] = {"facebank": fb_top1(settings, train, val),
                                      "face_recognition": fr_top1(py, train, val)}
        print(f"top-1 {summary['top1_5celeb_val']}", file=sys.stderr, flush=True)
    summary["load_avg_1m"] = round(os.getloadavg()[0], 2)
    summary["seconds"] = round(time.time() - started, 1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
