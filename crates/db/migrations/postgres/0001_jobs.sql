-- Veritrain job database, PostgreSQL flavour (see docs/database.md).

CREATE TABLE jobs (
    id               UUID        NOT NULL PRIMARY KEY,
    owner_tid        TEXT        NOT NULL,
    owner_oid        TEXT        NOT NULL,
    state            TEXT        NOT NULL CHECK (state IN
                       ('queued', 'validating', 'training', 'attesting',
                        'succeeded', 'failed', 'cancelled')),
    reason_code      TEXT,
    reason_message   TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    request          JSONB       NOT NULL,
    inputs           JSONB       NOT NULL,
    progress         JSONB,
    bundle_key       TEXT,
    worker_id        TEXT,
    lease_expires_at TIMESTAMPTZ,
    cancel_requested BOOLEAN     NOT NULL DEFAULT FALSE,
    attempts         INTEGER     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_event_seq   BIGINT      NOT NULL DEFAULT 0,
    -- A failed or cancelled job always says why; no other state carries a reason.
    CHECK ((state IN ('failed', 'cancelled')) = (reason_code IS NOT NULL)),
    -- A succeeded job always has its bundle.
    CHECK (state <> 'succeeded' OR bundle_key IS NOT NULL)
);

-- Listing: newest first, per owner and for auditors.
CREATE INDEX jobs_owner_created ON jobs (owner_tid, owner_oid, created_at DESC, id DESC);
CREATE INDEX jobs_created ON jobs (created_at DESC, id DESC);
-- Claiming: oldest queued job first.
CREATE INDEX jobs_queued ON jobs (created_at, id) WHERE state = 'queued';
-- Lease sweep.
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE lease_expires_at IS NOT NULL;

CREATE TABLE job_events (
    job_id UUID        NOT NULL REFERENCES jobs (id),
    seq    BIGINT      NOT NULL CHECK (seq > 0),
    at     TIMESTAMPTZ NOT NULL,
    kind   TEXT        NOT NULL,
    data   JSONB       NOT NULL,
    PRIMARY KEY (job_id, seq)
);

-- The event log is append-only: the live stream and the job log are read from it.
CREATE FUNCTION job_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'job_events is append-only';
END;
$$;
CREATE TRIGGER job_events_no_change BEFORE UPDATE OR DELETE ON job_events
    FOR EACH ROW EXECUTE FUNCTION job_events_append_only();
