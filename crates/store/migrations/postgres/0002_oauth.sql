-- OAuth: token families, authorization codes, access and refresh tokens, grants (consent)
-- and browser sessions. Tokens and codes are stored only as SHA-256 digests.

CREATE TABLE token_families (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    family_id  TEXT NOT NULL UNIQUE,
    origin     TEXT NOT NULL CHECK (origin IN ('authorization_code', 'client_credentials', 'account', 'embed')),
    client_id  TEXT REFERENCES applications (client_id) ON DELETE CASCADE,
    user_id    TEXT REFERENCES users (user_id) ON DELETE CASCADE,
    account_id TEXT REFERENCES accounts (account_id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX token_families_user_client ON token_families (user_id, client_id);
CREATE INDEX token_families_client ON token_families (client_id);

-- family_id is the family the code's tokens will get; it exists once the code is redeemed.
CREATE TABLE authorization_codes (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code_digest    BYTEA NOT NULL UNIQUE,
    family_id      TEXT NOT NULL UNIQUE,
    client_id      TEXT NOT NULL REFERENCES applications (client_id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    code_challenge TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);

CREATE TABLE access_tokens (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_digest BYTEA NOT NULL UNIQUE,
    family_id    TEXT NOT NULL REFERENCES token_families (family_id) ON DELETE CASCADE,
    scopes       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX access_tokens_family_id ON access_tokens (family_id);

CREATE TABLE refresh_tokens (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_digest BYTEA NOT NULL UNIQUE,
    family_id    TEXT NOT NULL REFERENCES token_families (family_id) ON DELETE CASCADE,
    scopes       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);

CREATE TABLE grants (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES applications (client_id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (user_id, client_id)
);

CREATE TABLE sessions (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_digest BYTEA NOT NULL UNIQUE,
    user_id        TEXT REFERENCES users (user_id) ON DELETE CASCADE,
    csrf_token     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
