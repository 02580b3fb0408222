-- How each connection signs in: a service principal's client secret, or a
-- person's device-code sign-in (whose refresh token the plugin keeps, sealed, in
-- its storage). Secrets are sealed by the host from this version on.
ALTER TABLE connections ADD COLUMN sign_in TEXT NOT NULL DEFAULT 'client-secret'
    CHECK (sign_in IN ('client-secret', 'device-code'));
