//! Reading Dataverse metadata: views, table definitions, column types and the
//! options of choice columns.

use crate::cache;
use crate::client::Session;
use crate::odata;
use crate::types::{Aggregation, ColumnType, Error, ViewKind, ViewRef};
use serde::{Deserialize, Serialize};

/// A localized label as the metadata API returns it.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Label {
    #[serde(default)]
    pub user_localized_label: Option<LocalizedLabel>,
    #[serde(default)]
    pub localized_labels: Vec<LocalizedLabel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LocalizedLabel {
    #[serde(default)]
    pub label: Option<String>,
}

impl Label {
    /// The user's label, else the first localized one, else `fallback`.
    pub fn text_or(&self, fallback: &str) -> String {
        self.user_localized_label
            .iter()
            .chain(self.localized_labels.iter())
            .filter_map(|l| l.label.as_deref())
            .find(|l| !l.trim().is_empty())
            .unwrap_or(fallback)
            .to_string()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EntityDefinition {
    pub logical_name: String,
    #[serde(default)]
    pub entity_set_name: Option<String>,
    #[serde(default)]
    pub primary_id_attribute: Option<String>,
    #[serde(default)]
    pub display_name: Option<Label>,
}

impl EntityDefinition {
    pub fn display_name(&self) -> String {
        match &self.display_name {
            Some(label) => label.text_or(&self.logical_name),
            None => self.logical_name.clone(),
        }
    }
}

#[derive(Deserialize)]
pub struct Collection<T> {
    pub value: Vec<T>,
}

/// One table's definition, with the names needed to query it.
pub fn entity_definition(session: &mut Session, entity: &str) -> Result<EntityDefinition, Error> {
    require_logical_name(entity, "entity")?;
    let path = format!(
        "EntityDefinitions(LogicalName={})?{}",
        odata::string_literal(entity),
        odata::query(&[(
            "$select",
            "LogicalName,EntitySetName,PrimaryIdAttribute,DisplayName"
        )])
    );
    let definition: EntityDefinition = session.get_json(&path, &format!("entity '{entity}'"))?;
    if definition.entity_set_name.is_none() || definition.primary_id_attribute.is_none() {
        return Err(crate::errors::unexpected_body(
            "entity definition",
            "EntitySetName or PrimaryIdAttribute missing",
        ));
    }
    Ok(definition)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDefinition {
    pub logical_name: String,
    #[serde(default)]
    pub attribute_type: Option<String>,
    /// The column a helper column derives from: `estimatedvalue` for the
    /// base-currency twin `estimatedvalue_base`.
    #[serde(default)]
    pub attribute_of: Option<String>,
    #[serde(default)]
    pub attribute_type_name: Option<TypeName>,
    #[serde(default)]
    pub display_name: Option<Label>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TypeName {
    pub value: String,
}

impl AttributeDefinition {
    pub fn column_type(&self) -> ColumnType {
        // AttributeTypeName tells apart kinds that AttributeType lumps together
        // (files, images and multi-select choices are all "Virtual").
        let name = self
            .attribute_type_name
            .as_ref()
            .map(|t| t.value.as_str())
            .or(self.attribute_type.as_deref())
            .unwrap_or_default();
        column_type(name.strip_suffix("Type").unwrap_or(name))
    }

    pub fn display_name(&self) -> String {
        match &self.display_name {
            Some(label) => label.text_or(&self.logical_name),
            None => self.logical_name.clone(),
        }
    }
}

fn column_type(kind: &str) -> ColumnType {
    match kind {
        "Integer" | "BigInt" => ColumnType::WholeNumber,
        "Decimal" | "Double" => ColumnType::DecimalNumber,
        "Money" => ColumnType::Money,
        "DateTime" => ColumnType::DateTime,
        "String" | "Memo" => ColumnType::Text,
        "Boolean" => ColumnType::Boolean,
        "Picklist" | "State" | "Status" => ColumnType::Choice,
        "Lookup" | "Customer" | "Owner" => ColumnType::Lookup,
        "Uniqueidentifier" => ColumnType::Identifier,
        _ => ColumnType::Other,
    }
}

/// The aggregations that make sense for a column type. Counting works on anything;
/// sums and averages need numbers; min and max also order date-times.
pub fn aggregations_for(column_type: ColumnType) -> Vec<Aggregation> {
    let mut allowed = vec![
        Aggregation::Count,
        Aggregation::CountValues,
        Aggregation::CountDistinct,
    ];
    match column_type {
        ColumnType::WholeNumber | ColumnType::DecimalNumber | ColumnType::Money => {
            allowed.extend([
                Aggregation::Sum,
                Aggregation::Average,
                Aggregation::Min,
                Aggregation::Max,
            ]);
        }
        ColumnType::DateTime => allowed.extend([Aggregation::Min, Aggregation::Max]),
        _ => {}
    }
    allowed
}

/// Definitions of the named attributes of one table (one request, whatever the
/// count). Names that the table does not have are simply absent from the answer.
pub fn attribute_definitions(
    session: &mut Session,
    entity: &str,
    attributes: &[&str],
) -> Result<Vec<AttributeDefinition>, Error> {
    require_logical_name(entity, "entity")?;
    for attribute in attributes {
        require_logical_name(attribute, "column")?;
    }
    if attributes.is_empty() {
        return Ok(Vec::new());
    }
    let filter = attributes
        .iter()
        .map(|a| format!("LogicalName eq {}", odata::string_literal(a)))
        .collect::<Vec<_>>()
        .join(" or ");
    let path = format!(
        "EntityDefinitions(LogicalName={})/Attributes?{}",
        odata::string_literal(entity),
        odata::query(&[
            (
                "$select",
                "LogicalName,AttributeType,AttributeTypeName,AttributeOf,DisplayName"
            ),
            ("$filter", &filter),
        ])
    );
    let found: Collection<AttributeDefinition> =
        session.get_json(&path, &format!("entity '{entity}'"))?;
    Ok(found.value)
}

/// A view's definition: the query it runs and the columns it shows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ViewDefinition {
    pub name: String,
    pub entity: String,
    pub fetch_xml: String,
    pub layout_xml: String,
    /// When the view was last changed; a cached definition is only used while
    /// Dataverse still reports this.
    pub modified_on: Option<String>,
}

#[derive(Deserialize)]
struct ViewRecord {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    returnedtypecode: Option<String>,
    #[serde(default)]
    fetchxml: Option<String>,
    #[serde(default)]
    layoutxml: Option<String>,
    #[serde(default)]
    modifiedon: Option<String>,
}

fn view_path(view: &ViewRef, select: &str) -> Result<String, Error> {
    let set = match view.kind {
        ViewKind::System => "savedqueries",
        ViewKind::Personal => "userqueries",
    };
    definition_path(set, &view.id, select, "view")
}

/// The read of one definition row (a view, a chart: `what`) by the id a list
/// gave, which must be a GUID.
pub fn definition_path(set: &str, id: &str, select: &str, what: &str) -> Result<String, Error> {
    if !odata::is_guid(id) {
        return Err(Error::Invalid(format!(
            "{what} id '{id}' is not a GUID; pick the {what} from the list of {what}s"
        )));
    }
    Ok(format!(
        "{set}({id})?{}",
        odata::query(&[("$select", select)])
    ))
}

/// The cheap read that tells whether a view still exists and since when it is
/// unchanged.
pub fn view_check_path(view: &ViewRef) -> Result<String, Error> {
    view_path(view, "modifiedon")
}

/// `modifiedon` from the answer to [`view_check_path`].
pub fn modified_on(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<ViewRecord>(body).ok()?.modifiedon
}

fn view_key(view: &ViewRef) -> String {
    let kind = match view.kind {
        ViewKind::System => "system",
        ViewKind::Personal => "personal",
    };
    format!("view {kind} {}", view.id)
}

pub fn forget_view(session: &Session, view: &ViewRef) {
    cache::forget(session.platform(), &view_key(view));
}

/// The view's definition, read from Dataverse.
pub fn view_definition(
    session: &mut Session,
    entity: &str,
    view: &ViewRef,
) -> Result<ViewDefinition, Error> {
    require_logical_name(entity, "entity")?;
    let path = view_path(view, "name,returnedtypecode,fetchxml,layoutxml,modifiedon")?;
    let record: ViewRecord = session.get_json(&path, &format!("view {}", view.id))?;
    let returned = record.returnedtypecode.unwrap_or_default();
    if returned != entity {
        return Err(Error::NotFound(format!(
            "view {} shows '{returned}', not '{entity}'; choose a view of '{entity}'",
            view.id
        )));
    }
    let name = record.name.unwrap_or_else(|| view.id.clone());
    let (Some(fetch_xml), Some(layout_xml)) = (record.fetchxml, record.layoutxml) else {
        return Err(Error::Invalid(format!(
            "view '{name}' has no query or layout; choose another view"
        )));
    };
    Ok(ViewDefinition {
        name,
        entity: returned,
        fetch_xml,
        layout_xml,
        modified_on: record.modifiedon,
    })
}

/// The view's definition from the cache when present; callers check it is still
/// current (see [`view_check_path`]).
pub fn cached_view_definition(
    session: &mut Session,
    entity: &str,
    view: &ViewRef,
) -> Result<ViewDefinition, Error> {
    let key = view_key(view);
    if let Some(cached) = cache::get::<ViewDefinition>(session.platform(), &key)
        && cached.entity == entity
    {
        return Ok(cached);
    }
    let definition = view_definition(session, entity, view)?;
    cache::put(
        session.platform(),
        &key,
        &definition,
        cache::METADATA_TTL_SECONDS,
    );
    Ok(definition)
}

/// What a metric needs to know of a table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableInfo {
    pub entity_set_name: String,
    pub primary_id_attribute: String,
}

/// The table's set name and primary key, cached.
pub fn table_info(session: &mut Session, entity: &str) -> Result<TableInfo, Error> {
    let key = format!("table {entity}");
    let platform = session.platform();
    cache::get_or_load(platform, &key, cache::METADATA_TTL_SECONDS, || {
        let definition = entity_definition(session, entity)?;
        Ok(TableInfo {
            entity_set_name: definition.entity_set_name.unwrap_or_default(),
            primary_id_attribute: definition.primary_id_attribute.unwrap_or_default(),
        })
    })
}

/// What a metric needs to know of a column.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ColumnInfo {
    /// `AttributeTypeName` (or `AttributeType`) as Dataverse names it.
    pub kind: String,
    /// `AttributeOf`: set for a helper column, such as a money column's
    /// base-currency twin.
    #[serde(default)]
    pub attribute_of: Option<String>,
}

impl ColumnInfo {
    pub fn column_type(&self) -> ColumnType {
        column_type(self.kind.strip_suffix("Type").unwrap_or(&self.kind))
    }

    /// The metadata type whose `OptionSet` holds a choice column's options:
    /// the attribute must be cast to it before the option set can be expanded.
    pub fn option_set_cast(&self) -> Option<&'static str> {
        match self.kind.strip_suffix("Type").unwrap_or(&self.kind) {
            "Picklist" => Some("Microsoft.Dynamics.CRM.PicklistAttributeMetadata"),
            "State" => Some("Microsoft.Dynamics.CRM.StateAttributeMetadata"),
            "Status" => Some("Microsoft.Dynamics.CRM.StatusAttributeMetadata"),
            _ => None,
        }
    }
}

/// The column's type, cached; `None` when the table has no such column.
pub fn column_info(
    session: &mut Session,
    entity: &str,
    attribute: &str,
) -> Result<Option<ColumnInfo>, Error> {
    let key = format!("column {entity} {attribute}");
    if let Some(info) = cache::get::<ColumnInfo>(session.platform(), &key) {
        return Ok(Some(info));
    }
    let Some(definition) = attribute_definitions(session, entity, &[attribute])?
        .into_iter()
        .find(|a| a.logical_name == attribute)
    else {
        return Ok(None);
    };
    let info = ColumnInfo {
        kind: definition
            .attribute_type_name
            .map(|t| t.value)
            .or(definition.attribute_type)
            .unwrap_or_default(),
        attribute_of: definition.attribute_of,
    };
    cache::put(session.platform(), &key, &info, cache::METADATA_TTL_SECONDS);
    Ok(Some(info))
}

/// One option of a choice column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChoiceOption {
    /// The number Dataverse stores and conditions compare.
    pub value: i64,
    /// Its labels, the user's language first; possibly none.
    pub labels: Vec<String>,
}

impl ChoiceOption {
    /// The label people see, else the number.
    pub fn label(&self) -> String {
        self.labels
            .first()
            .cloned()
            .unwrap_or_else(|| self.value.to_string())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ChoiceAttribute {
    #[serde(default)]
    option_set: Option<OptionSet>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OptionSet {
    #[serde(default)]
    options: Vec<OptionRecord>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OptionRecord {
    #[serde(default)]
    value: Option<i64>,
    #[serde(default)]
    label: Option<Label>,
}

/// The options of a choice (picklist, state or status) column, cached.
pub fn choice_options(
    session: &mut Session,
    entity: &str,
    attribute: &str,
    info: &ColumnInfo,
) -> Result<Vec<ChoiceOption>, Error> {
    require_logical_name(entity, "entity")?;
    require_logical_name(attribute, "column")?;
    let cast = info.option_set_cast().ok_or_else(|| {
        Error::Invalid(format!(
            "column '{attribute}' of table '{entity}' is not a choice, so it has no options"
        ))
    })?;
    let key = format!("options {entity} {attribute}");
    let platform = session.platform();
    cache::get_or_load(platform, &key, cache::METADATA_TTL_SECONDS, || {
        let path = format!(
            "EntityDefinitions(LogicalName={})/Attributes(LogicalName={})/{cast}?{}",
            odata::string_literal(entity),
            odata::string_literal(attribute),
            odata::query(&[
                ("$select", "LogicalName"),
                ("$expand", "OptionSet($select=Options)"),
            ])
        );
        let found: ChoiceAttribute =
            session.get_json(&path, &format!("column '{attribute}' of '{entity}'"))?;
        Ok(options_of(found))
    })
}

fn options_of(attribute: ChoiceAttribute) -> Vec<ChoiceOption> {
    let options = attribute
        .option_set
        .map(|set| set.options)
        .unwrap_or_default();
    options
        .into_iter()
        .filter_map(|option| {
            let value = option.value?;
            let mut labels: Vec<String> = Vec::new();
            if let Some(label) = option.label {
                for text in label
                    .user_localized_label
                    .iter()
                    .chain(label.localized_labels.iter())
                    .filter_map(|l| l.label.as_deref())
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                {
                    if !labels.iter().any(|known| known == text) {
                        labels.push(text.to_string());
                    }
                }
            }
            Some(ChoiceOption { value, labels })
        })
        .collect()
}

#[derive(Deserialize)]
struct OrganizationRecord {
    #[serde(rename = "_basecurrencyid_value", default)]
    base_currency: Option<String>,
}

#[derive(Deserialize)]
struct CurrencyRecord {
    #[serde(default)]
    isocurrencycode: Option<String>,
}

/// ISO code of the organization's base currency, cached.
pub fn base_currency_code(session: &mut Session) -> Result<String, Error> {
    let platform = session.platform();
    cache::get_or_load(
        platform,
        "base currency",
        cache::CURRENCY_TTL_SECONDS,
        || {
            let organizations: Collection<OrganizationRecord> = session.get_json(
                &format!(
                    "organizations?{}",
                    odata::query(&[("$select", "_basecurrencyid_value")])
                ),
                "organization",
            )?;
            let id = organizations
                .value
                .into_iter()
                .find_map(|o| o.base_currency)
                .ok_or_else(|| {
                    crate::errors::unexpected_body("organization", "no base currency")
                })?;
            currency_code(session, &id)
        },
    )
}

/// ISO code of a transaction currency, cached.
pub fn currency_code(session: &mut Session, currency_id: &str) -> Result<String, Error> {
    if !odata::is_guid(currency_id) {
        return Err(crate::errors::unexpected_body(
            "currency",
            "the currency id is not a GUID",
        ));
    }
    let key = format!("currency {currency_id}");
    let platform = session.platform();
    cache::get_or_load(platform, &key, cache::CURRENCY_TTL_SECONDS, || {
        let record: CurrencyRecord = session.get_json(
            &format!(
                "transactioncurrencies({currency_id})?{}",
                odata::query(&[("$select", "isocurrencycode")])
            ),
            &format!("currency {currency_id}"),
        )?;
        record
            .isocurrencycode
            .ok_or_else(|| crate::errors::unexpected_body("currency", "no ISO code"))
    })
}

pub fn require_logical_name(name: &str, what: &str) -> Result<(), Error> {
    if odata::is_logical_name(name) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "'{name}' is not a valid {what} logical name (lower-case letters, digits and \
             underscores); pick one from the list"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_types_follow_attribute_type_name() {
        let parse = |json: &str| -> AttributeDefinition { serde_json::from_str(json).unwrap() };
        let money = parse(
            r#"{"LogicalName":"revenue","AttributeType":"Money","AttributeTypeName":{"Value":"MoneyType"},"DisplayName":{"UserLocalizedLabel":{"Label":"Annual Revenue"},"LocalizedLabels":[]}}"#,
        );
        assert_eq!(money.column_type(), ColumnType::Money);
        assert_eq!(money.display_name(), "Annual Revenue");
        let file = parse(
            r#"{"LogicalName":"doc","AttributeType":"Virtual","AttributeTypeName":{"Value":"FileType"}}"#,
        );
        assert_eq!(file.column_type(), ColumnType::Other);
        let only_type = parse(r#"{"LogicalName":"n","AttributeType":"Integer"}"#);
        assert_eq!(only_type.column_type(), ColumnType::WholeNumber);
        assert_eq!(only_type.display_name(), "n");
    }

    #[test]
    fn labels_fall_back_to_localized_then_logical_name() {
        let label: Label = serde_json::from_str(
            r#"{"UserLocalizedLabel":null,"LocalizedLabels":[{"Label":"Konto","LanguageCode":1031}]}"#,
        )
        .unwrap();
        assert_eq!(label.text_or("account"), "Konto");
        assert_eq!(Label::default().text_or("account"), "account");
    }

    #[test]
    fn option_sets_give_values_with_every_label_the_users_first() {
        let attribute: ChoiceAttribute = serde_json::from_str(
            r#"{"LogicalName":"statuscode","OptionSet":{"Options":[
                {"Value":3,"Label":{"UserLocalizedLabel":{"Label":"Won"},"LocalizedLabels":[{"Label":"Won"},{"Label":"Gewonnen"}]}},
                {"Value":4,"Label":{"UserLocalizedLabel":null,"LocalizedLabels":[]}},
                {"Value":null,"Label":{"UserLocalizedLabel":{"Label":"Broken"}}}
            ]}}"#,
        )
        .unwrap();
        let options = options_of(attribute);
        assert_eq!(
            options,
            [
                ChoiceOption {
                    value: 3,
                    labels: vec!["Won".into(), "Gewonnen".into()]
                },
                ChoiceOption {
                    value: 4,
                    labels: vec![]
                },
            ]
        );
        assert_eq!(options[1].label(), "4");
        let info = |kind: &str| ColumnInfo {
            kind: kind.into(),
            ..ColumnInfo::default()
        };
        assert_eq!(
            info("StatusType").option_set_cast(),
            Some("Microsoft.Dynamics.CRM.StatusAttributeMetadata")
        );
        assert_eq!(
            info("Picklist").option_set_cast(),
            Some("Microsoft.Dynamics.CRM.PicklistAttributeMetadata")
        );
        assert_eq!(info("MultiSelectPicklistType").option_set_cast(), None);
    }

    #[test]
    fn aggregations_fit_the_type() {
        assert_eq!(aggregations_for(ColumnType::Money).len(), 7);
        assert_eq!(
            aggregations_for(ColumnType::DateTime),
            [
                Aggregation::Count,
                Aggregation::CountValues,
                Aggregation::CountDistinct,
                Aggregation::Min,
                Aggregation::Max
            ]
        );
        assert!(!aggregations_for(ColumnType::Text).contains(&Aggregation::Sum));
    }
}
