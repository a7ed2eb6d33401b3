-- Retention: the hourly upkeep deletes what has expired, in small batches found through
-- these indexes (a batch must not scan a large table). Keep in step with migrations/postgres.
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
CREATE INDEX token_families_revoked_at ON token_families (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX one_time_links_expires_at ON one_time_links (expires_at);
CREATE INDEX users_unconfirmed_created_at ON users (created_at) WHERE email_verified_at IS NULL;
-- Whether an account still has a user, when an unconfirmed registration is removed.
CREATE INDEX users_account_id ON users (account_id);
CREATE INDEX invalidations_created_at ON invalidations (created_at);
