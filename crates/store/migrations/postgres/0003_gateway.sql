-- The gateway: embed tokens are bound to one view. Revocations travel between nodes by
-- NOTIFY on channel gatehouse_invalidation, so no table is needed here.
ALTER TABLE token_families ADD COLUMN embed_view TEXT;
