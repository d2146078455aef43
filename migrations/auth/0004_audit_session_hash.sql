-- A session id is half of a stateful credential, so audit events store its
-- SHA-256 in lower-case hex instead, and leave session_id NULL. Rows written
-- before this migration keep the id in session_id: they are not rewritten,
-- because the table is append-only, and each such id stops opening anything
-- once its session ends (12 h after creation at the latest by default).
-- NOT VALID skips a scan of the whole table; every existing row has NULL,
-- which the check accepts, and new rows are checked.
ALTER TABLE auth.audit_events ADD COLUMN session_hash text;
ALTER TABLE auth.audit_events ADD CONSTRAINT audit_events_session_hash_form
    CHECK (session_hash ~ '^[0-9a-f]{64}$') NOT VALID;
