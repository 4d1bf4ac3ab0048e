-- Veritrain job database, SQLite flavour (see docs/database.md).
-- Times are INTEGER microseconds since the Unix epoch (UTC), so ordering and
-- lease comparisons are numeric; JSON documents are TEXT checked by json_valid.

CREATE TABLE jobs (
    id               TEXT    NOT NULL PRIMARY KEY,   -- lowercase hyphenated UUID
    owner_tid        TEXT    NOT NULL,
    owner_oid        TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN
                       ('queued', 'validating', 'training', 'attesting',
                        'succeeded', 'failed', 'cancelled')),
    reason_code      TEXT,
    reason_message   TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    request          TEXT    NOT NULL CHECK (json_valid(request)),
    inputs           TEXT    NOT NULL CHECK (json_valid(inputs)),
    progress         TEXT             CHECK (progress IS NULL OR json_valid(progress)),
    bundle_key       TEXT,
    worker_id        TEXT,
    lease_expires_at INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_event_seq   INTEGER NOT NULL DEFAULT 0,
    -- A failed or cancelled job always says why; no other state carries a reason.
    CHECK ((state IN ('failed', 'cancelled')) = (reason_code IS NOT NULL)),
    -- A succeeded job always has its bundle.
    CHECK (state <> 'succeeded' OR bundle_key IS NOT NULL)
) STRICT;

-- Listing: newest first, per owner and for auditors.
CREATE INDEX jobs_owner_created ON jobs (owner_tid, owner_oid, created_at DESC, id DESC);
CREATE INDEX jobs_created ON jobs (created_at DESC, id DESC);
-- Claiming: oldest queued job first.
CREATE INDEX jobs_queued ON jobs (created_at, id) WHERE state = 'queued';
-- Lease sweep.
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE lease_expires_at IS NOT NULL;

CREATE TABLE job_events (
    job_id TEXT    NOT NULL REFERENCES jobs (id),
    seq    INTEGER NOT NULL CHECK (seq > 0),
    at     INTEGER NOT NULL,
    kind   TEXT    NOT NULL,
    data   TEXT    NOT NULL CHECK (json_valid(data)),
    PRIMARY KEY (job_id, seq)
) STRICT, WITHOUT ROWID;

-- The event log is append-only: the live stream and the job log are read from it.
CREATE TRIGGER job_events_no_update BEFORE UPDATE ON job_events
BEGIN
    SELECT RAISE(ABORT, 'job_events is append-only');
END;
CREATE TRIGGER job_events_no_delete BEFORE DELETE ON job_events
BEGIN
    SELECT RAISE(ABORT, 'job_events is append-only');
END;
