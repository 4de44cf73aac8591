"""The embedded gallery: one SQLite file in WAL mode, numbered migrations, one model per gallery.

Every write is one transaction, so a crash (even kill -9) leaves the file as it was after the last
committed photo; many readers may use the file while one writer writes.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from facebank.gallery.base import (
    Embeddings,
    FaceInfo,
    FaceRecord,
    FaceSet,
    GalleryError,
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


def _statements(sql: str):
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


SQLITE_MAGIC = b"SQLite format 3\x00"


def check_gallery_file(path: Path) -> bool:
    """Is there a gallery file at ``path`` (False: none yet)? GalleryError for a folder or a file
    that is no SQLite database, before anything opens or changes it."""
    if str(path) == ":memory:":
        return False
    try:
        if path.is_dir():
            raise GalleryError(f"{path} is a folder, not a gallery file (e.g. {path / 'facebank.db'})")
        if not path.exists() or path.stat().st_size == 0:
            return False
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise GalleryError(f"cannot open the gallery {path}: {exc.strerror or exc}") from None
    if head != SQLITE_MAGIC:
        raise GalleryError(f"{path} is not a facebank gallery (not even a SQLite file)")
    return True


class SqliteGallery(CorrectionsMixin):
    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly and not self.path.exists():
            raise GalleryError(f"gallery {self.path} does not exist")
        existing = check_gallery_file(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False,
                                   isolation_level=None)
        if existing:
            self._check_foreign()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._callbacks: list[Callable[[], None]] = []
        if not readonly:
            self._migrate()
        self.model_id = self._meta("model_id")

    # -- plumbing ---------------------------------------------------------------------------------
    def _check_foreign(self) -> None:
        """Refuse (before changing anything) a SQLite file of another application."""
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise GalleryError(f"{self.path} is not a facebank gallery ({exc})") from None
        if tables and (version == 0 or "meta" not in tables):
            self._db.close()
            raise GalleryError(f"{self.path} is not a facebank gallery: a SQLite file of another "
                               "application (left unchanged)")

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

    def _tx(self):
        return _Transaction(self)

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def _person_id(self, name: str) -> int | None:
        """The id of ``name``, or of the person whose name differs from it only by case."""
        row = self._db.execute("SELECT id FROM people WHERE name=?", (name,)).fetchone()
        if row:
            return row[0]
        key = name_key(name)
        for pid, other in self._db.execute("SELECT id, name FROM people"):
            if name_key(other) == key:
                return pid
        return None

    def _name_of(self, pid: int) -> str:
        return self._db.execute("SELECT name FROM people WHERE id=?", (pid,)).fetchone()[0]

    def _changed(self) -> None:
        for cb in list(self._callbacks):
            cb()

    def on_change(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def close(self) -> None:
        with self._lock:
            self._db.close()

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
                f"{model_id!r}. Use another gallery file or the same embedder."
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
            "SELECT p.name, ph.path, ph.status, ph.reason FROM photos ph LEFT JOIN people p"
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
                    self._store_quality(db, int(cur.lastrowid), f)
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

    def photos(self, person: str) -> list[dict]:
        pid = self._person_id(person)
        if pid is None:
            raise PersonNotFound(f"no person named {person!r}")
        rows = self._db.execute(
            _PHOTO_COLUMNS + " WHERE ph.person_id=? OR ph.id IN"
            " (SELECT photo_id FROM faces WHERE person_id=?) ORDER BY ph.id", (pid, pid)
        ).fetchall()
        return [dict(zip(PHOTO_KEYS, r, strict=True)) for r in rows]

    def problems(self) -> list[dict]:
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
            pid = db.execute("INSERT INTO people(name) VALUES (?)", (name,)).lastrowid
        return int(pid)

    def _existing_person(self, name: str) -> int:
        pid = self._person_id(name)
        if pid is None:
            raise PersonNotFound(f"no person named {name!r}")
        return pid

    def unassigned_faces(self) -> FaceSet:
        """Every face without a person, with its embedding and last cluster (-1: none); faces flagged
        low quality or not a face (``face_quality.flag``) are left out: they form no cluster."""
        rows = self._db.execute(
            "SELECT id, coalesce(cluster, -1), embedding FROM faces WHERE person_id IS NULL AND id NOT IN"
            " (SELECT face_id FROM face_quality WHERE flag IS NOT NULL) ORDER BY id"
        ).fetchall()
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
            db.execute("UPDATE clusters SET suggested_person_id=? WHERE suggested_person_id=?", (dst, src))
            db.execute("DELETE FROM people WHERE id=?", (src,))
            self._log(db, "merge", f"merge {source} into {self._name_of(dst)}", before,
                      self._faces_state(db, ids), photos=list(photo_before.items()), removed=source)
        self._changed()
        return int(n)

    def photos_with(self, names: Sequence[str]) -> list[dict]:
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

    # -- runs -------------------------------------------------------------------------------------
    def start_run(self, source: str, model_id: str, settings: str) -> int:
        self.check_model(model_id)
        with self._tx() as db:
            db.execute("UPDATE runs SET status='interrupted' WHERE status='running'")
            return int(db.execute("INSERT INTO runs(source, model_id, settings) VALUES (?,?,?)",
                                  (source, model_id, settings)).lastrowid)

    def finish_run(self, run_id: int, status: str, counts: dict[str, int]) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status=?, finished_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),"
                " photos_seen=?, photos_enrolled=?, faces_added=? WHERE id=?",
                (status, counts.get("photos_seen", 0), counts.get("photos_enrolled", 0),
                 counts.get("faces_added", 0), run_id),
            )

    def runs(self) -> list[dict]:
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


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (including KeyboardInterrupt)."""

    def __init__(self, gallery: SqliteGallery) -> None:
        self.g = gallery

    def __enter__(self) -> sqlite3.Connection:
        self.g._lock.acquire()
        self.g._db.execute("BEGIN IMMEDIATE")
        return self.g._db

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.g._db.execute(
                    "INSERT INTO meta(key, value) VALUES ('generation', '1') ON CONFLICT(key)"
                    " DO UPDATE SET value = CAST(value AS INTEGER) + 1")
                self.g._db.execute("COMMIT")
            else:
                self.g._db.execute("ROLLBACK")
                self.g.model_id = self.g._meta("model_id")
        finally:
            self.g._lock.release()
