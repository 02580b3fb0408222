-- Connections become integration-neutral: each names its integration (by the id
-- the integration declares) and keeps the settings that integration declares
-- (JSON [key, value] pairs, in declared order) with the origins they allow,
-- instead of the columns of the Dynamics 365 sign-in. The credential kinds of
-- goals:integration@0.2.0 join the two there were; the sealed secret keeps its
-- place (and its sealing context). SQLite changes columns and CHECKs only by
-- rebuilding the table; it runs with foreign keys off, and the links'
-- references to it are checked before it commits.
CREATE TABLE connections_v3 (
    id TEXT PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    integration TEXT NOT NULL,
    -- [key, value] pairs, in the order the integration declares its settings.
    settings TEXT NOT NULL CHECK (json_valid(settings) AND json_type(settings) = 'array'),
    -- The origins (scheme://host[:port]) of the settings the integration declares
    -- as endpoints: the only places its calls for this connection may reach.
    origins TEXT NOT NULL CHECK (json_valid(origins) AND json_type(origins) = 'array'),
    sign_in TEXT NOT NULL
        CHECK (sign_in IN ('client-secret', 'certificate', 'device-code', 'api-key')),
    -- Sealed: the client secret, the API key or the certificate and key; empty
    -- for a person's sign-in, whose refresh token the integration keeps.
    client_secret TEXT NOT NULL,
    allow_loopback INTEGER NOT NULL,
    added_by TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'ok'
        CHECK (status IN ('ok', 'needs-sign-in', 'disabled')),
    status_reason TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (organization_id, name)
) STRICT;
INSERT INTO connections_v3 (id, organization_id, name, integration, settings, origins, sign_in,
    client_secret, allow_loopback, added_by, status, status_reason, created_at)
SELECT id, organization_id, name, 'microsoft.dynamics365',
    json_array(json_array('environment_url', environment_url), json_array('tenant', tenant),
        json_array('client_id', client_id), json_array('authority_url', authority_url)),
    json_array(environment_url, authority_url),
    sign_in, client_secret, allow_loopback, added_by, status, status_reason, created_at
FROM connections;
DROP TABLE connections;
ALTER TABLE connections_v3 RENAME TO connections;
