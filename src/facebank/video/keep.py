"""Unknown people of a video into the gallery as unassigned faces (``--keep-unknown``).

Each track that no enrolled person names (and that was seen in at least ``min_frames`` sampled
frames, so single false detections stay out) becomes one scanned "photo" without a person: a JPEG
of its largest face (written content-addressed into ``folder``, default ``<gallery>.photos/``, the
folder the server keeps uploads in, so the web page can show it) whose one face carries the
track's mean embedding. They are then clustered and named like the faces of a library scan
(``facebank.cluster``). A face already kept (same JPEG bytes) is not added twice.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from facebank.api import FaceBank
from facebank.gallery.base import FaceRecord, PhotoRecord
from facebank.gallery.uploads import default_uploads_dir
from facebank.video.analyze import VideoResult
from facebank.video.track import Track

log = logging.getLogger(__name__)

MIN_FRAMES = 2


def keep_unknown(bank: FaceBank, result: VideoResult, folder: str | Path | None = None,
                 min_frames: int = MIN_FRAMES) -> int:
    """Store the unknown tracks of ``result`` as unassigned faces; returns how many faces were added."""
    folder = Path(folder) if folder is not None else default_uploads_dir(bank.settings.gallery)
    items = []
    for tr in result.tracks:
        if tr.name is not None or tr.frames < min_frames or tr.thumbnail is None or tr.thumbnail_box is None:
            continue
        data = _jpeg(tr.thumbnail)
        digest = hashlib.sha256(data).hexdigest()
        path = _save(folder, digest, data)
        h, w = tr.thumbnail.shape[:2]
        b = tr.thumbnail_box
        note = f"video {result.info.source} track {tr.id} at {tr.start_s:.1f}-{tr.end_s:.1f} s"
        items.append((PhotoRecord(None, str(path), digest, len(data), w, h, "ok", note),
                      [FaceRecord(box=(b.x1, b.y1, b.x2, b.y2), embedding=mean_embedding(tr),
                                  detector=tr.detector or "video", detector_score=tr.detector_score)]))
    if not items:
        return 0
    added = bank.gallery.add_photos(items, bank.pipeline.model_id)
    log.info("kept %d unknown face(s) of %s as unassigned faces", added, result.info.source)
    return added


def mean_embedding(track: Track) -> np.ndarray:
    """The track's embeddings averaged and re-normalised to unit length (float32)."""
    m = track.embeddings.astype(np.float64).mean(axis=0)
    return (m / max(float(np.linalg.norm(m)), 1e-12)).astype(np.float32)


def _jpeg(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=92)
    return out.getvalue()


def _save(folder: Path, digest: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / f"{digest}.jpg").resolve()
    if path.is_file() and path.stat().st_size == len(data):
        return path
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".video-face-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the photo is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
