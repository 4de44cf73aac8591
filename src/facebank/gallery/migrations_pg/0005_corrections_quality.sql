-- facebank shared gallery schema, version 5 (issue 21): what the user said is kept, and how good each
-- face is; the same tables as the SQLite gallery's migration 0006 (see its comments).
-- face_bars: a face taken out of a person never goes back to that person (cannot-link face-person).
-- face_apart: a face taken out of a cluster never joins those faces again (face_id taken out,
--   other_id a face of the cluster it left).
-- named_clusters: the cluster id a person was named from; a new cluster never takes it.
-- face_quality: one record per stored face and its flag (NULL, 'low_quality', 'not_face').
-- not_faces: detections the user called "not a face": never stored again for that photo and box.
-- person_covers, hidden_people, hidden_clusters: the face shown for a person; hidden from listings.
-- action_log: the user's naming actions with what they changed (JSON), for undo.
-- photo_dates: when a photo was taken (EXIF, else the file's time; taken_at NULL when unknown).
CREATE TABLE IF NOT EXISTS face_bars (
    face_id   BIGINT NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    person_id BIGINT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    PRIMARY KEY (face_id, person_id)
);
CREATE TABLE IF NOT EXISTS face_apart (
    face_id  BIGINT NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    other_id BIGINT NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    PRIMARY KEY (face_id, other_id)
);
CREATE INDEX IF NOT EXISTS face_apart_other ON face_apart(other_id);
CREATE TABLE IF NOT EXISTS named_clusters (
    cluster   BIGINT PRIMARY KEY,
    person_id BIGINT REFERENCES people(id) ON DELETE SET NULL
);
CREATE TABLE IF NOT EXISTS face_quality (
    face_id        BIGINT PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
    size_px        REAL NOT NULL,
    blur           REAL,
    yaw_deg        REAL,
    detector_score REAL NOT NULL,
    flag           TEXT
);
CREATE TABLE IF NOT EXISTS not_faces (
    id         BIGSERIAL PRIMARY KEY,
    sha256     TEXT NOT NULL,
    x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS not_faces_sha ON not_faces(sha256);
CREATE TABLE IF NOT EXISTS person_covers (
    person_id BIGINT PRIMARY KEY REFERENCES people(id) ON DELETE CASCADE,
    face_id   BIGINT NOT NULL REFERENCES faces(id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS hidden_people (
    person_id BIGINT PRIMARY KEY REFERENCES people(id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS hidden_clusters (
    cluster BIGINT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS action_log (
    id      BIGSERIAL PRIMARY KEY,
    kind    TEXT NOT NULL,
    summary TEXT NOT NULL,
    payload JSONB NOT NULL,
    undone  BOOLEAN NOT NULL DEFAULT false,
    at      TEXT NOT NULL DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
);
CREATE TABLE IF NOT EXISTS photo_dates (
    photo_id BIGINT PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
    taken_at TEXT,
    source   TEXT NOT NULL
);
