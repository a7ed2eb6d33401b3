-- The developer portal: verified emails, one-time links, secret-expiry reminders, and the
-- indexes behind login throttling, session purging and the admin lists.
ALTER TABLE users ADD COLUMN email_verified_at INTEGER;
-- Users created before self-registration existed were made by an operator: they count as verified.
UPDATE users SET email_verified_at = created_at;

CREATE TABLE one_time_links (
    seq         INTEGER PRIMARY KEY,
    link_digest BLOB NOT NULL UNIQUE,
    purpose     TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password', 'setup')),
    user_id     TEXT REFERENCES users (user_id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,                 -- NULL: until used
    used_at     INTEGER
);
CREATE INDEX one_time_links_user_id ON one_time_links (user_id);

-- The smallest reminder (in days before expiry: 30, then 7) already mailed for a secret.
ALTER TABLE client_secrets ADD COLUMN reminded_days INTEGER;
CREATE INDEX client_secrets_expires_at ON client_secrets (expires_at);

CREATE INDEX audit_events_action_target_at ON audit_events (action, target, at);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX grants_user_id ON grants (user_id);
