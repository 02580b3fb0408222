-- Connections to environments, and the plugins' key-value storage.
CREATE TABLE connections (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    environment_url TEXT NOT NULL,
    authority_url TEXT NOT NULL,
    tenant TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    allow_loopback INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE TABLE plugin_kv (
    plugin TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (plugin, connection_id, key)
) STRICT, WITHOUT ROWID;
