//! `EntityDefinitions`: table definitions and their attributes. Metadata is not
//! paged; `MetadataId` is always returned; labels are the Label complex type.
//! An attribute read through its type cast can expand its option set (see
//! [`optionset`]).

mod optionset;

use super::{ApiRequest, ApiResponse, Key, parse_key};
use crate::data::{AttributeDef, Db, EntityDef, Row, guid_from_name};
use crate::errors::{ODataError, codes};
use crate::odata::{
    EdmKind, Filter, QueryOptions, StaticSchema, parse_orderby, parse_select, sort_rows,
};
use serde_json::{Map, Value, json};

const ENTITY_METADATA: StaticSchema = StaticSchema {
    type_name: "Microsoft.Dynamics.CRM.EntityMetadata",
    properties: &[
        ("MetadataId", EdmKind::Guid),
        ("LogicalName", EdmKind::String),
        ("SchemaName", EdmKind::String),
        ("EntitySetName", EdmKind::String),
        ("LogicalCollectionName", EdmKind::String),
        ("PrimaryIdAttribute", EdmKind::String),
        ("PrimaryNameAttribute", EdmKind::String),
        ("ObjectTypeCode", EdmKind::Int),
        ("OwnershipType", EdmKind::String),
        ("IsCustomEntity", EdmKind::Bool),
        ("IsActivity", EdmKind::Bool),
        ("IsValidForAdvancedFind", EdmKind::Bool),
        ("DisplayName", EdmKind::Complex),
        ("DisplayCollectionName", EdmKind::Complex),
        ("Description", EdmKind::Complex),
    ],
};

const ATTRIBUTE_METADATA: StaticSchema = StaticSchema {
    type_name: "Microsoft.Dynamics.CRM.AttributeMetadata",
    properties: &[
        ("MetadataId", EdmKind::Guid),
        ("LogicalName", EdmKind::String),
        ("SchemaName", EdmKind::String),
        ("EntityLogicalName", EdmKind::String),
        ("AttributeType", EdmKind::String),
        ("AttributeTypeName", EdmKind::Complex),
        ("AttributeOf", EdmKind::String),
        ("IsPrimaryId", EdmKind::Bool),
        ("IsPrimaryName", EdmKind::Bool),
        ("IsValidForRead", EdmKind::Bool),
        ("IsCustomAttribute", EdmKind::Bool),
        ("IsLogical", EdmKind::Bool),
        ("DisplayName", EdmKind::Complex),
        ("Description", EdmKind::Complex),
    ],
};

/// `Account` from `account`, `NumberOfEmployees`-like enough from `numberofemployees`.
fn schema_name(logical_name: &str) -> String {
    let mut chars = logical_name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// Custom tables and columns carry a publisher prefix, e.g. `new_`.
fn is_custom(logical_name: &str) -> bool {
    logical_name.starts_with("new_")
}

/// The Label complex type with one English label.
fn label(text: &str, owner: &str) -> Value {
    if text.is_empty() {
        return json!({"LocalizedLabels": [], "UserLocalizedLabel": null});
    }
    let localized = json!({
        "Label": text,
        "LanguageCode": 1033,
        "IsManaged": true,
        "MetadataId": guid_from_name("label", owner),
        "HasChanged": null,
    });
    json!({"LocalizedLabels": [localized.clone()], "UserLocalizedLabel": localized})
}

fn entity_row(entity: &EntityDef) -> Row {
    let owned = entity.attribute("ownerid").is_some();
    [
        ("MetadataId", json!(entity.metadata_id)),
        ("LogicalName", json!(entity.logical_name)),
        ("SchemaName", json!(schema_name(&entity.logical_name))),
        ("EntitySetName", json!(entity.entity_set_name)),
        ("LogicalCollectionName", json!(entity.entity_set_name)),
        ("PrimaryIdAttribute", json!(entity.primary_id_attribute)),
        ("PrimaryNameAttribute", json!(entity.primary_name_attribute)),
        ("ObjectTypeCode", json!(entity.object_type_code)),
        (
            "OwnershipType",
            json!(if owned {
                "UserOwned"
            } else {
                "OrganizationOwned"
            }),
        ),
        ("IsCustomEntity", json!(is_custom(&entity.logical_name))),
        ("IsActivity", json!(false)),
        ("IsValidForAdvancedFind", json!(entity.is_business_table)),
        (
            "DisplayName",
            label(
                &entity.display_name,
                &format!("{}.DisplayName", entity.logical_name),
            ),
        ),
        (
            "DisplayCollectionName",
            label(
                &entity.display_collection_name,
                &format!("{}.DisplayCollectionName", entity.logical_name),
            ),
        ),
        ("Description", label("", "")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn attribute_row(entity: &EntityDef, attribute: &AttributeDef) -> Row {
    let owner = format!("{}.{}", entity.logical_name, attribute.logical_name);
    [
        (
            "@odata.type",
            json!(attribute.attribute_type.metadata_type()),
        ),
        ("MetadataId", json!(attribute.metadata_id)),
        ("LogicalName", json!(attribute.logical_name)),
        ("SchemaName", json!(schema_name(&attribute.logical_name))),
        ("EntityLogicalName", json!(entity.logical_name)),
        ("AttributeType", json!(attribute.attribute_type.code())),
        (
            "AttributeTypeName",
            json!({"Value": attribute.attribute_type.type_name()}),
        ),
        ("AttributeOf", json!(attribute.attribute_of)),
        (
            "IsPrimaryId",
            json!(attribute.logical_name == entity.primary_id_attribute),
        ),
        (
            "IsPrimaryName",
            json!(
                entity.primary_name_attribute.as_deref() == Some(attribute.logical_name.as_str())
            ),
        ),
        ("IsValidForRead", json!(true)),
        (
            "IsCustomAttribute",
            json!(is_custom(&attribute.logical_name)),
        ),
        ("IsLogical", json!(attribute.attribute_of.is_some())),
        (
            "DisplayName",
            label(&attribute.display_name, &format!("{owner}.DisplayName")),
        ),
        ("Description", label("", "")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Projects a metadata row on `$select` (with `MetadataId` and `@odata.type` kept).
fn project(row: &Row, select: Option<&[String]>) -> Map<String, Value> {
    match select {
        None => row.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Some(names) => row
            .iter()
            .filter(|(k, _)| {
                k.as_str() == "MetadataId"
                    || k.as_str() == "@odata.type"
                    || names.iter().any(|n| n == *k)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn find_entity<'a>(data: Db<'a>, raw_key: &str) -> Result<&'a EntityDef, ODataError> {
    let key = parse_key("EntityDefinitions", raw_key)?;
    let found = match &key {
        Key::Id(id) => data.entities().iter().find(|e| e.metadata_id == *id),
        Key::Named(name, value) if name == "LogicalName" => data.entity(value),
        Key::Named(name, value) if name == "MetadataId" => {
            data.entities().iter().find(|e| e.metadata_id == *value)
        }
        Key::Named(name, _) => {
            return Err(ODataError::bad_request(
                codes::ODATA_QUERY,
                format!(
                    "'{name}' is not a key of EntityDefinitions; use LogicalName or MetadataId."
                ),
            ));
        }
    };
    found.ok_or_else(|| {
        let shown = match key {
            Key::Id(id) => id,
            Key::Named(_, value) => value,
        };
        ODataError::new(
            404,
            codes::OBJECT_DOES_NOT_EXIST,
            format!("Could not find entity with logical name or id '{shown}'."),
        )
    })
}

type Record = Map<String, Value>;

/// Filters, orders and projects metadata rows.
fn query_rows(
    rows: Vec<Row>,
    options: &QueryOptions,
    schema: &StaticSchema,
) -> Result<(Vec<Record>, Option<Vec<String>>), ODataError> {
    let select = options
        .select
        .as_deref()
        .map(|s| parse_select(s, schema))
        .transpose()?;
    let filter = options
        .filter
        .as_deref()
        .map(|f| Filter::parse(f, schema))
        .transpose()?;
    let order = options
        .orderby
        .as_deref()
        .map(|o| parse_orderby(o, schema))
        .transpose()?
        .unwrap_or_default();
    let mut matching: Vec<&Row> = rows
        .iter()
        .filter(|row| filter.as_ref().is_none_or(|f| f.matches(row)))
        .collect();
    sort_rows(&mut matching, &order, "LogicalName");
    if let Some(top) = options.top {
        matching.truncate(top);
    }
    let projected = matching
        .into_iter()
        .map(|row| project(row, select.as_deref()))
        .collect();
    Ok((projected, select))
}

fn fragment(base: &str, select: &Option<Vec<String>>) -> String {
    match select {
        Some(names) if !names.is_empty() => format!("{base}({})", names.join(",")),
        _ => base.to_string(),
    }
}

fn refuse_options(options: &QueryOptions) -> Result<(), ODataError> {
    if options.expand.is_some() || options.apply.is_some() {
        return Err(ODataError::not_implemented(
            "The simulator does not implement $expand or $apply on metadata, except \
             $expand=OptionSet on an attribute read through its type cast.",
        ));
    }
    Ok(())
}

pub fn get(
    data: Db<'_>,
    request: &ApiRequest<'_>,
    options: &QueryOptions,
    key: Option<&str>,
    rest: &[&str],
) -> Result<ApiResponse, ODataError> {
    // Only a type-cast attribute has something to expand (its option set).
    if let (Some(raw), [attributes, cast]) = (key, rest)
        && attributes.starts_with("Attributes(")
    {
        let entity = find_entity(data, raw)?;
        let attribute = find_attribute(entity, attributes)?;
        return optionset::typed_attribute(request, options, entity, attribute, cast);
    }
    refuse_options(options)?;
    match (key, rest) {
        (None, []) => {
            let rows = data.entities().iter().map(entity_row).collect();
            let (records, select) = query_rows(rows, options, &ENTITY_METADATA)?;
            Ok(request.ok(json!({
                "@odata.context": request.context(&fragment("EntityDefinitions", &select)),
                "value": records,
            })))
        }
        (Some(raw), []) => {
            let entity = find_entity(data, raw)?;
            let select = options
                .select
                .as_deref()
                .map(|s| parse_select(s, &ENTITY_METADATA))
                .transpose()?;
            let mut body = Map::new();
            body.insert(
                "@odata.context".to_string(),
                request.context(&format!(
                    "{}/$entity",
                    fragment("EntityDefinitions", &select)
                )),
            );
            body.extend(project(&entity_row(entity), select.as_deref()));
            Ok(request.ok(Value::Object(body)))
        }
        (Some(raw), ["Attributes"]) => {
            let entity = find_entity(data, raw)?;
            let rows = entity
                .attributes
                .iter()
                .map(|a| attribute_row(entity, a))
                .collect();
            let (records, select) = query_rows(rows, options, &ATTRIBUTE_METADATA)?;
            let base = format!("EntityDefinitions('{}')/Attributes", entity.metadata_id);
            Ok(request.ok(json!({
                "@odata.context": request.context(&fragment(&base, &select)),
                "value": records,
            })))
        }
        (Some(raw), [attributes]) if attributes.starts_with("Attributes(") => {
            let entity = find_entity(data, raw)?;
            let attribute = find_attribute(entity, attributes)?;
            single_attribute(request, options, entity, attribute)
        }
        _ => Err(ODataError::not_implemented(format!(
            "The simulator does not implement EntityDefinitions/{}.",
            rest.join("/")
        ))),
    }
}

/// The attribute of `entity` named by an `Attributes(<key>)` segment.
fn find_attribute<'a>(
    entity: &'a EntityDef,
    segment: &str,
) -> Result<&'a AttributeDef, ODataError> {
    let (_, attribute_key) = super::split_segment(segment)?;
    let attribute_key = attribute_key.unwrap_or_default();
    let found = match parse_key("Attributes", attribute_key)? {
        Key::Id(id) => entity.attributes.iter().find(|a| a.metadata_id == id),
        Key::Named(name, value) if name == "LogicalName" => entity.attribute(&value),
        Key::Named(name, _) => {
            return Err(ODataError::bad_request(
                codes::ODATA_QUERY,
                format!("'{name}' is not a key of Attributes; use LogicalName or MetadataId."),
            ));
        }
    };
    found.ok_or_else(|| {
        ODataError::new(
            404,
            codes::OBJECT_DOES_NOT_EXIST,
            format!(
                "Could not find attribute '{attribute_key}' of entity '{}'.",
                entity.logical_name
            ),
        )
    })
}

/// `EntityDefinitions(..)/Attributes(..)` without a cast: the common attribute
/// properties.
fn single_attribute(
    request: &ApiRequest<'_>,
    options: &QueryOptions,
    entity: &EntityDef,
    attribute: &AttributeDef,
) -> Result<ApiResponse, ODataError> {
    let select = options
        .select
        .as_deref()
        .map(|s| parse_select(s, &ATTRIBUTE_METADATA))
        .transpose()?;
    let mut body = Map::new();
    body.insert(
        "@odata.context".to_string(),
        request.context(&format!(
            "EntityDefinitions('{}')/Attributes/$entity",
            entity.metadata_id
        )),
    );
    body.extend(project(
        &attribute_row(entity, attribute),
        select.as_deref(),
    ));
    Ok(request.ok(Value::Object(body)))
}
