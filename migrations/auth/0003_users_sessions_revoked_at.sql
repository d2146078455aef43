-- The time of the user's latest logout of all devices. The per-user row in
-- auth.revocations is deleted once no access token from before it can be
-- live (minutes), but login's known-address markers last for days, so
-- the throttle needs this copy to tell markers made before the logout
-- from later ones. NULL when the user never logged out of all devices.
ALTER TABLE auth.users ADD COLUMN sessions_revoked_at timestamptz;
