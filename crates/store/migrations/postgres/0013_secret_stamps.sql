-- From this version on, generated secrets begin with a stamp (docs/token-format.md) and the
-- digest columns hold the stamp followed by the SHA-256 digest: 41 bytes, where earlier
-- versions read exactly 32 and fail on anything else. Nothing changes in the schema; this
-- migration exists so that an earlier binary started on this database refuses to run (it
-- does not know migration 13) instead of failing on each stamped secret it reads.
SELECT 1;
