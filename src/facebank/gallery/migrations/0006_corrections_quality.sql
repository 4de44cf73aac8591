-- facebank gallery schema, version 6 (issue 21): what the user said is kept, and how good each face is.
-- face_bars: a face taken out of a person never goes back to that person (cannot-link face-person).
-- face_apart: a face taken out of a cluster never joins those faces again (cannot-link face-face;
--   face_id is the face taken out, other_id a face of the cluster it left).
-- named_clusters: the cluster id a person was named from; a new cluster never takes it.
-- face_quality: one record per stored face (size, blur, pose, detector score) and its flag
--   (NULL = fine, 'low_quality', 'not_face'): flagged faces form no cluster.
-- not_faces: detections the user called "not a face": deleted, and never stored again for that
--   photo (sha256) and box (overlap), whatever rescans.
CREATE TABLE face_bars (
    face_id   INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    PRIMARY KEY (face_id, person_id)
);
CREATE TABLE face_apart (
    face_id  INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    other_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    PRIMARY KEY (face_id, other_id)
);
CREATE INDEX face_apart_other ON face_apart(other_id);
CREATE TABLE named_clusters (
    cluster   INTEGER PRIMARY KEY,
    person_id INTEGER REFERENCES people(id) ON DELETE SET NULL
);
CREATE TABLE face_quality (
    face_id        INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
    size_px        REAL NOT NULL,      -- shorter side of the box, photo pixels
    blur           REAL,               -- 0 sharp .. 1 no detail (audit.quality.blur_ratio on the chip)
    yaw_deg        REAL,               -- head turn from the landmarks (0 frontal)
    detector_score REAL NOT NULL,
    flag           TEXT                -- NULL | low_quality | not_face
);
CREATE TABLE not_faces (
    id     INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL,
    x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX not_faces_sha ON not_faces(sha256);
-- person_covers: the face the user chose to show for a person (none: the best-quality face nearest
--   the person's centre). hidden_people / hidden_clusters: still recognised, just not listed.
CREATE TABLE person_covers (
    person_id INTEGER PRIMARY KEY REFERENCES people(id) ON DELETE CASCADE,
    face_id   INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE
);
CREATE TABLE hidden_people (
    person_id INTEGER PRIMARY KEY REFERENCES people(id) ON DELETE CASCADE
);
CREATE TABLE hidden_clusters (
    cluster INTEGER PRIMARY KEY
);
-- action_log: every naming action of the user (name, move, merge, take out, hide, cover) with what it
--   changed (JSON: faces' person and cluster before and after, photos, people made or removed,
--   constraints added), so the last ones can be undone; an undo a later change conflicts with is
--   refused and changes nothing.
CREATE TABLE action_log (
    id       INTEGER PRIMARY KEY,
    kind     TEXT NOT NULL,              -- name | move | take_out | merge | hide | cover
    summary  TEXT NOT NULL,
    payload  TEXT NOT NULL,
    undone   INTEGER NOT NULL DEFAULT 0,
    at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
-- photo_dates: when a photo was taken, for a person's timeline: EXIF DateTimeOriginal (or
--   DateTime) read after a scan, else the file's modification time; taken_at NULL when the file is
--   gone (source 'none').
CREATE TABLE photo_dates (
    photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
    taken_at TEXT,                       -- ISO 8601, local time of the camera (no zone)
    source   TEXT NOT NULL               -- exif | file | none
);
