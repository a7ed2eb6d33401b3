-- An admin can disable a user: a disabled user cannot sign in, their sessions end and the
-- tokens they granted are revoked. NULL while the user is enabled.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
