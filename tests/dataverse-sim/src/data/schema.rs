//! Table and column definitions of the sample organization.

use super::{AttributeDef, AttributeType as T, EntityDef, OptionLabel, guid_from_name};

struct Table {
    entity: EntityDef,
}

impl Table {
    #[allow(clippy::too_many_arguments)]
    fn new(
        logical_name: &str,
        entity_set_name: &str,
        display_name: &str,
        display_collection_name: &str,
        primary_name: Option<&str>,
        object_type_code: i64,
        is_business_table: bool,
    ) -> Table {
        let primary_id = format!("{logical_name}id");
        let mut table = Table {
            entity: EntityDef {
                logical_name: logical_name.to_string(),
                entity_set_name: entity_set_name.to_string(),
                primary_id_attribute: primary_id.clone(),
                primary_name_attribute: primary_name.map(str::to_string),
                display_name: display_name.to_string(),
                display_collection_name: display_collection_name.to_string(),
                metadata_id: guid_from_name("entity", logical_name),
                object_type_code,
                is_business_table,
                attributes: Vec::new(),
            },
        };
        table = table.column(&primary_id, T::Uniqueidentifier, display_name);
        table
    }

    fn column(mut self, name: &str, kind: T, display: &str) -> Table {
        let metadata_id =
            guid_from_name("attribute", &format!("{}.{name}", self.entity.logical_name));
        self.entity.attributes.push(AttributeDef {
            logical_name: name.to_string(),
            attribute_type: kind,
            display_name: display.to_string(),
            metadata_id,
            attribute_of: None,
            options: Vec::new(),
            targets: Vec::new(),
        });
        self
    }

    fn lookup(self, name: &str, kind: T, display: &str, targets: &[&str]) -> Table {
        let mut table = self.column(name, kind, display);
        if let Some(last) = table.entity.attributes.last_mut() {
            last.targets = targets.iter().map(|t| t.to_string()).collect();
        }
        table
    }

    fn choice(self, name: &str, kind: T, display: &str, options: &[(i64, &str)]) -> Table {
        let mut table = self.column(name, kind, display);
        if let Some(last) = table.entity.attributes.last_mut() {
            last.options = options
                .iter()
                .map(|(value, label)| OptionLabel {
                    value: *value,
                    label: label.to_string(),
                })
                .collect();
        }
        table
    }

    /// A money column with its `_base` twin.
    fn money(self, name: &str, display: &str) -> Table {
        let base = format!("{name}_base");
        let mut table = self.column(name, T::Money, display).column(
            &base,
            T::Money,
            &format!("{display} (Base)"),
        );
        if let Some(last) = table.entity.attributes.last_mut() {
            last.attribute_of = Some(name.to_string());
        }
        table
    }

    /// The columns every user-owned business table has.
    fn owned(self, states: &[(i64, &str)], statuses: &[(i64, &str)]) -> Table {
        self.choice("statecode", T::State, "Status", states)
            .choice("statuscode", T::Status, "Status Reason", statuses)
            .column("createdon", T::DateTime, "Created On")
            .lookup("ownerid", T::Owner, "Owner", &["systemuser", "team"])
            .column("versionnumber", T::BigInt, "Version Number")
    }

    fn currency(self) -> Table {
        self.lookup(
            "transactioncurrencyid",
            T::Lookup,
            "Currency",
            &["transactioncurrency"],
        )
        .column("exchangerate", T::Decimal, "Exchange Rate")
    }

    fn done(self) -> EntityDef {
        self.entity
    }
}

const ACTIVE_INACTIVE: &[(i64, &str)] = &[(0, "Active"), (1, "Inactive")];
const ACTIVE_INACTIVE_STATUS: &[(i64, &str)] = &[(1, "Active"), (2, "Inactive")];

/// Industry choices of accounts (values as in Dataverse's `industrycode`).
pub const INDUSTRIES: &[(i64, &str)] = &[
    (1, "Accounting"),
    (3, "Broadcasting Printing and Publishing"),
    (6, "Consulting"),
    (7, "Consumer Services"),
    (12, "Financial"),
    (13, "Food and Tobacco Processing"),
    (19, "Inbound Capital Intensive Processing"),
    (25, "Retail"),
    (33, "Wholesale"),
];

pub const LEAD_SOURCES: &[(i64, &str)] = &[
    (1, "Advertisement"),
    (2, "Employee Referral"),
    (3, "External Referral"),
    (4, "Partner"),
    (5, "Public Relations"),
    (6, "Seminar"),
    (7, "Trade Show"),
    (8, "Web"),
    (9, "Word of Mouth"),
    (10, "Other"),
];

const RATINGS: &[(i64, &str)] = &[(1, "Hot"), (2, "Warm"), (3, "Cold")];

pub fn entities() -> Vec<EntityDef> {
    vec![
        account(),
        contact(),
        opportunity(),
        lead(),
        incident(),
        appmodule(),
        appmodulecomponent(),
        sitemap(),
        savedquery(),
        userquery(),
        savedqueryvisualization(),
        userqueryvisualization(),
        systemuser(),
        transactioncurrency(),
        organization(),
        bench(),
    ]
}

fn account() -> EntityDef {
    Table::new(
        "account",
        "accounts",
        "Account",
        "Accounts",
        Some("name"),
        1,
        true,
    )
    .column("name", T::String, "Account Name")
    .column("accountnumber", T::String, "Account Number")
    .column("address1_city", T::String, "Address 1: City")
    .money("revenue", "Annual Revenue")
    .column("numberofemployees", T::Integer, "Number of Employees")
    .choice("industrycode", T::Picklist, "Industry", INDUSTRIES)
    .lookup(
        "primarycontactid",
        T::Lookup,
        "Primary Contact",
        &["contact"],
    )
    .currency()
    .owned(ACTIVE_INACTIVE, ACTIVE_INACTIVE_STATUS)
    .done()
}

fn contact() -> EntityDef {
    Table::new(
        "contact",
        "contacts",
        "Contact",
        "Contacts",
        Some("fullname"),
        2,
        true,
    )
    .column("fullname", T::String, "Full Name")
    .column("firstname", T::String, "First Name")
    .column("lastname", T::String, "Last Name")
    .column("emailaddress1", T::String, "Email")
    .column("jobtitle", T::String, "Job Title")
    .money("annualincome", "Annual Income")
    .lookup(
        "parentcustomerid",
        T::Customer,
        "Company Name",
        &["account", "contact"],
    )
    .currency()
    .owned(ACTIVE_INACTIVE, ACTIVE_INACTIVE_STATUS)
    .done()
}

fn opportunity() -> EntityDef {
    Table::new(
        "opportunity",
        "opportunities",
        "Opportunity",
        "Opportunities",
        Some("name"),
        3,
        true,
    )
    .column("name", T::String, "Topic")
    .money("estimatedvalue", "Est. Revenue")
    .money("actualvalue", "Actual Revenue")
    .column("closeprobability", T::Integer, "Probability")
    .column("estimatedclosedate", T::DateTime, "Est. Close Date")
    .column("actualclosedate", T::DateTime, "Actual Close Date")
    .choice("opportunityratingcode", T::Picklist, "Rating", RATINGS)
    .lookup(
        "customerid",
        T::Customer,
        "Potential Customer",
        &["account", "contact"],
    )
    .lookup("parentaccountid", T::Lookup, "Account", &["account"])
    .currency()
    .owned(
        &[(0, "Open"), (1, "Won"), (2, "Lost")],
        &[
            (1, "In Progress"),
            (2, "On Hold"),
            (3, "Won"),
            (4, "Canceled"),
            (5, "Out-Sold"),
        ],
    )
    .done()
}

fn lead() -> EntityDef {
    Table::new("lead", "leads", "Lead", "Leads", Some("fullname"), 4, true)
        .column("subject", T::String, "Topic")
        .column("fullname", T::String, "Name")
        .column("firstname", T::String, "First Name")
        .column("lastname", T::String, "Last Name")
        .column("companyname", T::String, "Company Name")
        .money("estimatedamount", "Est. Value")
        .choice("leadqualitycode", T::Picklist, "Rating", RATINGS)
        .choice("leadsourcecode", T::Picklist, "Lead Source", LEAD_SOURCES)
        .currency()
        .owned(
            &[(0, "Open"), (1, "Qualified"), (2, "Disqualified")],
            &[
                (1, "New"),
                (2, "Contacted"),
                (3, "Qualified"),
                (4, "Lost"),
                (5, "Cannot Contact"),
                (6, "No Longer Interested"),
                (7, "Canceled"),
            ],
        )
        .done()
}

fn incident() -> EntityDef {
    Table::new(
        "incident",
        "incidents",
        "Case",
        "Cases",
        Some("title"),
        112,
        true,
    )
    .column("title", T::String, "Case Title")
    .column("ticketnumber", T::String, "Case Number")
    .choice(
        "prioritycode",
        T::Picklist,
        "Priority",
        &[(1, "High"), (2, "Normal"), (3, "Low")],
    )
    .choice(
        "caseorigincode",
        T::Picklist,
        "Origin",
        &[(1, "Phone"), (2, "Email"), (3, "Web")],
    )
    .lookup(
        "customerid",
        T::Customer,
        "Customer",
        &["account", "contact"],
    )
    .owned(
        &[(0, "Active"), (1, "Resolved"), (2, "Cancelled")],
        &[
            (1, "In Progress"),
            (2, "On Hold"),
            (3, "Waiting for Details"),
            (4, "Researching"),
            (5, "Problem Solved"),
            (6, "Cancelled"),
        ],
    )
    .done()
}

fn appmodule() -> EntityDef {
    Table::new(
        "appmodule",
        "appmodules",
        "Model-driven App",
        "Model-driven Apps",
        Some("name"),
        9006,
        false,
    )
    .column(
        "appmoduleidunique",
        T::Uniqueidentifier,
        "Unique Identifier",
    )
    .column("name", T::String, "Name")
    .column("uniquename", T::String, "Unique Name")
    .column("description", T::String, "Description")
    .column("clienttype", T::Integer, "Client Type")
    .column("url", T::String, "URL")
    .column("isdefault", T::Boolean, "Is Default")
    .column("publishedon", T::DateTime, "Published On")
    .choice("statecode", T::State, "State", ACTIVE_INACTIVE)
    .choice(
        "statuscode",
        T::Status,
        "Status",
        &[(1, "Active"), (2, "Inactive"), (3, "Deleted")],
    )
    .column("versionnumber", T::BigInt, "Version Number")
    .done()
}

fn appmodulecomponent() -> EntityDef {
    Table::new(
        "appmodulecomponent",
        "appmodulecomponents",
        "AppModule Component",
        "AppModule Components",
        None,
        9007,
        false,
    )
    .lookup(
        "appmoduleidunique",
        T::Lookup,
        "AppModuleIdUnique",
        &["appmodule"],
    )
    .choice(
        "componenttype",
        T::Picklist,
        "Component Type",
        &[
            (1, "Entities"),
            (26, "Views"),
            (29, "Business Process Flows"),
            (48, "Command (Ribbon) for Forms, Grids, sub grids"),
            (59, "Charts"),
            (60, "Forms"),
            (62, "Sitemap"),
        ],
    )
    .column("objectid", T::Uniqueidentifier, "Object Id")
    .column("isdefault", T::Boolean, "Is Default")
    .choice(
        "rootcomponentbehavior",
        T::Picklist,
        "Root Component Behavior",
        &[
            (0, "Include Subcomponents"),
            (1, "Do not include subcomponents"),
            (2, "Include As Shell Only"),
        ],
    )
    .column("versionnumber", T::BigInt, "Version Number")
    .done()
}

fn sitemap() -> EntityDef {
    Table::new(
        "sitemap",
        "sitemaps",
        "Site Map",
        "Site Maps",
        Some("sitemapname"),
        4709,
        false,
    )
    .column("sitemapname", T::String, "Site Map Name")
    .column("sitemapnameunique", T::String, "Site Map Name Unique")
    .column("sitemapxml", T::Memo, "Site Map XML")
    .column("isappaware", T::Boolean, "Is App Aware")
    .column("versionnumber", T::BigInt, "Version Number")
    .done()
}

fn view_columns(table: Table) -> Table {
    table
        .column("name", T::String, "Name")
        .column("description", T::Memo, "Description")
        .column("returnedtypecode", T::EntityName, "Returned Type Code")
        .column("querytype", T::Integer, "Query Type")
        .column("fetchxml", T::Memo, "Fetch Xml")
        .column("layoutxml", T::Memo, "Grid Layout")
        .choice("statecode", T::State, "Status", ACTIVE_INACTIVE)
        .choice(
            "statuscode",
            T::Status,
            "Status Reason",
            ACTIVE_INACTIVE_STATUS,
        )
        .column("modifiedon", T::DateTime, "Modified On")
        .column("versionnumber", T::BigInt, "Version Number")
}

fn savedquery() -> EntityDef {
    view_columns(Table::new(
        "savedquery",
        "savedqueries",
        "View",
        "Views",
        Some("name"),
        1039,
        false,
    ))
    .column("isdefault", T::Boolean, "Default")
    .column("isquickfindquery", T::Boolean, "Is Quick Find Query")
    .done()
}

fn userquery() -> EntityDef {
    view_columns(Table::new(
        "userquery",
        "userqueries",
        "Saved View",
        "Saved Views",
        Some("name"),
        4230,
        false,
    ))
    .lookup("ownerid", T::Owner, "Owner", &["systemuser", "team"])
    .done()
}

fn chart_columns(table: Table) -> Table {
    table
        .column("name", T::String, "Name")
        .column("description", T::Memo, "Description")
        .column(
            "primaryentitytypecode",
            T::EntityName,
            "Primary Entity Type Code",
        )
        .column("datadescription", T::Memo, "Data Description")
        .column(
            "presentationdescription",
            T::Memo,
            "Presentation Description",
        )
        .column("modifiedon", T::DateTime, "Modified On")
        .column("versionnumber", T::BigInt, "Version Number")
}

fn savedqueryvisualization() -> EntityDef {
    chart_columns(Table::new(
        "savedqueryvisualization",
        "savedqueryvisualizations",
        "System Chart",
        "System Charts",
        Some("name"),
        1111,
        false,
    ))
    .column("isdefault", T::Boolean, "Default Chart")
    .done()
}

fn userqueryvisualization() -> EntityDef {
    chart_columns(Table::new(
        "userqueryvisualization",
        "userqueryvisualizations",
        "Chart",
        "Charts",
        Some("name"),
        1112,
        false,
    ))
    .lookup("ownerid", T::Owner, "Owner", &["systemuser", "team"])
    .done()
}

fn systemuser() -> EntityDef {
    Table::new(
        "systemuser",
        "systemusers",
        "User",
        "Users",
        Some("fullname"),
        8,
        false,
    )
    .column("fullname", T::String, "Full Name")
    .column("firstname", T::String, "First Name")
    .column("lastname", T::String, "Last Name")
    .column("internalemailaddress", T::String, "Primary Email")
    .column("isdisabled", T::Boolean, "Status")
    .column("applicationid", T::Uniqueidentifier, "Application ID")
    .lookup(
        "businessunitid",
        T::Lookup,
        "Business Unit",
        &["businessunit"],
    )
    .column("versionnumber", T::BigInt, "Version Number")
    .done()
}

fn transactioncurrency() -> EntityDef {
    Table::new(
        "transactioncurrency",
        "transactioncurrencies",
        "Currency",
        "Currencies",
        Some("currencyname"),
        9105,
        false,
    )
    .column("currencyname", T::String, "Currency Name")
    .column("isocurrencycode", T::String, "Currency Code")
    .column("currencysymbol", T::String, "Currency Symbol")
    .column("exchangerate", T::Decimal, "Exchange Rate")
    .column("currencyprecision", T::Integer, "Currency Precision")
    .column("versionnumber", T::BigInt, "Version Number")
    .done()
}

fn organization() -> EntityDef {
    Table::new(
        "organization",
        "organizations",
        "Organization",
        "Organizations",
        Some("name"),
        1019,
        false,
    )
    .column("name", T::String, "Organization Name")
    .lookup(
        "basecurrencyid",
        T::Lookup,
        "Currency",
        &["transactioncurrency"],
    )
    .column("versionnumber", T::BigInt, "Version Number")
    .done()
}

/// The bench table for cost measurements (a custom table, hence the prefix).
fn bench() -> EntityDef {
    Table::new(
        super::BENCH_ENTITY,
        "new_benchrecords",
        "Bench Record",
        "Bench Records",
        Some("new_name"),
        10_001,
        true,
    )
    .column("new_name", T::String, "Name")
    .column("new_amount", T::Decimal, "Amount")
    .column("new_quantity", T::Integer, "Quantity")
    .column("new_sequence", T::Integer, "Sequence")
    .column("createdon", T::DateTime, "Created On")
    .choice("statecode", T::State, "Status", ACTIVE_INACTIVE)
    .done()
}
