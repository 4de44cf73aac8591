"""The public API: ``FaceBank`` ties the pipeline, the gallery and identification together.

    from facebank import FaceBank
    fb = FaceBank("gallery.db")
    fb.enroll_folder("photos/")          # one sub-folder per person
    result = fb.identify("group.jpg")    # PhotoResult: faces with names (None = unknown)
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facebank import images
from facebank.decide import Decision, decision_for
from facebank.embed.points import OperatingPoints
from facebank.folders import FolderWalk
from facebank.gallery import open_gallery
from facebank.gallery.base import FaceRecord, Gallery, PhotoRecord, validate_name
from facebank.identify import cosine_from_l2
from facebank.pipeline import FacePipeline, PhotoBytes, PhotoFaces, choose_face, process_stream, with_cascade
from facebank.settings import Settings
from facebank.types import EnrollReport, IdentifiedFace, PersonInfo, PhotoResult, Verification

if TYPE_CHECKING:
    from facebank.gallery.ann import SearchIndex

log = logging.getLogger(__name__)

Progress = Callable[..., Iterable]


def _no_progress(it: Iterable, **_: object) -> Iterable:
    return it


class FaceBank:
    """A gallery of known people plus the models to find and name faces in photos."""

    def __init__(self, gallery: str | Path | Gallery | None = None, settings: Settings | None = None,
                 pipeline: FacePipeline | None = None, **overrides: object) -> None:
        s = settings or Settings()
        if overrides:
            s = s.model_copy(update=overrides)
        if gallery is not None and not isinstance(gallery, (str, Path)) and hasattr(gallery, "add_photos"):
            self.gallery: Gallery = gallery
        else:
            if gallery is not None:
                s = s.model_copy(update={"gallery": str(gallery)})
            self.gallery = open_gallery(s.gallery)
        if not {"embedder", "onnx_model"} & s.model_fields_set and pipeline is None:
            # no model named: the gallery's own, or for a new gallery the best installed one
            from facebank.embed.catalogue import default_embedder

            try:
                embedder, onnx_model = default_embedder(self.gallery.model_id)
            except Exception as exc:  # noqa: BLE001 - an unreadable data folder: the built-in model
                log.warning("installed models unreadable (%s); using the built-in model", exc)
                embedder, onnx_model = s.embedder, s.onnx_model
            if embedder != s.embedder:
                s = s.model_copy(update={"embedder": embedder, "onnx_model": onnx_model})
                log.info("using model %s (%s)", onnx_model or embedder, "the gallery's" if
                         self.gallery.model_id else "the best installed")
        self.settings = s
        self._pipeline: FacePipeline | None = pipeline
        self.classifier = None  # a trained classifier (facebank.learn) names faces instead of the gallery
        self._index: SearchIndex | None = None
        self._index_version: int | None = None
        self._decision: tuple[int, Decision] | None = None

    # -- parts ------------------------------------------------------------------------------------
    @property
    def pipeline(self) -> FacePipeline:
        """The models of this process, loaded on first use (or the one given to the constructor)."""
        if self._pipeline is None:
            self._pipeline = FacePipeline(self.settings)
        return self._pipeline

    @pipeline.setter
    def pipeline(self, value: FacePipeline) -> None:
        self._pipeline = value

    def index(self) -> SearchIndex:
        """The in-memory index, rebuilt from the gallery whenever the gallery changed."""
        version = self.gallery.version()
        if self._index is None or version != self._index_version:
            from facebank.gallery.ann import build_index

            self._index = build_index(self.gallery.embeddings())  # exact below 50k faces, else HNSW
            self._index_version = version
        return self._index

    def decision(self) -> Decision:
        """The decision rule (``settings.decision``) fitted on the gallery, with its operating point:
        ``settings.threshold`` when set, else estimated from the gallery for ``settings.target_far``;
        refitted whenever the gallery changed."""
        s = self.settings
        version = self.gallery.version()
        if self._decision is None or self._decision[0] != version:
            data = self.gallery.embeddings()
            self._decision = (version, decision_for(data.vectors, data.names, s.decision, s.target_far,
                                                    s.threshold, s.rule, points=self.points()))
        return self._decision[1]

    def points(self) -> OperatingPoints:
        """The operating points (distance thresholds) of this bank's model: the gallery's model when it
        holds embeddings, else the embedder's. ``NotCalibrated`` names the command that measures them."""
        from facebank.embed.points import points_for, points_key

        model_id = self.gallery.model_id or self._model_id()
        return points_for(points_key(model_id, self.settings.flip))

    def close(self) -> None:
        self.gallery.close()

    def __enter__(self) -> FaceBank:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- people -----------------------------------------------------------------------------------
    def people(self) -> list[PersonInfo]:
        return self.gallery.people()

    def remove_person(self, name: str, uploads_dir: str | Path | None = None) -> int:
        """Remove ``name`` with their photos and faces, and delete their photos uploaded through the
        REST API (kept in ``uploads_dir``, default ``<gallery>.photos``); photos enrolled from
        folders stay where they are. Returns the number of faces removed."""
        from facebank.gallery.uploads import default_uploads_dir, discard_uploads

        paths = [p["path"] for p in self.gallery.photos(name)]
        removed = self.gallery.remove_person(name)
        discard_uploads(paths, uploads_dir or default_uploads_dir(self.settings.gallery))
        return removed

    def rename_person(self, old: str, new: str) -> None:
        self.gallery.rename_person(old, new)

    # -- enrollment -------------------------------------------------------------------------------
    def enroll_folder(self, root: str | Path, person: str | None = None,
                      progress: Progress = _no_progress) -> EnrollReport:
        """Enroll a folder with one sub-folder per person (or, with ``person``, photos of one person).

        Incremental and resumable: a photo already in the gallery for this model (same sha256) is
        skipped; photos are committed in small transactions, so an interrupted run loses at most
        the photos in flight and a rerun finishes the job.
        """
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(f"{root} does not exist")
        walk = FolderWalk(root)
        return self.enroll_items(walk.labelled(person), source=str(root), progress=progress,
                                 total=walk.count(), walk=walk)

    def enroll_photos(self, person: str, photos: Iterable[str | Path],
                      progress: Progress = _no_progress) -> EnrollReport:
        person = validate_name(person)
        return self.enroll_items(((person, Path(p)) for p in photos), source=f"photos of {person}",
                                 progress=progress)

    def enroll_items(self, items: Iterable[tuple[str, Path]], source: str,
                     progress: Progress = _no_progress, total: int | None = None,
                     walk: FolderWalk | None = None,
                     run_type: type[EnrollRun] | None = None) -> EnrollReport:
        """Enroll (person, photo path) pairs in worker processes; see ``enroll_folder``. The entries
        ``walk`` (the walk ``items`` come from) skips are reported as the run's problems.
        ``run_type``: an ``EnrollRun`` subclass that turns results into records (library scans)."""
        labels: dict[str, tuple[str, str, int]] = {}  # path -> (person, sha256, size)
        bar: object = None

        def not_processed() -> None:  # the progress bar counts only the photos there is work for
            total_now = getattr(bar, "total", None)
            if total_now:
                bar.total = total_now - 1  # type: ignore[attr-defined]

        within = walk.confine_to if walk is not None else None
        with (run_type or EnrollRun)(self, source) as run:
            if walk is not None:
                walk.on_skip = run.problem

            def todo() -> Iterator[PhotoBytes]:
                # each photo is read and hashed ONCE, here: its bytes and digest go to the worker
                for person, path in items:
                    name = run.saw(person, str(path))
                    if name is None:
                        not_processed()
                        continue
                    try:
                        data = images.read_bytes(path, within=within)
                    except images.ImageError as exc:
                        run.problem(str(path), str(exc))
                        not_processed()
                        continue
                    digest = hashlib.sha256(data).hexdigest()
                    if not run.triage(name, str(path), digest, len(data)):
                        not_processed()
                        continue
                    labels[str(path)] = (name, digest, len(data))
                    yield PhotoBytes(str(path), data, digest)

            settings = with_cascade(self.settings)  # MMOD looks again where MTCNN finds nothing
            pipe = self._pipeline if self._pipeline is None or self._pipeline.settings == settings else None
            stream = process_stream(todo(), settings, pipe)
            bar = progress(stream, total=total, desc=run.label, unit="photo")
            for result in bar:
                person, digest, size = labels.pop(result.path)
                run.add(person, digest, size, result)
        assert run.report is not None  # set when the run's `with` block ends
        return run.report

    def _photo_record(self, person: str, digest: str, size: int, result: PhotoFaces,
                      problems: list[tuple[str, str]]) -> tuple[PhotoRecord, list[FaceRecord]] | None:
        def record(status: str, reason: str | None, faces: list[FaceRecord]):
            return (PhotoRecord(person, result.path, digest, size, result.width, result.height, status,
                                reason), faces)

        if result.error is not None:
            problems.append((result.path, result.error))
            if not digest:  # unreadable: nothing to remember it by
                return None
            return record("error", result.error, [])
        faces = list(result.faces)
        if not faces:
            reason = "no face found"
            problems.append((result.path, reason))
            return record("no_face", reason, [])
        chosen = choose_face(faces, result.width, result.height, self.settings.multi_face)
        if chosen is None:
            reason = f"{len(faces)} faces found; policy 'skip' keeps none"
            problems.append((result.path, reason))
            return record("multi_face", reason, [])
        kept: str | None = None
        if len(faces) > 1:
            kept = f"{len(faces)} faces found; kept the {self.settings.multi_face} one"
        return record("ok", kept, [FaceRecord.from_face(chosen)])

    def _model_id(self) -> str:
        if self._pipeline is not None:
            return self._pipeline.model_id
        # the model id without loading the models in this process, when workers will do the work
        from facebank.embed import create

        if self.settings.embedder in ("dlib", "fast"):
            from facebank.embed.dlib import DLIB_MODEL_ID

            return DLIB_MODEL_ID
        return create(self.settings.embedder, model=self.settings.onnx_model).model_id

    # -- identification ---------------------------------------------------------------------------
    def identify(self, source: str | Path | bytes | np.ndarray,
                 threshold: float | None = None) -> PhotoResult:
        """Every face of one photo with a name (None = unknown). Bad photos give ``error``."""
        if isinstance(source, np.ndarray):
            faces = PhotoFaces("<array>", tuple(self.pipeline.faces(_as_rgb(source))),
                               width=source.shape[1], height=source.shape[0])
        else:
            faces = self.pipeline.photo(source)
        return self.name_faces(faces, threshold)

    def identify_many(self, paths: Iterable[str | Path], threshold: float | None = None,
                      progress: Progress = _no_progress, total: int | None = None) -> Iterator[PhotoResult]:
        """Identify a stream of photos (in worker processes on multi-core machines), in order."""
        self._check_gallery_model()
        stream = process_stream(paths, self.settings, self._pipeline)
        for faces in progress(stream, total=total, desc="identify", unit="photo"):
            yield self.name_faces(faces, threshold)

    def name_faces(self, photo: PhotoFaces, threshold: float | None = None) -> PhotoResult:
        if self.classifier is not None:
            from facebank.learn.models import name_with_classifier

            return name_with_classifier(self, self.classifier, photo, threshold)
        if photo.error is not None:
            return PhotoResult(photo.path, (), photo.error, photo.width, photo.height)
        faces = list(photo.faces)
        if not faces:
            return PhotoResult(photo.path, (), None, photo.width, photo.height)
        self._check_gallery_model(faces[0].model_id)
        dist = self.index().person_distances(np.stack([f.embedding for f in faces]))
        matches = self.decision().name(dist, threshold)
        named = tuple(IdentifiedFace(f, m) for f, m in zip(faces, matches, strict=True))
        return PhotoResult(photo.path, named, None, photo.width, photo.height)

    def _check_gallery_model(self, model_id: str | None = None) -> None:
        model_id = model_id or self._model_id()
        stored = self.gallery.model_id
        if stored is not None and stored != model_id:
            from facebank.gallery.base import ModelMismatch

            raise ModelMismatch(f"the gallery holds {stored!r} embeddings but the embedder is {model_id!r}: "
                                f"use the gallery's model (leave out --embedder/--onnx-model to use it when "
                                f"it is installed; 'facebank models list'), another gallery, or switch the "
                                f"gallery to the new model: 'facebank reembed -g GALLERY --onnx-model NEW'")

    # -- verification -----------------------------------------------------------------------------
    def verify(self, a: str | Path | bytes, b: str | Path | bytes,
               threshold: float | None = None) -> Verification:
        """Are the main faces of two photos the same person? Raises ValueError without a face."""
        thr = threshold if threshold is not None else self.settings.verify_threshold
        if thr is None:
            thr = self.points().verify_l2
        va, vb = (self.main_face(x).embedding for x in (a, b))
        d = float(np.linalg.norm(va - vb))
        return Verification(same=d <= thr, distance=d, score=cosine_from_l2(d), threshold=thr)

    def main_face(self, source: str | Path | bytes):
        photo = self.pipeline.photo(source)
        if photo.error:
            raise ValueError(f"{photo.path}: {photo.error}")
        face = choose_face(list(photo.faces), photo.width, photo.height, "largest") if photo.faces else None
        if face is None:
            raise ValueError(f"{photo.path}: no face found")
        return face


class EnrollRun:
    """One enrollment run: counts, per-file problems, photos written in small all-or-nothing
    batches, the run's record in the gallery and the final ``EnrollReport``.

    Used as a context manager by every enrollment engine (local worker processes, Ray): on a clean
    exit the last batch is written and the run is 'finished'; on an error or Ctrl-C what was
    committed stays and the run is 'interrupted'.
    """

    BATCH_PHOTOS = 16
    label = "enroll"  # what the progress bar calls the run
    BATCH_SECONDS = 2.0

    def __init__(self, bank: FaceBank, source: str) -> None:
        self.bank = bank
        self.gallery = bank.gallery
        self.model_id = bank._model_id()
        self.source = source
        self.run_id = self.gallery.start_run(source, self.model_id, bank.settings.pipeline_key())
        self.counts = {"photos_seen": 0, "photos_enrolled": 0, "faces_added": 0, "skipped": 0,
                       "processed": 0}
        self.problems: list[tuple[str, str]] = []
        self.duplicates: list[tuple[str, str]] = []
        self.people: set[str] = set()  # people with a usable photo (enrolled now or before)
        self._first: dict[str, tuple[str, str]] = {}  # sha256 -> (person, path) of this run's photos
        self._names: dict[str, str] | None = None  # name_key -> the person's name
        self._merged: dict[str, str] = {}  # a name given -> the person it was enrolled as
        self.report: EnrollReport | None = None
        self._pending: list[tuple[PhotoRecord, list[FaceRecord]]] = []
        self._last_flush = time.monotonic()
        self._start = time.perf_counter()

    def saw(self, person: str, path: str) -> str | None:
        """Count a photo; its person's validated name, or None (a problem is recorded)."""
        self.counts["photos_seen"] += 1
        try:
            name = validate_name(person)
        except Exception as exc:
            self.problem(path, f"bad person name: {exc}")
            return None
        return self._same_person(name)

    def _same_person(self, name: str) -> str:
        """Names that differ only by case are one person: the first spelling (in the gallery, else
        in this run) is kept, and the merge is reported."""
        from facebank.gallery.base import name_key

        if self._names is None:
            self._names = {name_key(p.name): p.name for p in self.gallery.people()}
        known = self._names.setdefault(name_key(name), name)
        if known != name:
            self._merged.setdefault(name, known)
        return known

    def triage(self, person: str, path: str, digest: str, size: int) -> bool:
        """Does this photo need processing? No when this run already had it (a copy, or the same
        photo labelled as two people) or the gallery has it (counted as known; reported again when
        it was a problem; reported when it is someone else's)."""
        if not size:
            return True  # an empty file: processing gives its error
        first = self._first.get(digest)
        if first is not None:
            if first[0] != person:
                self.problem(path, f"the same photo as {first[1]}, labelled as {first[0]!r} there: one "
                                   f"photo labelled as two people; not added to {person!r}")
            else:
                self.duplicates.append((path, first[1]))
            return False
        self._first[digest] = (person, path)
        stored = self.gallery.stored_photo(digest, self.model_id)
        if stored is None:
            return True
        if stored.person is None:
            self.problem(path, f"already in the gallery as a scanned photo of no one yet (from "
                               f"{stored.path}); not added to {person!r}: name its faces instead")
        elif stored.person != person:
            self.problem(path, f"the same photo is labelled as {stored.person!r} in the gallery "
                               f"(enrolled from {stored.path}); not added to {person!r}")
        elif stored.status != "ok":
            self.problem(path, f"{stored.reason or stored.status} (found when it was first enrolled)")
        else:
            self.people.add(person)
            self.skip()
        return False

    def skip(self) -> None:
        self.counts["skipped"] += 1

    def problem(self, path: str, reason: str) -> None:
        self.problems.append((path, reason))

    def record(self, person: str, digest: str, size: int,
               result: PhotoFaces) -> tuple[PhotoRecord, list[FaceRecord]] | None:
        """The photo's record and faces to store (None: nothing to store); problems noted."""
        return self.bank._photo_record(person, digest, size, result, self.problems)

    def add(self, person: str, digest: str, size: int, result: PhotoFaces) -> None:
        self.counts["processed"] += 1
        record = self.record(person, digest, size, result)
        if record is not None:
            self._pending.append(record)
            if record[0].status == "ok":
                self.people.add(person)
        due = time.monotonic() - self._last_flush > self.BATCH_SECONDS
        if due or len(self._pending) >= self.BATCH_PHOTOS:
            self.flush()

    def flush(self) -> None:
        """Write the pending photos. A photo counts as enrolled only when THIS run stored it: the
        gallery ignores a photo another process stored first (same sha256); one stored by another
        run meanwhile counts as already known."""
        if self._pending:
            faces = self.gallery.add_photos(self._pending, self.model_id, self.run_id)
            self.counts["faces_added"] += faces
            ok = [p for p, _ in self._pending if p.status == "ok"]
            if faces < sum(len(f) for _, f in self._pending):
                # another process stored some of these photos since they were triaged (two enrolls of
                # one folder at once): those are known, not enrolled by this run, so the counts of the
                # two runs add up
                theirs = [p for p in ok if self._stored_by_another_run(p.sha256)]
                self.counts["skipped"] += len(theirs)
                self.counts["photos_enrolled"] += len(ok) - len(theirs)
            else:
                self.counts["photos_enrolled"] += len(ok)
            self._pending = []
        self._last_flush = time.monotonic()

    def _stored_by_another_run(self, digest: str) -> bool:
        stored = self.gallery.stored_photo(digest, self.model_id)
        return stored is not None and getattr(stored, "run_id", self.run_id) != self.run_id

    def __enter__(self) -> EnrollRun:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        status = "interrupted"
        try:
            if exc_type is None:
                self.flush()
                status = "finished"
            elif issubclass(exc_type, KeyboardInterrupt):
                try:  # photos already processed are kept: the rerun has less to do
                    self.flush()
                except Exception:
                    log.exception("could not save the last photos of run %d", self.run_id)
        finally:
            try:
                self.gallery.finish_run(self.run_id, status, self.counts)
            except Exception:  # never hide the original error
                log.exception("could not record the end of run %d", self.run_id)
        c = self.counts
        self.report = EnrollReport(
            run_id=self.run_id, people=len(self.people), photos_seen=c["photos_seen"],
            photos_enrolled=c["photos_enrolled"], photos_skipped_known=c["skipped"],
            faces_added=c["faces_added"], problems=tuple(self.problems),
            seconds=time.perf_counter() - self._start, photos_processed=c["processed"],
            duplicates=tuple(self.duplicates), interrupted=status == "interrupted",
            merged_names=tuple(self._merged.items()),
        )
        log.info("%s: enrolled %d photos (%d faces) of %d people from %s; %d already known, %d copies, "
                 "%d problems", status, c["photos_enrolled"], c["faces_added"], len(self.people),
                 self.source, c["skipped"], len(self.duplicates), len(self.problems))
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            raise EnrollInterrupted(self.report) from exc


class EnrollInterrupted(KeyboardInterrupt):
    """Ctrl-C during an enrollment: ``report`` says what was saved (a rerun finishes the job)."""

    def __init__(self, report: EnrollReport) -> None:
        super().__init__(f"enrollment interrupted after {report.photos_enrolled} photos were enrolled")
        self.report = report


def _as_rgb(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.shape[-1] == 4:
        arr = arr[..., :3]
    if arr.dtype != np.uint8:
        raise ValueError("arrays must be uint8 RGB (H, W, 3)")
    return np.ascontiguousarray(arr)
