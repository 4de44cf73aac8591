"""The shared gallery: PostgreSQL + pgvector, for several machines enrolling and identifying at once.

    from facebank.gallery import open_gallery
    g = open_gallery("postgresql://facebank:secret@db.example/faces")

Same behaviour as ``SqliteGallery`` (the contract tests run against both), plus:

* concurrent writers on several machines: every write is one transaction; photos are unique on
  (sha256, model_id) and inserted with ``ON CONFLICT DO NOTHING``, people with
  ``ON CONFLICT (name) DO NOTHING``, rows are written in a fixed order (names, then sha256) so two
  writers never deadlock, and the rare deadlock or serialization failure is retried;
* the first stored face fixes the model and the dimension: the column becomes ``vector(dim)`` and
  an HNSW index (``vector_l2_ops``) is built on it, under an advisory lock;
* ``search(query, k)`` answers server-side (``ORDER BY embedding <-> query LIMIT k``);
* an enrollment run holds a session advisory lock while it runs, so ``start_run`` marks as
  interrupted only runs whose writer is gone, not the live runs of other machines.

Schema changes are numbered SQL files in ``facebank/gallery/migrations_pg``, applied in order under
an advisory lock (several machines may open a new gallery at once). The server needs the pgvector
extension (``CREATE EXTENSION vector`` is run by the first migration; it needs a role allowed to
create it, or an administrator who created it before).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import resources
from typing import Any, Concatenate, ParamSpec, TypeVar

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
from facebank.gallery.postgres_corrections import PgCorrectionsMixin
from facebank.gallery.sqlite_corrections import NOT_FACE_OVERLAP, box_overlap
from facebank.types import PersonInfo

log = logging.getLogger(__name__)


def _row(row: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """A row a query always returns (an aggregate, a known id)."""
    if row is None:
        raise GalleryError("the database returned no row")
    return row

# advisory lock keys (first int of the two-int form): "fb" + purpose
_LOCK_MIGRATE = 0x6662_0001
_LOCK_MODEL = 0x6662_0002
_LOCK_RUN = 0x6662_0003
_RETRIES = 5
PHOTO_KEYS = ("path", "sha256", "size_bytes", "width", "height", "status", "reason", "faces")
_PHOTO_COLUMNS = ("SELECT ph.path, ph.sha256, ph.size_bytes, ph.width, ph.height, ph.status, ph.reason,"
                  " (SELECT count(*) FROM faces f WHERE f.photo_id=ph.id) FROM photos ph")
_ISO = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"


def migrations() -> list[tuple[int, str]]:
    """Numbered migrations shipped in facebank/gallery/migrations_pg/NNNN_name.sql, in order."""
    folder = resources.files("facebank.gallery") / "migrations_pg"
    found = [(int(e.name.split("_", 1)[0]), e.read_text())
             for e in folder.iterdir() if e.name.endswith(".sql")]
    return sorted(found)


SCHEMA_VERSION = max(n for n, _ in migrations())


def vector_literal(vec: np.ndarray) -> str:
    """pgvector's text form of a float32 vector; every value round-trips exactly."""
    return "[" + ",".join(repr(float(v)) for v in np.asarray(vec, np.float32).ravel()) + "]"


_P = ParamSpec("_P")
_R = TypeVar("_R")
_S = TypeVar("_S")


def _retry_on_conflict(method: Callable[Concatenate[_S, _P], _R]) -> Callable[Concatenate[_S, _P], _R]:
    """Run a write again when PostgreSQL aborted it for a deadlock or a serialization failure."""
    @functools.wraps(method)
    def wrapper(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        from psycopg import errors

        for attempt in range(_RETRIES):
            try:
                return method(self, *args, **kwargs)
            except (errors.DeadlockDetected, errors.SerializationFailure) as exc:
                if attempt == _RETRIES - 1:
                    raise
                log.info("%s: %s; retrying", method.__name__, type(exc).__name__)
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")
    return wrapper


class PostgresGallery(PgCorrectionsMixin):
    def __init__(self, url: str, readonly: bool = False, ef_search: int = 100) -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise GalleryError("a postgresql:// gallery needs psycopg: pip install 'psycopg[binary]'"
                               ) from exc
        self.url = url
        self._lock = threading.RLock()
        try:
            self._db = psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise GalleryError(f"cannot connect to the gallery database {_redact(url)}: {exc}") from None
        self._callbacks: list[Callable[[], None]] = []
        self._my_runs: set[int] = set()
        self.ef_search = int(ef_search)
        if readonly:
            if self._schema_version() == 0:
                raise GalleryError(f"{_redact(url)} holds no facebank gallery")
        else:
            self._migrate()
        self.model_id: str | None = self._meta("model_id")
        # quality records and "not a face" boxes from schema 5 on (a read-only open of an older one)
        self._keeps_quality = self._schema_version() >= 5
        try:
            self._db.execute(f"SET hnsw.ef_search = {int(ef_search)}")
        except psycopg.Error:  # pgvector < 0.5 has no HNSW: searches are exact scans
            log.warning("pgvector without HNSW support: server-side search scans every face")

    # -- plumbing ---------------------------------------------------------------------------------
    def _schema_version(self) -> int:
        if _row(self._db.execute("SELECT to_regclass('schema_migrations')").fetchone())[0] is None:
            return 0
        return int(_row(self._db.execute(
            "SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone())[0])

    def _migrate(self) -> None:
        with self._lock, self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_MIGRATE,))
            current = self._schema_version()
            if current > SCHEMA_VERSION:
                raise GalleryError(
                    f"gallery {_redact(self.url)} has schema version {current}, newer than this facebank "
                    f"understands ({SCHEMA_VERSION}): upgrade facebank"
                )
            for number, sql in migrations():
                if number <= current:
                    continue
                log.info("migrating gallery %s to schema version %d", _redact(self.url), number)
                self._db.execute(sql)
                self._db.execute("INSERT INTO schema_migrations(version) VALUES (%s)", (number,))

    @contextmanager
    def _tx(self, what: str | None = None) -> Iterator[Any]:
        """One transaction (rolled back on any exception); ``what`` is logged in ``changes``."""
        with self._lock:
            try:
                with self._db.transaction():
                    yield self._db
                    if what is not None:
                        self._db.execute("INSERT INTO changes(what) VALUES (%s)", (what,))
            except BaseException:
                self.model_id = self._meta("model_id") if not self._db.closed else self.model_id
                raise

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=%s", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _person_id(self, name: str) -> int | None:
        """The id of ``name``, or of the person whose name differs from it only by case."""
        row = self._db.execute("SELECT id FROM people WHERE name=%s", (name,)).fetchone()
        if row:
            return int(row[0])
        key = name_key(name)
        for pid, other in self._db.execute("SELECT id, name FROM people"):
            if name_key(other) == key:
                return int(pid)
        return None

    def _name_of(self, pid: int) -> str:
        return str(_row(self._db.execute("SELECT name FROM people WHERE id=%s", (pid,)).fetchone())[0])

    def _changed(self) -> None:
        for cb in list(self._callbacks):
            cb()

    def on_change(self, callback: Callable[[], None]) -> None:
        """Called after each change made through this object (not by other machines)."""
        self._callbacks.append(callback)

    def close(self) -> None:
        with self._lock:
            if not self._db.closed:
                self._db.close()

    def __enter__(self) -> PostgresGallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def version(self) -> int:
        """A number that changes whenever the gallery's content changes (for index caches).

        Every write transaction adds one row to ``changes``; their count only grows, so a reader
        notices a transaction that committed late with a smaller id too."""
        with self._lock:
            row = _row(self._db.execute("SELECT count(*), coalesce(max(id), 0) FROM changes").fetchone())
        return hash((int(row[0]), int(row[1])))

    def check_model(self, model_id: str) -> None:
        if self.model_id is not None and self.model_id != model_id:
            raise ModelMismatch(
                f"gallery {_redact(self.url)} holds embeddings of model {self.model_id!r}; refusing to mix "
                f"in {model_id!r}. Use another gallery or the same embedder."
            )

    def _fix_model(self, model_id: str, dim: int) -> None:
        """Inside a transaction: check the model, or make it the gallery's model (first writer wins)."""
        stored = self._meta("model_id")
        if stored is None:
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_MODEL,))
            stored = self._meta("model_id")
        if stored is not None:
            self.model_id = stored
            self.check_model(model_id)
            stored_dim = self._meta("dim")
            if stored_dim is not None and dim and int(stored_dim) != dim:
                raise ModelMismatch(f"gallery embeddings have {stored_dim} dimensions, these {dim}")
            return
        self._db.execute("INSERT INTO meta(key, value) VALUES ('model_id', %s)", (model_id,))
        if dim:
            self._set_dim(dim)
        self.model_id = model_id

    def _set_dim(self, dim: int) -> None:
        self._db.execute("INSERT INTO meta(key, value) VALUES ('dim', %s) ON CONFLICT (key) DO NOTHING",
                         (str(dim),))
        self._db.execute(f"ALTER TABLE faces ALTER COLUMN embedding TYPE vector({int(dim)})")
        self.create_search_index()

    def create_search_index(self) -> None:
        """The HNSW index on the embeddings (once their dimension is known); a no-op if it exists."""
        if self._meta("dim") is None:
            return
        self._db.execute("CREATE INDEX IF NOT EXISTS faces_embedding_hnsw ON faces"
                         " USING hnsw (embedding vector_l2_ops)")

    def drop_search_index(self) -> None:
        """Drop the HNSW index, e.g. before loading very many faces (then ``create_search_index``)."""
        with self._lock:
            self._db.execute("DROP INDEX IF EXISTS faces_embedding_hnsw")

    # -- people -----------------------------------------------------------------------------------
    def people(self) -> list[PersonInfo]:
        with self._lock:
            rows = self._db.execute(
                "SELECT p.name, coalesce(f.photos, 0), coalesce(f.n, 0) FROM people p"
                " LEFT JOIN (SELECT person_id, count(DISTINCT photo_id) photos, count(*) n FROM faces"
                "   WHERE person_id IS NOT NULL GROUP BY person_id) f ON f.person_id=p.id"
                ' ORDER BY p.name COLLATE "C"'
            ).fetchall()
        return [PersonInfo(name, int(photos), int(faces)) for name, photos, faces in rows]

    def add_person(self, name: str) -> None:
        from psycopg import errors

        name = validate_name(name)
        try:
            with self._tx("add_person") as db:
                pid = self._person_id(name)
                if pid is not None:
                    other = db.execute("SELECT name FROM people WHERE id=%s", (pid,)).fetchone()[0]
                    raise PersonExists(taken_message(other))
                db.execute("INSERT INTO people(name) VALUES (%s)", (name,))
        except errors.UniqueViolation:
            raise PersonExists(f"{name!r} is already in the gallery") from None
        self._changed()

    def remove_person(self, name: str) -> int:
        """Remove a person with their photos and faces; returns the number of faces removed."""
        with self._tx("remove_person") as db:
            pid = self._person_id(name)
            if pid is None:
                raise PersonNotFound(f"no person named {name!r}")
            n = db.execute("SELECT count(*) FROM faces WHERE person_id=%s", (pid,)).fetchone()[0]
            db.execute("DELETE FROM people WHERE id=%s", (pid,))
        self._changed()
        return int(n)

    def rename_person(self, old: str, new: str) -> None:
        from psycopg import errors

        new = validate_name(new)
        try:
            with self._tx("rename_person") as db:
                pid = self._person_id(old)
                if pid is None:
                    raise PersonNotFound(f"no person named {old!r}")
                other = self._person_id(new)
                if other is not None and (other != pid or self._name_of(pid) == new):
                    raise PersonExists(taken_message(
                        db.execute("SELECT name FROM people WHERE id=%s", (other,)).fetchone()[0]))
                db.execute("UPDATE people SET name=%s WHERE id=%s", (new, pid))
        except errors.UniqueViolation:
            raise PersonExists(f"{new!r} is already in the gallery") from None
        self._changed()

    # -- photos and faces -------------------------------------------------------------------------
    def has_photo(self, sha256: str, model_id: str) -> bool:
        with self._lock:
            return self._db.execute(
                "SELECT 1 FROM photos WHERE sha256=%s AND model_id=%s", (sha256, model_id)
            ).fetchone() is not None

    def stored_photo(self, sha256: str, model_id: str) -> StoredPhoto | None:
        with self._lock:
            row = self._db.execute(
                "SELECT p.name, ph.path, ph.status, ph.reason, ph.run_id FROM photos ph LEFT JOIN people p"
                " ON p.id=ph.person_id WHERE ph.sha256=%s AND ph.model_id=%s", (sha256, model_id)
            ).fetchone()
        return StoredPhoto(*row) if row else None

    @_retry_on_conflict
    def add_photos(self, items: Sequence[tuple[PhotoRecord, Sequence[FaceRecord]]], model_id: str,
                   run_id: int | None = None) -> int:
        """Store photos with their faces in ONE transaction; returns the number of faces added.

        A photo already stored for this model (same sha256, by anyone) is left as it is.
        """
        items = list(items)
        names = sorted({validate_name(p.person) for p, _ in items if p.person is not None})
        # a fixed order of row locks (names, then sha256) keeps concurrent writers deadlock-free
        ordered = sorted(items, key=lambda it: it[0].sha256)
        dims = {int(np.asarray(f.embedding).size) for _, faces in items for f in faces}
        if len(dims) > 1:
            raise GalleryError(f"faces of several dimensions in one batch: {sorted(dims)}")
        dim = dims.pop() if dims else 0
        added = 0
        with self._tx("add_photos") as db:
            self._fix_model(model_id, dim)
            if dim and self._meta("dim") is None:  # model fixed by photos without faces so far
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_MODEL,))
                if self._meta("dim") is None:
                    self._set_dim(dim)
            pids = self._ensure_people(names)
            photo_ids = self._insert_photos(ordered, pids, model_id, run_id)
            rows, kept = [], []
            for (photo, faces), photo_id in zip(ordered, photo_ids, strict=True):
                if photo_id is None:
                    continue
                pid = None if photo.person is None else pids[validate_name(photo.person)]
                refused = self._not_faces(db, photo.sha256) if self._keeps_quality else []  # "not a face"
                for f in faces:
                    if any(box_overlap(f.box, b) >= NOT_FACE_OVERLAP for b in refused):
                        continue
                    kept.append(f)
                    vec = np.asarray(f.embedding, np.float32).ravel()
                    rows.append((photo_id, pid, *map(float, f.box),
                                 json.dumps(f.landmarks) if f.landmarks is not None else None,
                                 f.detector, float(f.detector_score), bool(f.fallback), model_id,
                                 int(vec.size), vector_literal(vec)))
            if rows:
                with db.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO faces(photo_id, person_id, x1, y1, x2, y2, landmarks, detector,"
                        " detector_score, fallback, model_id, dim, embedding)"
                        " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s::vector) RETURNING id", rows,
                        returning=True)
                    face_ids = []
                    while True:
                        face_ids.append(int(cur.fetchone()[0]))
                        if not cur.nextset():
                            break
                for face_id, f in zip(face_ids, kept, strict=True):
                    if self._keeps_quality:
                        self._store_quality(db, face_id, f)
                added = len(rows)
        self._changed()
        return added

    def _ensure_people(self, names: list[str]) -> dict[str, int]:
        """Ids of these people (creating the missing), locked against removal until commit."""
        if not names:
            return {}
        # names that differ only by case are one person: the spelling already stored is used
        stored = {name_key(n): n for (n,) in self._db.execute("SELECT name FROM people")}
        given = {n: stored.setdefault(name_key(n), n) for n in names}
        names = sorted(set(given.values()))
        found: dict[str, int] = {}
        for _ in range(_RETRIES):
            self._db.execute("INSERT INTO people(name) SELECT unnest(%s::text[]) ORDER BY 1"
                             " ON CONFLICT (name) DO NOTHING", (names,))
            found = dict(self._db.execute(
                'SELECT name, id FROM people WHERE name = ANY(%s) ORDER BY name COLLATE "C" FOR KEY SHARE',
                (names,)).fetchall())
            if len(found) == len(names):
                return {n: found[c] for n, c in given.items()}
        raise GalleryError(f"people {sorted(set(names) - set(found))} keep being removed while enrolling")

    def _insert_photos(self, ordered: Sequence[tuple[PhotoRecord, Sequence[FaceRecord]]],
                       pids: dict[str, int], model_id: str, run_id: int | None) -> list[int | None]:
        """Insert the photos (in this order); the new photo's id, or None where it was known."""
        if not ordered:
            return []
        with self._db.cursor() as cur:
            cur.executemany(
                "INSERT INTO photos(person_id, path, sha256, size_bytes, width, height, model_id, status,"
                " reason, run_id) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
                " ON CONFLICT (sha256, model_id) DO NOTHING RETURNING id",
                [(None if p.person is None else pids[validate_name(p.person)], p.path, p.sha256,
                  p.size_bytes, p.width, p.height, model_id, p.status, p.reason, run_id)
                 for p, _ in ordered],
                returning=True,
            )
            photo_ids: list[int | None] = []
            while True:
                row = cur.fetchone()
                photo_ids.append(row[0] if row else None)
                if not cur.nextset():
                    break
        return photo_ids

    def remove_photo(self, person: str, sha256: str) -> int:
        with self._tx("remove_photo") as db:
            pid = self._person_id(person)
            if pid is None:
                raise PersonNotFound(f"no person named {person!r}")
            row = db.execute("SELECT id FROM photos WHERE person_id=%s AND sha256=%s",
                             (pid, sha256)).fetchone()
            if row is None:
                raise GalleryError(f"{person!r} has no photo with sha256 {sha256}")
            n = db.execute("SELECT count(*) FROM faces WHERE photo_id=%s", (row[0],)).fetchone()[0]
            db.execute("DELETE FROM photos WHERE id=%s", (row[0],))
        self._changed()
        return int(n)

    def photos(self, person: str) -> list[dict[str, Any]]:
        with self._lock:
            pid = self._person_id(person)
            if pid is None:
                raise PersonNotFound(f"no person named {person!r}")
            rows = self._db.execute(
                _PHOTO_COLUMNS + " WHERE ph.person_id=%s OR ph.id IN (SELECT photo_id FROM faces"
                " WHERE person_id=%s) ORDER BY ph.id", (pid, pid)
            ).fetchall()
        return [dict(zip(PHOTO_KEYS, r, strict=True)) for r in rows]

    def problems(self) -> list[dict[str, Any]]:
        """Photos recorded without a usable face, with the reason (person None: a scanned photo)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT p.name, ph.path, ph.status, ph.reason FROM photos ph"
                " LEFT JOIN people p ON p.id=ph.person_id WHERE ph.status != 'ok' ORDER BY ph.id"
            ).fetchall()
        return [dict(person=a, path=b, status=c, reason=d) for a, b, c, d in rows]

    # -- unassigned faces, clusters, naming --------------------------------------------------------
    def _existing_person(self, name: str, lock: bool = False) -> int:
        pid = self._person_id(name)
        if pid is None:
            raise PersonNotFound(f"no person named {name!r}")
        if lock:
            self._db.execute("SELECT id FROM people WHERE id=%s FOR UPDATE", (pid,))
        return int(pid)

    def unassigned_faces(self) -> FaceSet:
        """Every face without a person, with its embedding and last cluster (-1: none)."""
        with self._lock, self._db.transaction():
            self._db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            dim_s = self._meta("dim")
            if dim_s is None:
                return FaceSet(np.zeros(0, np.int64), np.zeros((0, 0), np.float32), np.zeros(0, np.int64))
            data = bytearray()
            # faces flagged low quality or not a face form no cluster
            good = " AND id NOT IN (SELECT face_id FROM face_quality WHERE flag IS NOT NULL)" \
                if self._keeps_quality else ""
            with self._db.cursor() as cur, cur.copy(
                    "COPY (SELECT id, coalesce(cluster, -1), embedding FROM faces WHERE person_id IS NULL"
                    + good + " ORDER BY id) TO STDOUT (FORMAT BINARY)") as copy:
                for chunk in copy:
                    data += chunk
        rows = _copy_rows(bytes(data), int(dim_s))
        return FaceSet(rows["id"].astype(np.int64), rows["vec"].astype(np.float32),
                       rows["pid"].astype(np.int64))

    @_retry_on_conflict
    def set_clusters(self, labels: Mapping[int, int | None],
                     suggestions: Mapping[int, tuple[str, float]] | None = None) -> int:
        """Replace the clustering of the unassigned faces in ONE transaction.

        ``labels``: face id -> cluster id (None = alone); unassigned faces not in ``labels`` lose
        their cluster, faces that have a person are left alone. ``suggestions``: cluster id ->
        (person name, L2 distance). Returns the number of faces given a cluster."""
        suggestions = dict(suggestions or {})
        clusters = sorted({int(c) for c in labels.values() if c is not None})
        pairs = sorted((int(f), int(c)) for f, c in labels.items() if c is not None)
        with self._tx("set_clusters") as db:
            sugg = {c: (self._existing_person(n), float(d)) for c, (n, d) in suggestions.items()}
            db.execute("LOCK TABLE clusters IN EXCLUSIVE MODE")
            db.execute("UPDATE faces SET cluster=NULL WHERE cluster IS NOT NULL")
            db.execute("DELETE FROM clusters")
            n = 0
            with db.cursor() as cur:
                if clusters:
                    cur.executemany("INSERT INTO clusters(id, suggested_person_id, suggested_distance)"
                                    " VALUES (%s,%s,%s)", [(c, *sugg.get(c, (None, None))) for c in clusters])
                if pairs:
                    cur.execute("UPDATE faces f SET cluster=v.c FROM unnest(%s::bigint[], %s::bigint[])"
                                " AS v(id, c) WHERE f.id=v.id AND f.person_id IS NULL",
                                ([f for f, _ in pairs], [c for _, c in pairs]))
                    n = cur.rowcount
        self._changed()
        return int(n)

    def faces(self, *, person: str | None = None, cluster: int | None = None, unassigned: bool = False,
              face_ids: Sequence[int] | None = None) -> list[FaceInfo]:
        """Stored faces with their photos, by face id; every filter given must hold."""
        where: list[str] = []
        args: list[object] = []
        with self._lock:
            if person is not None:
                where.append("f.person_id=%s")
                args.append(self._existing_person(person))
            if cluster is not None:
                where.append("f.cluster=%s")
                args.append(int(cluster))
            if unassigned:
                where.append("f.person_id IS NULL")
            if face_ids is not None:
                where.append("f.id = ANY(%s::bigint[])")
                args.append([int(i) for i in face_ids])
            rows = self._db.execute(
                "SELECT f.id, ph.path, ph.sha256, f.x1, f.y1, f.x2, f.y2, p.name, f.cluster, s.name"
                " FROM faces f JOIN photos ph ON ph.id=f.photo_id LEFT JOIN people p ON p.id=f.person_id"
                " LEFT JOIN clusters c ON c.id=f.cluster LEFT JOIN people s ON s.id=c.suggested_person_id"
                + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY f.id", args
            ).fetchall()
        return [FaceInfo(int(r[0]), r[1], r[2], (float(r[3]), float(r[4]), float(r[5]), float(r[6])), r[7],
                         None if r[8] is None else int(r[8]), r[9]) for r in rows]

    @_retry_on_conflict
    def name_cluster(self, cluster: int, name: str) -> int:
        """Give every unassigned face of ``cluster`` to ``name`` (a new person, or merged into the
        person of that name) in ONE transaction; returns the number of faces named."""
        name = validate_name(name)
        with self._tx("name_cluster") as db:
            existed = self._person_id(name) is not None
            ids = [r[0] for r in db.execute("SELECT id FROM faces WHERE cluster=%s AND person_id IS NULL"
                                            " ORDER BY id FOR UPDATE", (int(cluster),))]
            if not ids:
                row = db.execute("SELECT p.name FROM named_clusters nc JOIN people p ON p.id=nc.person_id"
                                 " WHERE nc.cluster=%s", (int(cluster),)).fetchone()
                if row:
                    raise NotFound(f"cluster {cluster} was named {row[0]} (its faces are {row[0]}'s now)")
                raise NotFound(f"no cluster {cluster} (run 'facebank cluster' to list them)")
            before = self._faces_state(db, ids)
            pid = self._ensure_people([name])[name]
            barred = "id NOT IN (SELECT face_id FROM face_bars WHERE person_id=%s)"
            db.execute("DELETE FROM face_rejections WHERE person_id=%s AND face_id IN"
                       f" (SELECT id FROM faces WHERE cluster=%s AND person_id IS NULL AND {barred})",
                       (pid, int(cluster), pid))
            # a face taken out of this person before is never given back to them (it stays unnamed)
            n = db.execute("UPDATE faces SET person_id=%s, cluster=NULL"
                           f" WHERE cluster=%s AND person_id IS NULL AND {barred}",
                           (pid, int(cluster), pid)).rowcount
            db.execute("UPDATE faces SET cluster=NULL WHERE cluster=%s", (int(cluster),))
            db.execute("DELETE FROM clusters WHERE id=%s", (int(cluster),))
            db.execute("INSERT INTO named_clusters(cluster, person_id) VALUES (%s,%s)"
                       " ON CONFLICT (cluster) DO UPDATE SET person_id=excluded.person_id",
                       (int(cluster), pid))
            self._log(db, "name", f"name group #{cluster} {name}", before, self._faces_state(db, ids),
                      created=None if existed else name)
        self._changed()
        return int(n)

    @_retry_on_conflict
    def move_face(self, face_id: int, name: str | None) -> None:
        """Give one face to ``name`` (created if new), or take it out of its person (None: the
        face is unassigned again). A photo enrolled as someone's loses that label when its face
        goes to someone else: its faces then carry the names. ONE transaction."""
        if name is not None:
            name = validate_name(name)
        with self._tx("move_face") as db:
            row = db.execute("SELECT f.photo_id, f.person_id, ph.person_id FROM faces f JOIN photos ph"
                             " ON ph.id=f.photo_id WHERE f.id=%s FOR UPDATE", (int(face_id),)).fetchone()
            if row is None:
                raise NotFound(f"no face with id {face_id}")
            photo_id, old_person, photo_person = row
            before, photo_before = self._faces_state(db, [face_id]), self._photos_state(db, [photo_id])
            created = name if name is not None and self._person_id(name) is None else None
            pid = None if name is None else self._ensure_people([name])[name]
            added = self._remember_move(db, int(face_id), old_person, pid)
            db.execute("UPDATE faces SET person_id=%s, cluster=NULL WHERE id=%s", (pid, int(face_id)))
            db.execute("DELETE FROM face_rejections WHERE face_id=%s AND person_id=%s", (int(face_id), pid))
            if photo_person is not None and photo_person != pid:
                db.execute("UPDATE photos SET person_id=NULL WHERE id=%s", (photo_id,))
            self._log(db, "move" if name else "take_out",
                      f"face {face_id} to {name}" if name else f"take face {face_id} out", before,
                      self._faces_state(db, [face_id]), photos=list(photo_before.items()), created=created,
                      **added)
        self._changed()

    @_retry_on_conflict
    def merge_people(self, source: str, target: str) -> int:
        """Move every photo and face of ``source`` to ``target`` and remove ``source``, in ONE
        transaction; returns the number of faces moved."""
        with self._tx("merge_people") as db:
            first, second = sorted([source, target])  # a fixed lock order
            pids = {n: self._existing_person(n, lock=True) for n in (first, second)}
            src, dst = pids[source], pids[target]
            if src == dst:
                raise GalleryError(f"cannot merge {source!r} into itself")
            ids = [r[0] for r in db.execute("SELECT id FROM faces WHERE person_id=%s", (src,))]
            photo_ids = [r[0] for r in db.execute("SELECT id FROM photos WHERE person_id=%s", (src,))]
            before, photo_before = self._faces_state(db, ids), self._photos_state(db, photo_ids)
            source = self._name_of(src)
            n = db.execute("UPDATE faces SET person_id=%s WHERE person_id=%s", (dst, src)).rowcount
            db.execute("UPDATE photos SET person_id=%s WHERE person_id=%s", (dst, src))
            db.execute("INSERT INTO face_rejections(face_id, person_id) SELECT face_id, %s"
                       " FROM face_rejections WHERE person_id=%s ON CONFLICT DO NOTHING", (dst, src))
            db.execute("UPDATE clusters SET suggested_person_id=%s WHERE suggested_person_id=%s", (dst, src))
            db.execute("DELETE FROM people WHERE id=%s", (src,))
            self._log(db, "merge", f"merge {source} into {self._name_of(dst)}", before,
                      self._faces_state(db, ids), photos=list(photo_before.items()), removed=source)
        self._changed()
        return int(n)

    def photos_with(self, names: Sequence[str]) -> list[dict[str, Any]]:
        """Photos in which every one of ``names`` has a face (same keys as ``photos``)."""
        with self._lock:
            pids = sorted({self._existing_person(n) for n in names})
            if not pids:
                raise GalleryError("name at least one person")
            rows = self._db.execute(
                _PHOTO_COLUMNS + " WHERE ph.id IN (SELECT photo_id FROM faces WHERE person_id = ANY(%s)"
                " GROUP BY photo_id HAVING count(DISTINCT person_id)=%s)"
                ' ORDER BY ph.path COLLATE "C", ph.id',
                (pids, len(pids))).fetchall()
        return [dict(zip(PHOTO_KEYS, r, strict=True)) for r in rows]

    # -- rejections: "this face is not that person" (facebank.cluster.suggest) ----------------------
    @_retry_on_conflict
    def reject(self, face_ids: Sequence[int], name: str) -> int:
        """Record that every face of ``face_ids`` is not ``name`` (never suggested for them again), in
        ONE transaction; returns the number of new records. ``NotFound`` for a face id that does not
        exist, ``PersonNotFound`` for an unknown person (nothing is recorded then)."""
        ids = sorted({int(i) for i in face_ids})
        with self._tx("reject") as db:
            pid = self._existing_person(name)
            found = {int(r[0]) for r in db.execute("SELECT id FROM faces WHERE id = ANY(%s::bigint[])",
                                                   (ids,)).fetchall()}
            missing = [i for i in ids if i not in found]
            if missing:
                raise NotFound(f"no face with id {missing[0]}")
            n = db.execute("INSERT INTO face_rejections(face_id, person_id) SELECT f, %s FROM"
                           " unnest(%s::bigint[]) AS f ON CONFLICT DO NOTHING", (pid, ids)).rowcount
        self._changed()
        return int(n)

    def rejections(self, face_ids: Sequence[int] | None = None) -> dict[int, frozenset[str]]:
        """face id -> the people it was told it is not (only faces with any; ``face_ids``: only those)."""
        sql = "SELECT r.face_id, p.name FROM face_rejections r JOIN people p ON p.id=r.person_id"
        args: list[object] = []
        if face_ids is not None:
            ids = [int(i) for i in face_ids]
            if not ids:
                return {}
            sql += " WHERE r.face_id = ANY(%s::bigint[])"
            args.append(ids)
        out: dict[int, set[str]] = {}
        with self._lock:
            for f, name in self._db.execute(sql, args).fetchall():
                out.setdefault(int(f), set()).add(name)
        return {f: frozenset(v) for f, v in out.items()}

    # -- runs -------------------------------------------------------------------------------------
    def start_run(self, source: str, model_id: str, settings: str) -> int:
        """Record a new enrollment run; runs left 'running' by writers that are gone become
        'interrupted' (a live run holds an advisory lock for as long as its connection lives)."""
        self.check_model(model_id)
        with self._tx() as db:
            run_id = int(db.execute(
                "INSERT INTO runs(source, model_id, settings) VALUES (%s,%s,%s) RETURNING id",
                (source, model_id, settings)).fetchone()[0])
            # held from before the row is visible to other writers until finish_run (or disconnect)
            db.execute("SELECT pg_advisory_lock(%s, %s)", (_LOCK_RUN, _run_key(run_id)))
            self._my_runs.add(run_id)
            for (other,) in db.execute("SELECT id FROM runs WHERE status='running' AND id <> %s ORDER BY id",
                                       (run_id,)).fetchall():
                if other in self._my_runs:
                    gone = True
                    self._unlock_run(other)
                else:
                    gone = db.execute("SELECT pg_try_advisory_lock(%s, %s)", (_LOCK_RUN, _run_key(other))
                                      ).fetchone()[0]
                    if gone:
                        self._unlock_run(other)
                if gone:
                    db.execute("UPDATE runs SET status='interrupted' WHERE id=%s AND status='running'",
                               (other,))
        return run_id

    def _unlock_run(self, run_id: int) -> None:
        self._db.execute("SELECT pg_advisory_unlock(%s, %s)", (_LOCK_RUN, _run_key(run_id)))
        self._my_runs.discard(run_id)

    def finish_run(self, run_id: int, status: str, counts: dict[str, int]) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status=%s, finished_at=now(), photos_seen=%s, photos_enrolled=%s,"
                " faces_added=%s WHERE id=%s",
                (status, counts.get("photos_seen", 0), counts.get("photos_enrolled", 0),
                 counts.get("faces_added", 0), run_id),
            )
        if run_id in self._my_runs:
            with self._lock:
                self._unlock_run(run_id)

    def runs(self) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._db.execute(
                "SELECT id, source, model_id, settings, status, "
                + _ISO.format("started_at") + " AS started_at, " + _ISO.format("finished_at")
                + " AS finished_at, photos_seen, photos_enrolled, faces_added"
                " FROM runs ORDER BY id")
            cols = [c.name for c in cur.description or ()]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    # -- search data ------------------------------------------------------------------------------
    def embeddings(self) -> Embeddings:
        """All faces (one consistent snapshot), read with a binary COPY: ~1 s per million faces."""
        with self._lock, self._db.transaction():
            self._db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            dim_s = self._meta("dim")
            names: dict[int, str] = dict(self._db.execute("SELECT id, name FROM people").fetchall())
            if dim_s is None:
                return Embeddings(np.zeros((0, 0), np.float32), (), np.zeros(0, np.int64))
            data = bytearray()
            with self._db.cursor() as cur, cur.copy(
                    "COPY (SELECT id, person_id, embedding FROM faces WHERE person_id IS NOT NULL"
                    " ORDER BY id) TO STDOUT (FORMAT BINARY)"
            ) as copy:
                for chunk in copy:
                    data += chunk
        return _parse_copy(bytes(data), int(dim_s), names)

    def search(self, query: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest faces, found by the server (HNSW index): (face ids, L2 distances)."""
        lit = vector_literal(query)
        with self._lock:
            dim = self._meta("dim")
            if dim is None:
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            rows = self._db.execute(
                f"SELECT id, embedding <-> %s::vector({int(dim)}) FROM faces"
                f" ORDER BY embedding <-> %s::vector({int(dim)}) LIMIT %s", (lit, lit, int(k))).fetchall()
        return np.asarray([r[0] for r in rows], np.int64), np.asarray([r[1] for r in rows], np.float32)

    def integrity(self) -> list[str]:
        """Consistency problems (empty list when consistent)."""
        bad = []
        with self._lock:
            n = _row(self._db.execute(
                "SELECT count(*) FROM photos ph WHERE ph.status='ok' AND NOT EXISTS"
                " (SELECT 1 FROM faces f WHERE f.photo_id=ph.id)").fetchone())[0]
            if n:
                bad.append(f"{n} photos marked ok without a face")
            n = _row(self._db.execute("SELECT count(*) FROM faces f JOIN photos ph ON ph.id=f.photo_id"
                                 " WHERE ph.person_id IS NOT NULL AND f.person_id IS DISTINCT FROM"
                                 " ph.person_id").fetchone())[0]
            if n:
                bad.append(f"{n} faces of labelled photos filed under another person than their photo")
            models = {r[0] for r in self._db.execute("SELECT DISTINCT model_id FROM faces")}
            if len(models) > 1:
                bad.append(f"faces of several models: {sorted(models)}")
            dims = {r[0] for r in self._db.execute("SELECT DISTINCT vector_dims(embedding) FROM faces")}
            if len(dims) > 1:
                bad.append(f"embeddings of several dimensions: {sorted(dims)}")
        return bad


def _run_key(run_id: int) -> int:
    return int(run_id) % (2**31)


def _parse_copy(data: bytes, dim: int, names: dict[int, str]) -> Embeddings:
    """Rows (id int8, person_id int8, embedding vector(dim)) of a binary COPY, as arrays."""
    rows = _copy_rows(data, dim)
    if not len(rows):
        return Embeddings(np.zeros((0, 0), np.float32), (), np.zeros(0, np.int64))
    vectors = rows["vec"].astype(np.float32)
    pids = rows["pid"].astype(np.int64)
    return Embeddings(vectors, tuple(names[int(p)] for p in pids), rows["id"].astype(np.int64))


def _copy_rows(data: bytes, dim: int) -> np.ndarray:
    """Rows (int8 "id", int8 "pid", vector(dim) "vec") of a binary COPY, as a structured array."""
    header = 11 + 4 + 4 + int.from_bytes(data[15:19], "big")
    row = np.dtype([("nf", ">i2"), ("l1", ">i4"), ("id", ">i8"), ("l2", ">i4"), ("pid", ">i8"),
                    ("l3", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("vec", ">f4", (dim,))])
    body = data[header:-2]  # the trailer is int16 -1
    if len(body) % row.itemsize:
        raise GalleryError("unexpected COPY layout from the server (mixed embedding dimensions?)")
    rows = np.frombuffer(body, dtype=row)
    if len(rows) and (np.any(rows["nf"] != 3) or np.any(rows["dim"] != dim)):
        raise GalleryError("unexpected COPY layout from the server")
    return rows


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        pass
    return url
