-- One row for each KEK version that may wrap a data key auth stores for a
-- user, not one row per user. RewrapKey adds the row of the new version
-- and keeps the old one, because auth stores the re-wrapped key only after
-- RewrapKey returns, and that store can fail or never run. kms drops the
-- rows of older versions when auth presents a wrapped key of a newer
-- version to RewrapKey, which shows that auth stores the newer form: auth
-- replaces the stored key only with a newer version, under a compare of
-- the old bytes. The existing rows keep their user and version.
ALTER TABLE kms.data_key_versions
    DROP CONSTRAINT data_key_versions_pkey,
    ADD PRIMARY KEY (user_id, kek_version);
