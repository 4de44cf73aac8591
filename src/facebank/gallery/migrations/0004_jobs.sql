-- facebank gallery schema, version 4: the REST server's jobs (enroll a folder, analyse a video), so a
-- client still learns what became of its job after a restart. One row per job; record is the job as
-- the API shows it (JSON, never a path of the server), params what running it again needs (JSON,
-- never shown), owner the server process that runs it and heartbeat when that process last saved
-- it (unix seconds): a queued or running job whose heartbeat stopped is marked interrupted.
CREATE TABLE jobs (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,                  -- enroll | video
    state      TEXT NOT NULL,                  -- queued | running | finished | failed | cancelled | interrupted
    record     TEXT NOT NULL,
    params     TEXT NOT NULL DEFAULT '{}',
    owner      TEXT NOT NULL DEFAULT '',
    heartbeat  REAL NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE INDEX jobs_created ON jobs(created_at);
CREATE INDEX jobs_active ON jobs(state) WHERE state IN ('queued', 'running');
