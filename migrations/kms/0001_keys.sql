-- cerrojo-kms key store. Every secret here (key-encryption keys, signing and
-- HPKE private keys, key-list signing keys) is stored wrapped with
-- AES-256-GCM under the root key, which never reaches the database. Rows of
-- destroyed keys stay as a record, with their wrapped material removed.

CREATE SCHEMA IF NOT EXISTS kms;

-- Key-encryption keys (KEKs) wrap the per-user data keys. Versions only grow;
-- exactly one is active and wraps new data keys, retired ones still unwrap.
CREATE TABLE kms.key_encryption_keys (
    version      integer PRIMARY KEY CHECK (version > 0),
    state        text NOT NULL
                 CHECK (state IN ('active', 'retired', 'destroyed')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz,
    destroyed_at timestamptz,
    wrapped_key  bytea,
    CHECK ((state = 'destroyed') = (wrapped_key IS NULL)),
    CHECK ((state = 'active') = (retired_at IS NULL)),
    CHECK ((state = 'destroyed') = (destroyed_at IS NOT NULL))
);

CREATE UNIQUE INDEX key_encryption_keys_one_active
    ON kms.key_encryption_keys ((true)) WHERE state = 'active';

-- The KEK version of the wrapped data key that kms last issued to, or was
-- last shown by, each user. auth keeps one data key per user, so a retired
-- KEK no row names any more wraps nothing auth still stores (the full rule
-- is in docs/operations.md under destroy-expired).
CREATE TABLE kms.data_key_versions (
    user_id     text PRIMARY KEY CHECK (length(user_id) BETWEEN 1 AND 256),
    kek_version integer NOT NULL
                REFERENCES kms.key_encryption_keys (version),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX data_key_versions_by_version
    ON kms.data_key_versions (kek_version);

-- JWT signing keys. A key is published as 'next' before it signs anything,
-- becomes 'active', and stays published while 'retired' until the last
-- token it signed has expired.
CREATE TABLE kms.signing_keys (
    kid                   text PRIMARY KEY
                          CHECK (length(kid) BETWEEN 1 AND 128),
    algorithm             text NOT NULL
                          CHECK (algorithm IN ('RS256', 'ES256', 'EdDSA')),
    state                 text NOT NULL
                          CHECK (state IN ('next', 'active', 'retired',
                                           'destroyed')),
    published_at          timestamptz NOT NULL DEFAULT now(),
    activated_at          timestamptz,
    retired_at            timestamptz,
    destroyed_at          timestamptz,
    -- Latest `exp` of any token the key signed, rounded up; NULL while it
    -- has signed none.
    last_token_expires_at timestamptz,
    -- The public key as a JSON Web Key (RFC 7517), served in the JWKS.
    public_jwk            text NOT NULL,
    wrapped_key           bytea,
    CHECK ((state = 'destroyed') = (wrapped_key IS NULL)),
    CHECK (state = 'next' OR activated_at IS NOT NULL
           OR state IN ('retired', 'destroyed')),
    CHECK (state IN ('next', 'active') OR retired_at IS NOT NULL),
    CHECK ((state = 'destroyed') = (destroyed_at IS NOT NULL))
);

CREATE UNIQUE INDEX signing_keys_one_active
    ON kms.signing_keys ((true)) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next
    ON kms.signing_keys ((true)) WHERE state = 'next';

-- HPKE (RFC 9180) keys that clients seal stateless requests to. The one-byte
-- key id is reused after a key is destroyed, so rows have their own id.
CREATE TABLE kms.hpke_keys (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id        smallint NOT NULL CHECK (key_id BETWEEN 0 AND 255),
    kem_id        integer NOT NULL CHECK (kem_id = 32),
    kdf_id        integer NOT NULL CHECK (kdf_id = 1),
    -- AEAD ids a client may pick with this key, preferred first.
    aead_ids      integer[] NOT NULL
                  CHECK (cardinality(aead_ids) BETWEEN 1 AND 3
                         AND aead_ids <@ ARRAY[1, 2, 3]),
    state         text NOT NULL
                  CHECK (state IN ('active', 'retired', 'destroyed')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    retired_at    timestamptz,
    -- A retired key still opens requests until accept_until, and its
    -- private key is destroyed once destroy_after has passed.
    accept_until  timestamptz,
    destroy_after timestamptz,
    destroyed_at  timestamptz,
    public_key    bytea NOT NULL CHECK (length(public_key) = 32),
    wrapped_key   bytea,
    CHECK ((state = 'destroyed') = (wrapped_key IS NULL)),
    CHECK (state = 'active'
           OR (retired_at IS NOT NULL AND accept_until IS NOT NULL
               AND destroy_after IS NOT NULL
               AND destroy_after >= accept_until)),
    CHECK ((state = 'destroyed') = (destroyed_at IS NOT NULL))
);

CREATE UNIQUE INDEX hpke_keys_one_active
    ON kms.hpke_keys ((true)) WHERE state = 'active';
CREATE UNIQUE INDEX hpke_keys_live_key_id
    ON kms.hpke_keys (key_id) WHERE state <> 'destroyed';

-- Long-lived Ed25519 keys that sign the HPKE key list; clients pin their
-- fingerprint. During a signer rotation the 'previous' key signs a second
-- copy of the list until it is retired.
CREATE TABLE kms.key_list_signers (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- base64url (no padding) SHA-256 of the raw 32-byte public key.
    fingerprint  text NOT NULL UNIQUE CHECK (length(fingerprint) = 43),
    state        text NOT NULL
                 CHECK (state IN ('active', 'previous', 'destroyed')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    superseded_at timestamptz,
    destroyed_at timestamptz,
    public_key   bytea NOT NULL CHECK (length(public_key) = 32),
    wrapped_key  bytea,
    CHECK ((state = 'destroyed') = (wrapped_key IS NULL)),
    CHECK ((state = 'active') = (superseded_at IS NULL)),
    CHECK ((state = 'destroyed') = (destroyed_at IS NOT NULL))
);

CREATE UNIQUE INDEX key_list_signers_one_active
    ON kms.key_list_signers ((true)) WHERE state = 'active';
CREATE UNIQUE INDEX key_list_signers_one_previous
    ON kms.key_list_signers ((true)) WHERE state = 'previous';
