"""The embedded gallery: one SQLite file in WAL mode, numbered migrations, one model per gallery.

Every write is one transaction, so a crash (even kill -9) leaves the file as it was after the last
committed photo; a committed transaction is on the disk (synchronous=FULL) before it is
acknowledged; many readers may use the file while one writer writes. Only SQLite opens the file
(see ``check_gallery_file``), so processes sharing it never lose each other's locks.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from facebank import dbfiles
from facebank.gallery.base import (
    Embeddings,
    FaceInfo,
    FaceRecord,
    FaceSet,
    GalleryError,
    GalleryStorageError,
    ModelMismatch,
    NotFound,
    PersonExists,
    PersonNotFound,
    PhotoRecord,
    StoredPhoto,
    name_key,
    taken_message,
    validate_name,
)
from facebank.gallery.sqlite_corrections import NOT_FACE_OVERLAP, CorrectionsMixin, box_overlap
from facebank.types import PersonInfo

log = logging.getLogger(__name__)

PHOTO_KEYS = ("path", "sha256", "size_bytes", "width", "height", "status", "reason", "faces")
_PHOTO_COLUMNS = ("SELECT ph.path, ph.sha256, ph.size_bytes, ph.width, ph.height, ph.status, ph.reason,"
                  " (SELECT count(*) FROM faces f WHERE f.photo_id=ph.id) FROM photos ph")


def migrations() -> list[tuple[int, str]]:
    """Numbered migrations shipped in facebank/gallery/migrations/NNNN_name.sql, in order."""
    folder = resources.files("facebank.gallery") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
    return sorted(found)


SCHEMA_VERSION = max(n for n, _ in migrations())


def _inserted_id(cur: sqlite3.Cursor) -> int:
    """The row id an INSERT just gave (always set after a successful INSERT)."""
    if cur.lastrowid is None:
        raise sqlite3.DatabaseError("the INSERT gave no row id")
    return int(cur.lastrowid)


def _statements(sql: str) -> Iterator[str]:
    """Split a migration script into complete SQL statements (semicolons in comments are fine)."""
    buf = ""
    for line in sql.splitlines(keepends=True):
        if not buf and line.lstrip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf
            buf = ""
    if buf.strip():
        yield buf


# File systems on which SQLite's WAL mode cannot work (its locks and shared memory are local to one
# machine; over these they are missing or unreliable): a gallery there is refused.
NETWORK_FS_TYPES = frozenset({"nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "ncpfs", "afs",
                              "coda", "ceph", "glusterfs", "fuse.sshfs", "fuse.glusterfs", "9p",
                              "fuse.s3fs", "fuse.rclone", "davfs", "fuse.davfs"})


def _unescape_mount(field: str) -> str:
    """A path field of /proc/self/mountinfo (space, tab, newline and backslash are octal escapes)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def filesystem_type(folder: str | Path, mountinfo: str | None = None) -> str | None:
    """The file system type (``ext4``, ``nfs4``...) of the mount holding ``folder``, from
    /proc/self/mountinfo (or the text given, for tests); None when it cannot be told (not Linux).

    The mount is found by the folder's device number, else by the longest mount point above it."""
    folder = Path(folder)
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text(errors="replace")
        except OSError:
            return None
    try:
        dev = os.stat(folder).st_dev
        device = f"{os.major(dev)}:{os.minor(dev)}"
    except OSError:
        device = None
    try:
        real = folder.resolve()
    except (OSError, RuntimeError):
        real = folder.absolute()
    by_device, best, best_len = None, None, -1
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or not tail:
            continue
        mount_point, fstype = Path(_unescape_mount(fields[4])), tail[0]
        if device is not None and fields[2] == device:
            by_device = fstype  # the last one wins, as later mounts cover earlier ones
        if (real == mount_point or mount_point in real.parents) and len(str(mount_point)) >= best_len:
            best, best_len = fstype, len(str(mount_point))
    return by_device or best


def check_local_filesystem(folder: str | Path, mountinfo: str | None = None) -> None:
    """GalleryError when ``folder`` is on a network file system (NFS, SMB/CIFS...), where SQLite's
    WAL mode cannot keep one gallery consistent between processes."""
    fstype = filesystem_type(folder, mountinfo)
    if fstype is not None and (fstype in NETWORK_FS_TYPES or fstype.split(".")[0] in NETWORK_FS_TYPES):
        raise GalleryError(
            f"the gallery folder {folder} is on a network file system ({fstype}): SQLite's locks and "
            "shared memory do not work there and processes sharing the gallery would corrupt it. Keep "
            "the gallery file on a local disk, or use a PostgreSQL gallery (postgresql://...)")


# SQLite primary result codes (sqlite3.h) that are about the storage, not the request
_STORAGE_MESSAGES = {
    5: "the gallery {name} stayed locked by another process for longer than the busy timeout ({s:.0f} s)",
    6: "the gallery {name} stayed locked by another process for longer than the busy timeout ({s:.0f} s)",
    8: "the gallery {name} is read-only (the file or its folder cannot be written; SQLite also needs "
       "to write {name}-wal and {name}-shm beside it)",
    10: "disk I/O error on the gallery {name}",
    11: "the gallery {name} is damaged (SQLite reports corruption): restore it from a backup",
    13: "the disk holding the gallery {name} is full",
    14: "cannot open the gallery {name} (does its folder exist, and may it be written? SQLite needs to "
        "create {name}-wal and {name}-shm beside it)",
    26: "{name} is not a facebank gallery (not even a SQLite file)",
}
BUSY_TIMEOUT_S = 30.0


def storage_error(exc: BaseException, path: Path, unchanged: bool = True) -> GalleryStorageError | None:
    """The GalleryStorageError for a sqlite3 error about the disk (None for other errors). The message
    names the gallery file, never its folder (the server passes it on to clients)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(exc, sqlite3.Error) or code is None:
        return None
    template = _STORAGE_MESSAGES.get(int(code) & 0xFF)
    if template is None:
        return None
    message = template.format(name=path.name, s=BUSY_TIMEOUT_S)
    if unchanged:
        message += ": nothing was changed"
    return GalleryStorageError(message)


def check_gallery_file(path: Path) -> bool:
    """Is there a gallery file at ``path`` (False: none yet)? GalleryError for a folder, a device or
    FIFO, or a gallery on a network file system, before anything opens or changes it.

    The file itself is never opened here: only SQLite opens a gallery file (closing any other
    descriptor of it would drop the POSIX locks SQLite holds on it in this process, and another
    process would then delete the WAL this one still writes to). Its header is checked through
    SQLite, by ``SqliteGallery``."""
    if str(path) == ":memory:":
        return False
    try:
        if path.is_dir():
            raise GalleryError(f"{path} is a folder, not a gallery file (e.g. {path / 'facebank.db'})")
        folder = path.absolute().parent
        while not folder.is_dir() and folder != folder.parent:  # the folder may be made later
            folder = folder.parent
        check_local_filesystem(folder)
        if not path.exists():
            return False
        st = path.stat()
    except OSError as exc:
        raise GalleryError(f"cannot open the gallery {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise GalleryError(f"{path} is not a regular file (a device, FIFO or socket), not a gallery")
    return st.st_size > 0


@dataclass(frozen=True)
class BackupReport:
    """A finished backup: the file written, its size in bytes, what it holds, seconds taken."""

    out: Path
    size_bytes: int
    people: int
    photos: int
    faces: int
    seconds: float


def _is_gallery_file(path: Path, gallery: Path) -> bool:
    """Is ``path`` the gallery file or one of its journals (by resolved path, or the same inode)?"""
    try:
        if path.exists() and path.samefile(gallery):
            return True
        a, b = path.resolve(), gallery.resolve()
    except (OSError, RuntimeError):
        a, b = path.absolute(), gallery.absolute()
    return a.parent == b.parent and a.name in {b.name + end for end in ("", "-wal", "-shm", "-journal")}


def backup_gallery(source: str | Path, out: str | Path, force: bool = False) -> BackupReport:
    """Copy the SQLite gallery ``source`` to the single file ``out`` with SQLite's online backup API:
    one consistent snapshot (the WAL's committed transactions included), taken while other processes
    (a server) go on writing. The copy is written beside ``out``, checked (integrity_check) and then
    renamed onto ``out``, so ``out`` is never half written. GalleryError for a PostgreSQL gallery
    (use pg_dump), an ``out`` that is the gallery itself, or an existing ``out`` without ``force``."""
    loc = str(source)
    if loc.startswith(("postgresql://", "postgres://")):
        raise GalleryError("a PostgreSQL gallery is backed up with PostgreSQL's own tools: "
                           "pg_dump --format=custom --file=BACKUP.dump 'postgresql://...' "
                           "(restore it with pg_restore)")
    if loc == ":memory:":
        raise GalleryError("an in-memory gallery has nothing to back up")
    src, out = Path(loc), Path(out)
    if not src.exists():
        raise GalleryError(f"no gallery at {src}")
    if out.is_dir():
        raise GalleryError(f"{out} is a folder: name the backup file, e.g. {out / (src.stem + '-backup.db')}")
    if _is_gallery_file(out, src):
        raise GalleryError(f"{out} is the gallery itself (or its journal): name another file")
    if out.exists() and not force:
        raise GalleryError(f"{out} exists: name a new file, or pass --force to replace it")
    if not out.parent.is_dir():
        raise GalleryError(f"the folder of {out} does not exist")
    t0 = time.perf_counter()
    gallery = SqliteGallery(src, readonly=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        tmp.unlink(missing_ok=True)
        dst = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            with gallery.connection() as db:
                db.backup(dst)  # one step: a consistent snapshot; writers of other processes go on (WAL)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            result = dst.execute("PRAGMA integrity_check").fetchone()[0]
            if result != "ok":
                raise GalleryStorageError(f"the copy failed SQLite's integrity check ({result}); "
                                   f"{out} left as it was")
            people, photos, faces = (dst.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                                     for t in ("people", "photos", "faces"))
        finally:
            dst.close()
        for leftover in (out.with_name(out.name + "-wal"), out.with_name(out.name + "-shm")):
            leftover.unlink(missing_ok=True)  # a journal of the file replaced must not apply to the copy
        os.replace(tmp, out)
    except sqlite3.Error as exc:
        err = storage_error(exc, out, unchanged=False)
        raise err or GalleryStorageError(f"backup to {out} failed: {exc}") from None
    except OSError as exc:
        raise GalleryStorageError(f"cannot write the backup {out}: {exc.strerror or exc}") from None
    finally:
        gallery.close()
        for partial in (tmp, tmp.with_name(tmp.name + "-journal")):
            partial.unlink(missing_ok=True)
    return BackupReport(out, out.stat().st_size, int(people), int(photos), int(faces),
                        time.perf_counter() - t0)


# WAL + FULL: every COMMIT waits for the WAL to reach the disk, so an acknowledged write survives a
# power loss too (NORMAL would keep it through a killed process only). It costs one fsync per
# transaction: a few ms, next to ~100 ms of face work per photo and 16 photos per enroll commit
# (bench/bench_torture.py measures both modes; docs/reliability.md).
SYNCHRONOUS = "FULL"


class SqliteGallery(CorrectionsMixin):
    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly and not self.path.exists():
            raise GalleryError(f"gallery {self.path} does not exist")
        existing = check_gallery_file(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GalleryError(f"cannot make the folder of the gallery {self.path}: "
                               f"{exc.strerror or exc}") from None
        self._lock = threading.RLock()
        self._callbacks: list[Callable[[], None]] = []
        self._held: tuple[int, int] | None = None
        # every connection waits (busy timeout) for another process's write instead of failing
        self._db = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, check_same_thread=False,
                                   isolation_level=None)
        try:
            if existing:
                self._check_foreign()
            self._db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
            self._db.execute("PRAGMA foreign_keys=ON")
            if not readonly:
                self._migrate()
            self.model_id = self._meta("model_id")
            self._held = dbfiles.hold(self.path) if str(self.path) != ":memory:" else None
        except BaseException as exc:
            self._db.close()
            err = storage_error(exc, self.path)
            if err is not None:
                raise err from None
            raise

    # -- plumbing ---------------------------------------------------------------------------------
    def _check_foreign(self) -> None:
        """Refuse (before changing anything) a file that is no SQLite database, or a SQLite file of
        another application. The header is read by SQLite itself (never a plain open: see
        ``check_gallery_file``)."""
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorcode", None) == 26:  # SQLITE_NOTADB
                raise GalleryError(f"{self.path} is not a facebank gallery (not even a SQLite file)") \
                    from None
            if storage_error(exc, self.path) is not None:
                raise
            raise GalleryError(f"{self.path} is not a facebank gallery ({exc})") from None
        if not pages:  # a non-empty file SQLite reads as empty (shorter than its header)
            raise GalleryError(f"{self.path} is not a facebank gallery (not even a SQLite file)")
        if tables and (version == 0 or "meta" not in tables):
            raise GalleryError(f"{self.path} is not a facebank gallery: a SQLite file of another "
                               "application (left unchanged)")

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The gallery's own connection, under its lock, for a store that keeps its tables in the
        gallery file (the API keys): one process uses ONE connection to the file, never a second
        gallery. Statements run in autocommit mode; use ``transaction()`` for several at once."""
        with self._lock:
            yield self._db

    def transaction(self) -> _Transaction:
        """BEGIN IMMEDIATE ... COMMIT on the gallery's connection (ROLLBACK on any error; a full or
        read-only disk is a GalleryStorageError)."""
        return _Transaction(self)

    def _migrate(self) -> None:
        """Apply the numbered migrations not applied yet, each in one transaction.

        The version is read again under the write lock, so two processes opening the same new
        file at once do not both create the tables.
        """
        with self._lock:
            # a migration may rebuild a table (SQLite's way to change a column): foreign keys off
            # while it runs (the pragma is a no-op inside a transaction), checked before COMMIT
            self._db.execute("PRAGMA foreign_keys=OFF")
            try:
                for number, sql in migrations():
                    self._migrate_one(number, sql)
            finally:
                self._db.execute("PRAGMA foreign_keys=ON")

    def _migrate_one(self, number: int, sql: str) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            current = self._db.execute("PRAGMA user_version").fetchone()[0]
            if current > SCHEMA_VERSION:
                raise GalleryError(
                    f"gallery {self.path} has schema version {current}, newer than this "
                    f"facebank understands ({SCHEMA_VERSION}): upgrade facebank"
                )
            if number > current:
                log.info("migrating gallery %s to schema version %d", self.path, number)
                for statement in _statements(sql):
                    self._db.execute(statement)
                if self._db.execute("PRAGMA foreign_key_check").fetchone() is not None:
                    raise GalleryError(f"migration {number} of {self.path} left dangling references")
                self._db.execute(f"PRAGMA user_version={int(number)}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _tx(self) -> _Transaction:
        return _Transaction(self)

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def _person_id(self, name: str) -> int | None:
        """The id of ``name``, or of the person whose name differs from it only by case."""
        row = self._db.execute("SELECT id FROM people WHERE name=?", (name,)).fetchone()
        if row:
            return int(row[0])
        key = name_key(name)
        for pid, other in self._db.execute("SELECT id, name FROM people"):
            if name_key(other) == key:
                return int(pid)
        return None

    def _name_of(self, pid: int) -> str:
        name: str = self._db.execute("SELECT name FROM people WHERE id=?", (pid,)).fetchone()[0]
        return name

    def _changed(self) -> None:
        for cb in list(self._callbacks):
            cb()

    def on_change(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def close(self) -> None:
        with self._lock:
            self._db.close()
            dbfiles.release(self._held)
            self._held = None

    def __enter__(self) -> SqliteGallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def version(self) -> int:
        """A number that changes whenever the gallery's content changes (for index caches).

        Every write transaction, from any process, bumps the 'generation' counter in ``meta``.
        """
        row = self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

    def check_model(self, model_id: str) -> None:
        if self.model_id is not None and self.model_id != model_id:
            raise ModelMismatch(
                f"gallery {self.path} holds embeddings of model {self.model_id!r}; refusing to mix in "
                f"{model_id!r}. Use another gallery file, the same embedder, or switch the gallery to the "
                f"new model with 'facebank reembed'."
            )

    # -- people -----------------------------------------------------------------------------------
    def people(self) -> list[PersonInfo]:
        rows = self._db.execute(
            "SELECT p.name,"
            " (SELECT count(DISTINCT f.photo_id) FROM faces f WHERE f.person_id=p.id),"
            " (SELECT count(*) FROM faces f WHERE f.person_id=p.id)"
            " FROM people p ORDER BY p.name"
        ).fetchall()
        return [PersonInfo(name, photos, faces) for name, photos, faces in rows]

    def add_person(self, name: str) -> None:
        name = validate_name(name)
        with self._tx() as db:
            pid = self._person_id(name)
            if pid is not None:
                other = db.execute("SELECT name FROM people WHERE id=?", (pid,)).fetchone()[0]
                raise PersonExists(taken_message(other))
            db.execute("INSERT INTO people(name) VALUES (?)", (name,))
        self._changed()

    def remove_person(self, name: str) -> int:
        """Remove a person with their photos and faces; returns the number of faces removed."""
        with self._tx() as db:
            pid = self._person_id(name)
            if pid is None:
                raise PersonNotFound(f"no person named {name!r}")
            n = db.execute("SELECT count(*) FROM faces WHERE person_id=?", (pid,)).fetchone()[0]
            db.execute("DELETE FROM people WHERE id=?", (pid,))
        self._changed()
        return int(n)

    def rename_person(self, old: str, new: str) -> None:
        new = validate_name(new)
        with self._tx() as db:
            pid = self._person_id(old)
            if pid is None:
                raise PersonNotFound(f"no person named {old!r}")
            other = self._person_id(new)
            if other is not None and (other != pid or self._name_of(pid) == new):
                raise PersonExists(taken_message(
                    db.execute("SELECT name FROM people WHERE id=?", (other,)).fetchone()[0]))
            db.execute("UPDATE people SET name=? WHERE id=?", (new, pid))
        self._changed()

    # -- photos and faces -------------------------------------------------------------------------
    def has_photo(self, sha256: str, model_id: str) -> bool:
        return self._db.execute(
            "SELECT 1 FROM photos WHERE sha256=? AND model_id=?", (sha256, model_id)
        ).fetchone() is not None

    def stored_photo(self, sha256: str, model_id: str) -> StoredPhoto | None:
        row = self._db.execute(
            "SELECT p.name, ph.path, ph.status, ph.reason, ph.run_id FROM photos ph LEFT JOIN people p"
            " ON p.id=ph.person_id WHERE ph.sha256=? AND ph.model_id=?", (sha256, model_id)
        ).fetchone()
        return StoredPhoto(*row) if row else None

    def add_photos(self, items: Sequence[tuple[PhotoRecord, Sequence[FaceRecord]]], model_id: str,
                   run_id: int | None = None) -> int:
        """Store photos with their faces in ONE transaction; returns the number of faces added.

        A photo already stored for this model (same sha256) is left as it is.
        """
        added = 0
        with self._tx() as db:
            self.check_model(model_id)
            if self.model_id is None:
                db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('model_id', ?)", (model_id,))
            for photo, faces in items:
                pid = None if photo.person is None else self._ensure_person(db, photo.person)
                cur = db.execute(
                    "INSERT OR IGNORE INTO photos(person_id, path, sha256, size_bytes, width, height,"
                    " model_id, status, reason, run_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (pid, photo.path, photo.sha256, photo.size_bytes, photo.width, photo.height,
                     model_id, photo.status, photo.reason, run_id),
                )
                if cur.rowcount == 0:
                    continue
                photo_id = cur.lastrowid
                refused = self._not_faces(db, photo.sha256)
                for f in faces:
                    if any(box_overlap(f.box, b) >= NOT_FACE_OVERLAP for b in refused):
                        continue  # the user said this is not a face: never stored again
                    vec = np.ascontiguousarray(f.embedding, dtype="<f4")
                    cur = db.execute(
                        "INSERT INTO faces(photo_id, person_id, x1, y1, x2, y2, landmarks, detector,"
                        " detector_score, fallback, model_id, dim, embedding)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (photo_id, pid, *map(float, f.box),
                         json.dumps(f.landmarks) if f.landmarks is not None else None,
                         f.detector, float(f.detector_score), int(f.fallback), model_id, int(vec.size),
                         vec.tobytes()),
                    )
                    self._store_quality(db, _inserted_id(cur), f)
                    added += 1
        self.model_id = model_id
        self._changed()
        return added

    def remove_photo(self, person: str, sha256: str) -> int:
        with self._tx() as db:
            pid = self._person_id(person)
            if pid is None:
                raise PersonNotFound(f"no person named {person!r}")
            row = db.execute("SELECT id FROM photos WHERE person_id=? AND sha256=?", (pid, sha256)).fetchone()
            if row is None:
                raise GalleryError(f"{person!r} has no photo with sha256 {sha256}")
            n = db.execute("SELECT count(*) FROM faces WHERE photo_id=?", (row[0],)).fetchone()[0]
            db.execute("DELETE FROM photos WHERE id=?", (row[0],))
        self._changed()
        return int(n)

    def photos(self, person: str) -> list[dict[str, Any]]:
        pid = self._person_id(person)
        if pid is None:
            raise PersonNotFound(f"no person named {person!r}")
        rows = self._db.execute(
            _PHOTO_COLUMNS + " WHERE ph.person_id=? OR ph.id IN"
            " (SELECT photo_id FROM faces WHERE person_id=?) ORDER BY ph.id", (pid, pid)
        ).fetchall()
        return [dict(zip(PHOTO_KEYS, r, strict=True)) for r in rows]

    def problems(self) -> list[dict[str, Any]]:
        """Photos recorded without a usable face, with the reason (person None: a scanned photo)."""
        rows = self._db.execute(
            "SELECT p.name, ph.path, ph.status, ph.reason FROM photos ph LEFT JOIN people p"
            " ON p.id=ph.person_id WHERE ph.status != 'ok' ORDER BY ph.id"
        ).fetchall()
        return [dict(person=a, path=b, status=c, reason=d) for a, b, c, d in rows]

    # -- unassigned faces, clusters, naming --------------------------------------------------------
    def _ensure_person(self, db: sqlite3.Connection, name: str) -> int:
        name = validate_name(name)
        pid = self._person_id(name)
        if pid is None:
            return _inserted_id(db.execute("INSERT INTO people(name) VALUES (?)", (name,)))
        return int(pid)

    def _existing_person(self, name: str) -> int:
        pid = self._person_id(name)
        if pid is None:
            raise PersonNotFound(f"no person named {name!r}")
        return pid

    def unassigned_faces(self, face_ids: Sequence[int] | None = None) -> FaceSet:
        """Every face without a person, with its embedding and last cluster (-1: none); faces flagged
        low quality or not a face (``face_quality.flag``) are left out: they form no cluster.
        ``face_ids``: only those of these faces (a cache patching what a write changed)."""
        sql = ("SELECT id, coalesce(cluster, -1), embedding FROM faces WHERE person_id IS NULL AND id NOT IN"
               " (SELECT face_id FROM face_quality WHERE flag IS NOT NULL)")
        rows: list[tuple[int, int, bytes]] = []
        if face_ids is None:
            rows = self._db.execute(sql + " ORDER BY id").fetchall()
        else:
            ids = sorted({int(i) for i in face_ids})
            for k in range(0, len(ids), 500):
                chunk = ids[k:k + 500]
                rows += self._db.execute(sql + f" AND id IN ({','.join('?' * len(chunk))}) ORDER BY id",
                                         chunk).fetchall()
        if not rows:
            return FaceSet(np.zeros(0, np.int64), np.zeros((0, 0), np.float32), np.zeros(0, np.int64))
        vecs = np.stack([np.frombuffer(r[2], dtype="<f4") for r in rows]).astype(np.float32)
        return FaceSet(np.asarray([r[0] for r in rows], np.int64), vecs,
                       np.asarray([r[1] for r in rows], np.int64))

    def set_clusters(self, labels: Mapping[int, int | None],
                     suggestions: Mapping[int, tuple[str, float]] | None = None) -> int:
        """Replace the clustering of the unassigned faces in ONE transaction.

        ``labels``: face id -> cluster id (None = alone); unassigned faces not in ``labels`` lose
        their cluster, faces that have a person are left alone. ``suggestions``: cluster id ->
        (person name, L2 distance). Returns the number of faces given a cluster."""
        suggestions = dict(suggestions or {})
        clusters = sorted({int(c) for c in labels.values() if c is not None})
        with self._tx() as db:
            sugg = {c: (self._existing_person(n), float(d)) for c, (n, d) in suggestions.items()}
            db.execute("UPDATE faces SET cluster=NULL WHERE cluster IS NOT NULL")
            db.execute("DELETE FROM clusters")
            db.executemany("INSERT INTO clusters(id, suggested_person_id, suggested_distance) VALUES (?,?,?)",
                           [(c, *sugg.get(c, (None, None))) for c in clusters])
            cur = db.executemany("UPDATE faces SET cluster=? WHERE id=? AND person_id IS NULL",
                                 [(int(c), int(f)) for f, c in labels.items() if c is not None])
            n = cur.rowcount
        self._changed()
        return int(n)

    def faces(self, *, person: str | None = None, cluster: int | None = None, unassigned: bool = False,
              face_ids: Sequence[int] | None = None) -> list[FaceInfo]:
        """Stored faces with their photos, by face id; every filter given must hold."""
        where, args = [], []
        if person is not None:
            where.append("f.person_id=?")
            args.append(self._existing_person(person))
        if cluster is not None:
            where.append("f.cluster=?")
            args.append(int(cluster))
        if unassigned:
            where.append("f.person_id IS NULL")
        if face_ids is not None:
            ids = [int(i) for i in face_ids]
            if not ids:
                return []
            where.append(f"f.id IN ({','.join('?' * len(ids))})")
            args.extend(ids)
        rows = self._db.execute(
            "SELECT f.id, ph.path, ph.sha256, f.x1, f.y1, f.x2, f.y2, p.name, f.cluster, s.name"
            " FROM faces f JOIN photos ph ON ph.id=f.photo_id LEFT JOIN people p ON p.id=f.person_id"
            " LEFT JOIN clusters c ON c.id=f.cluster LEFT JOIN people s ON s.id=c.suggested_person_id"
            + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY f.id", args
        ).fetchall()
        return [FaceInfo(r[0], r[1], r[2], (r[3], r[4], r[5], r[6]), r[7], r[8], r[9]) for r in rows]

    def name_cluster(self, cluster: int, name: str) -> int:
        """Give every unassigned face of ``cluster`` to ``name`` (a new person, or merged into the
        person of that name) in ONE transaction; returns the number of faces named."""
        name = validate_name(name)
        with self._tx() as db:
            n = db.execute("SELECT count(*) FROM faces WHERE cluster=? AND person_id IS NULL",
                           (int(cluster),)).fetchone()[0]
            if not n:
                named = self.named_cluster_ids().get(int(cluster), "")
                if named:
                    raise NotFound(f"cluster {cluster} was named {named} (its faces are {named}'s now)")
                raise NotFound(f"no cluster {cluster} (run 'facebank cluster' to list them)")
            existed = self._person_id(name) is not None
            ids = [r[0] for r in db.execute("SELECT id FROM faces WHERE cluster=? AND person_id IS NULL",
                                            (int(cluster),))]
            before = self._faces_state(db, ids)
            pid = self._ensure_person(db, name)
            db.execute("DELETE FROM face_rejections WHERE person_id=? AND face_id IN"
                       " (SELECT id FROM faces WHERE cluster=? AND person_id IS NULL"
                       " AND id NOT IN (SELECT face_id FROM face_bars WHERE person_id=?))",
                       (pid, int(cluster), pid))
            # a face taken out of this person before is never given back to them (it stays unnamed)
            n = db.execute("UPDATE faces SET person_id=?, cluster=NULL WHERE cluster=? AND person_id IS NULL"
                           " AND id NOT IN (SELECT face_id FROM face_bars WHERE person_id=?)",
                           (pid, int(cluster), pid)).rowcount
            db.execute("UPDATE faces SET cluster=NULL WHERE cluster=?", (int(cluster),))
            db.execute("DELETE FROM clusters WHERE id=?", (int(cluster),))
            db.execute("INSERT OR REPLACE INTO named_clusters(cluster, person_id) VALUES (?,?)",
                       (int(cluster), pid))
            self._log(db, "name", f"name group #{cluster} {name}", before, self._faces_state(db, ids),
                      created=None if existed else name)
        self._changed()
        return int(n)

    def move_face(self, face_id: int, name: str | None) -> None:
        """Give one face to ``name`` (created if new), or take it out of its person (None: the
        face is unassigned again). A photo enrolled as someone's loses that label when its face
        goes to someone else: its faces then carry the names. ONE transaction."""
        with self._tx() as db:
            row = db.execute("SELECT f.photo_id, f.person_id, ph.person_id FROM faces f JOIN photos ph"
                             " ON ph.id=f.photo_id WHERE f.id=?", (int(face_id),)).fetchone()
            if row is None:
                raise NotFound(f"no face with id {face_id}")
            photo_id, old_person, photo_person = row
            before, photo_before = self._faces_state(db, [face_id]), self._photos_state(db, [photo_id])
            created = name if name is not None and self._person_id(name) is None else None
            pid = None if name is None else self._ensure_person(db, name)
            added = self._remember_move(db, int(face_id), old_person, pid)
            db.execute("UPDATE faces SET person_id=?, cluster=NULL WHERE id=?", (pid, int(face_id)))
            db.execute("DELETE FROM face_rejections WHERE face_id=? AND person_id=?", (int(face_id), pid))
            if photo_person is not None and photo_person != pid:
                db.execute("UPDATE photos SET person_id=NULL WHERE id=?", (photo_id,))
            self._log(db, "move" if name else "take_out",
                      f"face {face_id} to {name}" if name else f"take face {face_id} out", before,
                      self._faces_state(db, [face_id]), photos=list(photo_before.items()), created=created,
                      **added)
        self._changed()

    def merge_people(self, source: str, target: str) -> int:
        """Move every photo and face of ``source`` to ``target`` and remove ``source``, in ONE
        transaction; returns the number of faces moved."""
        with self._tx() as db:
            src, dst = self._existing_person(source), self._existing_person(target)
            if src == dst:
                raise GalleryError(f"cannot merge {source!r} into itself")
            ids = [r[0] for r in db.execute("SELECT id FROM faces WHERE person_id=?", (src,))]
            photo_ids = [r[0] for r in db.execute("SELECT id FROM photos WHERE person_id=?", (src,))]
            before, photo_before = self._faces_state(db, ids), self._photos_state(db, photo_ids)
            source = self._name_of(src)
            n = db.execute("UPDATE faces SET person_id=? WHERE person_id=?", (dst, src)).rowcount
            db.execute("UPDATE photos SET person_id=? WHERE person_id=?", (dst, src))
            db.execute("INSERT OR IGNORE INTO face_rejections(face_id, person_id) SELECT face_id, ?"
                       " FROM face_rejections WHERE person_id=?", (dst, src))
            db.execute("UPDATE clusters SET suggested_person_id=? WHERE suggested_person_id=?", (dst, src))
            db.execute("DELETE FROM people WHERE id=?", (src,))
            self._log(db, "merge", f"merge {source} into {self._name_of(dst)}", before,
                      self._faces_state(db, ids), photos=list(photo_before.items()), removed=source)
        self._changed()
        return int(n)

    def photos_with(self, names: Sequence[str]) -> list[dict[str, Any]]:
        """Photos in which every one of ``names`` has a face (same keys as ``photos``)."""
        pids = sorted({self._existing_person(n) for n in names})
        if not pids:
            raise GalleryError("name at least one person")
        marks = ",".join("?" * len(pids))
        rows = self._db.execute(
            _PHOTO_COLUMNS + f" WHERE ph.id IN (SELECT photo_id FROM faces WHERE person_id IN ({marks})"
            f" GROUP BY photo_id HAVING count(DISTINCT person_id)=?) ORDER BY ph.path, ph.id",
            (*pids, len(pids))
        ).fetchall()
        return [dict(zip(PHOTO_KEYS, r, strict=True)) for r in rows]

    # -- rejections: "this face is not that person" (facebank.cluster.suggest) ----------------------
    def reject(self, face_ids: Sequence[int], name: str) -> int:
        """Record that every face of ``face_ids`` is not ``name`` (never suggested for them again), in
        ONE transaction; returns the number of new records. ``NotFound`` for a face id that does not
        exist, ``PersonNotFound`` for an unknown person (nothing is recorded then)."""
        ids = sorted({int(i) for i in face_ids})
        with self._tx() as db:
            pid = self._existing_person(name)
            for i in ids:
                if db.execute("SELECT 1 FROM faces WHERE id=?", (i,)).fetchone() is None:
                    raise NotFound(f"no face with id {i}")
            n = db.executemany("INSERT OR IGNORE INTO face_rejections(face_id, person_id) VALUES (?,?)",
                               [(i, pid) for i in ids]).rowcount
        self._changed()
        return int(n)

    def rejections(self, face_ids: Sequence[int] | None = None) -> dict[int, frozenset[str]]:
        """face id -> the people it was told it is not (only faces with any; ``face_ids``: only those)."""
        sql = ("SELECT r.face_id, p.name FROM face_rejections r JOIN people p ON p.id=r.person_id")
        args: list[int] = []
        if face_ids is not None:
            args = [int(i) for i in face_ids]
            if not args:
                return {}
            sql += f" WHERE r.face_id IN ({','.join('?' * len(args))})"
        out: dict[int, set[str]] = {}
        for f, name in self._db.execute(sql, args):
            out.setdefault(int(f), set()).add(name)
        return {f: frozenset(v) for f, v in out.items()}

    # -- runs -------------------------------------------------------------------------------------
    def start_run(self, source: str, model_id: str, settings: str) -> int:
        self.check_model(model_id)
        with self._tx() as db:
            db.execute("UPDATE runs SET status='interrupted' WHERE status='running'")
            return _inserted_id(db.execute("INSERT INTO runs(source, model_id, settings) VALUES (?,?,?)",
                                           (source, model_id, settings)))

    def finish_run(self, run_id: int, status: str, counts: dict[str, int]) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status=?, finished_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),"
                " photos_seen=?, photos_enrolled=?, faces_added=? WHERE id=?",
                (status, counts.get("photos_seen", 0), counts.get("photos_enrolled", 0),
                 counts.get("faces_added", 0), run_id),
            )

    def runs(self) -> list[dict[str, Any]]:
        cur = self._db.execute("SELECT * FROM runs ORDER BY id")
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    # -- search data ------------------------------------------------------------------------------
    def embeddings(self) -> Embeddings:
        rows = self._db.execute(
            "SELECT f.id, p.name, f.embedding FROM faces f JOIN people p ON p.id=f.person_id ORDER BY f.id"
        ).fetchall()
        if not rows:
            return Embeddings(np.zeros((0, 0), np.float32), (), np.zeros(0, np.int64))
        vecs = np.stack([np.frombuffer(r[2], dtype="<f4") for r in rows]).astype(np.float32)
        return Embeddings(vecs, tuple(r[1] for r in rows), np.asarray([r[0] for r in rows], np.int64))

    def integrity(self) -> list[str]:
        """Consistency problems (empty list when consistent)."""
        bad = []
        if self._db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            bad.append("sqlite integrity_check failed")
        if self._db.execute("PRAGMA foreign_key_check").fetchall():
            bad.append("dangling references")
        n = self._db.execute(
            "SELECT count(*) FROM photos ph WHERE ph.status='ok' AND NOT EXISTS"
            " (SELECT 1 FROM faces f WHERE f.photo_id=ph.id)"
        ).fetchone()[0]
        if n:
            bad.append(f"{n} photos marked ok without a face")
        n = self._db.execute(
            "SELECT count(*) FROM faces f JOIN photos ph ON ph.id=f.photo_id"
            " WHERE ph.person_id IS NOT NULL AND f.person_id IS NOT ph.person_id").fetchone()[0]
        if n:
            bad.append(f"{n} faces of labelled photos filed under another person than their photo")
        models = {r[0] for r in self._db.execute("SELECT DISTINCT model_id FROM faces")}
        if len(models) > 1:
            bad.append(f"faces of several models: {sorted(models)}")
        return bad


    # -- re-embedding with another model (facebank reembed) -----------------------------------------
    def stored_faces(self) -> list[dict[str, Any]]:
        """Every stored face with what re-embedding it needs: ``face_id``, ``path`` and ``sha256`` of its
        photo, ``box`` (x1, y1, x2, y2), ``landmarks`` (None or [[x, y], ...]), ``detector``,
        ``detector_score``, ``fallback``; ordered by photo."""
        rows = self._db.execute(
            "SELECT f.id, ph.path, ph.sha256, f.x1, f.y1, f.x2, f.y2, f.landmarks, f.detector,"
            " f.detector_score, f.fallback FROM faces f JOIN photos ph ON ph.id=f.photo_id"
            " ORDER BY f.photo_id, f.id").fetchall()
        return [{"face_id": r[0], "path": r[1], "sha256": r[2], "box": (r[3], r[4], r[5], r[6]),
                 "landmarks": json.loads(r[7]) if r[7] else None, "detector": r[8], "detector_score": r[9],
                 "fallback": bool(r[10])} for r in rows]

    def replace_embeddings(self, vectors: dict[int, np.ndarray], model_id: str) -> int:
        """Give EVERY face its new embedding of ``model_id`` in one transaction (faces, clusters, people and
        their ids stay); refused unless ``vectors`` holds every face. Returns the faces changed."""
        with self._tx() as db:
            ids = {r[0] for r in db.execute("SELECT id FROM faces")}
            missing = ids - set(vectors)
            if missing:
                raise GalleryError(f"re-embedding needs every face: {len(missing)} missing; nothing changed")
            for fid, vec in vectors.items():
                v = np.ascontiguousarray(vec, dtype="<f4")
                db.execute("UPDATE faces SET embedding=?, dim=?, model_id=? WHERE id=?",
                           (v.tobytes(), int(v.size), model_id, int(fid)))
            db.execute("UPDATE photos SET model_id=?", (model_id,))
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('model_id', ?)", (model_id,))
        self.model_id = model_id
        self._changed()
        return len(vectors)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (including KeyboardInterrupt).

    A COMMIT that fails (a full disk, an I/O error) is rolled back too, so the connection is never
    left inside a transaction; errors about the disk become GalleryStorageError (one clear line)."""

    def __init__(self, gallery: SqliteGallery) -> None:
        self.g = gallery

    def __enter__(self) -> sqlite3.Connection:
        self.g._lock.acquire()
        try:
            self.g._db.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            self.g._lock.release()
            err = storage_error(exc, self.g.path)
            if err is not None:
                raise err from None
            raise
        return self.g._db

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if exc_type is None:
                try:
                    self.g._db.execute(
                        "INSERT INTO meta(key, value) VALUES ('generation', '1') ON CONFLICT(key)"
                        " DO UPDATE SET value = CAST(value AS INTEGER) + 1")
                    self.g._db.execute("COMMIT")
                    return
                except BaseException as failed:
                    self._rollback()
                    raise (storage_error(failed, self.g.path) or failed) from None
            self._rollback()
            if exc is not None:
                err = storage_error(exc, self.g.path)
                if err is not None:
                    raise err from None
        finally:
            self.g._lock.release()

    def _rollback(self) -> None:
        if self.g._db.in_transaction:
            try:
                self.g._db.execute("ROLLBACK")
            except sqlite3.Error as exc:  # SQLite already rolled back (e.g. after SQLITE_FULL)
                log.debug("rollback of %s: %s", self.g.path, exc)
        with suppress(sqlite3.Error):
            self.g.model_id = self.g._meta("model_id")
