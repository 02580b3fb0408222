//! An attribute read through its type cast, e.g.
//! `Attributes(LogicalName='statuscode')/Microsoft.Dynamics.CRM.StatusAttributeMetadata`.
//! Dataverse returns a choice column's options only this way, with
//! `$expand=OptionSet` (or `OptionSet($select=Options)`): the common attribute
//! metadata has no `OptionSet` navigation property.

use super::{ATTRIBUTE_METADATA, attribute_row, label, project};
use crate::data::{AttributeDef, AttributeType, EntityDef, Row, guid_from_name};
use crate::errors::{ODataError, codes};
use crate::odata::{EdmKind, QueryOptions, StaticSchema, parse_select};
use crate::webapi::{ApiRequest, ApiResponse};
use serde_json::{Map, Value, json};

/// The namespace of every metadata type name in a cast segment.
const NAMESPACE: &str = "Microsoft.Dynamics.CRM.";

/// The option set of a picklist, state or status attribute.
const OPTION_SET_METADATA: StaticSchema = StaticSchema {
    type_name: "Microsoft.Dynamics.CRM.OptionSetMetadata",
    properties: &[
        ("MetadataId", EdmKind::Guid),
        ("Name", EdmKind::String),
        ("IsGlobal", EdmKind::Bool),
        ("OptionSetType", EdmKind::String),
        ("Options", EdmKind::Complex),
    ],
};

/// The option set of a Boolean attribute: two options instead of a list.
const BOOLEAN_OPTION_SET_METADATA: StaticSchema = StaticSchema {
    type_name: "Microsoft.Dynamics.CRM.BooleanOptionSetMetadata",
    properties: &[
        ("MetadataId", EdmKind::Guid),
        ("Name", EdmKind::String),
        ("IsGlobal", EdmKind::Bool),
        ("OptionSetType", EdmKind::String),
        ("TrueOption", EdmKind::Complex),
        ("FalseOption", EdmKind::Complex),
    ],
};

/// The labels Dataverse gives a Boolean column without custom ones; the
/// formatted values of Boolean columns use the same words.
const TRUE_LABEL: &str = "Yes";
const FALSE_LABEL: &str = "No";

/// Answers `EntityDefinitions(..)/Attributes(..)/<cast>` with the attribute's
/// properties and, when `$expand` asks for it, its option set.
pub fn typed_attribute(
    request: &ApiRequest<'_>,
    options: &QueryOptions,
    entity: &EntityDef,
    attribute: &AttributeDef,
    cast: &str,
) -> Result<ApiResponse, ODataError> {
    let type_name = check_cast(attribute, cast)?;
    if options.apply.is_some() {
        return Err(ODataError::not_implemented(
            "The simulator does not implement $apply on metadata.",
        ));
    }
    let schema = StaticSchema {
        type_name,
        properties: ATTRIBUTE_METADATA.properties,
    };
    let select = options
        .select
        .as_deref()
        .map(|s| parse_select(s, &schema))
        .transpose()?;
    let expand = options
        .expand
        .as_deref()
        .map(|e| parse_expand(e, attribute, type_name))
        .transpose()?;
    let mut row = attribute_row(entity, attribute);
    // The context names the type already; Dataverse adds no `@odata.type` here.
    row.remove("@odata.type");
    let mut body = Map::new();
    let context = context(entity, attribute, type_name, select.as_deref(), &expand);
    body.insert("@odata.context".to_string(), request.context(&context));
    body.extend(project(&row, select.as_deref()));
    if let Some(expand) = &expand {
        let option_set = option_set_row(entity, attribute);
        body.insert(
            "OptionSet".to_string(),
            Value::Object(project(&option_set, expand.select.as_deref())),
        );
    }
    Ok(request.ok(Value::Object(body)))
}

/// The qualified type name of a cast that fits the attribute. A known attribute
/// type that does not fit is the client's mistake (400); a base type such as
/// `EnumAttributeMetadata` is valid in Dataverse but not simulated (501).
fn check_cast(attribute: &AttributeDef, cast: &str) -> Result<&'static str, ODataError> {
    let own = attribute
        .attribute_type
        .metadata_type()
        .trim_start_matches('#');
    if cast == own {
        return Ok(own);
    }
    let Some(name) = cast.strip_prefix(NAMESPACE) else {
        return Err(ODataError::segment_not_found(cast));
    };
    if matches!(name, "AttributeMetadata" | "EnumAttributeMetadata") {
        return Err(ODataError::not_implemented(format!(
            "The simulator does not implement casts to the base type '{cast}'; cast to '{own}'."
        )));
    }
    if name.ends_with("AttributeMetadata") {
        return Err(ODataError::bad_request(
            codes::ODATA_QUERY,
            format!(
                "The attribute '{}' is not of type {name}.",
                attribute.logical_name
            ),
        ));
    }
    Err(ODataError::segment_not_found(cast))
}

/// What `$expand` asked of the option set.
struct Expand {
    /// The `$select` inside `OptionSet(...)`; `None` for every property.
    select: Option<Vec<String>>,
}

/// Reads `OptionSet` or `OptionSet($select=...)`; anything else stays
/// unimplemented, as `$expand` on other metadata is.
fn parse_expand(
    expand: &str,
    attribute: &AttributeDef,
    type_name: &str,
) -> Result<Expand, ODataError> {
    let expand = expand.trim();
    let (property, inner) = match expand.split_once('(') {
        Some((property, rest)) => (property.trim(), rest.strip_suffix(')')),
        None => (expand, Some("")),
    };
    if property != "OptionSet" {
        return Err(unimplemented_expand(expand));
    }
    let schema = option_set_schema(attribute.attribute_type)
        .ok_or_else(|| ODataError::property_not_found("OptionSet", type_name))?;
    let select = match inner.map(str::trim) {
        Some("") => None,
        Some(options) if !options.contains(';') => {
            let names = options
                .strip_prefix("$select=")
                .ok_or_else(|| unimplemented_expand(expand))?;
            Some(parse_select(names, schema)?)
        }
        _ => return Err(unimplemented_expand(expand)),
    };
    Ok(Expand { select })
}

fn unimplemented_expand(expand: &str) -> ODataError {
    ODataError::not_implemented(format!(
        "The simulator does not implement $expand={expand} on metadata; use \
         $expand=OptionSet or $expand=OptionSet($select=Options) on a type-cast attribute."
    ))
}

/// The option set type of an attribute type, if it has one.
fn option_set_schema(attribute_type: AttributeType) -> Option<&'static StaticSchema> {
    match attribute_type {
        AttributeType::Picklist | AttributeType::State | AttributeType::Status => {
            Some(&OPTION_SET_METADATA)
        }
        AttributeType::Boolean => Some(&BOOLEAN_OPTION_SET_METADATA),
        _ => None,
    }
}

/// `EntityDefinitions('<id>')/Attributes(<id>)/<cast>(<selected>,OptionSet,OptionSet(<inner>))/$entity`.
fn context(
    entity: &EntityDef,
    attribute: &AttributeDef,
    type_name: &str,
    select: Option<&[String]>,
    expand: &Option<Expand>,
) -> String {
    let mut parts: Vec<String> = select.map(<[String]>::to_vec).unwrap_or_default();
    if let Some(expand) = expand {
        let inner = expand
            .select
            .as_deref()
            .map(|names| names.join(","))
            .unwrap_or_default();
        parts.push("OptionSet".to_string());
        parts.push(format!("OptionSet({inner})"));
    }
    let projection = if parts.is_empty() {
        String::new()
    } else {
        format!("({})", parts.join(","))
    };
    format!(
        "EntityDefinitions('{}')/Attributes({})/{type_name}{projection}/$entity",
        entity.metadata_id, attribute.metadata_id
    )
}

/// Every property of the attribute's option set, before `$select`.
fn option_set_row(entity: &EntityDef, attribute: &AttributeDef) -> Row {
    let owner = format!("{}.{}", entity.logical_name, attribute.logical_name);
    let mut row: Row = [
        ("MetadataId", json!(guid_from_name("optionset", &owner))),
        (
            "Name",
            json!(format!(
                "{}_{}",
                entity.logical_name, attribute.logical_name
            )),
        ),
        ("IsGlobal", json!(false)),
        ("OptionSetType", json!(attribute.attribute_type.code())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if attribute.attribute_type == AttributeType::Boolean {
        row.insert("TrueOption".to_string(), option(1, TRUE_LABEL, &owner));
        row.insert("FalseOption".to_string(), option(0, FALSE_LABEL, &owner));
    } else {
        let options = attribute
            .options
            .iter()
            .map(|o| option(o.value, &o.label, &owner))
            .collect();
        row.insert("Options".to_string(), Value::Array(options));
    }
    row
}

/// One `OptionMetadata`.
fn option(value: i64, text: &str, owner: &str) -> Value {
    json!({
        "Value": value,
        "Label": label(text, &format!("{owner}.Option.{value}")),
        "Description": label("", ""),
        "Color": null,
        "IsManaged": true,
        "ExternalValue": "",
        "MetadataId": null,
        "HasChanged": null,
    })
}
