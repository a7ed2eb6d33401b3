-- Admin keys: the bearer credentials of the admin API, made and revoked on the command line.
-- Only the SHA-256 digest of a key is stored; every admin API call looks its key up here by
-- that digest (no cache), so a revocation holds on every node from its commit on.
CREATE TABLE admin_keys (
    seq        INTEGER PRIMARY KEY,                      -- insertion order (alias of rowid)
    key_id     TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    key_digest BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
