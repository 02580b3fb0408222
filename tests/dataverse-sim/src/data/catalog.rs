//! Users, currencies, apps with their site maps and components, and the rows of
//! the system tables that describe them.

use super::{
    App, AppComponent, Chart, ChartKind, Currency, Dataset, EntityDef, Row, SiteMap, SystemUser,
    View, ViewKind, guid_from_name,
};
use serde_json::{Value, json};

pub const ORGANIZATION_ID: &str = "4d1f6e2a-8c3b-4f7e-9a15-2b6c0d8e1f3a";
pub const BUSINESS_UNIT_ID: &str = "9b2e4c71-5d3a-4e8f-b612-7c0a3d9e5f24";
pub const BUSINESS_UNIT_NAME: &str = "Contoso Sales";
/// The organization's `name`.
pub const ORGANIZATION_NAME: &str = "Contoso Sales (Simulator)";

/// The application user's name, as application users are usually named.
pub const APPLICATION_USER_NAME: &str = "# Goals Integration";

const SALES_PEOPLE: &[&str] = &[
    "Alice Morgan",
    "Bruno Silva",
    "Chen Wei",
    "Dana Kowalski",
    "Emeka Obi",
    "Farah Haddad",
];

pub fn users() -> Vec<SystemUser> {
    let mut users = vec![SystemUser {
        id: guid_from_name("systemuser", APPLICATION_USER_NAME),
        fullname: APPLICATION_USER_NAME.to_string(),
        email: "goals-integration@contoso-sim.example".to_string(),
        is_application_user: true,
    }];
    users.extend(SALES_PEOPLE.iter().map(|name| SystemUser {
        id: guid_from_name("systemuser", name),
        fullname: name.to_string(),
        email: format!(
            "{}@contoso-sim.example",
            name.to_ascii_lowercase().replace(' ', ".")
        ),
        is_application_user: false,
    }));
    users
}

pub fn currencies() -> Vec<Currency> {
    vec![
        Currency {
            id: guid_from_name("transactioncurrency", "USD"),
            iso_code: "USD".to_string(),
            name: "US Dollar".to_string(),
            symbol: "$".to_string(),
            exchangerate: 1.0,
            is_base: true,
        },
        Currency {
            id: guid_from_name("transactioncurrency", "EUR"),
            iso_code: "EUR".to_string(),
            name: "Euro".to_string(),
            symbol: "€".to_string(),
            exchangerate: 0.92,
            is_base: false,
        },
    ]
}

/// A sub-area of a site map: a table (`Entity=`) or a page (`Url=`).
enum Sub<'a> {
    Entity(&'a str, &'a str, &'a str),
    Url(&'a str, &'a str, &'a str),
}

struct AppSpec<'a> {
    name: &'a str,
    uniquename: &'a str,
    description: &'a str,
    statecode: i64,
    area: (&'a str, &'a str),
    groups: Vec<(&'a str, &'a str, Vec<Sub<'a>>)>,
}

fn app_specs() -> Vec<AppSpec<'static>> {
    vec![
        AppSpec {
            name: "Sales Hub",
            uniquename: "saleshub",
            description: "Manage the sales pipeline from lead to won deal.",
            statecode: 0,
            area: ("SFA", "Sales"),
            groups: vec![
                (
                    "MyWork",
                    "My Work",
                    vec![Sub::Url(
                        "nav_dashboards",
                        "Dashboards",
                        "/main.aspx?pagetype=dashboard",
                    )],
                ),
                (
                    "Customers",
                    "Customers",
                    vec![
                        Sub::Entity("nav_accts", "Accounts", "account"),
                        Sub::Entity("nav_conts", "Contacts", "contact"),
                    ],
                ),
                (
                    "Pipeline",
                    "Sales",
                    vec![
                        Sub::Entity("nav_oppts", "Opportunities", "opportunity"),
                        Sub::Entity("nav_leads", "Leads", "lead"),
                    ],
                ),
            ],
        },
        AppSpec {
            name: "Customer Service Hub",
            uniquename: "customerservicehub",
            description: "Resolve customer cases.",
            statecode: 0,
            area: ("CS", "Service"),
            groups: vec![
                (
                    "Customers",
                    "Customers",
                    vec![
                        Sub::Entity("nav_accts", "Accounts", "account"),
                        Sub::Entity("nav_conts", "Contacts", "contact"),
                    ],
                ),
                (
                    "Service",
                    "Service",
                    vec![
                        Sub::Entity("nav_cases", "Cases", "incident"),
                        Sub::Url(
                            "nav_kb",
                            "Knowledge Search",
                            "/main.aspx?pagetype=control&controlName=KnowledgeSearch",
                        ),
                    ],
                ),
            ],
        },
        AppSpec {
            name: "Field Service (Retired)",
            uniquename: "fieldserviceretired",
            description: "Deactivated; must not be offered.",
            statecode: 1,
            area: ("FS", "Field Service"),
            groups: vec![(
                "Work",
                "Work Orders",
                vec![Sub::Entity("nav_accts", "Accounts", "account")],
            )],
        },
    ]
}

fn sitemap_xml(spec: &AppSpec<'_>) -> String {
    let mut xml = format!(
        "<SiteMap IntroducedVersion=\"7.0.0.0\">\n  <Area Id=\"{}\" ShowGroups=\"true\" Title=\"{}\">\n",
        spec.area.0, spec.area.1
    );
    for (id, title, subs) in &spec.groups {
        xml.push_str(&format!("    <Group Id=\"{id}\" Title=\"{title}\">\n"));
        for sub in subs {
            match sub {
                Sub::Entity(id, title, entity) => xml.push_str(&format!(
                    "      <SubArea Id=\"{id}\" Entity=\"{entity}\" Title=\"{title}\" />\n"
                )),
                Sub::Url(id, title, url) => xml.push_str(&format!(
                    "      <SubArea Id=\"{id}\" Url=\"{}\" Title=\"{title}\" />\n",
                    crate::xml::escape_attr(url)
                )),
            }
        }
        xml.push_str("    </Group>\n");
    }
    xml.push_str("  </Area>\n</SiteMap>");
    xml
}

pub fn apps(entities: &[EntityDef]) -> (Vec<App>, Vec<SiteMap>, Vec<AppComponent>) {
    let mut apps = Vec::new();
    let mut sitemaps = Vec::new();
    let mut components = Vec::new();
    for spec in app_specs() {
        let sitemap = SiteMap {
            id: guid_from_name("sitemap", spec.uniquename),
            name: spec.name.to_string(),
            unique_name: spec.uniquename.to_string(),
            xml: sitemap_xml(&spec),
        };
        let app = App {
            id: guid_from_name("appmodule", spec.uniquename),
            unique_id: guid_from_name("appmoduleidunique", spec.uniquename),
            name: spec.name.to_string(),
            uniquename: spec.uniquename.to_string(),
            description: spec.description.to_string(),
            statecode: spec.statecode,
            clienttype: 4,
            sitemap_id: sitemap.id.clone(),
        };
        let component = |componenttype: i64, objectid: &str| AppComponent {
            id: guid_from_name(
                "appmodulecomponent",
                &format!("{}/{componenttype}/{objectid}", spec.uniquename),
            ),
            app_unique_id: app.unique_id.clone(),
            componenttype,
            objectid: objectid.to_string(),
        };
        components.push(component(62, &sitemap.id));
        for (_, _, subs) in &spec.groups {
            for sub in subs {
                if let Sub::Entity(_, _, name) = sub
                    && let Some(entity) = entities.iter().find(|e| e.logical_name == *name)
                {
                    components.push(component(1, &entity.metadata_id));
                }
            }
        }
        apps.push(app);
        sitemaps.push(sitemap);
    }
    (apps, sitemaps, components)
}

fn row(pairs: Vec<(&str, Value)>) -> Row {
    pairs
        .into_iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(key, value)| (key.to_string(), value))
        .collect()
}

fn view_row(view: &View, version: i64, application_user: &str) -> Row {
    let id_column = format!("{}id", view.kind.logical_name());
    let mut pairs = vec![
        (id_column.as_str(), json!(view.id)),
        ("name", json!(view.name)),
        ("description", json!(view.description)),
        ("returnedtypecode", json!(view.returnedtypecode)),
        ("querytype", json!(view.querytype)),
        ("fetchxml", json!(view.fetchxml)),
        ("layoutxml", json!(view.layoutxml)),
        ("statecode", json!(view.statecode)),
        ("statuscode", json!(view.statecode + 1)),
        ("modifiedon", json!(view.modifiedon)),
        ("versionnumber", json!(version)),
    ];
    match view.kind {
        ViewKind::System => {
            pairs.push(("isdefault", json!(view.isdefault)));
            pairs.push(("isquickfindquery", json!(view.querytype == 4)));
        }
        ViewKind::Personal => pairs.push(("ownerid", json!(application_user))),
    }
    row(pairs)
}

fn chart_row(chart: &Chart, version: i64, application_user: &str) -> Row {
    let id_column = format!("{}id", chart.kind.logical_name());
    let mut pairs = vec![
        (id_column.as_str(), json!(chart.id)),
        ("name", json!(chart.name)),
        ("description", json!(chart.description)),
        ("primaryentitytypecode", json!(chart.primaryentitytypecode)),
        ("datadescription", json!(chart.datadescription)),
        (
            "presentationdescription",
            json!(chart.presentationdescription),
        ),
        ("modifiedon", json!(chart.modifiedon)),
        ("versionnumber", json!(version)),
    ];
    match chart.kind {
        ChartKind::System => pairs.push(("isdefault", json!(chart.isdefault))),
        ChartKind::Personal => pairs.push(("ownerid", json!(application_user))),
    }
    row(pairs)
}

/// Rows of the system tables, derived from the typed catalog.
pub fn system_tables(data: &Dataset) -> Vec<(String, Vec<Row>)> {
    let mut version = 2_000_000;
    let mut next_version = || {
        version += 17;
        version
    };
    let appmodules = data
        .apps
        .iter()
        .map(|app| {
            row(vec![
                ("appmoduleid", json!(app.id)),
                ("appmoduleidunique", json!(app.unique_id)),
                ("name", json!(app.name)),
                ("uniquename", json!(app.uniquename)),
                ("description", json!(app.description)),
                ("clienttype", json!(app.clienttype)),
                ("isdefault", json!(false)),
                ("publishedon", json!("2025-05-02T09:30:00Z")),
                ("statecode", json!(app.statecode)),
                ("statuscode", json!(app.statecode + 1)),
                ("versionnumber", json!(next_version())),
            ])
        })
        .collect();
    let components = data
        .app_components
        .iter()
        .map(|c| {
            row(vec![
                ("appmodulecomponentid", json!(c.id)),
                ("appmoduleidunique", json!(c.app_unique_id)),
                ("componenttype", json!(c.componenttype)),
                ("objectid", json!(c.objectid)),
                ("isdefault", json!(false)),
                ("rootcomponentbehavior", json!(0)),
                ("versionnumber", json!(next_version())),
            ])
        })
        .collect();
    let sitemaps = data
        .sitemaps
        .iter()
        .map(|s| {
            row(vec![
                ("sitemapid", json!(s.id)),
                ("sitemapname", json!(s.name)),
                ("sitemapnameunique", json!(s.unique_name)),
                ("sitemapxml", json!(s.xml)),
                ("isappaware", json!(true)),
                ("versionnumber", json!(next_version())),
            ])
        })
        .collect();
    let mut savedqueries = Vec::new();
    let mut userqueries = Vec::new();
    for view in &data.views {
        let row = view_row(view, next_version(), &data.application_user_id);
        match view.kind {
            ViewKind::System => savedqueries.push(row),
            ViewKind::Personal => userqueries.push(row),
        }
    }
    let systemusers = data
        .users
        .iter()
        .map(|u| {
            let (first, last) = u.fullname.split_once(' ').unwrap_or(("", &u.fullname));
            row(vec![
                ("systemuserid", json!(u.id)),
                ("fullname", json!(u.fullname)),
                ("firstname", json!(first)),
                ("lastname", json!(last)),
                ("internalemailaddress", json!(u.email)),
                ("isdisabled", json!(false)),
                (
                    "applicationid",
                    if u.is_application_user {
                        json!(crate::SimConfig::default().client_id)
                    } else {
                        Value::Null
                    },
                ),
                ("businessunitid", json!(data.business_unit_id)),
                ("versionnumber", json!(next_version())),
            ])
        })
        .collect();
    let currencies = data
        .currencies
        .iter()
        .map(|c| {
            row(vec![
                ("transactioncurrencyid", json!(c.id)),
                ("currencyname", json!(c.name)),
                ("isocurrencycode", json!(c.iso_code)),
                ("currencysymbol", json!(c.symbol)),
                ("exchangerate", json!(c.exchangerate)),
                ("currencyprecision", json!(2)),
                ("versionnumber", json!(next_version())),
            ])
        })
        .collect();
    let organizations = vec![row(vec![
        ("organizationid", json!(data.organization_id)),
        ("name", json!(ORGANIZATION_NAME)),
        (
            "basecurrencyid",
            json!(data.base_currency().map(|c| c.id.clone())),
        ),
        ("versionnumber", json!(next_version())),
    ])];
    // Chart rows take their version numbers last, so adding charts did not move
    // the version numbers (and etags) of the older system rows.
    let mut savedqueryvisualizations = Vec::new();
    let mut userqueryvisualizations = Vec::new();
    for chart in &data.charts {
        let row = chart_row(chart, next_version(), &data.application_user_id);
        match chart.kind {
            ChartKind::System => savedqueryvisualizations.push(row),
            ChartKind::Personal => userqueryvisualizations.push(row),
        }
    }
    vec![
        ("organization".to_string(), organizations),
        ("appmodule".to_string(), appmodules),
        ("appmodulecomponent".to_string(), components),
        ("sitemap".to_string(), sitemaps),
        ("savedquery".to_string(), savedqueries),
        ("userquery".to_string(), userqueries),
        (
            "savedqueryvisualization".to_string(),
            savedqueryvisualizations,
        ),
        (
            "userqueryvisualization".to_string(),
            userqueryvisualizations,
        ),
        ("systemuser".to_string(), systemusers),
        ("transactioncurrency".to_string(), currencies),
    ]
}
