"""``facebank scan LIBRARY``: every face of every photo under a folder, unlabelled, into the gallery.

The same run as enrollment (``FaceBank.enroll_items`` with its worker processes, small
all-or-nothing batches, run record and per-file problems), with two differences: a photo has no
person, and every face of it is kept (unassigned, for ``facebank cluster``). A rerun skips the
photos the gallery already holds (same sha256, same model), so an interrupted scan is finished by
running it again and a grown library adds only its new photos.
"""

from __future__ import annotations

import logging
from pathlib import Path

from facebank.api import EnrollRun, FaceBank, Progress
from facebank.folders import FolderWalk
from facebank.gallery.base import FaceRecord, PhotoRecord
from facebank.pipeline import PhotoFaces
from facebank.progress import no_progress as _no_progress
from facebank.settings import Settings
from facebank.types import EnrollReport

log = logging.getLogger(__name__)

UNLABELLED = ""  # the "person" a library photo travels with through the enrollment run


class ScanRun(EnrollRun):
    """An enrollment run whose photos belong to nobody and keep all their faces."""

    label = "scan"

    def saw(self, person: str | None, path: str) -> str | None:
        self.counts["photos_seen"] += 1
        return UNLABELLED

    def triage(self, person: str, path: str, digest: str, size: int) -> bool:
        """Process the photo unless this run had it already (a copy) or the gallery has it
        (scanned or enrolled: counted as known, its problem reported again)."""
        if not size:
            return True  # an empty file: processing gives its error
        first = self._first.get(digest)  # first: whether that copy was written yet depends on timing
        if first is not None:
            self.duplicates.append((path, first[1]))
            return False
        self._first[digest] = (person, path)
        stored = self.gallery.stored_photo(digest, self.model_id)
        if stored is not None:
            # known, whatever it gave the first time (no face included): a rerun has nothing to say
            # about it; 'facebank cluster' and the gallery's problems list keep what was found
            self.skip()
            return False
        return True

    def record(self, person: str, digest: str, size: int,
               result: PhotoFaces) -> tuple[PhotoRecord, list[FaceRecord]] | None:
        def rec(status: str, reason: str | None, faces: list[FaceRecord]):
            return (PhotoRecord(None, result.path, digest, size, result.width, result.height, status, reason),
                    faces)

        if result.error is not None:
            self.problems.append((result.path, result.error))
            return rec("error", result.error, []) if digest else None
        if not result.faces:
            self.problems.append((result.path, "no face found"))
            return rec("no_face", "no face found", [])
        return rec("ok", None, [FaceRecord.from_face(f) for f in result.faces])


def scan_library(bank: FaceBank, root: str | Path, progress: Progress = _no_progress) -> EnrollReport:
    """Scan ``root`` (any nesting; a single photo works too) into ``bank``'s gallery.

    Returns the run's ``EnrollReport``: ``photos_enrolled`` = photos with at least one face stored,
    ``faces_added`` = faces stored (unassigned), ``photos_skipped_known`` = already in the gallery,
    ``problems`` = (path, reason) of every photo that gave no face or could not be read, and of
    every folder entry the walk skipped (loops, unreadable folders, devices)."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist")
    walk = FolderWalk(root)
    items = ((UNLABELLED, path) for path in walk.photos())
    report = bank.enroll_items(items, source=f"scan {root}", progress=progress, total=walk.count(),
                               walk=walk, run_type=ScanRun)
    from facebank.photo_dates import fill_photo_dates

    fill_photo_dates(bank.gallery)  # when each photo was taken (EXIF header, else file time): timelines
    return report


def scan_with_ray(root: str | Path, gallery_url: str, settings: Settings | None = None,
                  address: str | None = None, *, actors: int | None = None,
                  progress: Progress = _no_progress) -> EnrollReport:
    """``scan_library`` as a Ray Data job: the same path as ``enroll --engine ray``
    (``facebank.scale.ray_enroll``), every photo under ``root`` (a folder every node sees, or an
    ``s3://``/``gs://`` URI) into ``gallery_url`` (PostgreSQL for a cluster of machines)."""
    from facebank.pipeline import with_cascade
    from facebank.scale.ray_enroll import enroll_with_ray

    settings = with_cascade(settings or Settings())  # MMOD looks again where MTCNN finds nothing
    return enroll_with_ray(root, gallery_url, settings, address, person=UNLABELLED, actors=actors,
                           progress=progress, run_type=ScanRun)
