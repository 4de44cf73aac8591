"""Enrollment past one machine: the same enrollment as ``FaceBank.enroll_folder``, as a Ray Data job.

    from facebank.scale.ray_enroll import enroll_with_ray
    report = enroll_with_ray("/shared/photos", "postgresql://fb@db/faces", address="ray://head:10001")

How it runs:

1. the driver (this process) lists FOLDER/<person>/<photo> exactly as ``enroll_folder`` does
   (same person names, same files; only paths travel, never photos) and starts a run in the gallery;
2. a Ray Data ``map_batches`` stage with a pool of actors (one CPU each; each loads the
   ``FacePipeline`` once) reads each photo, hashes it, skips it when the gallery already holds it
   (same sha256, same model), else detects, aligns and embeds its faces;
3. the driver turns each result into the same records as ``FaceBank.enroll_items`` (it calls
   ``FaceBank._photo_record``) and writes them to the gallery in small transactions (16 photos or
   2 s), so an interrupted job loses at most the photos in flight and a rerun finishes the job.

On a multi-node cluster:

* start the cluster: ``ray start --head --port=6379`` on one machine, ``ray start
  --address=HEAD:6379`` on the others (each with facebank installed, same version); then run the
  driver on the head with ``address="auto"``, or anywhere with ``address="ray://HEAD:10001"``
  (Ray Client), or set ``RAY_ADDRESS`` and leave ``address`` out;
* the photos must be readable under the same path on every node: a shared file system (NFS,
  CephFS, a cloud file share mounted at the same place), or object storage given as a URI
  (``s3://bucket/photos``, ``gs://...``: read through pyarrow's file systems, credentials from the
  usual environment of each node);
* the gallery must be reachable from the driver and from every node (the actors look up known
  photos): use PostgreSQL, ``postgresql://user:password@db-host/dbname`` (pgvector installed);
  a SQLite file works only for a cluster on one machine.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from facebank.settings import Settings
from facebank.types import EnrollReport

log = logging.getLogger(__name__)

Progress = Callable[..., Iterable]


def _no_progress(it: Iterable, **_: object) -> Iterable:
    return it


def _is_uri(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def list_photos(folder: str | Path, person: str | None = None) -> Iterator[tuple[str, str]]:
    """(person, path) of every photo, as ``FaceBank.enroll_folder`` would take them.

    Local or shared folders use facebank's own listing; ``s3://``/``gs://``/... URIs are listed
    with pyarrow's file systems (first folder level below the URI = person)."""
    location = str(folder)
    if not _is_uri(location):
        from facebank.folders import labelled_photos

        root = Path(location.removeprefix("file://")).absolute()  # the actors' working folder may differ
        if not root.exists():
            raise FileNotFoundError(f"{root} does not exist")
        for name, path in labelled_photos(root, person, on_skip=_warn_skipped):
            yield name, str(path)
        return
    import pyarrow.fs as pafs

    from facebank.images import is_image_path

    fs, base = pafs.FileSystem.from_uri(location)
    scheme = location.split("://", 1)[0]
    infos = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    for info in sorted((i for i in infos if i.type == pafs.FileType.File), key=lambda i: i.path):
        rel = Path(info.path[len(base):].lstrip("/"))
        if any(part.startswith(".") for part in rel.parts) or not is_image_path(rel):
            continue
        if person is not None:
            yield person, f"{scheme}://{info.path}"
        elif len(rel.parts) >= 2:
            yield rel.parts[0], f"{scheme}://{info.path}"


def _warn_skipped(path: str, reason: str) -> None:
    log.warning("skipped %s: %s", path, reason)


def _read(path: str) -> bytes:
    from facebank import images

    if _is_uri(path):
        import pyarrow.fs as pafs

        fs, inner = pafs.FileSystem.from_uri(path)
        with fs.open_input_stream(inner) as stream:
            return stream.read()
    return images.read_bytes(path.removeprefix("file://"))


class PhotoWorker:
    """A Ray actor's work: load the pipeline once, then photos -> pickled ``PhotoFaces``.

    Each output row: person, path, sha256 ('' when unreadable), size, known (already in the
    gallery: not processed), error (could not read), result (pickled PhotoFaces or b'')."""

    def __init__(self, settings_json: str, gallery: str | None, model_id: str) -> None:
        import os

        os.environ.setdefault("OMP_NUM_THREADS", "1")
        from facebank.pipeline import FacePipeline

        self.settings = Settings.model_validate_json(settings_json)
        self.pipeline = FacePipeline(self.settings)
        self.model_id = model_id
        self.gallery = None
        if gallery:
            try:
                from facebank.gallery import open_gallery

                self.gallery = open_gallery(gallery)
            except Exception as exc:  # still correct without: the driver's insert skips known photos
                log.warning("worker cannot open the gallery %s (%s): known photos are processed again",
                            gallery, exc)

    def __call__(self, batch: dict) -> dict:
        keys = ("person", "path", "sha256", "size", "known", "error", "result")
        out: dict[str, list] = {k: [] for k in keys}
        for person, path in zip(batch["person"], batch["path"], strict=True):
            person, path = str(person), str(path)
            digest, size, known, error, result = "", 0, False, "", b""
            try:
                data = _read(path)
            except Exception as exc:
                error = str(exc)
            else:
                digest, size = hashlib.sha256(data).hexdigest(), len(data)
                known = bool(data) and self.gallery is not None \
                    and self.gallery.has_photo(digest, self.model_id)
                if not known:
                    result = pickle.dumps(self.pipeline.photo(data, name=path))
            for key, value in zip(out, (person, path, digest, size, known, error, result), strict=True):
                out[key].append(value)
        return out


def enroll_with_ray(folder: str | Path, gallery_url: str, settings: Settings | None = None,
                    address: str | None = None, *, person: str | None = None, actors: int | None = None,
                    batch_size: int = 4, progress: Progress = _no_progress,
                    run_type: type | None = None) -> EnrollReport:
    """Enroll FOLDER (one sub-folder per person, or all of ``person``) into ``gallery_url`` with Ray.
    ``run_type``: the ``EnrollRun`` subclass that makes the records (``facebank.cluster.scan``).

    ``address``: a Ray cluster (``"auto"``, ``"ray://head:10001"``); None = the cluster this
    process is already connected to, else ``RAY_ADDRESS``, else a new local one (shut down after).
    ``actors``: pipeline actors (one CPU each); default ``settings.workers`` or else every CPU of
    the cluster. Returns the same ``EnrollReport`` as ``FaceBank.enroll_folder``.
    """
    import ray

    from facebank.api import FaceBank

    gallery_url = str(gallery_url)
    if "://" not in gallery_url:  # a SQLite file: the same absolute path for the actors
        gallery_url = str(Path(gallery_url).absolute())
    s = (settings or Settings()).model_copy(update={"gallery": gallery_url})
    started_here = False
    if not ray.is_initialized():
        import os

        if address is None and not os.environ.get("RAY_ADDRESS"):
            ray.init(include_dashboard=False, log_to_driver=False)  # a local cluster of this machine
        else:
            ray.init(address=address, log_to_driver=False)
        started_here = True
    try:
        with FaceBank(settings=s) as bank:
            return _enroll(bank, folder, person, actors, batch_size, progress, run_type)
    finally:
        if started_here:
            ray.shutdown()


def _enroll(bank, folder: str | Path, person: str | None, actors: int | None, batch_size: int,
            progress: Progress, run_type: type | None = None) -> EnrollReport:
    import ray
    import ray.data

    from facebank.api import EnrollRun

    s = bank.settings
    rows: list[dict[str, str]] = []
    with (run_type or EnrollRun)(bank, str(folder)) as run:
        for name, path in list_photos(folder, person):
            valid = run.saw(name, path)
            if valid is not None:
                rows.append({"person": valid, "path": path})
        if rows:
            n = actors or s.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
            n = max(1, min(n, len(rows)))
            blocks = max(1, min(len(rows) // batch_size, 64 * n))
            items = ray.data.from_items(rows, override_num_blocks=blocks)
            ds = items.map_batches(
                PhotoWorker,
                fn_constructor_kwargs={"settings_json": s.model_dump_json(), "gallery": s.gallery,
                                       "model_id": run.model_id},
                batch_size=batch_size, batch_format="numpy", num_cpus=1,
                compute=ray.data.ActorPoolStrategy(min_size=1, max_size=n),
            )
            for row in progress(ds.iter_rows(), total=len(rows), desc="enroll", unit="photo"):
                if row["error"]:
                    run.problem(row["path"], row["error"])
                elif not run.triage(row["person"], row["path"], row["sha256"], int(row["size"])):
                    continue  # known, a copy, or labelled as someone else: counted or reported
                elif row["known"]:  # known to the actor, gone from the gallery since: next run
                    run.skip()
                else:
                    run.add(row["person"], row["sha256"], int(row["size"]), pickle.loads(row["result"]))
    return run.report
