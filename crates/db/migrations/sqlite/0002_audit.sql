-- The audit log (see docs/database.md): append-only and hash-chained.
-- Each row's hash is SHA-256 over (seq, at, kind, actor, job_id, detail,
-- prev_hash), and prev_hash is the previous row's hash, so an edited or
-- deleted row breaks the chain. `at` is microseconds since the epoch;
-- `detail` is the exact JSON text that was hashed.
CREATE TABLE audit_log (
    seq       INTEGER NOT NULL PRIMARY KEY CHECK (seq > 0),
    at        INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    actor     TEXT,
    job_id    TEXT,
    detail    TEXT    NOT NULL CHECK (json_valid(detail)),
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
) STRICT;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
