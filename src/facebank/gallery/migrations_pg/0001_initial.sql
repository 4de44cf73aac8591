-- facebank shared gallery schema (PostgreSQL + pgvector), version 1.
-- Same tables as the SQLite gallery; the embedding column is created without a dimension and set
-- to vector(dim) (with its HNSW index) when the first face is stored, see PostgresGallery.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE people (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE runs (
    id          BIGSERIAL PRIMARY KEY,
    source      TEXT NOT NULL,
    model_id    TEXT NOT NULL,
    settings    TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL DEFAULT 'running',      -- running | finished | interrupted
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    photos_seen     INTEGER NOT NULL DEFAULT 0,
    photos_enrolled INTEGER NOT NULL DEFAULT 0,
    faces_added     INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE photos (
    id         BIGSERIAL PRIMARY KEY,
    person_id  BIGINT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    path       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    width      INTEGER NOT NULL DEFAULT 0,
    height     INTEGER NOT NULL DEFAULT 0,
    model_id   TEXT NOT NULL,
    status     TEXT NOT NULL,                 -- ok | no_face | multi_face | error
    reason     TEXT,
    run_id     BIGINT REFERENCES runs(id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (sha256, model_id)
);
CREATE INDEX photos_person ON photos(person_id);

CREATE TABLE faces (
    id             BIGSERIAL PRIMARY KEY,
    photo_id       BIGINT NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    person_id      BIGINT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL,
    landmarks      JSONB,                     -- [[x, y], ...] in photo pixels
    detector       TEXT NOT NULL,
    detector_score REAL NOT NULL,
    fallback       BOOLEAN NOT NULL DEFAULT false,
    model_id       TEXT NOT NULL,
    dim            INTEGER NOT NULL,
    embedding      vector NOT NULL             -- unit L2 norm; typed vector(dim) once dim is known
);
CREATE INDEX faces_person ON faces(person_id);
CREATE INDEX faces_photo ON faces(photo_id);

-- one row per committed change: version() = (count, max id), cheap and never missed by a reader
CREATE TABLE changes (
    id   BIGSERIAL PRIMARY KEY,
    at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    what TEXT NOT NULL
);

CREATE TABLE schema_migrations (
    version    INTEGER PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
