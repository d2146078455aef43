-- Whether password_hash is the hash of the password's Unicode NFKC form.
-- Hashes made before passwords were normalized are of the exact bytes the
-- user typed, so login verifies those bytes while this is false and then
-- stores the hash of the NFKC form. Every hash written since is of the
-- NFKC form, so new rows set it to true.
ALTER TABLE auth.users
    ADD COLUMN password_normalized boolean NOT NULL DEFAULT false;
