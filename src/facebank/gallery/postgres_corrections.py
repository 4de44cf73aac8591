"""PostgresGallery's part for issue 21, as ``facebank.gallery.sqlite_corrections`` is SqliteGallery's:
corrections kept as constraints (a face taken out of a person is barred from them, out of a cluster
kept apart from its faces, named cluster ids never reused), face quality records, "not a face",
covers, hiding, the action log and undo, bulk move, photo dates and a person's timeline. The same
behaviour on the same tables (migrations_pg/0005_corrections_quality.sql)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from facebank.gallery.base import FaceRecord, GalleryError, NotFound, PersonNotFound
from facebank.gallery.sqlite_corrections import UndoConflict


class PgCorrectionsMixin:
    """What the user said, kept (PostgreSQL). Used by ``PostgresGallery``; every write is ONE
    transaction (``self._tx``)."""

    _db: Any

    # -- constraints --------------------------------------------------------------------------------
    def _remember_move(self, db: Any, face_id: int, old_person: int | None,
                       new_person: int | None) -> dict[str, list[Any]]:
        """Constraints of one move (as SQLite's): out of a person -> barred from them; out of a cluster
        -> apart from its faces; given to a person -> any bar from that person is lifted."""
        added: dict[str, list[Any]] = {"bars": [], "apart": []}
        if new_person is not None:
            db.execute("DELETE FROM face_bars WHERE face_id=%s AND person_id=%s", (face_id, new_person))
        if old_person is not None and old_person != new_person and db.execute(
                "INSERT INTO face_bars(face_id, person_id) VALUES (%s,%s) ON CONFLICT DO NOTHING",
                (face_id, old_person)).rowcount:
            added["bars"].append([face_id, self._name_of(old_person)])  # type: ignore[attr-defined]
        if old_person is None:
            row = db.execute("SELECT cluster FROM faces WHERE id=%s", (face_id,)).fetchone()
            if row and row[0] is not None:
                rows = db.execute(
                    "INSERT INTO face_apart(face_id, other_id) SELECT %s, id FROM faces WHERE cluster=%s"
                    " AND person_id IS NULL AND id != %s ON CONFLICT DO NOTHING RETURNING other_id",
                    (face_id, row[0], face_id)).fetchall()
                added["apart"] += [[face_id, int(r[0])] for r in rows]
        return added

    def cannot_link(self) -> list[tuple[int, int]]:
        """(face taken out, face of the cluster it left): pairs that never share a cluster."""
        with self._lock:  # type: ignore[attr-defined]
            return [(int(a), int(b)) for a, b in self._db.execute("SELECT face_id, other_id FROM face_apart")]

    def barred(self, face_id: int) -> list[str]:
        """The people ``face_id`` was taken out of (it is never given back to them)."""
        with self._lock:  # type: ignore[attr-defined]
            return [r[0] for r in self._db.execute(
                "SELECT p.name FROM face_bars b JOIN people p ON p.id=b.person_id WHERE b.face_id=%s"
                ' ORDER BY p.name COLLATE "C"', (int(face_id),))]

    def named_cluster_ids(self) -> dict[int, str | None]:
        """Cluster id -> the person it was named (None: that person is gone); ids never reused."""
        with self._lock:  # type: ignore[attr-defined]
            return {int(c): n for c, n in self._db.execute(
                "SELECT nc.cluster, p.name FROM named_clusters nc LEFT JOIN people p ON p.id=nc.person_id")}

    # -- quality and "not a face" ---------------------------------------------------------------------
    def _store_quality(self, db: Any, face_id: int, f: FaceRecord) -> None:
        q = f.quality
        if q is None:
            return
        db.execute("INSERT INTO face_quality(face_id, size_px, blur, yaw_deg, detector_score, flag)"
                   " VALUES (%s,%s,%s,%s,%s,%s)",
                   (face_id, q.size_px, q.blur, q.yaw_deg, q.detector_score, q.flag))

    def _not_faces(self, db: Any, sha256: str) -> list[tuple[float, float, float, float]]:
        rows = db.execute("SELECT x1, y1, x2, y2 FROM not_faces WHERE sha256=%s", (sha256,))
        return [tuple(r) for r in rows]

    def quality(self, face_id: int) -> dict[str, Any] | None:
        """The quality record of a face (None: stored before records were kept)."""
        with self._lock:  # type: ignore[attr-defined]
            row = self._db.execute("SELECT size_px, blur, yaw_deg, detector_score, flag FROM face_quality"
                                   " WHERE face_id=%s", (int(face_id),)).fetchone()
        keys = ("size_px", "blur", "yaw_deg", "detector_score", "flag")
        return None if row is None else dict(zip(keys, row, strict=True))

    def flagged_faces(self) -> dict[int, str]:
        """Unassigned faces flagged 'low_quality' or 'not_face' (kept, in no cluster), by face id."""
        with self._lock:  # type: ignore[attr-defined]
            return {int(a): b for a, b in self._db.execute(
                "SELECT q.face_id, q.flag FROM face_quality q JOIN faces f ON f.id=q.face_id"
                " WHERE q.flag IS NOT NULL AND f.person_id IS NULL ORDER BY q.face_id")}

    def not_a_face(self, face_id: int) -> None:
        """Delete the detection ``face_id`` for good: its photo (by sha256) never stores a face on
        that box again, whatever rescans. ONE transaction."""
        with self._tx("not_a_face") as db:  # type: ignore[attr-defined]
            row = db.execute("SELECT ph.sha256, f.x1, f.y1, f.x2, f.y2, f.photo_id FROM faces f"
                             " JOIN photos ph"
                             " ON ph.id=f.photo_id WHERE f.id=%s FOR UPDATE", (int(face_id),)).fetchone()
            if row is None:
                raise NotFound(f"no face with id {face_id}")
            db.execute("INSERT INTO not_faces(sha256, x1, y1, x2, y2) VALUES (%s,%s,%s,%s,%s)", row[:5])
            db.execute("DELETE FROM faces WHERE id=%s", (int(face_id),))
            if not db.execute("SELECT 1 FROM faces WHERE photo_id=%s", (row[5],)).fetchone():
                db.execute("UPDATE photos SET status='no_face', reason='not a face (said by the user)'"
                           " WHERE id=%s", (row[5],))
        self._changed()  # type: ignore[attr-defined]

    # -- covers and hiding ------------------------------------------------------------------------------
    def _pid(self, name: str) -> int:
        pid = self._person_id(name)  # type: ignore[attr-defined]
        if pid is None:
            raise PersonNotFound(f"no person named {name!r}")
        return int(pid)

    def cover_face(self, name: str) -> int | None:
        """The face shown for ``name``: the one the user chose, else the best-quality face nearest
        the person's centre (as SQLite's). None: the person has no face."""
        with self._lock:  # type: ignore[attr-defined]
            pid = self._pid(name)
            row = self._db.execute("SELECT face_id FROM person_covers WHERE person_id=%s", (pid,)).fetchone()
            if row:
                return int(row[0])
            rows = self._db.execute(
                "SELECT f.id, f.embedding::real[], q.flag, q.blur FROM faces f"
                " LEFT JOIN face_quality q ON q.face_id=f.id WHERE f.person_id=%s ORDER BY f.id",
                (pid,)).fetchall()
        if not rows:
            return None
        vecs = np.asarray([r[1] for r in rows], np.float32)
        dist = np.linalg.norm(vecs - vecs.mean(axis=0), axis=1)
        blur = np.asarray([r[3] if r[3] is not None else 0.5 for r in rows], np.float64)
        key = [(r[2] is not None, float(d + 0.25 * b)) for r, d, b in zip(rows, dist, blur, strict=True)]
        return int(rows[min(range(len(rows)), key=key.__getitem__)][0])

    def set_cover(self, name: str, face_id: int | None) -> None:
        """Show ``face_id`` (a face of ``name``) for ``name``; None: back to the default cover."""
        with self._tx("set_cover") as db:  # type: ignore[attr-defined]
            pid = self._pid(name)
            row = db.execute("SELECT face_id FROM person_covers WHERE person_id=%s", (pid,)).fetchone()
            was = row[0] if row else None
            self._log(db, "cover", f"cover of {name}: face {face_id}" if face_id is not None
                      else f"default cover of {name}", {}, {}, cover=[name, was, face_id])
            if face_id is None:
                db.execute("DELETE FROM person_covers WHERE person_id=%s", (pid,))
            else:
                row = db.execute("SELECT person_id FROM faces WHERE id=%s", (int(face_id),)).fetchone()
                if row is None:
                    raise NotFound(f"no face with id {face_id}")
                if row[0] != pid:
                    raise GalleryError(f"face {face_id} is not {name}'s")
                db.execute("INSERT INTO person_covers(person_id, face_id) VALUES (%s,%s)"
                           " ON CONFLICT (person_id) DO UPDATE SET face_id=excluded.face_id",
                           (pid, int(face_id)))
        self._changed()  # type: ignore[attr-defined]

    def hide_person(self, name: str, hidden: bool = True) -> None:
        """Hide ``name`` from the listings (still recognised), or show them again."""
        with self._tx("hide_person") as db:  # type: ignore[attr-defined]
            pid = self._pid(name)
            was = db.execute("SELECT 1 FROM hidden_people WHERE person_id=%s", (pid,)).fetchone() is not None
            self._log(db, "hide", f"{'hide' if hidden else 'show'} {name}", {}, {},
                      hidden=[name, was, hidden])
            if hidden:
                db.execute("INSERT INTO hidden_people(person_id) VALUES (%s) ON CONFLICT DO NOTHING", (pid,))
            else:
                db.execute("DELETE FROM hidden_people WHERE person_id=%s", (pid,))
        self._changed()  # type: ignore[attr-defined]

    def hide_cluster(self, cluster: int, hidden: bool = True) -> None:
        """Hide a cluster of unnamed faces from the listings, or show it again."""
        with self._tx("hide_cluster") as db:  # type: ignore[attr-defined]
            if not db.execute("SELECT 1 FROM faces WHERE cluster=%s AND person_id IS NULL",
                              (int(cluster),)).fetchone():
                raise NotFound(f"no cluster {cluster} (run 'facebank cluster' to list them)")
            was = db.execute("SELECT 1 FROM hidden_clusters WHERE cluster=%s", (int(cluster),)).fetchone()
            self._log(db, "hide", f"{'hide' if hidden else 'show'} group #{cluster}", {}, {},
                      hidden_cluster=[int(cluster), was is not None, hidden])
            if hidden:
                db.execute("INSERT INTO hidden_clusters(cluster) VALUES (%s) ON CONFLICT DO NOTHING",
                           (int(cluster),))
            else:
                db.execute("DELETE FROM hidden_clusters WHERE cluster=%s", (int(cluster),))
        self._changed()  # type: ignore[attr-defined]

    def hidden(self) -> tuple[set[str], set[int]]:
        """(names of hidden people, ids of hidden clusters)."""
        with self._lock:  # type: ignore[attr-defined]
            people = {r[0] for r in self._db.execute(
                "SELECT p.name FROM hidden_people h JOIN people p ON p.id=h.person_id")}
            return people, {int(r[0]) for r in self._db.execute("SELECT cluster FROM hidden_clusters")}

    # -- the action log and undo --------------------------------------------------------------------------
    def _faces_state(self, db: Any, face_ids: Sequence[int]) -> dict[int, tuple[str | None, int | None]]:
        """face id -> (person name, cluster) now."""
        ids = [int(i) for i in face_ids]
        if not ids:
            return {}
        rows = db.execute("SELECT f.id, p.name, f.cluster FROM faces f LEFT JOIN people p ON p.id=f.person_id"
                          " WHERE f.id = ANY(%s::bigint[])", (ids,))
        return {int(fid): (name, None if cluster is None else int(cluster)) for fid, name, cluster in rows}

    def _photos_state(self, db: Any, photo_ids: Sequence[int]) -> dict[int, str | None]:
        ids = [int(i) for i in photo_ids]
        if not ids:
            return {}
        return {int(a): b for a, b in db.execute(
            "SELECT ph.id, p.name FROM photos ph LEFT JOIN people p ON p.id=ph.person_id"
            " WHERE ph.id = ANY(%s::bigint[])", (ids,))}

    def _log(self, db: Any, kind: str, summary: str, before: dict[int, tuple[str | None, int | None]],
             after: dict[int, tuple[str | None, int | None]], **extra: object) -> None:
        """Record one action: faces' (person, cluster) before and person after, plus ``extra``."""
        faces = [[fid, b[0], b[1], after.get(fid, (None, None))[0]] for fid, b in before.items()]
        db.execute("INSERT INTO action_log(kind, summary, payload) VALUES (%s,%s,%s::jsonb)",
                   (kind, summary, json.dumps({"faces": faces, **extra})))

    def actions(self, limit: int = 20) -> list[dict[str, Any]]:
        """The last actions that can be undone, newest first: id, kind, summary, at."""
        with self._lock:  # type: ignore[attr-defined]
            return [dict(id=int(a), kind=b, summary=c, at=d) for a, b, c, d in self._db.execute(
                "SELECT id, kind, summary, at FROM action_log WHERE NOT undone ORDER BY id DESC LIMIT %s",
                (int(limit),))]

    def undo(self, steps: int = 1) -> list[str]:
        """Undo the last ``steps`` actions, newest first, in ONE transaction: all or nothing.
        UndoConflict when a later change touched what an action changed (nothing is changed);
        NotFound when there are fewer actions to undo. Returns the summaries undone."""
        done = []
        with self._tx("undo") as db:  # type: ignore[attr-defined]
            db.execute("LOCK TABLE action_log IN EXCLUSIVE MODE")  # two undos at once: one after the other
            rows = db.execute("SELECT id, kind, summary, payload FROM action_log WHERE NOT undone"
                              " ORDER BY id DESC LIMIT %s", (int(steps),)).fetchall()
            if len(rows) < steps or not rows:
                raise NotFound(f"nothing to undo ({len(rows)} action(s) left)" if rows else "nothing to undo")
            for aid, _kind, summary, payload in rows:
                self._undo_one(db, summary, payload)
                db.execute("UPDATE action_log SET undone=true WHERE id=%s", (aid,))
                done.append(summary)
        self._changed()  # type: ignore[attr-defined]
        return done

    def _undo_one(self, db: Any, summary: str, p: dict[str, Any]) -> None:  # noqa: C901 - one check per record kind
        def conflict(why: str) -> UndoConflict:
            return UndoConflict(f"cannot undo '{summary}': {why}")

        def pid(name: str | None) -> int | None:
            if name is None:
                return None
            found = self._person_id(name)  # type: ignore[attr-defined]
            if found is None:
                found = db.execute("INSERT INTO people(name) VALUES (%s) RETURNING id", (name,)).fetchone()[0]
            return int(found)

        if p.get("removed") is not None and self._person_id(p["removed"]) is not None:  # type: ignore[attr-defined]
            raise conflict(f"a person named {p['removed']!r} exists again")
        now = self._faces_state(db, [f[0] for f in p["faces"]])
        for fid, _, _, after in p["faces"]:
            if fid not in now:
                raise conflict(f"face {fid} is gone")
            if now[fid][0] != after:
                raise conflict(f"face {fid} was changed since (now {now[fid][0] or 'unnamed'})")
        hidden_people, hidden_clusters = self.hidden()
        if "hidden" in p and (p["hidden"][0] in hidden_people) != p["hidden"][2]:
            raise conflict(f"{p['hidden'][0]} was shown or hidden since")
        if "hidden_cluster" in p and (p["hidden_cluster"][0] in hidden_clusters) != p["hidden_cluster"][2]:
            raise conflict(f"group {p['hidden_cluster'][0]} was shown or hidden since")
        if "cover" in p:
            name, was, became = p["cover"]
            row = db.execute("SELECT face_id FROM person_covers c JOIN people p ON p.id=c.person_id"
                             " WHERE p.name=%s", (name,)).fetchone()
            if (row[0] if row else None) != became:
                raise conflict(f"{name}'s cover was changed since")
        # no conflict: put everything back
        for fid, before, cluster, _ in p["faces"]:
            if cluster is not None:
                db.execute("INSERT INTO clusters(id) VALUES (%s) ON CONFLICT DO NOTHING", (int(cluster),))
                db.execute("DELETE FROM named_clusters WHERE cluster=%s", (int(cluster),))
            db.execute("UPDATE faces SET person_id=%s, cluster=%s WHERE id=%s", (pid(before), cluster, fid))
        for photo_id, before in p.get("photos", []):
            db.execute("UPDATE photos SET person_id=%s WHERE id=%s", (pid(before), photo_id))
        for fid, name in p.get("bars", []):
            db.execute("DELETE FROM face_bars WHERE face_id=%s AND person_id="
                       "(SELECT id FROM people WHERE name=%s)", (fid, name))
        for a, b in p.get("apart", []):
            db.execute("DELETE FROM face_apart WHERE face_id=%s AND other_id=%s", (a, b))
        if "hidden" in p:
            name, was, _ = p["hidden"]
            if was:
                db.execute("INSERT INTO hidden_people(person_id) VALUES (%s) ON CONFLICT DO NOTHING",
                           (pid(name),))
            else:
                db.execute("DELETE FROM hidden_people WHERE person_id=(SELECT id FROM people WHERE name=%s)",
                           (name,))
        if "hidden_cluster" in p:
            cluster, was, _ = p["hidden_cluster"]
            if was:
                db.execute("INSERT INTO hidden_clusters(cluster) VALUES (%s) ON CONFLICT DO NOTHING",
                           (cluster,))
            else:
                db.execute("DELETE FROM hidden_clusters WHERE cluster=%s", (cluster,))
        if "cover" in p:
            name, was, _ = p["cover"]
            if was is None:
                db.execute("DELETE FROM person_covers WHERE person_id=(SELECT id FROM people WHERE name=%s)",
                           (name,))
            else:
                db.execute("INSERT INTO person_covers(person_id, face_id) VALUES (%s,%s)"
                           " ON CONFLICT (person_id) DO UPDATE SET face_id=excluded.face_id",
                           (pid(name), was))
        created = p.get("created")
        if created is not None and not db.execute(
                "SELECT 1 FROM faces f JOIN people p ON p.id=f.person_id WHERE p.name=%s UNION ALL"
                " SELECT 1 FROM photos ph JOIN people p ON p.id=ph.person_id WHERE p.name=%s",
                (created, created)).fetchone():
            db.execute("DELETE FROM people WHERE name=%s", (created,))

    # -- bulk move ----------------------------------------------------------------------------------------
    def move_faces(self, face_ids: Sequence[int], name: str | None) -> int:
        """``move_face`` for many faces in ONE transaction and one undoable action: all or nothing
        (NotFound naming the first face that does not exist). Returns the number of faces moved."""
        ids = sorted({int(i) for i in face_ids})
        if not ids:
            raise GalleryError("no face to move")
        with self._tx("move_faces") as db:  # type: ignore[attr-defined]
            rows = {int(r[0]): r[1:] for r in db.execute(
                "SELECT f.id, f.photo_id, f.person_id, ph.person_id FROM faces f JOIN photos ph"
                " ON ph.id=f.photo_id WHERE f.id = ANY(%s::bigint[]) ORDER BY f.id FOR UPDATE OF f", (ids,))}
            missing = [i for i in ids if i not in rows]
            if missing:
                raise NotFound(f"no face with id {missing[0]}")
            photo_ids = sorted({r[0] for r in rows.values()})
            before, photo_before = self._faces_state(db, ids), self._photos_state(db, photo_ids)
            created = name if name is not None and self._person_id(name) is None else None  # type: ignore[attr-defined]
            pid = None if name is None else self._ensure_people([name])[name]  # type: ignore[attr-defined]
            added: dict[str, list[Any]] = {"bars": [], "apart": []}
            for fid in ids:
                for k, v in self._remember_move(db, fid, rows[fid][1], pid).items():
                    added[k] += v
            db.execute("UPDATE faces SET person_id=%s, cluster=NULL WHERE id = ANY(%s::bigint[])", (pid, ids))
            if pid is not None:
                db.execute("DELETE FROM face_rejections WHERE person_id=%s AND face_id = ANY(%s::bigint[])",
                           (pid, ids))
            for photo_id, _, photo_person in rows.values():
                if photo_person is not None and photo_person != pid:
                    db.execute("UPDATE photos SET person_id=NULL WHERE id=%s", (photo_id,))
            self._log(db, "move" if name else "take_out",
                      f"{len(ids)} faces to {name}" if name else f"take {len(ids)} faces out", before,
                      self._faces_state(db, ids), photos=list(photo_before.items()), created=created, **added)
        self._changed()  # type: ignore[attr-defined]
        return len(ids)

    # -- photo dates and a person's timeline ------------------------------------------------------------
    def undated_photos(self, limit: int = 100_000) -> list[tuple[int, str]]:
        """(photo id, path) of photos with no date record yet."""
        with self._lock:  # type: ignore[attr-defined]
            return [(int(a), b) for a, b in self._db.execute(
                "SELECT id, path FROM photos WHERE id NOT IN (SELECT photo_id FROM photo_dates) ORDER BY id"
                " LIMIT %s", (int(limit),))]

    def set_photo_dates(self, dates: Sequence[tuple[int, str | None, str]]) -> None:
        with self._tx("set_photo_dates") as db, db.cursor() as cur:  # type: ignore[attr-defined]
            cur.executemany("INSERT INTO photo_dates(photo_id, taken_at, source) VALUES (%s,%s,%s)"
                            " ON CONFLICT (photo_id) DO UPDATE SET taken_at=excluded.taken_at,"
                            " source=excluded.source", [(int(p), t, s) for p, t, s in dates])
        self._changed()  # type: ignore[attr-defined]

    def timeline(self, name: str) -> list[dict[str, Any]]:
        """The photos in which ``name`` has a face, oldest first (undated last): sha256, taken_at,
        source of the date, width, height."""
        with self._lock:  # type: ignore[attr-defined]
            pid = self._pid(name)
            rows = self._db.execute(
                "SELECT ph.sha256, d.taken_at, coalesce(d.source, 'none'), ph.width, ph.height FROM photos ph"
                " LEFT JOIN photo_dates d ON d.photo_id=ph.id WHERE ph.id IN"
                " (SELECT photo_id FROM faces WHERE person_id=%s)"
                " ORDER BY d.taken_at IS NULL, d.taken_at, ph.id", (pid,)).fetchall()
        return [dict(sha256=a, taken_at=b, source=c, width=d, height=e) for a, b, c, d, e in rows]
