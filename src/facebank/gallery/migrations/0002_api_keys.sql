-- facebank gallery schema, version 2: API keys of the REST server (facebank keys create)
-- The secret is never stored: only the sha256 of the whole key. The id is the key's public
-- prefix (fbk_<id>_<secret>), shown by 'facebank keys list' and used to revoke it.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL DEFAULT '',
    key_sha256   TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_used_at TEXT,
    revoked_at   TEXT
);
