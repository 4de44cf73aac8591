-- facebank shared gallery schema, version 3: the REST servers' jobs (enroll a folder, analyse a
-- video), so a client still learns what became of its job after a restart. record is the job as the
-- API shows it (JSON, never a path of a server), params what running it again needs (never shown),
-- owner the server process that runs it and heartbeat when it last saved it (unix seconds): a
-- queued or running job whose heartbeat stopped is marked interrupted by the next server to look.
CREATE TABLE jobs (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    state      TEXT NOT NULL,
    record     TEXT NOT NULL,
    params     TEXT NOT NULL DEFAULT '{}',
    owner      TEXT NOT NULL DEFAULT '',
    heartbeat  DOUBLE PRECISION NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE INDEX jobs_created ON jobs(created_at);
CREATE INDEX jobs_active ON jobs(state) WHERE state IN ('queued', 'running');
