-- RFC 7591 dynamic client registration. A dynamically registered app has no owner (no person
-- vouches for it), so owner_id becomes nullable; `registration` says how each app was made
-- (apps made before this migration count as made in the portal), `auto_approved_at`
-- is when one was approved without review (`[registration] mode = "open"`), and client_uri and
-- logo_uri keep what the client registered, shown as text only.

-- SQLite cannot drop a NOT NULL constraint with ALTER TABLE, and rebuilding the table would
-- fire the ON DELETE CASCADE of every table referring to it. SQLite documents editing the
-- stored schema for removing a NOT NULL constraint (it does not change the file format);
-- RESET makes this connection read the edited schema before the next ALTER.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
   SET sql = replace(sql, 'owner_id      TEXT NOT NULL REFERENCES users (user_id)',
                          'owner_id      TEXT REFERENCES users (user_id)')
 WHERE type = 'table' AND name = 'applications';
PRAGMA writable_schema = RESET;

ALTER TABLE applications ADD COLUMN registration TEXT NOT NULL DEFAULT 'portal'
    CHECK (registration IN ('portal', 'cli', 'admin_api', 'dynamic'));
ALTER TABLE applications ADD COLUMN auto_approved_at INTEGER;
ALTER TABLE applications ADD COLUMN client_uri TEXT;
ALTER TABLE applications ADD COLUMN logo_uri TEXT;
-- The upkeep looks for dynamically registered apps nobody ever authorized.
CREATE INDEX applications_registration_created_at ON applications (registration, created_at);
