-- Schema of cerrojo-auth: users, their data in three classes, refresh-token
-- families, durable revocations and the append-only audit log. The
-- migration runner creates role cerrojo_auth with rights on this schema
-- only; every statement here names the schema explicitly.

CREATE SCHEMA IF NOT EXISTS auth;

-- One row per account. username and email keep the form the user typed
-- (NFC); the *_norm columns hold NFKC with case folding, and
-- username_skeleton the Unicode TS #39 confusable skeleton of the
-- normalized username, so that look-alike duplicates collide on a unique
-- index. password_hash is a libsodium crypto_pwhash_str string (Argon2id).
-- wrapped_key is the user's data key wrapped by kms under key-encryption
-- key version kek_version; only kms can unwrap it, and only for this id.
CREATE TABLE auth.users (
    id                uuid PRIMARY KEY,
    username          text NOT NULL,
    username_norm     text NOT NULL,
    username_skeleton text NOT NULL,
    email             text NOT NULL,
    email_norm        text NOT NULL,
    password_hash     text NOT NULL,
    wrapped_key       bytea NOT NULL,
    kek_version       integer NOT NULL,
    status            text NOT NULL DEFAULT 'active',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    last_login_at     timestamptz,
    CONSTRAINT users_status_check CHECK (status IN ('active', 'disabled')),
    CONSTRAINT users_kek_version_check CHECK (kek_version > 0),
    CONSTRAINT users_username_length CHECK (octet_length(username) <= 256),
    CONSTRAINT users_email_length CHECK (octet_length(email) <= 254),
    CONSTRAINT users_password_hash_argon2id
        CHECK (password_hash LIKE '$argon2id$%'),
    CONSTRAINT users_wrapped_key_length
        CHECK (octet_length(wrapped_key) BETWEEN 1 AND 1024)
);
CREATE UNIQUE INDEX users_username_norm_key ON auth.users (username_norm);
CREATE UNIQUE INDEX users_username_skeleton_key
    ON auth.users (username_skeleton);
CREATE UNIQUE INDEX users_email_norm_key ON auth.users (email_norm);
-- The re-wrap job walks users whose key is not under the newest version.
CREATE INDEX users_kek_version_idx ON auth.users (kek_version, id);

-- Plaintext profile fields. A user's data goes with the user.
CREATE TABLE auth.data_public (
    user_id    uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    field      text NOT NULL,
    value      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, field),
    CONSTRAINT data_public_field_check CHECK (field ~ '^[a-z0-9_]{1,64}$'),
    CONSTRAINT data_public_value_length CHECK (octet_length(value) <= 4096)
);

-- Private and protected fields: AES-256-GCM under the user's data key with
-- a random 96-bit nonce; the additional data binds the user id, the class
-- and the field name, so a value copied to another row, class or user does
-- not decrypt. ciphertext includes the 16-byte tag.
CREATE TABLE auth.data_private (
    user_id    uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    field      text NOT NULL,
    nonce      bytea NOT NULL,
    ciphertext bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, field),
    CONSTRAINT data_private_field_check CHECK (field ~ '^[a-z0-9_]{1,64}$'),
    CONSTRAINT data_private_nonce_length CHECK (octet_length(nonce) = 12),
    CONSTRAINT data_private_ciphertext_length
        CHECK (octet_length(ciphertext) BETWEEN 16 AND 4112)
);

CREATE TABLE auth.data_protected (
    user_id    uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    field      text NOT NULL,
    nonce      bytea NOT NULL,
    ciphertext bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, field),
    CONSTRAINT data_protected_field_check
        CHECK (field ~ '^[a-z0-9_]{1,64}$'),
    CONSTRAINT data_protected_nonce_length CHECK (octet_length(nonce) = 12),
    CONSTRAINT data_protected_ciphertext_length
        CHECK (octet_length(ciphertext) BETWEEN 16 AND 4112)
);

-- Refresh tokens, stored as the SHA-256 of the token only. Each belongs to
-- a family that starts at register or login; rotation marks a token used
-- and links its successor through replaced_by. family_expires_at is the
-- family's absolute end, copied into every member so that no successor
-- outlives it. session_id names the stateful session the family belongs to
-- (NULL for a stateless login).
CREATE TABLE auth.refresh_tokens (
    id                uuid PRIMARY KEY,
    family_id         uuid NOT NULL,
    user_id           uuid NOT NULL REFERENCES auth.users (id)
                          ON DELETE CASCADE,
    session_id        text,
    token_hash        bytea NOT NULL,
    issued_at         timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    family_expires_at timestamptz NOT NULL,
    used_at           timestamptz,
    revoked_at        timestamptz,
    revoked_reason    text,
    -- Cleanup deletes expired rows in any order; a dangling link is
    -- harmless once both ends have expired.
    replaced_by       uuid REFERENCES auth.refresh_tokens (id)
                          ON DELETE SET NULL,
    CONSTRAINT refresh_tokens_hash_length
        CHECK (octet_length(token_hash) = 32),
    CONSTRAINT refresh_tokens_expiry_order
        CHECK (issued_at < expires_at AND expires_at <= family_expires_at),
    CONSTRAINT refresh_tokens_revoked_reason_check
        CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL)),
    CONSTRAINT refresh_tokens_reason_values
        CHECK (revoked_reason IS NULL OR revoked_reason IN
               ('reuse', 'logout', 'logout_all', 'grace_retry')),
    CONSTRAINT refresh_tokens_replaced_needs_used
        CHECK (replaced_by IS NULL OR used_at IS NOT NULL)
);
CREATE UNIQUE INDEX refresh_tokens_hash_key
    ON auth.refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_family_idx ON auth.refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON auth.refresh_tokens (user_id);
CREATE INDEX refresh_tokens_session_idx ON auth.refresh_tokens (session_id)
    WHERE session_id IS NOT NULL;
CREATE INDEX refresh_tokens_expiry_idx
    ON auth.refresh_tokens (family_expires_at);
-- A family never has two live tokens: the database enforces it.
CREATE UNIQUE INDEX refresh_tokens_one_live_per_family
    ON auth.refresh_tokens (family_id)
    WHERE used_at IS NULL AND revoked_at IS NULL;

-- Durable revocations; session's Redis copy is a cache reloaded from here.
-- kind 'token': subject is an access token's jti, revoked until
-- expires_at (the token's exp). kind 'session': subject is a deleted
-- session's id, whose tokens are revoked until expires_at (the last such
-- token's expiry). kind 'user': subject is a user id, and every token of
-- that user issued before revoked_at is revoked; the row is kept until no
-- such token can still be live (expires_at).
CREATE TABLE auth.revocations (
    kind       text NOT NULL,
    subject    text NOT NULL,
    user_id    uuid,
    revoked_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (kind, subject),
    CONSTRAINT revocations_kind_check
        CHECK (kind IN ('token', 'session', 'user')),
    CONSTRAINT revocations_subject_length
        CHECK (octet_length(subject) BETWEEN 1 AND 128),
    CONSTRAINT revocations_expiry_order CHECK (expires_at >= revoked_at)
);
-- The cache reload reads every unexpired row; cleanup deletes expired ones.
CREATE INDEX revocations_expiry_idx ON auth.revocations (expires_at);
CREATE INDEX revocations_user_idx ON auth.revocations (user_id)
    WHERE user_id IS NOT NULL;

-- Append-only audit log. user_id has no foreign key on purpose: the record
-- of what happened outlives the account. Never holds a password, token or
-- key; detail is a JSON object of ids, counts and reasons.
CREATE TABLE auth.audit_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    event       text NOT NULL,
    user_id     uuid,
    session_id  text,
    client_ip   inet,
    user_agent  text,
    request_id  text,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT audit_events_event_check CHECK (event ~ '^[a-z][a-z0-9_.]{0,63}$'),
    CONSTRAINT audit_events_user_agent_length
        CHECK (octet_length(user_agent) <= 512),
    CONSTRAINT audit_events_request_id_length
        CHECK (octet_length(request_id) <= 128),
    CONSTRAINT audit_events_detail_object
        CHECK (jsonb_typeof(detail) = 'object')
);
CREATE INDEX audit_events_time_idx ON auth.audit_events (occurred_at);
CREATE INDEX audit_events_user_idx ON auth.audit_events (user_id, occurred_at)
    WHERE user_id IS NOT NULL;
CREATE INDEX audit_events_event_idx ON auth.audit_events (event, occurred_at);

-- Rows are never changed, and deleted only once past the retention period
-- (400 days), by the cleanup job. The trigger holds even for the table's
-- owner, unlike a revoked privilege.
CREATE FUNCTION auth.audit_events_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.occurred_at < now() - interval '400 days' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'auth.audit_events is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE ON auth.audit_events
    FOR EACH ROW EXECUTE FUNCTION auth.audit_events_guard();
CREATE FUNCTION auth.audit_events_refuse_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'auth.audit_events is append-only (TRUNCATE refused)'
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON auth.audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION auth.audit_events_refuse_truncate();

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cerrojo_auth') THEN
        REVOKE UPDATE, TRUNCATE ON auth.audit_events FROM cerrojo_auth;
    END IF;
END;
$$;
