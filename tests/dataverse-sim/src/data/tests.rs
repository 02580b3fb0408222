use super::*;
use crate::fetch::parse;
use crate::format::round_to;
use serde_json::json;
use std::collections::HashSet;

fn count(entity: &str, keep: impl Fn(&Row) -> bool) -> usize {
    dataset().rows(entity).iter().filter(|r| keep(r)).count()
}

fn int(row: &Row, key: &str) -> Option<i64> {
    row.get(key).and_then(Value::as_i64)
}

#[test]
fn building_twice_gives_the_same_data() {
    let again = Dataset::build();
    let data = dataset();
    for entity in [
        "account",
        "contact",
        "opportunity",
        "incident",
        "savedquery",
        "appmodule",
    ] {
        assert_eq!(again.rows(entity), data.rows(entity), "{entity}");
    }
    let leads = data.rows("lead");
    assert_eq!(again.rows("lead").len(), leads.len());
    assert_eq!(again.rows("lead").last(), leads.last());
    assert_eq!(again.application_user_id, data.application_user_id);
}

#[test]
fn tables_have_the_documented_sizes() {
    let data = dataset();
    assert_eq!(data.rows("account").len(), 300);
    assert_eq!(data.rows("contact").len(), 800);
    assert_eq!(data.rows("opportunity").len(), 2_000);
    assert_eq!(data.rows("lead").len(), 60_000);
    assert_eq!(data.rows("incident").len(), 900);
    assert_eq!(data.rows("nope").len(), 0);
}

#[test]
fn open_leads_exceed_the_aggregate_limit_but_hot_leads_do_not() {
    let open = count("lead", |r| int(r, "statecode") == Some(0));
    assert!(open >= 52_000, "{open}");
    let hot = count("lead", |r| {
        int(r, "statecode") == Some(0) && int(r, "leadqualitycode") == Some(1)
    });
    assert!(hot > 1_000 && hot < 50_000, "{hot}");
}

#[test]
fn every_state_occurs_and_nulls_are_absent_not_null() {
    for (entity, states) in [
        ("account", 2),
        ("contact", 2),
        ("opportunity", 3),
        ("lead", 3),
        ("incident", 3),
    ] {
        let seen: HashSet<i64> = dataset()
            .rows(entity)
            .iter()
            .filter_map(|r| int(r, "statecode"))
            .collect();
        assert_eq!(seen.len(), states, "{entity}");
        assert!(
            dataset()
                .rows(entity)
                .iter()
                .all(|r| r.values().all(|v| !v.is_null())),
            "{entity}"
        );
    }
    // Optional columns are sometimes missing.
    assert!(count("account", |r| !r.contains_key("accountnumber")) > 10);
    assert!(count("account", |r| !r.contains_key("revenue")) > 10);
    assert!(count("contact", |r| !r.contains_key("emailaddress1")) > 10);
    assert!(count("opportunity", |r| !r.contains_key("closeprobability")) > 10);
    // Only won opportunities have an actual value.
    assert_eq!(
        count("opportunity", |r| r.contains_key("actualvalue")),
        count("opportunity", |r| int(r, "statecode") == Some(1))
    );
}

#[test]
fn base_amounts_follow_the_exchange_rate() {
    let data = dataset();
    let eur = data.currency_by_code("EUR").unwrap();
    assert_eq!(eur.exchangerate, 0.92);
    assert!(data.currency_by_code("usd").unwrap().is_base);
    let mut foreign = 0;
    for (entity, column) in [
        ("account", "revenue"),
        ("contact", "annualincome"),
        ("opportunity", "estimatedvalue"),
        ("opportunity", "actualvalue"),
        ("lead", "estimatedamount"),
    ] {
        for row in data.rows(entity) {
            let rate = row["exchangerate"].as_f64().unwrap();
            let currency = data
                .currency(row["transactioncurrencyid"].as_str().unwrap())
                .unwrap();
            assert_eq!(rate, currency.exchangerate);
            match (row.get(column), row.get(&format!("{column}_base"))) {
                (Some(value), Some(base)) => {
                    let expected = round_to(value.as_f64().unwrap() / rate, 2);
                    assert_eq!(base.as_f64().unwrap(), expected, "{entity}.{column}");
                    if !currency.is_base {
                        foreign += 1;
                    }
                }
                (None, None) => {}
                other => panic!("{entity}.{column}: {other:?}"),
            }
        }
    }
    assert!(foreign > 100);
}

#[test]
fn lookups_point_at_existing_records() {
    let data = dataset();
    let ids = |entity: &str| -> HashSet<String> {
        let key = &data.entity(entity).unwrap().primary_id_attribute;
        data.rows(entity)
            .iter()
            .map(|r| r[key].as_str().unwrap().to_string())
            .collect()
    };
    let accounts = ids("account");
    let contacts = ids("contact");
    let users: HashSet<String> = data.users.iter().map(|u| u.id.clone()).collect();
    for (entity, column, targets) in [
        ("contact", "parentcustomerid", &accounts),
        ("opportunity", "customerid", &accounts),
        ("opportunity", "parentaccountid", &accounts),
        ("incident", "customerid", &accounts),
        ("account", "primarycontactid", &contacts),
        ("account", "ownerid", &users),
        ("lead", "ownerid", &users),
    ] {
        for row in data.rows(entity) {
            if let Some(id) = row.get(column) {
                assert!(targets.contains(id.as_str().unwrap()), "{entity}.{column}");
            }
        }
    }
    let app_user = &data.application_user_id;
    assert!(data.user(app_user).unwrap().is_application_user);
    let owned = count("account", |r| r["ownerid"] == *app_user);
    assert!(owned > 0 && owned < 60, "{owned}");
    assert_eq!(data.record_name(&data.users[2].id).unwrap().0, "systemuser");
}

#[test]
fn apps_sitemaps_and_components_fit_together() {
    let data = dataset();
    let sales = data.app_by_name("Sales Hub").unwrap();
    assert_ne!(sales.id, sales.unique_id);
    assert_eq!(sales.statecode, 0);
    let sitemap = data.sitemap(&sales.sitemap_id).unwrap();
    let root = crate::xml::Element::parse(&sitemap.xml).unwrap();
    let mut entities = Vec::new();
    let mut urls = 0;
    let mut pending = vec![&root];
    while let Some(element) = pending.pop() {
        if element.name == "SubArea" {
            match element.attr("Entity") {
                Some(entity) => entities.push(entity.to_string()),
                None => urls += usize::from(element.attr("Url").is_some()),
            }
        }
        pending.extend(element.children.iter().rev());
    }
    assert_eq!(entities, ["account", "contact", "opportunity", "lead"]);
    assert_eq!(urls, 1);
    let components: Vec<&AppComponent> = data
        .app_components
        .iter()
        .filter(|c| c.app_unique_id == sales.unique_id)
        .collect();
    assert!(
        components
            .iter()
            .any(|c| c.componenttype == 62 && c.objectid == sitemap.id)
    );
    assert_eq!(
        components.iter().filter(|c| c.componenttype == 1).count(),
        4
    );
    assert!(
        data.app_components
            .iter()
            .all(|c| c.app_unique_id != sales.id)
    );
    let service = data.app_by_name("Customer Service Hub").unwrap();
    assert!(
        data.sitemap(&service.sitemap_id)
            .unwrap()
            .xml
            .contains("Entity=\"incident\"")
    );
    assert_eq!(data.apps.iter().filter(|a| a.statecode == 1).count(), 1);
}

#[test]
fn each_table_has_the_views_a_client_must_tell_apart() {
    let data = dataset();
    for entity in ["account", "contact", "opportunity", "lead", "incident"] {
        let views: Vec<&View> = data.views_of(entity).collect();
        let offered = |v: &&View| v.querytype == 0 && v.statecode == 0;
        let public: Vec<_> = views
            .iter()
            .filter(|v| v.kind == ViewKind::System && offered(v))
            .collect();
        assert!(public.len() >= 3, "{entity}");
        assert_eq!(public.iter().filter(|v| v.isdefault).count(), 1, "{entity}");
        assert!(
            views
                .iter()
                .any(|v| v.kind == ViewKind::Personal && offered(v)),
            "{entity}"
        );
        assert!(
            views
                .iter()
                .any(|v| v.kind == ViewKind::System && v.querytype != 0),
            "{entity}"
        );
        assert!(
            views.iter().any(|v| v.querytype == 0 && v.statecode == 1),
            "{entity}"
        );
        for view in views {
            // Every view runs, and every layout cell of a join names a known alias.
            let query = parse::parse(data.into(), &view.fetchxml)
                .unwrap_or_else(|e| panic!("{}: {e}", view.name));
            assert_eq!(query.nodes[0].entity.logical_name, entity);
            let layout = crate::xml::Element::parse(&view.layoutxml).unwrap();
            let cells = &layout.children[0].children;
            assert!(!cells.is_empty());
            for cell in cells {
                let name = cell.attr("name").unwrap();
                let (node, attribute) = match name.split_once('.') {
                    Some((alias, attribute)) => (
                        query
                            .nodes
                            .iter()
                            .find(|n| n.alias.as_deref() == Some(alias))
                            .unwrap_or_else(|| panic!("{}: {alias}", view.name)),
                        attribute,
                    ),
                    None => (&query.nodes[0], name),
                };
                assert!(
                    node.entity.attribute(attribute).is_some(),
                    "{}: {name}",
                    view.name
                );
            }
        }
    }
    let names: HashSet<&str> = data.views.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names.len(), data.views.len(), "view names are unique");
    for name in [
        "Open Opportunities",
        "Won Opportunities",
        "Lost Opportunities",
        "Pipeline 50%_Plus",
        "Pipeline 50 Plus",
        "Active Accounts",
        "Inactive Accounts",
        "Accounts with Revenue",
        "Accounts with Open Opportunities",
        "Active Contacts",
        "Contacts with Email",
        "Inactive Contacts",
        "Open Leads",
        "Hot Leads",
        "Qualified Leads",
        "Active Cases",
        "High Priority Cases",
        "Resolved Cases",
        "My Big Deals",
    ] {
        assert!(data.view_by_name(name).is_some(), "{name}");
    }
    let open = data.view_by_name("Open Opportunities").unwrap();
    assert!(open.isdefault);
    assert!(open.layoutxml.contains("customeraccount.numberofemployees"));
    assert_eq!(
        data.view(&open.id.to_uppercase()).map(|v| v.name.as_str()),
        Some("Open Opportunities")
    );
}

#[test]
fn metadata_has_base_twins_and_system_columns() {
    let data = dataset();
    let opportunity = data.entity("opportunity").unwrap();
    let base = opportunity.attribute("estimatedvalue_base").unwrap();
    assert_eq!(base.attribute_type, AttributeType::Money);
    assert_eq!(base.attribute_of.as_deref(), Some("estimatedvalue"));
    for (column, kind) in [
        ("opportunityid", AttributeType::Uniqueidentifier),
        ("statecode", AttributeType::State),
        ("statuscode", AttributeType::Status),
        ("createdon", AttributeType::DateTime),
        ("ownerid", AttributeType::Owner),
        ("transactioncurrencyid", AttributeType::Lookup),
        ("exchangerate", AttributeType::Decimal),
        ("customerid", AttributeType::Customer),
    ] {
        assert_eq!(
            opportunity.attribute(column).unwrap().attribute_type,
            kind,
            "{column}"
        );
    }
    assert_eq!(
        opportunity.attribute("statecode").unwrap().option_label(1),
        Some("Won")
    );
    assert_eq!(
        data.entity_by_set("incidents").unwrap().display_name,
        "Case"
    );
    let ids: HashSet<&str> = data
        .entities
        .iter()
        .flat_map(|e| e.attributes.iter().map(|a| a.metadata_id.as_str()))
        .collect();
    assert_eq!(
        ids.len(),
        data.entities
            .iter()
            .map(|e| e.attributes.len())
            .sum::<usize>()
    );
    assert!(is_guid(&guid_from_name("x", "y")));
    assert_ne!(guid_from_name("x", "y"), guid_from_name("x", "z"));
}

#[test]
fn seven_open_leads_have_no_createdon_and_the_rest_span_years() {
    let data = dataset();
    let undated: Vec<&Row> = data
        .rows("lead")
        .iter()
        .filter(|r| !r.contains_key("createdon"))
        .collect();
    assert_eq!(undated.len(), 7);
    assert!(undated.iter().all(|r| int(r, "statecode") == Some(0)));
    let years: HashSet<&str> = data
        .rows("lead")
        .iter()
        .filter_map(|r| r.get("createdon").and_then(Value::as_str))
        .map(|t| &t[..4])
        .collect();
    assert!(years.len() >= 3, "{years:?}");
    let open = count("lead", |r| int(r, "statecode") == Some(0));
    assert!(open > 50_000, "{open}");
    // The view that lists them still has more than 50,000 rows.
    let view = data.view_by_name("Open Leads").unwrap();
    let result = crate::fetch::execute(
        data,
        &view.fetchxml,
        None,
        &crate::odata::Annotations::none(),
    )
    .unwrap();
    assert_eq!(result.total, open);
}

#[test]
fn the_bench_table_is_built_only_when_read() {
    let fresh = Dataset::build();
    assert!(
        !fresh.bench_is_built(),
        "building the data skips the bench rows"
    );
    let entity = fresh.entity(BENCH_ENTITY).unwrap();
    assert_eq!(entity.entity_set_name, "new_benchrecords");
    assert_eq!(entity.primary_id_attribute, "new_benchrecordid");
    assert_eq!(entity.primary_name_attribute.as_deref(), Some("new_name"));
    for (column, kind) in [
        ("new_name", AttributeType::String),
        ("new_amount", AttributeType::Decimal),
        ("new_quantity", AttributeType::Integer),
        ("new_sequence", AttributeType::Integer),
        ("createdon", AttributeType::DateTime),
        ("statecode", AttributeType::State),
    ] {
        assert_eq!(entity.attribute(column).unwrap().attribute_type, kind);
    }
    assert_eq!(fresh.views_of(BENCH_ENTITY).count(), 3);
    assert!(!fresh.tables.contains_key(BENCH_ENTITY));
    assert!(!fresh.bench_is_built());
}

#[test]
fn bench_rows_and_views_have_the_documented_sizes() {
    let data = dataset();
    let rows = data.rows(BENCH_ENTITY);
    assert!(data.bench_is_built());
    assert_eq!(rows.len(), BENCH_ROWS);
    assert_eq!(BENCH_ROWS, 200_000);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(int(row, "new_sequence"), Some(i as i64));
        assert_eq!(int(row, "statecode"), Some(0));
    }
    let created = |i: usize| rows[i]["createdon"].as_str().unwrap().to_string();
    assert_eq!(created(0), "2022-01-01T00:00:00Z");
    assert!(
        created(BENCH_ROWS - 1).as_str() < "2026-01-01"
            && created(BENCH_ROWS - 1).as_str() > "2025-12-31"
    );
    assert!(created(BENCH_ROWS / 2).starts_with("2024-01-0"));
    let null_amounts = rows
        .iter()
        .filter(|r| !r.contains_key("new_amount"))
        .count();
    assert!((8_000..12_000).contains(&null_amounts), "{null_amounts}");
    let ids: HashSet<&str> = rows
        .iter()
        .map(|r| r["new_benchrecordid"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), BENCH_ROWS);
    assert!(ids.iter().all(|id| is_guid(id)));
    for (name, size) in [
        ("Bench 1k", 1_000),
        ("Bench 50k", 50_000),
        ("Bench 200k", 200_000),
    ] {
        let view = data.view_by_name(name).unwrap();
        assert_eq!(view.returnedtypecode, BENCH_ENTITY);
        assert_eq!((view.querytype, view.statecode), (0, 0));
        for cell in ["new_name", "new_amount", "new_quantity", "createdon"] {
            assert!(
                view.layoutxml.contains(&format!("<cell name='{cell}'")),
                "{name}: {cell}"
            );
        }
        let result = crate::fetch::execute(
            data,
            &view.fetchxml,
            None,
            &crate::odata::Annotations::none(),
        )
        .unwrap();
        assert_eq!(result.total, size, "{name}");
        assert_eq!(result.records.len(), size.min(5_000), "{name}");
    }
}

#[test]
fn views_carry_a_modification_time() {
    let data = dataset();
    for view in &data.views {
        let time = crate::format::parse_datetime(&view.modifiedon)
            .unwrap_or_else(|| panic!("{}: {}", view.name, view.modifiedon));
        assert_eq!(crate::format::iso_from_unix(time), view.modifiedon);
        let table = view.kind.logical_name();
        let row = data.row_by_id(table, &view.id).unwrap();
        assert_eq!(row["modifiedon"], json!(view.modifiedon));
    }
    let distinct: HashSet<&str> = data.views.iter().map(|v| v.modifiedon.as_str()).collect();
    assert!(distinct.len() > data.views.len() / 2);
}

#[test]
fn the_organization_points_at_the_base_currency() {
    let data = dataset();
    let organizations = data.rows("organization");
    assert_eq!(organizations.len(), 1);
    assert_eq!(
        organizations[0]["organizationid"],
        json!(data.organization_id)
    );
    assert_eq!(
        organizations[0]["basecurrencyid"],
        json!(data.base_currency().unwrap().id)
    );
    assert_eq!(data.base_currency().unwrap().iso_code, "USD");
}

#[test]
fn charts_have_stable_ids_rows_and_the_documented_aliases() {
    let data = dataset();
    let again = Dataset::build();
    let expected = [
        (
            ChartKind::System,
            "opportunity",
            "Pipeline by Status Reason",
        ),
        (
            ChartKind::System,
            "opportunity",
            "Estimated Revenue by Close Month",
        ),
        (
            ChartKind::System,
            "opportunity",
            "Average Probability by Rating",
        ),
        (
            ChartKind::Personal,
            "opportunity",
            "My Won Revenue by Owner",
        ),
        (ChartKind::System, "lead", "Leads by Source"),
    ];
    assert_eq!(data.charts.len(), expected.len());
    for (kind, entity, name) in expected {
        let chart = data.chart_by_name(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(
            (chart.kind, chart.primaryentitytypecode.as_str()),
            (kind, entity)
        );
        assert_eq!(chart.id, guid_from_name(kind.logical_name(), name));
        assert_eq!(again.chart(&chart.id.to_uppercase()).unwrap().name, name);
        let row = data.row_by_id(kind.logical_name(), &chart.id).unwrap();
        assert_eq!(row["datadescription"], json!(chart.datadescription));
        assert_eq!(row["modifiedon"], json!(chart.modifiedon));
        assert!(row["versionnumber"].as_i64().is_some());
        assert_eq!(row.contains_key("ownerid"), kind == ChartKind::Personal);
        assert_eq!(row.contains_key("isdefault"), kind == ChartKind::System);
        let time = crate::format::parse_datetime(&chart.modifiedon).unwrap();
        assert_eq!(crate::format::iso_from_unix(time), chart.modifiedon);
        assert!(chart.presentationdescription.starts_with("<Chart>"));
    }
    assert_eq!(data.charts_of("opportunity").count(), 4);
    assert_eq!(
        data.rows("userqueryvisualization")[0]["ownerid"],
        json!(data.application_user_id)
    );
    assert!(
        data.chart_by_name("Pipeline by Status Reason")
            .unwrap()
            .isdefault
    );
}

fn child<'a>(element: &'a crate::xml::Element, name: &str) -> &'a crate::xml::Element {
    element
        .children
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("<{}> has no <{name}>", element.name))
}

/// A chart's fetch in short: the group-by as `name as alias [by grouping]`, the
/// aggregates as `aggregate(name) as alias`, then the plotted measure aliases.
fn summarize_chart(datadescription: &str) -> (String, Vec<String>, Vec<String>) {
    let root = crate::xml::Element::parse(datadescription).unwrap();
    assert_eq!(root.name, "datadefinition");
    let fetch = child(child(&root, "fetchcollection"), "fetch");
    assert_eq!(fetch.attr("aggregate"), Some("true"));
    let mut groupby = Vec::new();
    let mut measures = Vec::new();
    for attribute in &child(fetch, "entity").children {
        let text = |name: &str| attribute.attr(name).unwrap_or_default();
        if text("groupby") == "true" {
            let grouping = attribute
                .attr("dategrouping")
                .map(|g| format!(" by {g}"))
                .unwrap_or_default();
            groupby.push(format!("{} as {}{grouping}", text("name"), text("alias")));
        } else {
            measures.push(format!(
                "{}({}) as {}",
                text("aggregate"),
                text("name"),
                text("alias")
            ));
        }
    }
    assert_eq!(groupby.len(), 1, "{datadescription}");
    let category = child(child(&root, "categorycollection"), "category");
    let plotted = category
        .children
        .iter()
        .map(|collection| {
            let measure = child(collection, "measure");
            measure.attr("alias").unwrap_or_default().to_string()
        })
        .collect();
    (groupby.remove(0), measures, plotted)
}

#[test]
fn chart_data_descriptions_group_and_measure_as_documented() {
    let data = dataset();
    let expected: [(&str, &str, &[&str]); 5] = [
        (
            "Pipeline by Status Reason",
            "statuscode as groupby_column",
            &[
                "sum(estimatedvalue) as sum_estimatedvalue",
                "count(opportunityid) as count_opportunities",
            ],
        ),
        (
            "Estimated Revenue by Close Month",
            "estimatedclosedate as groupby_month by month",
            &["sum(estimatedvalue) as sum_estimatedvalue"],
        ),
        (
            "Average Probability by Rating",
            "opportunityratingcode as groupby_column",
            &["avg(closeprobability) as avg_closeprobability"],
        ),
        (
            "My Won Revenue by Owner",
            "ownerid as groupby_column",
            &["sum(actualvalue) as sum_actualvalue"],
        ),
        (
            "Leads by Source",
            "leadsourcecode as groupby_column",
            &["countcolumn(leadid) as count_leads"],
        ),
    ];
    for (name, groupby, measures) in expected {
        let chart = data.chart_by_name(name).unwrap();
        let (found_groupby, found, plotted) = summarize_chart(&chart.datadescription);
        assert_eq!(found_groupby, groupby, "{name}");
        assert_eq!(found, measures, "{name}");
        let aliases: Vec<&str> = measures
            .iter()
            .filter_map(|m| m.rsplit(" as ").next())
            .collect();
        assert_eq!(plotted, aliases, "{name}");
        // Every named column exists in the charted table.
        let entity = data.entity(&chart.primaryentitytypecode).unwrap();
        let grouped = groupby.split(' ').next().unwrap_or_default();
        let measured = measures.iter().filter_map(|m| m.split(['(', ')']).nth(1));
        for column in std::iter::once(grouped).chain(measured) {
            assert!(entity.attribute(column).is_some(), "{name}: {column}");
        }
    }
}
