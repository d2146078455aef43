-- The cleanup job deletes refresh tokens by their own expiry, not by their
-- family's, so the index it needs is on expires_at. Deleting a token also
-- looks up the rows whose replaced_by names it (ON DELETE SET NULL), which
-- needs an index on that column.
CREATE INDEX refresh_tokens_token_expiry_idx
    ON auth.refresh_tokens (expires_at);
DROP INDEX auth.refresh_tokens_expiry_idx;
CREATE INDEX refresh_tokens_replaced_by_idx
    ON auth.refresh_tokens (replaced_by)
    WHERE replaced_by IS NOT NULL;
