-- The audit log (see docs/database.md): append-only and hash-chained.
-- Each row's hash is SHA-256 over (seq, at, kind, actor, job_id, detail,
-- prev_hash), and prev_hash is the previous row's hash, so an edited or
-- deleted row breaks the chain. `at` is microseconds since the epoch;
-- `detail` is the exact JSON text that was hashed (TEXT, not JSONB, which
-- would rewrite it).
CREATE TABLE audit_log (
    seq       BIGINT NOT NULL PRIMARY KEY CHECK (seq > 0),
    at        BIGINT NOT NULL,
    kind      TEXT   NOT NULL,
    actor     TEXT,
    job_id    TEXT,
    detail    TEXT   NOT NULL,
    prev_hash TEXT   NOT NULL,
    hash      TEXT   NOT NULL
);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
