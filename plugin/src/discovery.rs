//! Browsing an environment: apps, their entities, views and columns (charts are
//! listed by `charts`).

use crate::client::Session;
use crate::fetchxml::{ColumnRef, ViewQuery};
use crate::metadata::{self, Collection, EntityDefinition};
use crate::types::{App, Column, Entity, Error, View, ViewKind, ViewRef};
use crate::{layout, odata, sitemap};
use serde::Deserialize;

/// App module component type of a site map.
const SITEMAP_COMPONENT: u32 = 62;

#[derive(Deserialize)]
struct AppRecord {
    appmoduleid: String,
    #[serde(default)]
    appmoduleidunique: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    uniquename: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

/// Active model-driven apps, by name.
pub fn list_apps(session: &mut Session) -> Result<Vec<App>, Error> {
    let path = format!(
        "appmodules?{}",
        odata::query(&[
            (
                "$select",
                "appmoduleid,appmoduleidunique,name,uniquename,description,statecode"
            ),
            ("$filter", "statecode eq 0"),
            ("$orderby", "name"),
        ])
    );
    let apps: Collection<AppRecord> = session.get_json(&path, "list of apps")?;
    Ok(apps
        .value
        .into_iter()
        .map(|app| {
            let unique_name = app.uniquename.unwrap_or_default();
            App {
                name: app.name.unwrap_or_else(|| unique_name.clone()),
                id: app.appmoduleid,
                unique_name,
                description: app.description.filter(|d| !d.trim().is_empty()),
            }
        })
        .collect())
}

#[derive(Deserialize)]
struct ComponentRecord {
    objectid: String,
}

#[derive(Deserialize)]
struct SiteMapRecord {
    #[serde(default)]
    sitemapxml: Option<String>,
}

/// The tables an app's site map navigates to, in navigation order.
pub fn list_entities(session: &mut Session, app_id: &str) -> Result<Vec<Entity>, Error> {
    if !odata::is_guid(app_id) {
        return Err(Error::Invalid(format!(
            "app id '{app_id}' is not a GUID; pick the app from the list of apps"
        )));
    }
    let app: AppRecord = session.get_json(
        &format!(
            "appmodules({app_id})?{}",
            odata::query(&[("$select", "appmoduleid,appmoduleidunique,name")])
        ),
        &format!("app {app_id}"),
    )?;
    let app_name = app.name.unwrap_or_else(|| app_id.to_string());
    // Components are keyed by the app's appmoduleidunique, not its appmoduleid.
    let unique_id = app
        .appmoduleidunique
        .filter(|id| odata::is_guid(id))
        .ok_or_else(|| crate::errors::unexpected_body("app", "appmoduleidunique missing"))?;
    let components: Collection<ComponentRecord> = session.get_json(
        &format!(
            "appmodulecomponents?{}",
            odata::query(&[
                ("$select", "objectid"),
                (
                    "$filter",
                    &format!(
                        "_appmoduleidunique_value eq {unique_id} and componenttype eq {SITEMAP_COMPONENT}"
                    )
                ),
            ])
        ),
        &format!("components of app '{app_name}'"),
    )?;
    let sitemap_id = components
        .value
        .into_iter()
        .map(|c| c.objectid)
        .find(|id| odata::is_guid(id))
        .ok_or_else(|| {
            Error::NotFound(format!(
                "app '{app_name}' has no site map, so it shows no tables; choose another app"
            ))
        })?;
    let sitemap: SiteMapRecord = session.get_json(
        &format!(
            "sitemaps({sitemap_id})?{}",
            odata::query(&[("$select", "sitemapxml")])
        ),
        &format!("site map of app '{app_name}'"),
    )?;
    let names =
        sitemap::entity_names(sitemap.sitemapxml.as_deref().unwrap_or_default()).map_err(|e| {
            Error::Invalid(format!(
                "the site map of app '{app_name}' cannot be read ({e}); fix it in the app designer"
            ))
        })?;
    let names: Vec<String> = names
        .into_iter()
        .filter(|n| odata::is_logical_name(n))
        .collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let filter = names
        .iter()
        .map(|n| format!("LogicalName eq {}", odata::string_literal(n)))
        .collect::<Vec<_>>()
        .join(" or ");
    let definitions: Collection<EntityDefinition> = session.get_json(
        &format!(
            "EntityDefinitions?{}",
            odata::query(&[
                ("$select", "LogicalName,DisplayName,EntitySetName"),
                ("$filter", &filter),
            ])
        ),
        "entity definitions",
    )?;
    // Keep the site map's order; tables the site map names but the environment
    // lacks (removed solutions) are left out.
    Ok(names
        .iter()
        .filter_map(|name| {
            definitions
                .value
                .iter()
                .find(|d| &d.logical_name == name)
                .map(|d| Entity {
                    logical_name: d.logical_name.clone(),
                    display_name: d.display_name(),
                })
        })
        .collect())
}

#[derive(Deserialize)]
struct ViewRecord {
    #[serde(default)]
    savedqueryid: Option<String>,
    #[serde(default)]
    userqueryid: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    isdefault: Option<bool>,
}

/// Public system views and personal views of an entity, optionally filtered by a
/// case-insensitive search in their names. System views come first.
pub fn list_views(
    session: &mut Session,
    entity: &str,
    search: Option<&str>,
) -> Result<Vec<View>, Error> {
    metadata::require_logical_name(entity, "entity")?;
    let mut filter = format!(
        "returnedtypecode eq {} and querytype eq 0 and statecode eq 0",
        odata::string_literal(entity)
    );
    if let Some(search) = search.map(str::trim).filter(|s| !s.is_empty()) {
        filter.push_str(&format!(
            " and contains(name,{})",
            odata::contains_literal(search)
        ));
    }
    let mut views = Vec::new();
    for (set, kind, select) in [
        (
            "savedqueries",
            ViewKind::System,
            "savedqueryid,name,isdefault",
        ),
        ("userqueries", ViewKind::Personal, "userqueryid,name"),
    ] {
        let path = format!(
            "{set}?{}",
            odata::query(&[
                ("$select", select),
                ("$filter", &filter),
                ("$orderby", "name")
            ])
        );
        let found: Collection<ViewRecord> =
            session.get_json(&path, &format!("views of '{entity}'"))?;
        views.extend(found.value.into_iter().filter_map(|record| {
            let id = record.savedqueryid.or(record.userqueryid)?;
            Some(View {
                name: record.name.unwrap_or_else(|| id.clone()),
                id,
                kind,
                is_default: record.isdefault.unwrap_or(false),
            })
        }));
    }
    Ok(views)
}

/// The columns a view shows, typed from attribute metadata, with the
/// aggregations that fit each.
pub fn list_columns(
    session: &mut Session,
    entity: &str,
    view: &ViewRef,
) -> Result<Vec<Column>, Error> {
    let definition = metadata::view_definition(session, entity, view)?;
    let cells = layout::cell_names(&definition.layout_xml).map_err(|e| {
        Error::Invalid(format!(
            "the layout of view '{}' cannot be read ({e}); choose another view",
            definition.name
        ))
    })?;
    let query = ViewQuery::parse(&definition.fetch_xml).map_err(|e| {
        Error::Invalid(format!(
            "the query of view '{}' cannot be read ({e}); choose another view",
            definition.name
        ))
    })?;

    // Group the cells by the table that owns them: one metadata request per table.
    let mut owners: Vec<(Option<String>, String, Vec<String>)> = Vec::new();
    for cell in &cells {
        let column = ColumnRef::from_cell(cell);
        let owner_entity = match &column.alias {
            None => definition.entity.clone(),
            Some(alias) => match query.linked_entity(alias) {
                Some(linked) => linked.to_string(),
                // A cell whose join is gone from the query shows nothing.
                None => continue,
            },
        };
        match owners
            .iter_mut()
            .find(|(alias, _, _)| *alias == column.alias)
        {
            Some((_, _, attributes)) => attributes.push(column.attribute),
            None => owners.push((column.alias, owner_entity, vec![column.attribute])),
        }
    }

    let mut typed: Vec<(String, Column)> = Vec::new();
    for (alias, owner_entity, attributes) in &owners {
        let wanted: Vec<&str> = attributes
            .iter()
            .map(String::as_str)
            .filter(|a| odata::is_logical_name(a))
            .collect();
        for attribute in metadata::attribute_definitions(session, owner_entity, &wanted)? {
            let name = match alias {
                Some(alias) => format!("{alias}.{}", attribute.logical_name),
                None => attribute.logical_name.clone(),
            };
            let display_name = match alias {
                Some(_) => format!("{} ({owner_entity})", attribute.display_name()),
                None => attribute.display_name(),
            };
            let column_type = attribute.column_type();
            typed.push((
                name.clone(),
                Column {
                    name,
                    display_name,
                    column_type,
                    aggregations: metadata::aggregations_for(column_type),
                },
            ));
        }
    }
    // Present the columns in the view's order.
    Ok(cells
        .iter()
        .filter_map(|cell| {
            typed
                .iter()
                .position(|(name, _)| name == cell)
                .map(|i| typed.swap_remove(i).1)
        })
        .collect())
}
