-- The Goals side: tenants and organizations with the integration policy,
-- connections owned by organizations, Key Results linked to metrics, their sync
-- runs and open alerts. Times are Unix seconds from the host's clock.

CREATE TABLE tenants (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- Set by the tenant admin: the integration for every organization of the tenant.
    integration_enabled INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE organizations (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL UNIQUE,
    -- Set by the organization admin; syncs need this and the tenant's switch.
    integration_enabled INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
) STRICT;

-- Connections made before organizations existed belong to this one, enabled as
-- they were.
INSERT INTO tenants (id, name, integration_enabled, created_at)
VALUES (1, 'default', 1, unixepoch());
INSERT INTO organizations (id, tenant_id, name, integration_enabled, created_at)
VALUES (1, 1, 'default', 1, unixepoch());

-- Connection names become unique per organization, which SQLite can only do by
-- rebuilding the table.
CREATE TABLE connections_v2 (
    id TEXT PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    environment_url TEXT NOT NULL,
    authority_url TEXT NOT NULL,
    tenant TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    allow_loopback INTEGER NOT NULL,
    added_by TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'ok'
        CHECK (status IN ('ok', 'needs-sign-in', 'disabled')),
    status_reason TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (organization_id, name)
) STRICT;
INSERT INTO connections_v2 (id, organization_id, name, environment_url, authority_url,
    tenant, client_id, client_secret, allow_loopback, added_by, created_at)
SELECT id, 1, name, environment_url, authority_url, tenant, client_id, client_secret,
    allow_loopback, '', created_at
FROM connections;
DROP TABLE connections;
ALTER TABLE connections_v2 RENAME TO connections;

CREATE TABLE key_results (
    id INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations (id),
    title TEXT NOT NULL,
    owner TEXT NOT NULL,
    unit TEXT NOT NULL CHECK (unit IN ('number', 'percent', 'currency')),
    currency_code TEXT,
    start_value REAL NOT NULL,
    target_value REAL NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('increase', 'decrease')),
    current_value REAL,
    -- Where the current value came from: the last sync or a manual check-in.
    current_source TEXT CHECK (current_source IN ('sync', 'check-in')),
    current_at INTEGER,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE metric_links (
    key_result_id INTEGER PRIMARY KEY REFERENCES key_results (id) ON DELETE CASCADE,
    connection_id TEXT NOT NULL REFERENCES connections (id),
    app_id TEXT NOT NULL,
    app_name TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_name TEXT NOT NULL,
    view_id TEXT NOT NULL,
    view_kind TEXT NOT NULL CHECK (view_kind IN ('system', 'personal')),
    view_name TEXT NOT NULL,
    column_name TEXT NOT NULL,
    column_display TEXT NOT NULL,
    aggregation TEXT NOT NULL,
    currency TEXT NOT NULL CHECK (currency IN ('base', 'transaction')),
    interval_seconds INTEGER NOT NULL CHECK (interval_seconds > 0),
    state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused', 'broken')),
    state_reason TEXT,
    next_run_at INTEGER NOT NULL,
    -- Consecutive failures, for the backoff.
    failures INTEGER NOT NULL DEFAULT 0,
    -- Set while a sync runs: one sync per link at a time.
    running_since INTEGER,
    last_success_at INTEGER,
    last_attempt_at INTEGER,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX metric_links_due ON metric_links (next_run_at) WHERE state = 'active';
CREATE INDEX metric_links_connection ON metric_links (connection_id);

CREATE TABLE sync_runs (
    id INTEGER PRIMARY KEY,
    key_result_id INTEGER NOT NULL REFERENCES key_results (id) ON DELETE CASCADE,
    trigger TEXT NOT NULL CHECK (trigger IN ('scheduled', 'manual')),
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    status TEXT NOT NULL CHECK (status IN ('running', 'success', 'failure', 'interrupted')),
    value REAL,
    currency TEXT,
    records INTEGER,
    requests INTEGER,
    bytes INTEGER,
    error_kind TEXT,
    error_message TEXT,
    query TEXT
) STRICT;
CREATE INDEX sync_runs_key_result ON sync_runs (key_result_id, id);

-- One row per problem episode: opened when the problem appears, closed when it is
-- fixed; a problem that persists over many runs stays one alert.
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('needs-sign-in', 'broken-link', 'stale')),
    subject TEXT NOT NULL,
    message TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    closed_at INTEGER
) STRICT;
CREATE UNIQUE INDEX alerts_open ON alerts (kind, subject) WHERE closed_at IS NULL;
