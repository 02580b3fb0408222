//! The requests the plugin sends, answered through the router.

use super::*;
use crate::data::{ViewKind, dataset};
use crate::format::cookie_encode;
use crate::odata::Preferences;

const BASE: &str = "http://127.0.0.1:9";

fn encode(value: &str) -> String {
    cookie_encode(value)
}

/// `pairs` percent-encoded like the plugin's `odata::query`.
fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn call(path: &str, query: &str, prefer: Option<&str>) -> Result<ApiResponse, ODataError> {
    let preferences = Preferences::parse(prefer);
    get(
        dataset(),
        &ApiRequest {
            base_url: BASE,
            path,
            query: (!query.is_empty()).then_some(query),
            preferences: &preferences,
        },
    )
}

fn ok(path: &str, query: &str) -> Value {
    let response = call(path, query, Some("odata.include-annotations=\"*\""))
        .unwrap_or_else(|e| panic!("{path}?{query}: {e}"));
    assert_eq!(response.status, 200);
    assert_eq!(
        response.preference_applied.as_deref(),
        Some("odata.include-annotations=\"*\"")
    );
    let context = response.body["@odata.context"].as_str().unwrap();
    assert!(
        context.starts_with("http://127.0.0.1:9/api/data/v9.2/$metadata#"),
        "{context}"
    );
    response.body
}

fn values(body: &Value) -> &Vec<Value> {
    body["value"].as_array().unwrap()
}

#[test]
fn lists_active_apps_by_name() {
    let body = ok(
        "appmodules",
        &query(&[
            (
                "$select",
                "appmoduleid,appmoduleidunique,name,uniquename,description,statecode,clienttype",
            ),
            ("$filter", "statecode eq 0"),
            ("$orderby", "name"),
        ]),
    );
    let names: Vec<&str> = values(&body)
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Customer Service Hub", "Sales Hub"]);
    let sales = &values(&body)[1];
    assert_ne!(sales["appmoduleid"], sales["appmoduleidunique"]);
    assert_eq!(sales["clienttype"], 4);
    assert!(sales["@odata.etag"].as_str().unwrap().starts_with("W/\""));
}

#[test]
fn reads_one_app_its_components_and_site_map() {
    let data = dataset();
    let app = data.app_by_name("Sales Hub").unwrap();
    let body = ok(
        &format!("appmodules({})", app.id.to_uppercase()),
        &query(&[("$select", "appmoduleid,appmoduleidunique,name")]),
    );
    assert!(body.get("value").is_none());
    assert_eq!(body["appmoduleidunique"], json!(app.unique_id));
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/$entity")
    );
    assert!(body.get("description").is_none(), "only selected columns");

    let components = |id: &str| {
        ok(
            "appmodulecomponents",
            &query(&[
                ("$select", "objectid"),
                (
                    "$filter",
                    &format!("_appmoduleidunique_value eq {id} and componenttype eq 62"),
                ),
            ]),
        )
    };
    let found = components(&app.unique_id);
    assert_eq!(values(&found).len(), 1);
    assert_eq!(values(&found)[0]["objectid"], json!(app.sitemap_id));
    // The app's appmoduleid is not what components refer to.
    assert!(values(&components(&app.id)).is_empty());

    let sitemap = ok(
        &format!("sitemaps({})", app.sitemap_id),
        &query(&[("$select", "sitemapxml")]),
    );
    assert!(
        sitemap["sitemapxml"]
            .as_str()
            .unwrap()
            .contains("<SubArea Id=\"nav_accts\" Entity=\"account\"")
    );

    let missing = call("appmodules(00000000-0000-0000-0000-000000000001)", "", None).unwrap_err();
    assert_eq!(missing.status, 404);
    let bad = call("appmodules(not-a-guid)", "", None).unwrap_err();
    assert_eq!(bad.status, 400);
}

#[test]
fn entity_definitions_by_name_and_by_filter() {
    let body = ok(
        "EntityDefinitions(LogicalName='account')",
        &query(&[(
            "$select",
            "LogicalName,EntitySetName,PrimaryIdAttribute,DisplayName",
        )]),
    );
    assert_eq!(body["EntitySetName"], "accounts");
    assert_eq!(body["PrimaryIdAttribute"], "accountid");
    assert_eq!(
        body["DisplayName"]["UserLocalizedLabel"]["Label"],
        "Account"
    );
    assert_eq!(
        body["DisplayName"]["LocalizedLabels"][0]["LanguageCode"],
        1033
    );
    assert!(crate::data::is_guid(body["MetadataId"].as_str().unwrap()));
    assert!(body.get("ObjectTypeCode").is_none());
    // The quote may arrive percent-encoded.
    let encoded = ok("EntityDefinitions(LogicalName=%27incident%27)", "");
    assert_eq!(
        encoded["DisplayName"]["UserLocalizedLabel"]["Label"],
        "Case"
    );
    let missing = call("EntityDefinitions(LogicalName='nope')", "", None).unwrap_err();
    assert_eq!(missing.status, 404);

    let list = ok(
        "EntityDefinitions",
        &query(&[
            ("$select", "LogicalName,DisplayName,EntitySetName"),
            (
                "$filter",
                "LogicalName eq 'opportunity' or LogicalName eq 'lead' or LogicalName eq 'gone'",
            ),
        ]),
    );
    let sets: Vec<&str> = values(&list)
        .iter()
        .map(|e| e["EntitySetName"].as_str().unwrap())
        .collect();
    assert_eq!(sets.len(), 2);
    assert!(sets.contains(&"opportunities") && sets.contains(&"leads"));
    let error = call("EntityDefinitions", &query(&[("$select", "Bogus")]), None).unwrap_err();
    assert!(
        error
            .message
            .contains("Microsoft.Dynamics.CRM.EntityMetadata")
    );
}

#[test]
fn attribute_metadata_has_types_and_base_twins() {
    let body = ok(
        "EntityDefinitions(LogicalName='opportunity')/Attributes",
        &query(&[
            (
                "$select",
                "LogicalName,AttributeType,AttributeTypeName,DisplayName,AttributeOf",
            ),
            (
                "$filter",
                "LogicalName eq 'estimatedvalue' or LogicalName eq 'estimatedvalue_base' or LogicalName eq 'customerid' or LogicalName eq 'estimatedclosedate'",
            ),
        ]),
    );
    let by_name = |name: &str| {
        values(&body)
            .iter()
            .find(|a| a["LogicalName"] == name)
            .unwrap_or_else(|| panic!("{name}"))
            .clone()
    };
    let money = by_name("estimatedvalue");
    assert_eq!(
        money["@odata.type"],
        "#Microsoft.Dynamics.CRM.MoneyAttributeMetadata"
    );
    assert_eq!(money["AttributeType"], "Money");
    assert_eq!(money["AttributeTypeName"], json!({"Value": "MoneyType"}));
    assert_eq!(
        money["DisplayName"]["UserLocalizedLabel"]["Label"],
        "Est. Revenue"
    );
    assert_eq!(money["AttributeOf"], Value::Null);
    assert_eq!(
        by_name("estimatedvalue_base")["AttributeOf"],
        "estimatedvalue"
    );
    assert_eq!(
        by_name("customerid")["AttributeTypeName"]["Value"],
        "CustomerType"
    );
    assert_eq!(by_name("estimatedclosedate")["AttributeType"], "DateTime");
    assert_eq!(values(&body).len(), 4);
    let picklists = ok(
        "EntityDefinitions(LogicalName='lead')/Attributes",
        &query(&[
            ("$select", "LogicalName"),
            (
                "$filter",
                "AttributeType eq Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist'",
            ),
        ]),
    );
    assert_eq!(values(&picklists).len(), 2);
}

fn view_names(set: &str, search: Option<&str>) -> Vec<String> {
    let mut filter =
        "returnedtypecode eq 'opportunity' and querytype eq 0 and statecode eq 0".to_string();
    if let Some(search) = search {
        filter.push_str(&format!(" and contains(name,{search})"));
    }
    let select = if set == "savedqueries" {
        "savedqueryid,name,isdefault"
    } else {
        "userqueryid,name"
    };
    let body = ok(
        set,
        &query(&[
            ("$select", select),
            ("$filter", &filter),
            ("$orderby", "name"),
        ]),
    );
    values(&body)
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn view_search_honours_wildcards_and_escapes() {
    let all = view_names("savedqueries", None);
    assert_eq!(
        all,
        [
            "Lost Opportunities",
            "Open Deals in Euro",
            "Open Opportunities",
            "Pipeline 50 Plus",
            "Pipeline 50%_Plus",
            "Won Opportunities"
        ]
    );
    // A naive search treats % and _ as wildcards and finds both pipelines.
    assert_eq!(view_names("savedqueries", Some("'50%_plus'")).len(), 2);
    // Bracketed, they match literally.
    assert_eq!(
        view_names("savedqueries", Some("'50[%][_]PLUS'")),
        ["Pipeline 50%_Plus"]
    );
    assert_eq!(view_names("savedqueries", Some("'opp'")).len(), 3);
    assert_eq!(view_names("userqueries", None), ["My Big Deals"]);
    // userqueries have no isdefault column.
    let error = call(
        "userqueries",
        &query(&[("$select", "userqueryid,isdefault")]),
        None,
    )
    .unwrap_err();
    assert_eq!(
        error.message,
        "Could not find a property named 'isdefault' on type 'Microsoft.Dynamics.CRM.userquery'."
    );
}

#[test]
fn a_view_definition_by_id() {
    let data = dataset();
    for name in ["Open Opportunities", "My Big Deals"] {
        let view = data.view_by_name(name).unwrap();
        let set = view.kind.entity_set_name();
        let body = ok(
            &format!("{set}({})", view.id),
            &query(&[("$select", "name,returnedtypecode,fetchxml,layoutxml")]),
        );
        assert_eq!(body["name"], name);
        assert_eq!(body["returnedtypecode"], "opportunity");
        assert_eq!(body["fetchxml"], json!(view.fetchxml));
        assert_eq!(body["layoutxml"], json!(view.layoutxml));
        let other = match view.kind {
            ViewKind::System => "userqueries",
            ViewKind::Personal => "savedqueries",
        };
        assert_eq!(
            call(&format!("{other}({})", view.id), "", None)
                .unwrap_err()
                .status,
            404
        );
    }
}

#[test]
fn fetch_xml_through_the_entity_set() {
    let view = dataset().view_by_name("Open Opportunities").unwrap();
    let body = ok("opportunities", &query(&[("fetchXml", &view.fetchxml)]));
    let records = values(&body);
    let open = dataset()
        .rows("opportunity")
        .iter()
        .filter(|r| r["statecode"] == 0)
        .count();
    assert_eq!(records.len(), open);
    assert!(
        records
            .iter()
            .any(|r| r.get("customeraccount.numberofemployees").is_some())
    );
    assert!(
        records
            .iter()
            .any(|r| r.get("customeraccount.numberofemployees").is_none())
    );
    assert!(body.get("@Microsoft.Dynamics.CRM.morerecords").is_none());
    let wrong = call("accounts", &query(&[("fetchXml", &view.fetchxml)]), None).unwrap_err();
    assert_eq!(wrong.status, 400);
    let by_view = ok("opportunities", &query(&[("savedQuery", &view.id)]));
    assert_eq!(values(&by_view).len(), open);
}

#[test]
fn paging_annotations_only_when_asked() {
    let fetch =
        "<fetch count='10'><entity name='account'><attribute name='name'/></entity></fetch>";
    let asked = ok("accounts", &query(&[("fetchXml", fetch)]));
    assert_eq!(asked["@Microsoft.Dynamics.CRM.morerecords"], true);
    assert!(asked["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"]
        .as_str()
        .unwrap()
        .starts_with("<cookie pagenumber=\"2\" pagingcookie=\"%253ccookie%2520page%253d%25221%2522%253e%253caccountid%2520last%253d%2522%257b"));
    let plain = call("accounts", &query(&[("fetchXml", fetch)]), None).unwrap();
    assert!(
        plain
            .body
            .get("@Microsoft.Dynamics.CRM.morerecords")
            .is_none()
    );
    assert!(plain.preference_applied.is_none());
    let paging_only = call(
        "accounts",
        &query(&[("fetchXml", fetch)]),
        Some("odata.include-annotations=\"Microsoft.Dynamics.CRM.fetchxmlpagingcookie,Microsoft.Dynamics.CRM.morerecords\""),
    )
    .unwrap();
    assert_eq!(
        paging_only.body["@Microsoft.Dynamics.CRM.morerecords"],
        true
    );
    let first = &paging_only.body["value"][0];
    assert!(
        first
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.contains("FormattedValue"))
    );
}

#[test]
fn odata_queries_send_nulls_and_follow_next_links() {
    let body = ok(
        "accounts",
        &query(&[
            ("$select", "name,accountnumber,revenue"),
            ("$filter", "accountnumber eq null"),
        ]),
    );
    let first = &values(&body)[0];
    assert_eq!(first["accountnumber"], Value::Null);
    assert!(
        first
            .as_object()
            .unwrap()
            .contains_key("_transactioncurrencyid_value")
    );
    let expected = dataset()
        .rows("account")
        .iter()
        .filter(|r| !r.contains_key("accountnumber"))
        .count();
    assert_eq!(values(&body).len(), expected);

    // Follow @odata.nextLink with a page size of 120 through all contacts.
    let mut seen = std::collections::HashSet::new();
    let mut link = Some(format!(
        "{BASE}{API_PREFIX}contacts?{}",
        query(&[("$select", "fullname")])
    ));
    let mut pages = 0;
    while let Some(next) = link.take() {
        let rest = next.strip_prefix(&format!("{BASE}{API_PREFIX}")).unwrap();
        let (path, raw_query) = rest.split_once('?').unwrap();
        let response = call(path, raw_query, Some("odata.maxpagesize=120")).unwrap();
        assert_eq!(
            response.preference_applied.as_deref(),
            Some("odata.maxpagesize=120")
        );
        for record in values(&response.body) {
            assert!(seen.insert(record["contactid"].as_str().unwrap().to_string()));
        }
        link = response.body["@odata.nextLink"]
            .as_str()
            .map(str::to_string);
        pages += 1;
        assert!(pages < 20);
    }
    assert_eq!(pages, 7);
    assert_eq!(seen.len(), 800);
}

#[test]
fn whoami_and_errors() {
    let data = dataset();
    for path in ["WhoAmI", "WhoAmI()"] {
        let body = ok(path, "");
        assert_eq!(body["UserId"], json!(data.application_user_id));
        assert!(
            body["@odata.context"]
                .as_str()
                .unwrap()
                .ends_with("#Microsoft.Dynamics.CRM.WhoAmIResponse")
        );
        assert!(crate::data::is_guid(
            body["BusinessUnitId"].as_str().unwrap()
        ));
        assert!(crate::data::is_guid(
            body["OrganizationId"].as_str().unwrap()
        ));
    }
    let unknown = call("Account", "", None).unwrap_err();
    assert_eq!((unknown.status, unknown.code.as_str()), (404, "0x8006088a"));
    assert_eq!(
        unknown.message,
        "Resource not found for the segment 'Account'."
    );
    let skip = call("accounts", "$skip=10", None).unwrap_err();
    assert_eq!(skip.status, 400);
    let filter = call("savedqueries", &query(&[("$filter", "x eq 1")]), None).unwrap_err();
    assert_eq!(
        filter.message,
        "Could not find a property named 'x' on type 'Microsoft.Dynamics.CRM.savedquery'."
    );
    assert_eq!(
        call("accounts", "$expand=primarycontactid", None)
            .unwrap_err()
            .status,
        501
    );
    assert_eq!(call("$metadata", "", None).unwrap_err().status, 501);
    let service = call("", "", None).unwrap().body;
    assert_eq!(
        service["@odata.context"],
        "http://127.0.0.1:9/api/data/v9.2/$metadata"
    );
    assert!(
        values(&service)
            .iter()
            .any(|s| s["name"] == "opportunities")
    );
}

#[test]
fn the_organization_names_its_base_currency() {
    let data = dataset();
    let usd = data.currency_by_code("USD").unwrap();
    for select in [
        "_basecurrencyid_value",
        "organizationid,_basecurrencyid_value",
    ] {
        let body = ok("organizations", &query(&[("$select", select)]));
        assert!(
            body["@odata.context"]
                .as_str()
                .unwrap()
                .ends_with(&format!("$metadata#organizations({select})"))
        );
        let organizations = values(&body);
        assert_eq!(organizations.len(), 1);
        let organization = &organizations[0];
        assert_eq!(organization["organizationid"], json!(data.organization_id));
        assert_eq!(organization["_basecurrencyid_value"], json!(usd.id));
        assert!(
            organization["@odata.etag"]
                .as_str()
                .unwrap()
                .starts_with("W/\"")
        );
        assert_eq!(
            organization["_basecurrencyid_value@OData.Community.Display.V1.FormattedValue"],
            "US Dollar"
        );
    }
    let plain = call(
        "organizations",
        &query(&[("$select", "_basecurrencyid_value")]),
        None,
    )
    .unwrap()
    .body;
    let keys: Vec<&String> = values(&plain)[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["@odata.etag", "_basecurrencyid_value", "organizationid"]
    );
}

#[test]
fn currencies_by_id_and_by_filter() {
    let data = dataset();
    let eur = data.currency_by_code("EUR").unwrap();
    let select = "isocurrencycode,currencyname,currencysymbol,exchangerate";
    let body = ok(
        &format!("transactioncurrencies({})", eur.id),
        &query(&[("$select", select)]),
    );
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with(&format!("#transactioncurrencies({select})/$entity"))
    );
    assert_eq!(body["transactioncurrencyid"], json!(eur.id));
    assert_eq!(body["isocurrencycode"], "EUR");
    assert_eq!(body["currencyname"], "Euro");
    assert_eq!(body["currencysymbol"], "€");
    assert_eq!(body["exchangerate"], json!(eur.exchangerate));
    let missing = call(
        "transactioncurrencies(00000000-0000-0000-0000-000000000001)",
        &query(&[("$select", select)]),
        None,
    )
    .unwrap_err();
    assert_eq!((missing.status, missing.code.as_str()), (404, "0x80040217"));
    let list = ok(
        "transactioncurrencies",
        &query(&[
            ("$select", select),
            (
                "$filter",
                "isocurrencycode eq 'EUR' or isocurrencycode eq 'usd'",
            ),
            ("$orderby", "isocurrencycode"),
        ]),
    );
    let codes: Vec<&str> = values(&list)
        .iter()
        .map(|c| c["isocurrencycode"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["EUR", "USD"]);
}

#[test]
fn views_return_modifiedon_when_selected() {
    let data = dataset();
    for name in ["Open Deals in Euro", "My Big Deals", "Bench 1k"] {
        let view = data.view_by_name(name).unwrap();
        let body = ok(
            &format!("{}({})", view.kind.entity_set_name(), view.id),
            &query(&[("$select", "modifiedon")]),
        );
        assert_eq!(body["modifiedon"], json!(view.modifiedon), "{name}");
        assert!(
            body["modifiedon@OData.Community.Display.V1.FormattedValue"]
                .as_str()
                .is_some()
        );
        assert!(body.get("fetchxml").is_none());
    }
    let listed = ok(
        "savedqueries",
        &query(&[
            ("$select", "name,modifiedon"),
            ("$filter", "returnedtypecode eq 'new_benchrecord'"),
            ("$orderby", "modifiedon desc"),
        ]),
    );
    assert_eq!(values(&listed).len(), 3);
}

#[test]
fn an_overlay_changes_what_the_api_answers() {
    let data = dataset();
    let mut overlay = crate::data::Overlay::default();
    assert!(overlay.is_empty());
    let view = data.view_by_name("Bench 1k").unwrap();
    overlay
        .update_view(data, &view.id, Some("<fetch/>"), None, 0)
        .unwrap();
    assert!(!overlay.is_empty());
    overlay
        .delete_attribute(data, "new_benchrecord", "new_quantity")
        .unwrap();
    assert!(
        overlay
            .delete_attribute(data, "new_benchrecord", "nope")
            .is_err()
    );
    assert!(overlay.update_view(data, "nope", None, None, 0).is_err());
    assert!(overlay.add_rows(data, "nope", Vec::new()).is_err());
    let db = crate::data::Db::new(data, &overlay);
    let preferences = Preferences::default();
    let request = |path: &'static str, query: &'static str| ApiRequest {
        base_url: BASE,
        path,
        query: Some(query),
        preferences: &preferences,
    };
    let path = format!("savedqueries({})", view.id);
    let body = get_in(
        db,
        &ApiRequest {
            base_url: BASE,
            path: &path,
            query: Some("$select=fetchxml,modifiedon"),
            preferences: &preferences,
        },
    )
    .unwrap()
    .body;
    assert_eq!(body["fetchxml"], "<fetch/>");
    // Modified "now" = 0 is before the seeded time: one second later instead.
    let seeded = crate::format::parse_datetime(&view.modifiedon).unwrap();
    assert_eq!(
        body["modifiedon"],
        json!(crate::format::iso_from_unix(seeded + 1))
    );
    let attributes = get_in(
        db,
        &request(
            "EntityDefinitions(LogicalName='new_benchrecord')/Attributes",
            "$select=LogicalName",
        ),
    )
    .unwrap()
    .body;
    assert!(
        values(&attributes)
            .iter()
            .all(|a| a["LogicalName"] != "new_quantity")
    );
    assert_eq!(values(&attributes).len(), 6);
    let table = get_in(
        db,
        &request(
            "EntityDefinitions(LogicalName='new_benchrecord')",
            "$select=IsCustomEntity,EntitySetName",
        ),
    )
    .unwrap()
    .body;
    assert_eq!(table["IsCustomEntity"], true);
    assert_eq!(table["EntitySetName"], "new_benchrecords");
    let refused = get_in(db, &request("new_benchrecords", "$select=new_quantity")).unwrap_err();
    assert_eq!(refused.status, 400);
    // The shared data is untouched.
    assert_ne!(data.view(&view.id).unwrap().fetchxml, "<fetch/>");
}

fn chart_names(set: &str, entity: &str) -> Vec<String> {
    let id = if set == "savedqueryvisualizations" {
        "savedqueryvisualizationid"
    } else {
        "userqueryvisualizationid"
    };
    let body = ok(
        set,
        &query(&[
            ("$select", &format!("{id},name,primaryentitytypecode")),
            ("$filter", &format!("primaryentitytypecode eq '{entity}'")),
            ("$orderby", "name"),
        ]),
    );
    values(&body)
        .iter()
        .map(|c| {
            assert_eq!(c["primaryentitytypecode"], entity);
            assert!(crate::data::is_guid(c[id].as_str().unwrap()));
            c["name"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn charts_are_listed_per_table_and_read_by_id() {
    assert_eq!(
        chart_names("savedqueryvisualizations", "opportunity"),
        [
            "Average Probability by Rating",
            "Estimated Revenue by Close Month",
            "Pipeline by Status Reason"
        ]
    );
    assert_eq!(
        chart_names("savedqueryvisualizations", "lead"),
        ["Leads by Source"]
    );
    assert_eq!(
        chart_names("userqueryvisualizations", "opportunity"),
        ["My Won Revenue by Owner"]
    );
    assert!(chart_names("userqueryvisualizations", "lead").is_empty());

    let data = dataset();
    let pipeline = data.chart_by_name("Pipeline by Status Reason").unwrap();
    let body = ok(
        &format!("savedqueryvisualizations({})", pipeline.id.to_uppercase()),
        &query(&[("$select", "name,datadescription,modifiedon")]),
    );
    assert_eq!(body["savedqueryvisualizationid"], json!(pipeline.id));
    assert_eq!(body["name"], "Pipeline by Status Reason");
    assert_eq!(body["datadescription"], json!(pipeline.datadescription));
    assert_eq!(body["modifiedon"], json!(pipeline.modifiedon));
    assert!(
        body["modifiedon@OData.Community.Display.V1.FormattedValue"]
            .as_str()
            .is_some()
    );
    assert!(body.get("presentationdescription").is_none());
    let description = body["datadescription"].as_str().unwrap();
    for part in [
        "<fetch mapping=\"logical\" aggregate=\"true\">",
        "<attribute groupby=\"true\" alias=\"groupby_column\" name=\"statuscode\" />",
        "<attribute alias=\"sum_estimatedvalue\" name=\"estimatedvalue\" aggregate=\"sum\" />",
        "<measure alias=\"count_opportunities\" />",
    ] {
        assert!(description.contains(part), "{part} in {description}");
    }

    let mine = data.chart_by_name("My Won Revenue by Owner").unwrap();
    let personal = ok(
        &format!("userqueryvisualizations({})", mine.id),
        &query(&[("$select", "name,_ownerid_value,datadescription")]),
    );
    assert_eq!(personal["_ownerid_value"], json!(data.application_user_id));
    assert_eq!(
        personal["_ownerid_value@OData.Community.Display.V1.FormattedValue"],
        json!(data.user(&data.application_user_id).unwrap().fullname)
    );
    // A chart lives in one table only, and personal charts have no isdefault.
    assert_eq!(
        call(&format!("savedqueryvisualizations({})", mine.id), "", None)
            .unwrap_err()
            .status,
        404
    );
    let error = call(
        "userqueryvisualizations",
        &query(&[("$select", "name,isdefault")]),
        None,
    )
    .unwrap_err();
    assert_eq!(
        error.message,
        "Could not find a property named 'isdefault' on type 'Microsoft.Dynamics.CRM.userqueryvisualization'."
    );
    let defaults = ok(
        "savedqueryvisualizations",
        &query(&[
            ("$select", "name"),
            (
                "$filter",
                "primaryentitytypecode eq 'opportunity' and isdefault eq true",
            ),
        ]),
    );
    assert_eq!(values(&defaults).len(), 1);
    assert_eq!(values(&defaults)[0]["name"], "Pipeline by Status Reason");
}

/// `EntityDefinitions(LogicalName='<entity>')/Attributes(LogicalName='<attribute>')/<cast>`.
fn cast_path(entity: &str, attribute: &str, cast: &str) -> String {
    format!(
        "EntityDefinitions(LogicalName='{entity}')/Attributes(LogicalName='{attribute}')/Microsoft.Dynamics.CRM.{cast}"
    )
}

fn option_labels(body: &Value) -> Vec<(i64, String)> {
    body["OptionSet"]["Options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let label = &o["Label"];
            assert_eq!(label["LocalizedLabels"][0]["LanguageCode"], 1033);
            assert_eq!(
                label["LocalizedLabels"][0]["Label"],
                label["UserLocalizedLabel"]["Label"]
            );
            (
                o["Value"].as_i64().unwrap(),
                label["UserLocalizedLabel"]["Label"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

const OPTIONS_ONLY: &[(&str, &str)] = &[
    ("$select", "LogicalName"),
    ("$expand", "OptionSet($select=Options)"),
];

#[test]
fn option_sets_come_through_the_attribute_type_cast() {
    let data = dataset();
    let opportunity = data.entity("opportunity").unwrap();
    let statuscode = opportunity.attribute("statuscode").unwrap();
    let body = ok(
        &cast_path("opportunity", "statuscode", "StatusAttributeMetadata"),
        &query(OPTIONS_ONLY),
    );
    assert_eq!(
        body["@odata.context"],
        format!(
            "{BASE}/api/data/v9.2/$metadata#EntityDefinitions('{}')/Attributes({})/Microsoft.Dynamics.CRM.StatusAttributeMetadata(LogicalName,OptionSet,OptionSet(Options))/$entity",
            opportunity.metadata_id, statuscode.metadata_id
        )
    );
    assert_eq!(body["LogicalName"], "statuscode");
    assert_eq!(body["MetadataId"], json!(statuscode.metadata_id));
    assert!(
        body.get("AttributeType").is_none(),
        "only selected properties"
    );
    let option_set = body["OptionSet"].as_object().unwrap();
    assert!(crate::data::is_guid(
        option_set["MetadataId"].as_str().unwrap()
    ));
    assert!(option_set.get("Name").is_none(), "only Options selected");
    let labels = option_labels(&body);
    assert_eq!(labels.len(), 5);
    assert!(labels.contains(&(3, "Won".to_string())));
    assert!(labels.contains(&(1, "In Progress".to_string())));

    let rating = ok(
        &cast_path(
            "opportunity",
            "opportunityratingcode",
            "PicklistAttributeMetadata",
        ),
        &query(OPTIONS_ONLY),
    );
    assert_eq!(
        option_labels(&rating),
        [
            (1, "Hot".to_string()),
            (2, "Warm".to_string()),
            (3, "Cold".to_string())
        ]
    );
    let sources = ok(
        &cast_path("lead", "leadsourcecode", "PicklistAttributeMetadata"),
        &query(&[("$expand", "OptionSet")]),
    );
    assert_eq!(option_labels(&sources).len(), 10);
    assert_eq!(sources["OptionSet"]["OptionSetType"], "Picklist");
    assert_eq!(sources["AttributeType"], "Picklist", "no $select: all");
    let state = ok(
        &cast_path("opportunity", "statecode", "StateAttributeMetadata"),
        &query(OPTIONS_ONLY),
    );
    assert!(option_labels(&state).contains(&(1, "Won".to_string())));
    // A Boolean column answers its two options.
    let boolean = ok(
        &cast_path("savedquery", "isdefault", "BooleanAttributeMetadata"),
        &query(&[("$expand", "OptionSet")]),
    );
    assert_eq!(boolean["OptionSet"]["TrueOption"]["Value"], 1);
    assert_eq!(
        boolean["OptionSet"]["FalseOption"]["Label"]["UserLocalizedLabel"]["Label"],
        "No"
    );
    // Without $expand the cast answers the attribute alone.
    let plain = ok(
        &cast_path("opportunity", "statuscode", "StatusAttributeMetadata"),
        "",
    );
    assert!(plain.get("OptionSet").is_none());
}

#[test]
fn option_set_requests_that_do_not_fit_are_refused() {
    let refused =
        |path: String, pairs: &[(&str, &str)]| call(&path, &query(pairs), None).expect_err(&path);
    let wrong = refused(
        cast_path("opportunity", "name", "PicklistAttributeMetadata"),
        OPTIONS_ONLY,
    );
    assert_eq!(wrong.status, 400);
    assert_eq!(
        wrong.message,
        "The attribute 'name' is not of type PicklistAttributeMetadata."
    );
    let status_as_picklist = refused(
        cast_path("opportunity", "statuscode", "PicklistAttributeMetadata"),
        OPTIONS_ONLY,
    );
    assert_eq!(status_as_picklist.status, 400);
    // A column without options has no OptionSet to expand.
    let money = refused(
        cast_path("opportunity", "estimatedvalue", "MoneyAttributeMetadata"),
        &[("$expand", "OptionSet")],
    );
    assert_eq!(
        money.message,
        "Could not find a property named 'OptionSet' on type 'Microsoft.Dynamics.CRM.MoneyAttributeMetadata'."
    );
    let bogus = refused(
        cast_path("opportunity", "statuscode", "StatusAttributeMetadata"),
        &[("$expand", "OptionSet($select=Bogus)")],
    );
    assert_eq!(bogus.status, 400);
    for expand in ["GlobalOptionSet", "OptionSet($filter=Value eq 1)"] {
        let other = refused(
            cast_path("opportunity", "statuscode", "StatusAttributeMetadata"),
            &[("$expand", expand)],
        );
        assert_eq!(other.status, 501, "{expand}");
    }
    // $expand stays refused on metadata read without a cast.
    let uncast = refused(
        "EntityDefinitions(LogicalName='opportunity')/Attributes(LogicalName='statuscode')"
            .to_string(),
        OPTIONS_ONLY,
    );
    assert_eq!(uncast.status, 501);
    let unknown = refused(
        "EntityDefinitions(LogicalName='opportunity')/Attributes(LogicalName='statuscode')/Nope"
            .to_string(),
        &[],
    );
    assert_eq!(unknown.status, 404);
}

#[test]
fn an_overlay_changes_and_deletes_charts() {
    let data = dataset();
    let mut overlay = crate::data::Overlay::default();
    let pipeline = data.chart_by_name("Pipeline by Status Reason").unwrap();
    let mine = data.chart_by_name("My Won Revenue by Owner").unwrap();
    let changed = "<datadefinition><fetchcollection /></datadefinition>";
    overlay
        .update_chart(data, &pipeline.id.to_uppercase(), changed, 0)
        .unwrap();
    overlay.delete_chart(data, &mine.id).unwrap();
    assert!(overlay.update_chart(data, "nope", changed, 0).is_err());
    assert!(overlay.delete_chart(data, &mine.id).is_err());
    let db = crate::data::Db::new(data, &overlay);
    assert_eq!(db.chart(&pipeline.id).unwrap().datadescription, changed);
    assert!(db.chart(&mine.id).is_none());
    assert_eq!(db.charts().len(), data.charts.len() - 1);
    let preferences = Preferences::default();
    let read = |path: String| {
        get_in(
            db,
            &ApiRequest {
                base_url: BASE,
                path: &path,
                query: Some("$select=datadescription,modifiedon,versionnumber"),
                preferences: &preferences,
            },
        )
    };
    let body = read(format!("savedqueryvisualizations({})", pipeline.id))
        .unwrap()
        .body;
    assert_eq!(body["datadescription"], changed);
    let seeded = crate::format::parse_datetime(&pipeline.modifiedon).unwrap();
    assert_eq!(
        body["modifiedon"],
        json!(crate::format::iso_from_unix(seeded + 1))
    );
    let row = data
        .row_by_id("savedqueryvisualization", &pipeline.id)
        .unwrap();
    assert_eq!(
        body["versionnumber"].as_i64().unwrap(),
        row["versionnumber"].as_i64().unwrap() + 1
    );
    let gone = read(format!("userqueryvisualizations({})", mine.id)).unwrap_err();
    assert_eq!(gone.status, 404);
    // The shared data is untouched.
    assert_ne!(data.chart(&pipeline.id).unwrap().datadescription, changed);
    assert!(data.chart(&mine.id).is_some());
}
