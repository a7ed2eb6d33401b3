-- A change to the redirect URIs of an app that has been approved waits here until an admin
-- approves it; meanwhile the app keeps the URIs in `applications`. One change per app: a new
-- request replaces the one before, and approving, rejecting or deleting the app removes it.
CREATE TABLE pending_redirect_uris (
    client_id     TEXT PRIMARY KEY REFERENCES applications (client_id) ON DELETE CASCADE,
    redirect_uris TEXT NOT NULL,             -- space separated, like applications.redirect_uris
    requested_at  BIGINT NOT NULL
);
CREATE INDEX pending_redirect_uris_requested_at ON pending_redirect_uris (requested_at);
