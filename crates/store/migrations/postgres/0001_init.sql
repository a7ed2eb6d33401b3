-- Gatehouse schema, PostgreSQL dialect. Times are UTC seconds since the Unix epoch; secrets are
-- stored only as SHA-256 digests (*_digest). `seq` orders rows by insertion, which
-- timestamps in whole seconds cannot. Keep in step with migrations/sqlite.

CREATE TABLE accounts (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- insertion order
    account_id TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    scopes     TEXT NOT NULL,            -- space separated
    created_at BIGINT NOT NULL
);

CREATE TABLE secret_keys (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- insertion order
    key_id        TEXT NOT NULL UNIQUE,
    account_id    TEXT NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    secret_digest BYTEA NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX secret_keys_account_id ON secret_keys (account_id);

CREATE TABLE users (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- insertion order
    user_id       TEXT NOT NULL UNIQUE,
    email         TEXT NOT NULL UNIQUE,  -- lowercased
    password_hash TEXT NOT NULL,         -- Argon2id PHC string
    role          TEXT NOT NULL CHECK (role IN ('admin', 'developer')),
    account_id    TEXT REFERENCES accounts (account_id),
    created_at    BIGINT NOT NULL
);

CREATE TABLE applications (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- insertion order
    client_id     TEXT NOT NULL UNIQUE,
    owner_id      TEXT NOT NULL REFERENCES users (user_id),
    name          TEXT NOT NULL,
    unique_name   TEXT NOT NULL UNIQUE,
    scopes        TEXT NOT NULL,         -- space separated
    redirect_uris TEXT NOT NULL,         -- space separated, exactly as registered
    client_type   TEXT NOT NULL CHECK (client_type IN ('confidential', 'public')),
    status        TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'suspended')),
    status_reason TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX applications_owner_id ON applications (owner_id);
CREATE INDEX applications_status ON applications (status);

CREATE TABLE client_secrets (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- insertion order
    secret_id     TEXT NOT NULL UNIQUE,
    client_id     TEXT NOT NULL REFERENCES applications (client_id) ON DELETE CASCADE,
    secret_digest BYTEA NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX client_secrets_client_id ON client_secrets (client_id);

CREATE TABLE audit_events (
    event_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       BIGINT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    detail   TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
