-- Schema version 1 of the fragment index (PRAGMA user_version = 1).
CREATE TABLE streams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: fragment numbers embed it
    name TEXT NOT NULL UNIQUE,
    arn TEXT NOT NULL UNIQUE,
    device_name TEXT,
    media_type TEXT,
    kms_key_id TEXT,
    version TEXT NOT NULL,
    creation_time_ms INTEGER NOT NULL,
    retention_hours INTEGER NOT NULL,
    tags TEXT NOT NULL,                    -- JSON object
    next_seq INTEGER NOT NULL DEFAULT 1    -- next fragment sequence to hand out
);

CREATE TABLE fragments (
    stream_id INTEGER NOT NULL REFERENCES streams(id),
    seq INTEGER NOT NULL,
    producer_ts_ms INTEGER NOT NULL,
    server_ts_ms INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL,
    content_hash BLOB NOT NULL,
    tracks TEXT NOT NULL,                  -- JSON array
    user_tags TEXT NOT NULL,               -- JSON array of [name, value]
    PRIMARY KEY (stream_id, seq)
) WITHOUT ROWID;

CREATE INDEX fragments_by_producer_ts ON fragments (stream_id, producer_ts_ms);
CREATE INDEX fragments_by_server_ts ON fragments (stream_id, server_ts_ms);
