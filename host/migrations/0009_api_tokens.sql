-- The HTTP API's tokens (`goals-host serve`). Only a SHA-256 hash of
-- each token is kept: the token itself is shown once, when it is created.
-- A token acts with one role, inside one tenant or organization (a platform
-- admin's has neither).
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    tenant_id INTEGER REFERENCES tenants (id) ON DELETE CASCADE,
    organization_id INTEGER REFERENCES organizations (id) ON DELETE CASCADE,
    user_email TEXT,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
