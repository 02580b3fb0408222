//! Tally: a second integration of the `goals:integration@0.2.0` world, for the
//! host's end-to-end tests. Its service (served by the tests) keeps cards with
//! points on boards, and saved filters of cards; a connection gives the service's
//! base URL, a workspace, and an API key.
//!
//! Mapping to the contract: a board is an app, "cards" its one entity, a saved
//! filter a view, and the metric counts the filter's cards or sums their points.

pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.2.0",
        world: "integration",
        generate_all,
    });
}

#[cfg(target_arch = "wasm32")]
mod component;

pub use bindings::goals::integration::types;

use serde::Deserialize;
use types::{
    Aggregation, App, Column, ColumnType, CredentialKind, Entity, Error, PluginInfo, Setting,
    SettingKind, View, ViewKind,
};

pub const ID: &str = "example.tally";
pub const BASE_URL: &str = "base_url";
pub const WORKSPACE: &str = "workspace";
pub const ENTITY: &str = "cards";

pub fn describe() -> PluginInfo {
    PluginInfo {
        id: ID.to_string(),
        name: "Tally".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        settings: vec![
            Setting {
                key: BASE_URL.to_string(),
                label: "Service URL".to_string(),
                help: "Where the Tally service answers, e.g. https://tally.example.com."
                    .to_string(),
                kind: SettingKind::Endpoint,
                required: true,
                default_value: None,
            },
            Setting {
                key: WORKSPACE.to_string(),
                label: "Workspace".to_string(),
                help: "The workspace whose boards the connection reads.".to_string(),
                kind: SettingKind::Text,
                required: true,
                default_value: None,
            },
        ],
        credentials: vec![CredentialKind::ApiKey],
        default_sync_interval_seconds: 3600,
        min_sync_interval_seconds: 60,
        max_concurrent_per_connection: 4,
        aggregations: vec![Aggregation::Count, Aggregation::Sum],
    }
}

#[derive(Deserialize)]
pub struct Board {
    pub id: String,
    pub name: String,
}

#[derive(Deserialize)]
pub struct Filter {
    pub id: String,
    pub name: String,
}

#[derive(Deserialize)]
pub struct Card {
    pub points: Option<f64>,
}

#[derive(Deserialize)]
pub struct Me {
    pub id: String,
}

pub fn apps(boards: Vec<Board>) -> Vec<App> {
    boards
        .into_iter()
        .map(|b| App {
            unique_name: b.id.clone(),
            id: b.id,
            name: b.name,
            description: None,
        })
        .collect()
}

pub fn entities() -> Vec<Entity> {
    vec![Entity {
        logical_name: ENTITY.to_string(),
        display_name: "Cards".to_string(),
    }]
}

pub fn views(filters: Vec<Filter>) -> Vec<View> {
    filters
        .into_iter()
        .map(|f| View {
            id: f.id,
            name: f.name,
            kind: ViewKind::System,
            is_default: false,
        })
        .collect()
}

pub fn columns() -> Vec<Column> {
    vec![
        Column {
            name: "points".to_string(),
            display_name: "Points".to_string(),
            column_type: ColumnType::WholeNumber,
            aggregations: vec![Aggregation::Count, Aggregation::Sum],
        },
        Column {
            name: "title".to_string(),
            display_name: "Title".to_string(),
            column_type: ColumnType::Text,
            aggregations: vec![Aggregation::Count],
        },
    ]
}

/// Count of the cards, or the sum of their points.
pub fn aggregate(cards: &[Card], column: &str, aggregation: Aggregation) -> Result<f64, Error> {
    match (column, aggregation) {
        (_, Aggregation::Count) => Ok(cards.len() as f64),
        ("points", Aggregation::Sum) => Ok(cards.iter().filter_map(|c| c.points).sum()),
        _ => Err(Error::Invalid(format!(
            "Tally counts cards or sums points, not {aggregation:?} of {column}"
        ))),
    }
}

/// The contract's error for an HTTP status of the service.
pub fn status_error(status: u16, what: &str) -> Error {
    match status {
        401 | 403 => Error::Unauthorized(format!(
            "Tally refused the API key ({status}) reading {what}: give a valid key with \
             `connection sign-in --api-key-env VAR`"
        )),
        404 => Error::NotFound(format!("Tally has no {what}")),
        _ => Error::Upstream(format!("Tally answered {status} reading {what}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_cards_and_sums_points_ignoring_missing_ones() {
        let cards = [
            Card { points: Some(3.0) },
            Card { points: None },
            Card { points: Some(5.0) },
        ];
        assert!(matches!(
            aggregate(&cards, "points", Aggregation::Count),
            Ok(3.0)
        ));
        assert!(matches!(
            aggregate(&cards, "points", Aggregation::Sum),
            Ok(8.0)
        ));
        assert!(aggregate(&cards, "title", Aggregation::Sum).is_err());
    }
}
