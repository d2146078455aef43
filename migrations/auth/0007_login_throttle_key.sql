-- The HMAC-SHA-256 key that login's throttle names its Redis keys with
-- (cerrojo:login:...), so that a Redis dump reveals neither the client
-- addresses nor the typed login names, not even to a table of their
-- hashes. The key is kept only here, never in Redis. cerrojo-auth inserts
-- 32 random bytes when it first needs the key and finds none (ON CONFLICT
-- DO NOTHING, so replicas that start together all read the first row),
-- and keeps the key in memory until it stops. The table has one row.
CREATE TABLE auth.login_throttle_key (
    id         smallint PRIMARY KEY DEFAULT 1,
    key        bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT login_throttle_key_one_row CHECK (id = 1),
    CONSTRAINT login_throttle_key_length CHECK (octet_length(key) = 32)
);
