//! The seeded sample organization: a sales team's tables, metadata, apps, views
//! and charts.
//!
//! Everything is deterministic: identifiers of metadata, apps, views, charts,
//! users and currencies are derived from their names, table rows come from a fixed-seed
//! generator. Tests read the same data through this module to compute expected
//! answers without going through the query engines.

mod catalog;
mod charts;
mod overlay;
mod schema;
mod seed;
mod views;

pub use overlay::{Db, Overlay};
pub use seed::{BENCH_ENTITY, BENCH_ROWS};

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

/// One record: attribute logical name → value. A null column is absent. Lookups
/// hold the referenced record's id (a lower-case GUID string), money and decimals
/// are numbers, choices are integers, dates are `2024-03-14T10:00:00Z` strings.
pub type Row = BTreeMap<String, Value>;

/// The attribute types of the metadata API (`AttributeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttributeType {
    BigInt,
    Boolean,
    Customer,
    DateTime,
    Decimal,
    Double,
    EntityName,
    Integer,
    Lookup,
    Memo,
    Money,
    Owner,
    Picklist,
    State,
    Status,
    String,
    Uniqueidentifier,
}

impl AttributeType {
    /// The `AttributeType` value, e.g. `Money`.
    pub fn code(self) -> &'static str {
        match self {
            AttributeType::BigInt => "BigInt",
            AttributeType::Boolean => "Boolean",
            AttributeType::Customer => "Customer",
            AttributeType::DateTime => "DateTime",
            AttributeType::Decimal => "Decimal",
            AttributeType::Double => "Double",
            AttributeType::EntityName => "EntityName",
            AttributeType::Integer => "Integer",
            AttributeType::Lookup => "Lookup",
            AttributeType::Memo => "Memo",
            AttributeType::Money => "Money",
            AttributeType::Owner => "Owner",
            AttributeType::Picklist => "Picklist",
            AttributeType::State => "State",
            AttributeType::Status => "Status",
            AttributeType::String => "String",
            AttributeType::Uniqueidentifier => "Uniqueidentifier",
        }
    }

    /// The `AttributeTypeName.Value`, e.g. `MoneyType`.
    pub fn type_name(self) -> String {
        format!("{}Type", self.code())
    }

    /// The `@odata.type` of the attribute's metadata, e.g.
    /// `#Microsoft.Dynamics.CRM.MoneyAttributeMetadata`.
    pub fn metadata_type(self) -> &'static str {
        match self {
            AttributeType::BigInt => "#Microsoft.Dynamics.CRM.BigIntAttributeMetadata",
            AttributeType::Boolean => "#Microsoft.Dynamics.CRM.BooleanAttributeMetadata",
            AttributeType::Customer | AttributeType::Lookup | AttributeType::Owner => {
                "#Microsoft.Dynamics.CRM.LookupAttributeMetadata"
            }
            AttributeType::DateTime => "#Microsoft.Dynamics.CRM.DateTimeAttributeMetadata",
            AttributeType::Decimal => "#Microsoft.Dynamics.CRM.DecimalAttributeMetadata",
            AttributeType::Double => "#Microsoft.Dynamics.CRM.DoubleAttributeMetadata",
            AttributeType::EntityName => "#Microsoft.Dynamics.CRM.EntityNameAttributeMetadata",
            AttributeType::Integer => "#Microsoft.Dynamics.CRM.IntegerAttributeMetadata",
            AttributeType::Memo => "#Microsoft.Dynamics.CRM.MemoAttributeMetadata",
            AttributeType::Money => "#Microsoft.Dynamics.CRM.MoneyAttributeMetadata",
            AttributeType::Picklist => "#Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
            AttributeType::State => "#Microsoft.Dynamics.CRM.StateAttributeMetadata",
            AttributeType::Status => "#Microsoft.Dynamics.CRM.StatusAttributeMetadata",
            AttributeType::String => "#Microsoft.Dynamics.CRM.StringAttributeMetadata",
            AttributeType::Uniqueidentifier => {
                "#Microsoft.Dynamics.CRM.UniqueIdentifierAttributeMetadata"
            }
        }
    }

    /// Lookups are exposed as `_<name>_value` in the Web API.
    pub fn is_lookup(self) -> bool {
        matches!(
            self,
            AttributeType::Lookup | AttributeType::Customer | AttributeType::Owner
        )
    }

    /// Types that `sum` and `avg` accept.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            AttributeType::Integer
                | AttributeType::BigInt
                | AttributeType::Decimal
                | AttributeType::Double
                | AttributeType::Money
        )
    }

    /// Types with integer values (choices included).
    pub fn is_integral(self) -> bool {
        matches!(
            self,
            AttributeType::Integer
                | AttributeType::BigInt
                | AttributeType::Picklist
                | AttributeType::State
                | AttributeType::Status
        )
    }

    /// Types whose values are record ids.
    pub fn is_guid(self) -> bool {
        self.is_lookup() || self == AttributeType::Uniqueidentifier
    }
}

/// One choice of a picklist, state or status column.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionLabel {
    /// The stored integer.
    pub value: i64,
    /// The English label (the formatted value).
    pub label: String,
}

/// A column of a table, as the metadata API describes it.
#[derive(Debug, Clone)]
pub struct AttributeDef {
    /// `LogicalName`, e.g. `revenue`.
    pub logical_name: String,
    /// `AttributeType`.
    pub attribute_type: AttributeType,
    /// `DisplayName.UserLocalizedLabel.Label`, e.g. `Annual Revenue`.
    pub display_name: String,
    /// `MetadataId`.
    pub metadata_id: String,
    /// `AttributeOf`: the source column of a helper column (`revenue` for
    /// `revenue_base`), else `None`.
    pub attribute_of: Option<String>,
    /// Choices of picklist, state and status columns.
    pub options: Vec<OptionLabel>,
    /// Tables a lookup can point to (`Targets`).
    pub targets: Vec<String>,
}

impl AttributeDef {
    /// The label of a choice value.
    pub fn option_label(&self, value: i64) -> Option<&str> {
        self.options
            .iter()
            .find(|o| o.value == value)
            .map(|o| o.label.as_str())
    }

    /// The property name in the Web API: `_ownerid_value` for lookups, else the
    /// logical name.
    pub fn odata_name(&self) -> String {
        if self.attribute_type.is_lookup() {
            format!("_{}_value", self.logical_name)
        } else {
            self.logical_name.clone()
        }
    }
}

/// A table definition (`EntityDefinitions`).
#[derive(Debug, Clone)]
pub struct EntityDef {
    /// `LogicalName`, e.g. `account`.
    pub logical_name: String,
    /// `EntitySetName`, e.g. `accounts` (the URL segment).
    pub entity_set_name: String,
    /// `PrimaryIdAttribute`, e.g. `accountid`.
    pub primary_id_attribute: String,
    /// `PrimaryNameAttribute`, e.g. `name`; `None` for tables without one.
    pub primary_name_attribute: Option<String>,
    /// `DisplayName` label, e.g. `Account`.
    pub display_name: String,
    /// `DisplayCollectionName` label, e.g. `Accounts`.
    pub display_collection_name: String,
    /// `MetadataId`; also the `objectid` of the app component that adds the table
    /// to an app.
    pub metadata_id: String,
    /// `ObjectTypeCode`.
    pub object_type_code: i64,
    /// Whether this is one of the sample business tables (rather than a system
    /// table such as `savedquery`).
    pub is_business_table: bool,
    /// The columns, primary id first.
    pub attributes: Vec<AttributeDef>,
}

impl EntityDef {
    pub fn attribute(&self, logical_name: &str) -> Option<&AttributeDef> {
        self.attributes
            .iter()
            .find(|a| a.logical_name == logical_name)
    }

    /// The attribute behind a Web API property name (`_ownerid_value` → `ownerid`).
    pub fn attribute_by_odata_name(&self, property: &str) -> Option<&AttributeDef> {
        self.attributes.iter().find(|a| a.odata_name() == property)
    }
}

/// An app (`appmodule`).
#[derive(Debug, Clone)]
pub struct App {
    /// `appmoduleid`: the id in `appmodules(<id>)`.
    pub id: String,
    /// `appmoduleidunique`: the id app components refer to. Differs from `id`.
    pub unique_id: String,
    /// `name`, e.g. `Sales Hub`.
    pub name: String,
    /// `uniquename`, e.g. `saleshub`.
    pub uniquename: String,
    /// `description`.
    pub description: String,
    /// `statecode`: 0 active, 1 inactive.
    pub statecode: i64,
    /// `clienttype` (4 = Unified Interface).
    pub clienttype: i64,
    /// The `sitemapid` of the app's site map.
    pub sitemap_id: String,
}

/// A site map (`sitemap`).
#[derive(Debug, Clone)]
pub struct SiteMap {
    /// `sitemapid`.
    pub id: String,
    /// `sitemapname`.
    pub name: String,
    /// `sitemapnameunique`.
    pub unique_name: String,
    /// `sitemapxml`: `<SiteMap><Area><Group><SubArea Entity=".."/>...`.
    pub xml: String,
}

/// A component of an app (`appmodulecomponent`).
#[derive(Debug, Clone)]
pub struct AppComponent {
    /// `appmodulecomponentid`.
    pub id: String,
    /// `_appmoduleidunique_value`: the app's `appmoduleidunique`.
    pub app_unique_id: String,
    /// `componenttype`: 1 entity, 26 view, 62 site map.
    pub componenttype: i64,
    /// `objectid`: the table's MetadataId, the view's id or the site map's id.
    pub objectid: String,
}

/// Which table a view lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewKind {
    /// A system view (`savedquery`).
    System,
    /// A personal view (`userquery`), owned by the application user.
    Personal,
}

impl ViewKind {
    /// `savedqueries` or `userqueries`.
    pub fn entity_set_name(self) -> &'static str {
        match self {
            ViewKind::System => "savedqueries",
            ViewKind::Personal => "userqueries",
        }
    }

    /// `savedquery` or `userquery`.
    pub fn logical_name(self) -> &'static str {
        match self {
            ViewKind::System => "savedquery",
            ViewKind::Personal => "userquery",
        }
    }
}

/// A view (`savedquery` or `userquery`).
#[derive(Debug, Clone)]
pub struct View {
    /// `savedqueryid` / `userqueryid`.
    pub id: String,
    /// System or personal.
    pub kind: ViewKind,
    /// `name`.
    pub name: String,
    /// `returnedtypecode`: the entity logical name.
    pub returnedtypecode: String,
    /// `querytype`: 0 public, 1 advanced find, 2 associated, 4 quick find, 64 lookup.
    pub querytype: i64,
    /// `statecode`: 0 active, 1 inactive.
    pub statecode: i64,
    /// `isdefault` (system views only; always false for personal views).
    pub isdefault: bool,
    /// `fetchxml`.
    pub fetchxml: String,
    /// `layoutxml`.
    pub layoutxml: String,
    /// `description`.
    pub description: String,
    /// `modifiedon`: when the definition last changed, e.g. `2024-11-03T09:12:00Z`.
    pub modifiedon: String,
}

/// Which table a chart lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    /// A system chart (`savedqueryvisualization`).
    System,
    /// A personal chart (`userqueryvisualization`), owned by the application user.
    Personal,
}

impl ChartKind {
    /// `savedqueryvisualizations` or `userqueryvisualizations`.
    pub fn entity_set_name(self) -> &'static str {
        match self {
            ChartKind::System => "savedqueryvisualizations",
            ChartKind::Personal => "userqueryvisualizations",
        }
    }

    /// `savedqueryvisualization` or `userqueryvisualization`.
    pub fn logical_name(self) -> &'static str {
        match self {
            ChartKind::System => "savedqueryvisualization",
            ChartKind::Personal => "userqueryvisualization",
        }
    }
}

/// A chart (`savedqueryvisualization` or `userqueryvisualization`).
#[derive(Debug, Clone)]
pub struct Chart {
    /// `savedqueryvisualizationid` / `userqueryvisualizationid`.
    pub id: String,
    /// System or personal.
    pub kind: ChartKind,
    /// `name`.
    pub name: String,
    /// `primaryentitytypecode`: the charted table's logical name.
    pub primaryentitytypecode: String,
    /// `description`.
    pub description: String,
    /// `datadescription`: `<datadefinition><fetchcollection><fetch ...>` with the
    /// group-by and aggregate attributes, then the `<categorycollection>` naming
    /// the measures by alias.
    pub datadescription: String,
    /// `presentationdescription`: a short `<Chart>` stub with one series per measure.
    pub presentationdescription: String,
    /// `isdefault` (system charts only; always false for personal charts).
    pub isdefault: bool,
    /// `modifiedon`: when the definition last changed, e.g. `2024-11-03T09:12:00Z`.
    pub modifiedon: String,
}

/// A currency (`transactioncurrency`).
#[derive(Debug, Clone)]
pub struct Currency {
    /// `transactioncurrencyid`.
    pub id: String,
    /// `isocurrencycode`, e.g. `USD`.
    pub iso_code: String,
    /// `currencyname`, e.g. `US Dollar` (the lookup's formatted value).
    pub name: String,
    /// `currencysymbol`, e.g. `$`.
    pub symbol: String,
    /// `exchangerate`: units of this currency per unit of the base currency;
    /// `<col>_base = <col> / exchangerate`.
    pub exchangerate: f64,
    /// Whether this is the organization's base currency.
    pub is_base: bool,
}

/// A user (`systemuser`).
#[derive(Debug, Clone)]
pub struct SystemUser {
    /// `systemuserid`.
    pub id: String,
    /// `fullname`.
    pub fullname: String,
    /// `internalemailaddress`.
    pub email: String,
    /// The application user the client-credentials sign-in acts as (`WhoAmI`).
    pub is_application_user: bool,
}

/// The whole sample organization.
#[derive(Debug)]
pub struct Dataset {
    /// `OrganizationId` of `WhoAmI`.
    pub organization_id: String,
    /// `BusinessUnitId` of `WhoAmI`.
    pub business_unit_id: String,
    /// `UserId` of `WhoAmI` with a client-credentials token: the application
    /// user's `systemuserid`; what `eq-userid` compares with for such a token.
    pub application_user_id: String,
    /// The person who signs in with the delegated (device code) flow: the first
    /// sales person, Alice Morgan. `WhoAmI` with a delegated token answers this
    /// `systemuserid`, and `eq-userid` compares with it.
    pub delegated_user_id: String,
    /// The application user first, then the sales people.
    pub users: Vec<SystemUser>,
    /// USD (base) and EUR.
    pub currencies: Vec<Currency>,
    /// All apps, inactive ones included.
    pub apps: Vec<App>,
    /// Components of all apps.
    pub app_components: Vec<AppComponent>,
    /// Site maps of all apps.
    pub sitemaps: Vec<SiteMap>,
    /// Definitions of every table the simulator serves, business tables first.
    pub entities: Vec<EntityDef>,
    /// System and personal views of every business table, including views a
    /// client must not offer (inactive, quick find, lookup).
    pub views: Vec<View>,
    /// System and personal charts of the business tables.
    pub charts: Vec<Chart>,
    /// Rows of every table by logical name, system tables included. The bench
    /// table ([`BENCH_ENTITY`]) is not here: it is generated on the first
    /// [`Dataset::rows`] call that asks for it.
    pub tables: BTreeMap<String, Vec<Row>>,
    /// Record id → (table, primary name), for lookups' formatted values.
    names: HashMap<String, (String, String)>,
    /// The bench table's rows, built on first use (200,000 rows take a while and
    /// most tests never read them).
    bench: OnceLock<Vec<Row>>,
}

/// The sample data, built on first use.
pub fn dataset() -> &'static Dataset {
    static DATASET: OnceLock<Dataset> = OnceLock::new();
    DATASET.get_or_init(Dataset::build)
}

impl Dataset {
    /// Builds the data from scratch (always the same result).
    pub fn build() -> Dataset {
        let users = catalog::users();
        let currencies = catalog::currencies();
        let entities = schema::entities();
        let mut tables = seed::business_tables(&users, &currencies);
        let views = views::views(&currencies);
        let charts = charts::charts();
        let (apps, sitemaps, app_components) = catalog::apps(&entities);
        let mut dataset = Dataset {
            organization_id: catalog::ORGANIZATION_ID.to_string(),
            business_unit_id: catalog::BUSINESS_UNIT_ID.to_string(),
            application_user_id: users
                .iter()
                .find(|u| u.is_application_user)
                .map(|u| u.id.clone())
                .unwrap_or_default(),
            delegated_user_id: users
                .iter()
                .find(|u| !u.is_application_user)
                .map(|u| u.id.clone())
                .unwrap_or_default(),
            users,
            currencies,
            apps,
            app_components,
            sitemaps,
            entities,
            views,
            charts,
            tables: BTreeMap::new(),
            names: HashMap::new(),
            bench: OnceLock::new(),
        };
        tables.extend(catalog::system_tables(&dataset));
        dataset.tables = tables;
        dataset.names = dataset.index_names();
        dataset
    }

    fn index_names(&self) -> HashMap<String, (String, String)> {
        let mut names = HashMap::new();
        for entity in &self.entities {
            let Some(name_attribute) = &entity.primary_name_attribute else {
                continue;
            };
            if entity.logical_name == "lead" || entity.logical_name == BENCH_ENTITY {
                // Nothing looks leads or bench records up; indexing them would only
                // cost memory (and would build the lazy bench table).
                continue;
            }
            for row in self.rows(&entity.logical_name) {
                if let (Some(Value::String(id)), Some(Value::String(name))) = (
                    row.get(&entity.primary_id_attribute),
                    row.get(name_attribute),
                ) {
                    names.insert(id.clone(), (entity.logical_name.clone(), name.clone()));
                }
            }
        }
        for app in &self.apps {
            names.insert(
                app.unique_id.clone(),
                ("appmodule".to_string(), app.name.clone()),
            );
        }
        names.insert(
            self.business_unit_id.clone(),
            (
                "businessunit".to_string(),
                catalog::BUSINESS_UNIT_NAME.to_string(),
            ),
        );
        names
    }

    /// Rows of a table by logical name (empty for an unknown table). The bench
    /// table is generated by the first call that asks for it.
    pub fn rows(&self, entity: &str) -> &[Row] {
        if entity == BENCH_ENTITY {
            return self.bench.get_or_init(seed::bench_rows);
        }
        self.tables.get(entity).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Whether the lazily built bench table exists yet (for tests of laziness).
    pub fn bench_is_built(&self) -> bool {
        self.bench.get().is_some()
    }

    /// A table's definition by logical name.
    pub fn entity(&self, logical_name: &str) -> Option<&EntityDef> {
        self.entities
            .iter()
            .find(|e| e.logical_name == logical_name)
    }

    /// A table's definition by entity set name (`accounts`).
    pub fn entity_by_set(&self, entity_set_name: &str) -> Option<&EntityDef> {
        self.entities
            .iter()
            .find(|e| e.entity_set_name == entity_set_name)
    }

    /// The record of `entity` with primary id `id` (case-insensitive).
    pub fn row_by_id(&self, entity: &str, id: &str) -> Option<&Row> {
        let definition = self.entity(entity)?;
        let id = id.to_ascii_lowercase();
        self.rows(entity).iter().find(|row| {
            row.get(&definition.primary_id_attribute)
                .and_then(Value::as_str)
                == Some(id.as_str())
        })
    }

    /// The table and primary name of the record with id `id`, for lookups.
    pub fn record_name(&self, id: &str) -> Option<(&str, &str)> {
        self.names
            .get(&id.to_ascii_lowercase())
            .map(|(entity, name)| (entity.as_str(), name.as_str()))
    }

    /// The first view (system or personal) with exactly this name.
    pub fn view_by_name(&self, name: &str) -> Option<&View> {
        self.views.iter().find(|v| v.name == name)
    }

    /// A view by id.
    pub fn view(&self, id: &str) -> Option<&View> {
        let id = id.to_ascii_lowercase();
        self.views.iter().find(|v| v.id == id)
    }

    /// Views of an entity, in definition order.
    pub fn views_of(&self, entity: &str) -> impl Iterator<Item = &View> {
        self.views
            .iter()
            .filter(move |v| v.returnedtypecode == entity)
    }

    /// The first chart (system or personal) with exactly this name.
    pub fn chart_by_name(&self, name: &str) -> Option<&Chart> {
        self.charts.iter().find(|c| c.name == name)
    }

    /// A chart by id.
    pub fn chart(&self, id: &str) -> Option<&Chart> {
        let id = id.to_ascii_lowercase();
        self.charts.iter().find(|c| c.id == id)
    }

    /// Charts of an entity, in definition order.
    pub fn charts_of(&self, entity: &str) -> impl Iterator<Item = &Chart> {
        self.charts
            .iter()
            .filter(move |c| c.primaryentitytypecode == entity)
    }

    /// An app by name.
    pub fn app_by_name(&self, name: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.name == name)
    }

    /// An app by `appmoduleid`.
    pub fn app(&self, id: &str) -> Option<&App> {
        let id = id.to_ascii_lowercase();
        self.apps.iter().find(|a| a.id == id)
    }

    /// A site map by id.
    pub fn sitemap(&self, id: &str) -> Option<&SiteMap> {
        let id = id.to_ascii_lowercase();
        self.sitemaps.iter().find(|s| s.id == id)
    }

    /// A currency by ISO code (`USD`, `EUR`).
    pub fn currency_by_code(&self, iso_code: &str) -> Option<&Currency> {
        self.currencies
            .iter()
            .find(|c| c.iso_code.eq_ignore_ascii_case(iso_code))
    }

    /// A currency by id.
    pub fn currency(&self, id: &str) -> Option<&Currency> {
        let id = id.to_ascii_lowercase();
        self.currencies.iter().find(|c| c.id == id)
    }

    /// The organization's base currency.
    pub fn base_currency(&self) -> Option<&Currency> {
        self.currencies.iter().find(|c| c.is_base)
    }

    /// A user by id.
    pub fn user(&self, id: &str) -> Option<&SystemUser> {
        let id = id.to_ascii_lowercase();
        self.users.iter().find(|u| u.id == id)
    }
}

/// A stable GUID for a named object: ids of metadata, apps and views do not move
/// when other objects are added.
pub fn guid_from_name(namespace: &str, name: &str) -> String {
    // Two FNV-1a passes with different offsets give 128 well-mixed bits.
    let hash = |offset: u64| {
        let mut h = offset;
        for byte in namespace.bytes().chain([0u8]).chain(name.bytes()) {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A final avalanche so similar names differ in every hex digit.
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    };
    format_guid(hash(0xcbf2_9ce4_8422_2325), hash(0x8422_2325_cbf2_9ce4))
}

/// Whether `text` is a GUID in the 8-4-4-4-12 hex form.
pub fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` from 128 bits.
pub fn format_guid(high: u64, low: u64) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests;
