-- SQLite's migration 0009: the HTTP API's bearer tokens, stored as hashes.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    tenant_id BIGINT REFERENCES tenants (id) ON DELETE CASCADE,
    organization_id BIGINT REFERENCES organizations (id) ON DELETE CASCADE,
    user_email TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
