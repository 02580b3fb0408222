//! Finding an app or a view from what a person typed: its id, or its name in
//! any case (an app also by its unique name).

use crate::bindings::{App, View};
use crate::connections::ConnectionRecord;
use crate::engine::Engine;

/// How many names an error lists before it says "...".
const SHOWN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no {what} '{wanted}'; {what}s: {}", shown(.available))]
    NotFound {
        what: &'static str,
        wanted: String,
        available: Vec<String>,
    },
    #[error("several {what}s are named '{wanted}'; use one of their ids: {}", .ids.join(", "))]
    Ambiguous {
        what: &'static str,
        wanted: String,
        ids: Vec<String>,
    },
}

fn shown(names: &[String]) -> String {
    if names.is_empty() {
        return "none".to_string();
    }
    let mut list = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        list.push_str(", ...");
    }
    list
}

/// An item by id, else by name ignoring case (which must then be unique; an
/// exact-case match wins over others).
pub fn pick<T>(
    items: Vec<T>,
    wanted: &str,
    what: &'static str,
    id: impl Fn(&T) -> &str,
    name: impl Fn(&T) -> &str,
) -> Result<T, ResolveError> {
    let wanted = wanted.trim();
    let mut by_name = Vec::new();
    let mut available = Vec::new();
    for item in items {
        if id(&item).eq_ignore_ascii_case(wanted) {
            return Ok(item);
        }
        available.push(name(&item).to_string());
        if name(&item).to_lowercase() == wanted.to_lowercase() {
            by_name.push(item);
        }
    }
    if by_name.len() > 1 {
        let exact: Vec<usize> = (0..by_name.len())
            .filter(|&i| name(&by_name[i]) == wanted)
            .collect();
        if let [only] = exact[..] {
            return Ok(by_name.swap_remove(only));
        }
    }
    match by_name.len() {
        1 => Ok(by_name.remove(0)),
        0 => Err(ResolveError::NotFound {
            what,
            wanted: wanted.to_string(),
            available,
        }),
        _ => Err(ResolveError::Ambiguous {
            what,
            wanted: wanted.to_string(),
            ids: by_name.iter().map(|item| id(item).to_string()).collect(),
        }),
    }
}

pub async fn app(
    runtime: &dyn Engine,
    conn: &ConnectionRecord,
    wanted: &str,
) -> anyhow::Result<App> {
    Ok(pick_app(runtime.list_apps(conn).await?, wanted)?)
}

/// An app by id, unique name (an identifier too: the one `apps` prints for
/// scripts) or display name, in any case.
pub fn pick_app(apps: Vec<App>, wanted: &str) -> Result<App, ResolveError> {
    let by_unique = |a: &App| a.unique_name.eq_ignore_ascii_case(wanted.trim());
    if let Some(app) = apps.iter().find(|a| by_unique(a)) {
        return Ok(app.clone());
    }
    pick(apps, wanted, "app", |a| &a.id, |a| &a.name)
}

/// A table by logical name, or by display name (any case) among the tables the
/// environment's apps show. A logical name (lower case, no spaces) is taken as
/// it is, without a request: the plugin says if it does not exist.
pub async fn entity(
    runtime: &dyn Engine,
    conn: &ConnectionRecord,
    wanted: &str,
) -> anyhow::Result<String> {
    let wanted = wanted.trim();
    if is_logical_name(wanted) {
        return Ok(wanted.to_string());
    }
    let lowercase = wanted.to_lowercase();
    let mut available = Vec::new();
    let mut found = Vec::new();
    for app in runtime.list_apps(conn).await? {
        for entity in runtime.list_entities(conn, &app.id).await? {
            if entity.display_name.to_lowercase() == lowercase
                && !found.contains(&entity.logical_name)
            {
                found.push(entity.logical_name.clone());
            }
            if !available.contains(&entity.display_name) {
                available.push(entity.display_name);
            }
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(ResolveError::NotFound {
            what: "table",
            wanted: wanted.to_string(),
            available,
        }
        .into()),
        _ => Err(ResolveError::Ambiguous {
            what: "table",
            wanted: wanted.to_string(),
            ids: found,
        }
        .into()),
    }
}

/// How Dataverse spells logical names: lower-case letters, digits, underscores.
fn is_logical_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

pub async fn view(
    runtime: &dyn Engine,
    conn: &ConnectionRecord,
    entity: &str,
    wanted: &str,
) -> anyhow::Result<View> {
    let views = runtime.list_views(conn, entity, None).await?;
    Ok(pick(views, wanted, "view", |v| &v.id, |v| &v.name)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<(String, String)> {
        vec![
            ("1".into(), "Open".into()),
            ("2".into(), "Won".into()),
            ("3".into(), "Won".into()),
        ]
    }

    #[test]
    fn logical_names_are_told_from_display_names() {
        for logical in ["opportunity", "new_project_task", "account2"] {
            assert!(is_logical_name(logical), "{logical}");
        }
        for display in ["Opportunity", "Project Task", "", "lead "] {
            assert!(!is_logical_name(display), "{display:?}");
        }
    }

    #[test]
    fn ids_win_then_unique_names() {
        let pick = |wanted: &str| pick(items(), wanted, "view", |i| &i.0, |i| &i.1);
        assert_eq!(pick("2").unwrap().1, "Won");
        assert_eq!(pick("Open").unwrap().0, "1");
        assert_eq!(pick("open").unwrap().0, "1", "names in any case");
        assert!(
            matches!(pick("Won"), Err(ResolveError::Ambiguous { ids, .. }) if ids == ["2", "3"])
        );
        let missing = pick("Lost").unwrap_err().to_string();
        assert!(
            missing.contains("no view 'Lost'") && missing.contains("Open, Won, Won"),
            "{missing}"
        );
    }
}
