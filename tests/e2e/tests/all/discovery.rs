//! Discovery through the real plugin component against the simulator, checked
//! against the simulator's seeded data.

use dynamics365_plugin::xml::Element;
use goals_e2e::target;
use goals_e2e::{Sim, dataset, plugin_with_connection};
use goals_host::bindings::{Aggregation, ColumnType, Error, ViewKind, ViewRef};
use goals_host::runtime::CallError;
use std::collections::BTreeSet;

#[tokio::test]
async fn apps_are_the_active_model_driven_apps_by_name() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    let apps = plugin.list_apps(&target(&conn)).await.expect("apps");

    let mut expected: Vec<_> = dataset().apps.iter().filter(|a| a.statecode == 0).collect();
    expected.sort_by(|a, b| a.name.cmp(&b.name));
    let got: Vec<(&str, &str)> = apps
        .iter()
        .map(|a| (a.id.as_str(), a.name.as_str()))
        .collect();
    let want: Vec<(&str, &str)> = expected
        .iter()
        .map(|a| (a.id.as_str(), a.name.as_str()))
        .collect();
    assert_eq!(got, want);
    assert!(
        dataset().apps.iter().any(|a| a.statecode != 0),
        "the data has an inactive app that must not be listed"
    );
}

#[tokio::test]
async fn entities_are_the_tables_of_each_apps_site_map() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    for (app_name, tables) in [
        (
            "Sales Hub",
            vec!["account", "contact", "opportunity", "lead"],
        ),
        (
            "Customer Service Hub",
            vec!["account", "contact", "incident"],
        ),
    ] {
        let app = dataset().app_by_name(app_name).expect("seeded app");
        let entities = plugin
            .list_entities(&target(&conn), &app.id)
            .await
            .expect("entities");
        let got: Vec<(&str, &str)> = entities
            .iter()
            .map(|e| (e.logical_name.as_str(), e.display_name.as_str()))
            .collect();
        let want: Vec<(&str, &str)> = tables
            .iter()
            .map(|t| {
                let def = dataset().entity(t).expect("seeded table");
                (def.logical_name.as_str(), def.display_name.as_str())
            })
            .collect();
        assert_eq!(got, want, "{app_name}");
    }
}

#[tokio::test]
async fn an_unknown_app_is_not_found() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    let error = plugin
        .list_entities(&target(&conn), "00000000-0000-0000-0000-0000000000ab")
        .await
        .expect_err("no such app");
    assert!(
        matches!(
            error,
            CallError::Plugin {
                error: Error::NotFound(_),
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn views_are_the_active_public_and_personal_views() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    for entity in ["account", "contact", "opportunity", "lead", "incident"] {
        let views = plugin
            .list_views(&target(&conn), entity, None)
            .await
            .expect("views");
        let got: BTreeSet<(String, String)> = views
            .iter()
            .map(|v| (v.id.clone(), v.name.clone()))
            .collect();
        let want: BTreeSet<(String, String)> = dataset()
            .views_of(entity)
            .filter(|v| v.querytype == 0 && v.statecode == 0)
            .map(|v| (v.id.clone(), v.name.clone()))
            .collect();
        assert_eq!(got, want, "{entity}");
        assert!(
            dataset().views_of(entity).count() > want.len(),
            "{entity} has hidden views the list must leave out"
        );
        for view in &views {
            let seeded = dataset().view(&view.id).expect("seeded view");
            assert_eq!(view.is_default, seeded.isdefault, "{}", view.name);
            let personal = matches!(seeded.kind, dataverse_sim::ViewKind::Personal);
            assert_eq!(view.kind == ViewKind::Personal, personal, "{}", view.name);
        }
        let first_personal = views.iter().position(|v| v.kind == ViewKind::Personal);
        let last_system = views.iter().rposition(|v| v.kind == ViewKind::System);
        if let (Some(p), Some(s)) = (first_personal, last_system) {
            assert!(s < p, "system views come first");
        }
    }
}

#[tokio::test]
async fn view_search_is_case_insensitive_and_takes_wildcards_literally() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    let names = |views: Vec<goals_host::bindings::View>| -> BTreeSet<String> {
        views.into_iter().map(|v| v.name).collect()
    };

    let open = names(
        plugin
            .list_views(&target(&conn), "opportunity", Some("OPEN"))
            .await
            .expect("views"),
    );
    let want: BTreeSet<String> = dataset()
        .views_of("opportunity")
        .filter(|v| v.querytype == 0 && v.statecode == 0)
        .filter(|v| v.name.to_lowercase().contains("open"))
        .map(|v| v.name.clone())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(open, want);

    // `%` and `_` are wildcards in Dataverse's contains(); a search for them must
    // match them literally, not "Pipeline 50 Plus".
    let literal = names(
        plugin
            .list_views(&target(&conn), "opportunity", Some("50%_"))
            .await
            .expect("views"),
    );
    assert_eq!(literal, BTreeSet::from(["Pipeline 50%_Plus".to_string()]));

    let quote = plugin
        .list_views(&target(&conn), "opportunity", Some("O'Brien & [co]"))
        .await;
    assert!(quote.expect("a quote is escaped, not an error").is_empty());
}

#[tokio::test]
async fn columns_follow_the_layout_typed_from_metadata() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    let view = dataset()
        .view_by_name("Open Opportunities")
        .expect("seeded view");
    let columns = plugin
        .list_columns(
            &target(&conn),
            "opportunity",
            &ViewRef {
                id: view.id.clone(),
                kind: ViewKind::System,
            },
        )
        .await
        .expect("columns");
    let got: Vec<(&str, ColumnType)> = columns
        .iter()
        .map(|c| (c.name.as_str(), c.column_type))
        .collect();
    assert_eq!(
        got,
        [
            ("name", ColumnType::Text),
            ("estimatedvalue", ColumnType::Money),
            ("closeprobability", ColumnType::WholeNumber),
            ("estimatedclosedate", ColumnType::DateTime),
            ("customeraccount.numberofemployees", ColumnType::WholeNumber),
        ]
    );
    let opportunity = dataset().entity("opportunity").expect("table");
    let estimated = &columns[1];
    assert_eq!(
        estimated.display_name,
        opportunity
            .attribute("estimatedvalue")
            .expect("attribute")
            .display_name
    );
    assert!(estimated.aggregations.contains(&Aggregation::Sum));
    assert!(!columns[0].aggregations.contains(&Aggregation::Sum));
    assert!(columns[3].aggregations.contains(&Aggregation::Max));
    assert!(!columns[3].aggregations.contains(&Aggregation::Average));
}

/// The column type DATAVERSE.md gives each attribute type.
fn column_type_of(attribute: dataverse_sim::AttributeType) -> ColumnType {
    use dataverse_sim::AttributeType as A;
    match attribute {
        A::Integer | A::BigInt => ColumnType::WholeNumber,
        A::Decimal | A::Double => ColumnType::DecimalNumber,
        A::Money => ColumnType::Money,
        A::DateTime => ColumnType::DateTime,
        A::String | A::Memo => ColumnType::Text,
        A::Boolean => ColumnType::Boolean,
        A::Picklist | A::State | A::Status => ColumnType::Choice,
        A::Lookup | A::Customer | A::Owner => ColumnType::Lookup,
        A::Uniqueidentifier => ColumnType::Identifier,
        A::EntityName => ColumnType::Other,
    }
}

/// The cells of a view's layout, each with the table and attribute it shows
/// (`alias.attribute` cells through the fetchxml's link-entity of that alias).
fn layout_cells(view: &dataverse_sim::View) -> Vec<(String, String, String)> {
    let layout = Element::parse(&view.layoutxml).expect("layoutxml");
    let fetch = Element::parse(&view.fetchxml).expect("fetchxml");
    let aliases: Vec<(String, String)> = fetch
        .descendants()
        .into_iter()
        .filter(|e| e.name == "link-entity")
        .filter_map(|e| Some((e.attr("alias")?.to_string(), e.attr("name")?.to_string())))
        .collect();
    layout
        .descendants()
        .into_iter()
        .filter(|e| e.name == "cell")
        .filter_map(|cell| cell.attr("name"))
        .map(|cell| match cell.split_once('.') {
            Some((alias, attribute)) => {
                let table = aliases
                    .iter()
                    .find(|(a, _)| a == alias)
                    .map(|(_, table)| table.clone())
                    .unwrap_or_else(|| panic!("{}: no link-entity '{alias}'", view.name));
                (cell.to_string(), table, attribute.to_string())
            }
            None => (
                cell.to_string(),
                view.returnedtypecode.clone(),
                cell.to_string(),
            ),
        })
        .collect()
}

#[tokio::test]
async fn every_offered_view_lists_its_layout_columns_typed_from_metadata() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    let offered = dataset().views.iter().filter(|v| {
        v.statecode == 0
            && (v.kind == dataverse_sim::ViewKind::Personal || v.querytype == 0)
            && !v.name.starts_with("Bench")
    });
    let mut checked = 0;
    for view in offered {
        let kind = match view.kind {
            dataverse_sim::ViewKind::System => ViewKind::System,
            dataverse_sim::ViewKind::Personal => ViewKind::Personal,
        };
        let columns = plugin
            .list_columns(
                &target(&conn),
                &view.returnedtypecode,
                &ViewRef {
                    id: view.id.clone(),
                    kind,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("columns of '{}': {e}", view.name));
        let got: Vec<(&str, &str, ColumnType)> = columns
            .iter()
            .map(|c| (c.name.as_str(), c.display_name.as_str(), c.column_type))
            .collect();
        let want: Vec<(String, String, ColumnType)> = layout_cells(view)
            .into_iter()
            .map(|(cell, table, attribute)| {
                let definition = dataset()
                    .entity(&table)
                    .and_then(|t| t.attribute(&attribute))
                    .unwrap_or_else(|| panic!("{}: no {table}.{attribute}", view.name));
                // A joined column says which table it comes from.
                let display = if cell.contains('.') {
                    format!("{} ({table})", definition.display_name)
                } else {
                    definition.display_name.clone()
                };
                (cell, display, column_type_of(definition.attribute_type))
            })
            .collect();
        let want: Vec<(&str, &str, ColumnType)> = want
            .iter()
            .map(|(cell, display, kind)| (cell.as_str(), display.as_str(), *kind))
            .collect();
        assert_eq!(got, want, "view '{}'", view.name);
        for column in &columns {
            assert!(
                column.aggregations.contains(&Aggregation::Count),
                "{}: every column can be counted",
                column.name
            );
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} views checked");
}

#[tokio::test]
async fn personal_views_have_columns_too() {
    let sim = Sim::start().await;
    let (plugin, conn) = plugin_with_connection(&sim).await;
    let view = dataset()
        .view_by_name("My Big Deals")
        .expect("seeded personal view");
    let columns = plugin
        .list_columns(
            &target(&conn),
            "opportunity",
            &ViewRef {
                id: view.id.clone(),
                kind: ViewKind::Personal,
            },
        )
        .await
        .expect("columns of a personal view");
    assert!(!columns.is_empty());
    let wrong_kind = plugin
        .list_columns(
            &target(&conn),
            "opportunity",
            &ViewRef {
                id: view.id.clone(),
                kind: ViewKind::System,
            },
        )
        .await;
    assert!(matches!(
        wrong_kind,
        Err(CallError::Plugin {
            error: Error::NotFound(_),
            ..
        })
    ));
}
