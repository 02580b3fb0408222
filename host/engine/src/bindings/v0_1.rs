//! `goals:integration@0.1.0`, frozen: components built against it keep loading.
//!
//! The host speaks 0.4 (whose types are 0.2's plus the date window and the
//! chart records); this
//! module converts at the edge. 0.1 had no integration
//! id (storage was scoped by the display name, which stays its id) and a fixed,
//! Dynamics-shaped connection record, whose fields are read from the 0.2
//! settings of the same names.

use super::v0_4::goals::integration::types as current;

wasmtime::component::bindgen!({
    path: "../../wit/v0.1.0",
    world: "integration",
    imports: { "goals:integration/storage": async },
    exports: { default: async },
});

pub use goals::integration::types;
use types as old;

/// The settings the 0.1 connection record carried, as 0.2 settings.
pub const ENVIRONMENT_URL: &str = "environment_url";
pub const AUTHORITY_URL: &str = "authority_url";
pub const TENANT: &str = "tenant";
pub const CLIENT_ID: &str = "client_id";
/// What the 0.1 host filled in when a connection named no authority.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// The description a 0.1 component gives, completed with what 0.1 left implicit:
/// its id is its name, its settings are the 0.1 record's fields, and it signs in
/// with a client secret or as a person.
pub fn plugin_info(info: old::PluginInfo) -> current::PluginInfo {
    use current::{CredentialKind, Setting, SettingKind};
    let setting = |key: &str, label: &str, kind, default: Option<&str>| Setting {
        key: key.to_string(),
        label: label.to_string(),
        help: String::new(),
        kind,
        required: default.is_none(),
        default_value: default.map(str::to_string),
    };
    current::PluginInfo {
        id: info.name.clone(),
        name: info.name,
        version: info.version,
        settings: vec![
            setting(
                ENVIRONMENT_URL,
                "Environment URL",
                SettingKind::Endpoint,
                None,
            ),
            setting(TENANT, "Tenant", SettingKind::Text, None),
            setting(CLIENT_ID, "Client ID", SettingKind::Text, None),
            setting(
                AUTHORITY_URL,
                "Authority URL",
                SettingKind::Endpoint,
                Some(DEFAULT_AUTHORITY),
            ),
        ],
        credentials: vec![CredentialKind::ClientSecret, CredentialKind::User],
        default_sync_interval_seconds: info.default_sync_interval_seconds,
        min_sync_interval_seconds: 0,
        max_concurrent_per_connection: info.max_concurrent_per_connection,
        aggregations: info.aggregations.into_iter().map(up).collect(),
    }
}

/// The 0.1 record of a connection; a credential 0.1 cannot express is refused
/// as `invalid`, before the component is called.
pub fn connection(conn: &current::Connection) -> Result<old::Connection, current::Error> {
    let setting = |key: &str| {
        conn.settings
            .iter()
            .find(|s| s.key == key)
            .map(|s| s.value.clone())
            .unwrap_or_default()
    };
    let credential = match &conn.credential {
        current::Credential::ClientSecret(secret) => old::Credential::ClientSecret(secret.clone()),
        current::Credential::User => old::Credential::User,
        current::Credential::Certificate(_) | current::Credential::ApiKey(_) => {
            return Err(current::Error::Invalid(
                "this integration is built against goals:integration@0.1.0, which signs in \
                 with a client secret or as a person only"
                    .to_string(),
            ));
        }
    };
    let authority = setting(AUTHORITY_URL);
    Ok(old::Connection {
        id: conn.id.clone(),
        environment_url: setting(ENVIRONMENT_URL),
        authority_url: if authority.is_empty() {
            DEFAULT_AUTHORITY.to_string()
        } else {
            authority
        },
        tenant: setting(TENANT),
        client_id: setting(CLIENT_ID),
        credential,
    })
}

/// A value of the old version in the current one; the shapes are the same.
pub fn up<T: Up>(value: T) -> T::Current {
    value.up()
}

/// A value of the current version in the old one.
pub fn down<T: Down>(value: T) -> T::Old {
    value.down()
}

pub trait Up {
    type Current;
    fn up(self) -> Self::Current;
}

pub trait Down {
    type Old;
    fn down(self) -> Self::Old;
}

impl<T: Up> Up for Vec<T> {
    type Current = Vec<T::Current>;
    fn up(self) -> Self::Current {
        self.into_iter().map(Up::up).collect()
    }
}

impl<T: Up> Up for Option<T> {
    type Current = Option<T::Current>;
    fn up(self) -> Self::Current {
        self.map(Up::up)
    }
}

impl<T: Up, E: Up> Up for Result<T, E> {
    type Current = Result<T::Current, E::Current>;
    fn up(self) -> Self::Current {
        self.map(Up::up).map_err(Up::up)
    }
}

/// Enums without payloads: the same cases in both versions, both ways.
macro_rules! same_cases {
    ($($name:ident { $($case:ident),* $(,)? })*) => {$(
        impl Up for old::$name {
            type Current = current::$name;
            fn up(self) -> current::$name {
                match self { $(old::$name::$case => current::$name::$case),* }
            }
        }
        impl Down for current::$name {
            type Old = old::$name;
            fn down(self) -> old::$name {
                match self { $(current::$name::$case => old::$name::$case),* }
            }
        }
    )*};
}

same_cases! {
    ViewKind { System, Personal }
    ColumnType {
        WholeNumber, DecimalNumber, Money, DateTime, Text, Boolean, Choice, Lookup, Identifier,
        Other,
    }
    Aggregation { Count, CountValues, CountDistinct, Sum, Average, Min, Max }
    CurrencyChoice { Base, Transaction }
    SignInStatus { Pending, Complete }
}

impl Up for old::App {
    type Current = current::App;
    fn up(self) -> current::App {
        current::App {
            id: self.id,
            unique_name: self.unique_name,
            name: self.name,
            description: self.description,
        }
    }
}

impl Up for old::Entity {
    type Current = current::Entity;
    fn up(self) -> current::Entity {
        current::Entity {
            logical_name: self.logical_name,
            display_name: self.display_name,
        }
    }
}

impl Up for old::View {
    type Current = current::View;
    fn up(self) -> current::View {
        current::View {
            id: self.id,
            name: self.name,
            kind: up(self.kind),
            is_default: self.is_default,
        }
    }
}

impl Up for old::Column {
    type Current = current::Column;
    fn up(self) -> current::Column {
        current::Column {
            name: self.name,
            display_name: self.display_name,
            column_type: up(self.column_type),
            aggregations: up(self.aggregations),
        }
    }
}

impl Up for old::MetricValue {
    type Current = current::MetricValue;
    fn up(self) -> current::MetricValue {
        match self {
            old::MetricValue::Number(n) => current::MetricValue::Number(n),
            old::MetricValue::DateTime(t) => current::MetricValue::DateTime(t),
        }
    }
}

impl Up for old::Measurement {
    type Current = current::Measurement;
    fn up(self) -> current::Measurement {
        current::Measurement {
            value: up(self.value),
            records: self.records,
            currency: self.currency,
            requests: self.requests,
            bytes_received: self.bytes_received,
            query: self.query,
        }
    }
}

impl Up for old::Error {
    type Current = current::Error;
    fn up(self) -> current::Error {
        match self {
            old::Error::Unauthorized(m) => current::Error::Unauthorized(m),
            old::Error::NotFound(m) => current::Error::NotFound(m),
            old::Error::Throttled(t) => current::Error::Throttled(current::Throttle {
                retry_after_seconds: t.retry_after_seconds,
                message: t.message,
            }),
            old::Error::Invalid(m) => current::Error::Invalid(m),
            old::Error::Limit(m) => current::Error::Limit(m),
            old::Error::Upstream(m) => current::Error::Upstream(m),
        }
    }
}

impl Up for old::DeviceCode {
    type Current = current::DeviceCode;
    fn up(self) -> current::DeviceCode {
        current::DeviceCode {
            user_code: self.user_code,
            verification_uri: self.verification_uri,
            message: self.message,
            expires_in_seconds: self.expires_in_seconds,
            interval_seconds: self.interval_seconds,
        }
    }
}

impl Up for old::Identity {
    type Current = current::Identity;
    fn up(self) -> current::Identity {
        current::Identity {
            user_id: self.user_id,
            environment_id: Some(self.organization_id),
            details: vec![("Business unit".to_string(), self.business_unit_id)],
        }
    }
}

impl Down for current::ViewRef {
    type Old = old::ViewRef;
    fn down(self) -> old::ViewRef {
        old::ViewRef {
            id: self.id,
            kind: down(self.kind),
        }
    }
}

impl Down for current::MetricSpec {
    type Old = old::MetricSpec;
    fn down(self) -> old::MetricSpec {
        old::MetricSpec {
            entity: self.entity,
            view: down(self.view),
            column: self.column,
            aggregation: down(self.aggregation),
            currency: down(self.currency),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Vec<current::SettingValue> {
        pairs
            .iter()
            .map(|(key, value)| current::SettingValue {
                key: key.to_string(),
                value: value.to_string(),
            })
            .collect()
    }

    #[test]
    fn the_old_record_is_read_from_the_settings_of_its_field_names() {
        let conn = current::Connection {
            id: "c".into(),
            settings: settings(&[
                (ENVIRONMENT_URL, "https://org.example"),
                (TENANT, "t"),
                (CLIENT_ID, "app"),
            ]),
            credential: current::Credential::ClientSecret("s".into()),
        };
        let old = connection(&conn).unwrap();
        assert_eq!(old.environment_url, "https://org.example");
        assert_eq!(old.authority_url, DEFAULT_AUTHORITY);
        assert_eq!((old.tenant.as_str(), old.client_id.as_str()), ("t", "app"));
        assert!(matches!(old.credential, old::Credential::ClientSecret(s) if s == "s"));
    }

    #[test]
    fn credentials_the_old_version_cannot_carry_are_refused_before_the_call() {
        let conn = current::Connection {
            id: "c".into(),
            settings: Vec::new(),
            credential: current::Credential::ApiKey("k".into()),
        };
        assert!(
            matches!(connection(&conn), Err(current::Error::Invalid(m)) if m.contains("0.1.0"))
        );
    }

    #[test]
    fn an_old_description_keeps_its_name_as_id_and_gains_the_old_settings() {
        let info = plugin_info(old::PluginInfo {
            name: "Old".into(),
            version: "1.0.0".into(),
            default_sync_interval_seconds: 60,
            max_concurrent_per_connection: 3,
            aggregations: vec![old::Aggregation::Sum],
        });
        assert_eq!(info.id, "Old");
        let keys: Vec<_> = info.settings.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, [ENVIRONMENT_URL, TENANT, CLIENT_ID, AUTHORITY_URL]);
        assert_eq!(info.aggregations, [current::Aggregation::Sum]);
    }
}
