-- RFC 8707 resource indicators: the resource an authorization request named travels with its
-- code, the grant's resource with the token family (what its refresh tokens may obtain at
-- most), and each access token's own resource (its audience) with the token. NULL everywhere
-- means no resource was named: such tokens pass wherever the route policy lets them, as every
-- token stored before this migration does.
ALTER TABLE authorization_codes ADD COLUMN resource TEXT;
ALTER TABLE token_families ADD COLUMN resource TEXT;
ALTER TABLE access_tokens ADD COLUMN resource TEXT;
