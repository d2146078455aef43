-- The time session confirmed that its revocation cache stores the row
-- (RevokeToken, RevokeUser, DeleteSession or LoadRevocations succeeded),
-- NULL until then. A row stays NULL when auth stops between its commit
-- and the call, so auth's cache watcher sends every NULL row again. Rows
-- that exist now start NULL and are sent once more, which is harmless
-- because session stores a revocation idempotently. Recording a later
-- revocation time for a user sets the column back to NULL.
ALTER TABLE auth.revocations ADD COLUMN sent_at timestamptz;
-- The watcher pages through the unconfirmed rows in key order.
CREATE INDEX revocations_unsent_idx ON auth.revocations (kind, subject)
    WHERE sent_at IS NULL;
