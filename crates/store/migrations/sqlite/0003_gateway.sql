-- The gateway: embed tokens are bound to one view; revocations are logged so every process
-- sharing the file (a server, the CLI) can drop what its cache holds.
ALTER TABLE token_families ADD COLUMN embed_view TEXT;
-- The secret key that minted an account's token: revoking the key revokes its tokens.
ALTER TABLE token_families ADD COLUMN key_id TEXT;
CREATE INDEX token_families_key_id ON token_families (key_id);

CREATE TABLE invalidations (
    seq        INTEGER PRIMARY KEY,
    payload    TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
