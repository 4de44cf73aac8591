"""Switch a gallery to another embedding model: every stored face embedded again with the new model.

No new detection: each face is cut again from its photo at its stored box and landmarks (faces
stored without landmarks get them from dlib's 5-point predictor on their box, as when they were
enrolled). Every face, cluster, person and id stays; only embeddings and the gallery's model id
change, in one transaction at the end.

Resumable: new embeddings are staged in ``GALLERY.reembed.sqlite`` beside the gallery as they are
made; a rerun (after Ctrl-C, or after missing photos are back) embeds only the faces not staged
yet. A photo that is gone, unreadable or changed (another sha256) is a listed problem, never a
deletion: the gallery is then left on its old model, and the staging file waits for a rerun.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebank import images
from facebank.settings import Settings
from facebank.types import Box, Detection, Landmarks

log = logging.getLogger(__name__)

Progress = Callable[..., Iterable]


def _no_progress(it: Iterable, **_: object) -> Iterable:
    return it


@dataclass(frozen=True)
class ReembedReport:
    """``faces`` stored, ``embedded`` this run, ``staged`` before it, ``problems`` (path, reason);
    ``switched``: the gallery now holds ``model_id`` embeddings (False while there are problems)."""

    model_id: str
    old_model_id: str | None
    faces: int
    embedded: int
    staged: int
    problems: tuple[tuple[str, str], ...]
    switched: bool
    seconds: float


class _Staging:
    def __init__(self, path: Path, model_id: str) -> None:
        self.db = sqlite3.connect(str(path), timeout=30.0)
        self.db.execute("CREATE TABLE IF NOT EXISTS staged(face_id INTEGER PRIMARY KEY,"
                        " model_id TEXT NOT NULL, embedding BLOB NOT NULL)")
        self.db.execute("DELETE FROM staged WHERE model_id != ?", (model_id,))  # another target: start over
        self.db.commit()
        self.model_id = model_id

    def done(self) -> dict[int, np.ndarray]:
        return {int(f): np.frombuffer(b, dtype="<f4") for f, b in
                self.db.execute("SELECT face_id, embedding FROM staged")}

    def put(self, items: list[tuple[int, np.ndarray]]) -> None:
        rows = [(int(f), self.model_id, np.ascontiguousarray(v, "<f4").tobytes()) for f, v in items]
        self.db.executemany("INSERT OR REPLACE INTO staged VALUES (?,?,?)", rows)
        self.db.commit()

    def close(self) -> None:
        self.db.close()


def staging_path(gallery_path: str | Path) -> Path:
    p = Path(gallery_path)
    return p.with_name(p.name + ".reembed.sqlite")


def _detection(face: dict) -> Detection:
    lm = face["landmarks"]
    scheme = "mtcnn5" if face["detector"] == "mtcnn" else "dlib5"
    landmarks = Landmarks(tuple((float(x), float(y)) for x, y in lm), scheme) if lm else None
    return Detection(Box(*map(float, face["box"])), float(face["detector_score"]), face["detector"],
                     landmarks, bool(face["fallback"]))


def reembed(gallery, settings: Settings, progress: Progress = _no_progress) -> ReembedReport:
    """Re-embed every face of a SQLite ``gallery`` with ``settings``' embedder (see the module doc)."""
    from facebank.gallery.sqlite import SqliteGallery
    from facebank.pipeline import FacePipeline

    if not isinstance(gallery, SqliteGallery):
        raise ValueError("re-embedding works on SQLite galleries")
    t0 = time.perf_counter()
    pipe = FacePipeline(settings)
    new_id, old_id = pipe.model_id, gallery.model_id
    faces = gallery.stored_faces()
    if old_id == new_id:
        return ReembedReport(new_id, old_id, len(faces), 0, 0, (), True, 0.0)
    stage = _Staging(staging_path(gallery.path), new_id)
    try:
        done = stage.done()
        staged = len(done)
        by_photo: dict[tuple[str, str], list[dict]] = {}
        for f in faces:
            if f["face_id"] not in done:
                by_photo.setdefault((f["path"], f["sha256"]), []).append(f)
        problems: list[tuple[str, str]] = []
        embedded = 0
        for (path, sha), group in progress(list(by_photo.items()), desc="reembed", unit="photo"):
            try:
                img = images.load_image(path, max_pixels=settings.max_pixels)
            except (images.ImageError, OSError) as exc:
                problems.append((path, f"cannot re-embed its {len(group)} face(s): {exc}"))
                continue
            if sha and img.sha256 != sha:
                problems.append((path, "the photo changed on disk since it was stored (another sha256)"))
                continue
            dets = [_detection(f) for f in group]
            chips, _ = pipe.chips(img.rgb, dets)
            vecs = pipe.embedder.embed(chips)
            stage.put([(f["face_id"], v) for f, v in zip(group, vecs, strict=True)])
            embedded += len(group)
        switched = False
        if not problems:
            vectors = stage.done()
            gallery.replace_embeddings({f["face_id"]: vectors[f["face_id"]] for f in faces}, new_id)
            switched = True
    finally:
        stage.close()
    if switched:
        staging_path(gallery.path).unlink(missing_ok=True)
    return ReembedReport(new_id, old_id, len(faces), embedded, staged, tuple(problems), switched,
                         time.perf_counter() - t0)
