"""SqliteGallery's part for issue 21 (a module of its own: other work changes the connection code):
corrections kept as constraints, face quality records, "not a face"."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from facebank.gallery.base import FaceRecord, NotFound

# ---- issue 21: corrections kept as constraints, face quality, "not a face" ----------------------
NOT_FACE_OVERLAP = 0.5  # a new detection this much over a box the user called "not a face" is it


def box_overlap(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two [x1, y1, x2, y2] boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, w) * max(0.0, h)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class CorrectionsMixin:
    """What the user said, kept: a face taken out of a person is barred from that person, a face
    taken out of a cluster is kept apart from the faces it left, named clusters keep their ids,
    "not a face" deletes a detection for good. Used by ``SqliteGallery``."""

    _db: sqlite3.Connection

    def _remember_move(self, db: sqlite3.Connection, face_id: int, old_person: int | None,
                       new_person: int | None) -> None:
        """Constraints of one move: out of a person -> barred from them; out of a cluster -> apart
        from its faces; given to a person -> any bar from that person is lifted (the user's word)."""
        if new_person is not None:
            db.execute("DELETE FROM face_bars WHERE face_id=? AND person_id=?", (face_id, new_person))
        if old_person is not None and old_person != new_person:
            db.execute("INSERT OR IGNORE INTO face_bars(face_id, person_id) VALUES (?,?)",
                       (face_id, old_person))
        if old_person is None:
            row = db.execute("SELECT cluster FROM faces WHERE id=?", (face_id,)).fetchone()
            if row and row[0] is not None:
                db.execute("INSERT OR IGNORE INTO face_apart(face_id, other_id) SELECT ?, id FROM faces"
                           " WHERE cluster=? AND person_id IS NULL AND id != ?", (face_id, row[0], face_id))

    def cannot_link(self) -> list[tuple[int, int]]:
        """(face taken out, face of the cluster it left): pairs that never share a cluster."""
        return [(int(a), int(b)) for a, b in self._db.execute("SELECT face_id, other_id FROM face_apart")]

    def barred(self, face_id: int) -> list[str]:
        """The people ``face_id`` was taken out of (it is never given back to them)."""
        return [r[0] for r in self._db.execute(
            "SELECT p.name FROM face_bars b JOIN people p ON p.id=b.person_id WHERE b.face_id=?"
            " ORDER BY p.name", (int(face_id),))]

    def named_cluster_ids(self) -> dict[int, str | None]:
        """Cluster id -> the person it was named (None: that person is gone); ids never reused."""
        return {int(c): n for c, n in self._db.execute(
            "SELECT nc.cluster, p.name FROM named_clusters nc LEFT JOIN people p ON p.id=nc.person_id")}

    def _store_quality(self, db: sqlite3.Connection, face_id: int, f: FaceRecord) -> None:
        q = f.quality
        if q is None:
            return
        db.execute("INSERT INTO face_quality(face_id, size_px, blur, yaw_deg, detector_score, flag)"
                   " VALUES (?,?,?,?,?,?)", (face_id, q.size_px, q.blur, q.yaw_deg, q.detector_score, q.flag))

    def _not_faces(self, db: sqlite3.Connection, sha256: str) -> list[tuple[float, float, float, float]]:
        rows = db.execute("SELECT x1, y1, x2, y2 FROM not_faces WHERE sha256=?", (sha256,))
        return [tuple(r) for r in rows]

    def quality(self, face_id: int) -> dict | None:
        """The quality record of a face (None: stored before records were kept)."""
        cur = self._db.execute("SELECT size_px, blur, yaw_deg, detector_score, flag FROM face_quality"
                               " WHERE face_id=?", (int(face_id),))
        row = cur.fetchone()
        return None if row is None else dict(zip([c[0] for c in cur.description], row, strict=True))

    def flagged_faces(self) -> dict[int, str]:
        """Unassigned faces flagged 'low_quality' or 'not_face' (kept, in no cluster), by face id."""
        return {int(a): b for a, b in self._db.execute(
            "SELECT q.face_id, q.flag FROM face_quality q JOIN faces f ON f.id=q.face_id"
            " WHERE q.flag IS NOT NULL AND f.person_id IS NULL ORDER BY q.face_id")}

    def not_a_face(self, face_id: int) -> None:
        """Delete the detection ``face_id`` for good: its photo (by sha256) never stores a face on
        that box again, whatever rescans. ONE transaction."""
        with self._tx() as db:  # type: ignore[attr-defined]
            row = db.execute("SELECT ph.sha256, f.x1, f.y1, f.x2, f.y2 FROM faces f JOIN photos ph"
                             " ON ph.id=f.photo_id WHERE f.id=?", (int(face_id),)).fetchone()
            if row is None:
                raise NotFound(f"no face with id {face_id}")
            db.execute("INSERT INTO not_faces(sha256, x1, y1, x2, y2) VALUES (?,?,?,?,?)", row)
            photo = db.execute("SELECT photo_id FROM faces WHERE id=?", (int(face_id),)).fetchone()[0]
            db.execute("DELETE FROM faces WHERE id=?", (int(face_id),))
            if not db.execute("SELECT 1 FROM faces WHERE photo_id=?", (photo,)).fetchone():
                db.execute("UPDATE photos SET status='no_face', reason='not a face (said by the user)'"
                           " WHERE id=?", (photo,))
        self._changed()  # type: ignore[attr-defined]


