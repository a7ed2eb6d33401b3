-- RFC 7591 dynamic client registration. A dynamically registered app has no owner (no person
-- vouches for it), so owner_id becomes nullable; `registration` says how each app was made
-- (apps made before this migration count as made in the portal), `auto_approved_at`
-- is when one was approved without review (`[registration] mode = "open"`), and client_uri and
-- logo_uri keep what the client registered, shown as text only.
ALTER TABLE applications ALTER COLUMN owner_id DROP NOT NULL;
ALTER TABLE applications ADD COLUMN registration TEXT NOT NULL DEFAULT 'portal'
    CHECK (registration IN ('portal', 'cli', 'admin_api', 'dynamic'));
ALTER TABLE applications ADD COLUMN auto_approved_at BIGINT;
ALTER TABLE applications ADD COLUMN client_uri TEXT;
ALTER TABLE applications ADD COLUMN logo_uri TEXT;
-- The upkeep looks for dynamically registered apps nobody ever authorized.
CREATE INDEX applications_registration_created_at ON applications (registration, created_at);
