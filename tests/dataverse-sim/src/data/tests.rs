use super::*;
use crate::fetch::parse;
use crate::format::round_to;
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
            let query =
                parse::parse(data, &view.fetchxml).unwrap_or_else(|e| panic!("{}: {e}", view.name));
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
