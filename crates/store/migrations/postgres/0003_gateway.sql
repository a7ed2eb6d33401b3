-- The gateway: embed tokens are bound to one view. Revocations travel between nodes by
-- NOTIFY on channel gatehouse_invalidation, so no table is needed here.
ALTER TABLE token_families ADD COLUMN embed_view TEXT;
-- The secret key that minted an account's token: revoking the key revokes its tokens.
ALTER TABLE token_families ADD COLUMN key_id TEXT;
CREATE INDEX token_families_key_id ON token_families (key_id);
