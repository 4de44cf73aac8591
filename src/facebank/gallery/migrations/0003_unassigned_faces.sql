-- facebank gallery schema, version 3: faces without a person (scanned photo libraries) and clusters.
-- A scanned photo has no person (photos.person_id NULL); its faces are unassigned (faces.person_id
-- NULL) until they are named. faces.cluster is the last clustering's label of an unassigned face
-- (NULL = alone or not clustered yet); clusters holds each cluster's suggested person.
-- SQLite cannot drop a NOT NULL constraint, so photos and faces are rebuilt (the gallery runs its
-- migrations with foreign keys off and checks them before committing).
CREATE TABLE clusters (
    id                  INTEGER PRIMARY KEY,
    suggested_person_id INTEGER REFERENCES people(id) ON DELETE SET NULL,
    suggested_distance  REAL                       -- L2 distance (unit embeddings) behind the suggestion
);

CREATE TABLE photos_v3 (
    id         INTEGER PRIMARY KEY,
    person_id  INTEGER REFERENCES people(id) ON DELETE CASCADE,    -- NULL: a scanned, unlabelled photo
    path       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    width      INTEGER NOT NULL DEFAULT 0,
    height     INTEGER NOT NULL DEFAULT 0,
    model_id   TEXT NOT NULL,
    status     TEXT NOT NULL,                 -- ok | no_face | multi_face | error
    reason     TEXT,
    run_id     INTEGER REFERENCES runs(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (sha256, model_id)
);
INSERT INTO photos_v3 SELECT id, person_id, path, sha256, size_bytes, width, height, model_id, status,
    reason, run_id, created_at FROM photos;

CREATE TABLE faces_v3 (
    id             INTEGER PRIMARY KEY,
    photo_id       INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    person_id      INTEGER REFERENCES people(id) ON DELETE CASCADE,   -- NULL: unassigned
    x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL,
    landmarks      TEXT,                      -- JSON [[x, y], ...] in photo pixels
    detector       TEXT NOT NULL,
    detector_score REAL NOT NULL,
    fallback       INTEGER NOT NULL DEFAULT 0,
    model_id       TEXT NOT NULL,
    dim            INTEGER NOT NULL,
    embedding      BLOB NOT NULL,              -- float32 little-endian, unit L2 norm
    cluster        INTEGER REFERENCES clusters(id) ON DELETE SET NULL
);
INSERT INTO faces_v3 SELECT id, photo_id, person_id, x1, y1, x2, y2, landmarks, detector,
    detector_score, fallback, model_id, dim, embedding, NULL FROM faces;

DROP TABLE faces;
DROP TABLE photos;
ALTER TABLE photos_v3 RENAME TO photos;
ALTER TABLE faces_v3 RENAME TO faces;
CREATE INDEX photos_person ON photos(person_id);
CREATE INDEX faces_person ON faces(person_id);
CREATE INDEX faces_photo ON faces(photo_id);
CREATE INDEX faces_cluster ON faces(cluster);
