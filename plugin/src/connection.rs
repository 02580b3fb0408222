//! A connection as this integration uses it: the generic settings of the contract
//! read into the fields Dataverse and the Microsoft identity platform need.

use crate::types::{self, Credential as WitCredential, Error, Setting, SettingKind};

/// Keys of the settings this integration declares (see [`settings`]).
pub const ENVIRONMENT_URL: &str = "environment_url";
pub const AUTHORITY_URL: &str = "authority_url";
pub const TENANT: &str = "tenant";
pub const CLIENT_ID: &str = "client_id";

/// The Microsoft identity platform, where every commercial-cloud tenant signs in.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// How this integration signs in.
#[derive(Clone, Debug, PartialEq)]
pub enum Credential {
    /// A service principal's client secret (client-credentials grant).
    ClientSecret(String),
    /// A person signed in with a device code; the refresh token is in storage.
    User,
}

/// One Dynamics 365 environment and how to sign in to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    pub id: String,
    /// Base URL of the environment, e.g. `https://contoso.crm.dynamics.com`.
    pub environment_url: String,
    /// Base URL of the identity authority.
    pub authority_url: String,
    /// Directory (tenant): a GUID or a domain name.
    pub tenant: String,
    /// Application (client) id registered in the tenant.
    pub client_id: String,
    pub credential: Credential,
}

/// The settings a connection form asks for, in order.
pub fn settings() -> Vec<Setting> {
    let setting = |key: &str, label: &str, help: &str, kind, default: Option<&str>| Setting {
        key: key.to_string(),
        label: label.to_string(),
        help: help.to_string(),
        kind,
        required: default.is_none(),
        default_value: default.map(str::to_string),
    };
    vec![
        setting(
            ENVIRONMENT_URL,
            "Environment URL",
            "The address of the Dynamics 365 environment, e.g. https://contoso.crm.dynamics.com \
             (Power Platform admin center → Environments → the environment → Environment URL).",
            SettingKind::Endpoint,
            None,
        ),
        setting(
            TENANT,
            "Directory (tenant) ID",
            "The tenant of the app registration: its GUID or a domain name (Microsoft Entra \
             admin center → App registrations → the app → Overview).",
            SettingKind::Text,
            None,
        ),
        setting(
            CLIENT_ID,
            "Application (client) ID",
            "The app registration that is an application user of the environment, or that \
             people sign in through (App registrations → the app → Overview).",
            SettingKind::Text,
            None,
        ),
        setting(
            AUTHORITY_URL,
            "Authority URL",
            "Where the tenant signs in; change it only for a national cloud, e.g. \
             https://login.microsoftonline.us.",
            SettingKind::Endpoint,
            Some(DEFAULT_AUTHORITY),
        ),
    ]
}

impl Connection {
    /// Reads the contract's connection; a missing setting or an unsupported
    /// credential is `invalid`, naming what is wrong.
    pub fn from_wit(conn: types::Connection) -> Result<Connection, Error> {
        let setting = |key: &str| {
            conn.settings
                .iter()
                .find(|s| s.key == key)
                .map(|s| s.value.trim().to_string())
                .filter(|value| !value.is_empty())
        };
        let required = |key: &str| {
            setting(key).ok_or_else(|| {
                Error::Invalid(format!(
                    "the connection has no '{key}' setting; add it to the connection"
                ))
            })
        };
        let credential = match conn.credential {
            WitCredential::ClientSecret(secret) => Credential::ClientSecret(secret),
            WitCredential::User => Credential::User,
            WitCredential::Certificate(_) | WitCredential::ApiKey(_) => {
                return Err(Error::Invalid(
                    "Dynamics 365 connections sign in with a client secret or as a person; \
                     change the connection's credential"
                        .to_string(),
                ));
            }
        };
        Ok(Connection {
            environment_url: required(ENVIRONMENT_URL)?,
            tenant: required(TENANT)?,
            client_id: required(CLIENT_ID)?,
            authority_url: setting(AUTHORITY_URL).unwrap_or_else(|| DEFAULT_AUTHORITY.to_string()),
            id: conn.id,
            credential,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SettingValue;

    fn wit(settings: &[(&str, &str)], credential: WitCredential) -> types::Connection {
        types::Connection {
            id: "c1".into(),
            settings: settings
                .iter()
                .map(|(key, value)| SettingValue {
                    key: key.to_string(),
                    value: value.to_string(),
                })
                .collect(),
            credential,
        }
    }

    #[test]
    fn settings_are_read_by_key_and_the_authority_defaults() {
        let conn = Connection::from_wit(wit(
            &[
                (CLIENT_ID, "app"),
                (ENVIRONMENT_URL, "https://org.crm.dynamics.com"),
                (TENANT, " contoso.onmicrosoft.com "),
            ],
            WitCredential::User,
        ))
        .unwrap();
        assert_eq!(conn.environment_url, "https://org.crm.dynamics.com");
        assert_eq!(conn.tenant, "contoso.onmicrosoft.com");
        assert_eq!(conn.client_id, "app");
        assert_eq!(conn.authority_url, DEFAULT_AUTHORITY);
        assert_eq!(conn.credential, Credential::User);
    }

    #[test]
    fn a_missing_setting_or_a_foreign_credential_is_invalid_and_named() {
        let missing = Connection::from_wit(wit(
            &[
                (ENVIRONMENT_URL, "https://org.crm.dynamics.com"),
                (TENANT, "t"),
            ],
            WitCredential::ClientSecret("s".into()),
        ));
        assert!(matches!(missing, Err(Error::Invalid(m)) if m.contains("'client_id'")));
        let api_key = Connection::from_wit(wit(
            &[(ENVIRONMENT_URL, "u"), (TENANT, "t"), (CLIENT_ID, "c")],
            WitCredential::ApiKey("k".into()),
        ));
        assert!(matches!(api_key, Err(Error::Invalid(m)) if m.contains("client secret")));
    }

    #[test]
    fn every_declared_setting_has_a_label_and_only_the_authority_is_optional() {
        let declared = settings();
        assert_eq!(declared.len(), 4);
        for setting in &declared {
            assert!(!setting.label.is_empty() && !setting.help.is_empty());
            assert_eq!(
                setting.required,
                setting.key != AUTHORITY_URL,
                "{}",
                setting.key
            );
        }
    }
}
