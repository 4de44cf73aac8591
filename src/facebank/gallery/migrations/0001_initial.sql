-- facebank gallery schema, version 1
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE people (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    model_id    TEXT NOT NULL,
    settings    TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL DEFAULT 'running',      -- running | finished | interrupted
    started_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at TEXT,
    photos_seen     INTEGER NOT NULL DEFAULT 0,
    photos_enrolled INTEGER NOT NULL DEFAULT 0,
    faces_added     INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE photos (
    id         INTEGER PRIMARY KEY,
    person_id  INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
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
CREATE INDEX photos_person ON photos(person_id);

CREATE TABLE faces (
    id             INTEGER PRIMARY KEY,
    photo_id       INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    person_id      INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL,
    landmarks      TEXT,                      -- JSON [[x, y], ...] in photo pixels
    detector       TEXT NOT NULL,
    detector_score REAL NOT NULL,
    fallback       INTEGER NOT NULL DEFAULT 0,
    model_id       TEXT NOT NULL,
    dim            INTEGER NOT NULL,
    embedding      BLOB NOT NULL               -- float32 little-endian, unit L2 norm
);
CREATE INDEX faces_person ON faces(person_id);
CREATE INDEX faces_photo ON faces(photo_id);
