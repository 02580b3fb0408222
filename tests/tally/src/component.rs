//! The component's exports over wasi:http (waki) and the host's storage.

use crate::bindings::exports::goals::integration::{discovery, metrics, sign_in};
use crate::bindings::goals::integration::storage;
use crate::bindings::{Guest, export};
use crate::types::{
    App, Column, Connection, Credential, DeviceCode, Entity, Error, Identity, Measurement,
    MetricSpec, MetricValue, PluginInfo, SignInStatus, View, ViewRef,
};
use crate::{BASE_URL, Board, Card, Filter, Me, WORKSPACE};
use serde::de::DeserializeOwned;

struct Component;

/// A GET of `path` below the connection's base URL, with its API key and
/// workspace; returns the parsed body and its size.
fn get<T: DeserializeOwned>(conn: &Connection, path: &str, what: &str) -> Result<(T, u64), Error> {
    let setting = |key: &str| {
        conn.settings
            .iter()
            .find(|s| s.key == key)
            .map(|s| s.value.clone())
            .ok_or_else(|| Error::Invalid(format!("the connection has no '{key}' setting")))
    };
    let Credential::ApiKey(key) = &conn.credential else {
        return Err(Error::Invalid(
            "Tally connections sign in with an API key".to_string(),
        ));
    };
    let url = format!("{}{path}", setting(BASE_URL)?.trim_end_matches('/'));
    let workspace = setting(WORKSPACE)?;
    let response = waki::Client::new()
        .get(&url)
        .headers([
            ("x-api-key", key.as_str()),
            ("x-workspace", workspace.as_str()),
        ])
        .send()
        .map_err(|e| Error::Upstream(format!("Tally is unreachable: {e}")))?;
    let status = response.status_code();
    let body = response
        .body()
        .map_err(|e| Error::Upstream(format!("reading {what}: {e}")))?;
    if status != 200 {
        return Err(crate::status_error(status, what));
    }
    let parsed = serde_json::from_slice(&body)
        .map_err(|e| Error::Upstream(format!("Tally sent unreadable {what}: {e}")))?;
    Ok((parsed, body.len() as u64))
}

impl Guest for Component {
    fn describe() -> PluginInfo {
        crate::describe()
    }
}

impl discovery::Guest for Component {
    fn list_apps(conn: Connection) -> Result<Vec<App>, Error> {
        let (boards, _) = get::<Vec<Board>>(&conn, "/boards", "boards")?;
        Ok(crate::apps(boards))
    }

    fn list_entities(_conn: Connection, _app: String) -> Result<Vec<Entity>, Error> {
        Ok(crate::entities())
    }

    fn list_views(
        conn: Connection,
        _entity: String,
        search: Option<String>,
    ) -> Result<Vec<View>, Error> {
        let (filters, _) = get::<Vec<Filter>>(&conn, "/filters", "filters")?;
        let search = search.map(|s| s.to_lowercase());
        Ok(crate::views(filters)
            .into_iter()
            .filter(|v| {
                search
                    .as_deref()
                    .is_none_or(|s| v.name.to_lowercase().contains(s))
            })
            .collect())
    }

    fn list_columns(
        _conn: Connection,
        _entity: String,
        _view: ViewRef,
    ) -> Result<Vec<Column>, Error> {
        Ok(crate::columns())
    }
}

impl metrics::Guest for Component {
    fn fetch_and_aggregate(conn: Connection, spec: MetricSpec) -> Result<Measurement, Error> {
        let path = format!("/filters/{}/cards", spec.view.id);
        let (cards, bytes) = get::<Vec<Card>>(&conn, &path, "the filter's cards")?;
        let value = crate::aggregate(&cards, &spec.column, spec.aggregation)?;
        // Kept so the tests can see this integration's storage beside another's.
        let _ = storage::set("last-measured", value.to_string().as_bytes(), None);
        Ok(Measurement {
            value: Some(MetricValue::Number(value)),
            records: cards.len() as u64,
            currency: None,
            requests: 1,
            bytes_received: bytes,
            query: format!("GET {path}"),
        })
    }
}

impl sign_in::Guest for Component {
    fn start_device_sign_in(_conn: Connection) -> Result<DeviceCode, Error> {
        Err(Error::Invalid(
            "Tally connections sign in with an API key, not as a person".to_string(),
        ))
    }

    fn poll_device_sign_in(_conn: Connection) -> Result<SignInStatus, Error> {
        Err(Error::Invalid(
            "Tally connections sign in with an API key, not as a person".to_string(),
        ))
    }

    fn who_am_i(conn: Connection) -> Result<Identity, Error> {
        let (me, _) = get::<Me>(&conn, "/me", "the key's user")?;
        let workspace = conn
            .settings
            .iter()
            .find(|s| s.key == WORKSPACE)
            .map(|s| s.value.clone());
        Ok(Identity {
            user_id: me.id,
            environment_id: workspace,
            details: Vec::new(),
        })
    }
}

export!(Component with_types_in crate::bindings);
