-- OpenID Connect: the keys id_tokens are signed with, and what an id_token needs to know
-- about the code and the token family it comes from.

-- One row per key. The private key is stored sealed (AES-256-GCM with the deployment's
-- signing key secret, which the database never sees); the public key is the JWK's n and e.
-- retired_at is NULL for the current key; a retired key stays in the JWKS until
-- published_until, when every id_token it signed has expired.
CREATE TABLE signing_keys (
    seq                INTEGER PRIMARY KEY,
    kid                TEXT NOT NULL UNIQUE,
    algorithm          TEXT NOT NULL CHECK (algorithm IN ('RS256')),
    public_n           TEXT NOT NULL,
    public_e           TEXT NOT NULL,
    private_key_sealed BLOB NOT NULL,
    created_at         INTEGER NOT NULL,
    retired_at         INTEGER,
    published_until    INTEGER
);
-- At most one current key, however many nodes start or rotate at once.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys ((retired_at IS NULL))
    WHERE retired_at IS NULL;

-- The authorization request's nonce and when the user signed in, for the id_token.
ALTER TABLE authorization_codes ADD COLUMN nonce TEXT;
ALTER TABLE authorization_codes ADD COLUMN auth_time INTEGER;
-- When the user signed in to authorize the family: refreshed id_tokens repeat it.
ALTER TABLE token_families ADD COLUMN auth_time INTEGER;
