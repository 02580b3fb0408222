//! The Web API below `/api/data/v9.2/`: routing a path to its resource and
//! shaping the answer body. Transport-independent, so it is tested directly.

mod metadata;
mod records;

use crate::data::{Dataset, Db, is_guid};
use crate::errors::{ODataError, codes};
use crate::odata::{Preferences, QueryOptions};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

/// The path prefix of the Web API.
pub const API_PREFIX: &str = "/api/data/v9.2/";

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
    /// The `Preference-Applied` header value, if a preference was honoured.
    pub preference_applied: Option<String>,
}

/// One request to the Web API.
pub struct ApiRequest<'a> {
    /// `http://127.0.0.1:PORT`, for `@odata.context` and next links.
    pub base_url: &'a str,
    /// The path after `/api/data/v9.2/`, still percent-encoded.
    pub path: &'a str,
    /// The raw query string.
    pub query: Option<&'a str>,
    pub preferences: &'a Preferences,
}

impl ApiRequest<'_> {
    fn context(&self, fragment: &str) -> Value {
        json!(format!("{}{API_PREFIX}$metadata#{fragment}", self.base_url))
    }

    fn preference_applied(&self, max_page_size: Option<usize>) -> Option<String> {
        let mut applied = Vec::new();
        if let Some(size) = max_page_size {
            applied.push(format!("odata.maxpagesize={size}"));
        }
        if let Some(raw) = &self.preferences.annotations_raw {
            applied.push(format!("odata.include-annotations=\"{raw}\""));
        }
        (!applied.is_empty()).then(|| applied.join(","))
    }

    fn ok(&self, body: Value) -> ApiResponse {
        ApiResponse {
            status: 200,
            body,
            preference_applied: self.preference_applied(None),
        }
    }
}

/// A key in parentheses: `(guid)` or `(Name='value')` / `(Name=guid)`.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Id(String),
    Named(String, String),
}

fn parse_key(segment: &str, raw: &str) -> Result<Key, ODataError> {
    let bad = || {
        ODataError::bad_request(
            codes::ODATA_QUERY,
            format!(
                "Bad Request - Error in query syntax: the key '{raw}' of '{segment}' is not valid."
            ),
        )
    };
    if is_guid(raw) {
        return Ok(Key::Id(raw.to_ascii_lowercase()));
    }
    let (name, value) = raw.split_once('=').ok_or_else(bad)?;
    let value = value.trim();
    let value = if let Some(quoted) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        quoted.replace("''", "'")
    } else if is_guid(value) {
        value.to_ascii_lowercase()
    } else {
        return Err(bad());
    };
    Ok(Key::Named(name.trim().to_string(), value))
}

/// Splits `name(key)` into the name and the raw key.
fn split_segment(segment: &str) -> Result<(&str, Option<&str>), ODataError> {
    match segment.find('(') {
        None => Ok((segment, None)),
        Some(open) => {
            let inner = segment[open + 1..].strip_suffix(')').ok_or_else(|| {
                ODataError::bad_request(
                    codes::ODATA_QUERY,
                    format!("Bad Request - Error in query syntax: '{segment}'."),
                )
            })?;
            Ok((&segment[..open], Some(inner)))
        }
    }
}

/// Answers a GET below the Web API root from the shared sample data.
pub fn get(data: &Dataset, request: &ApiRequest<'_>) -> Result<ApiResponse, ODataError> {
    get_in(Db::plain(data), request)
}

/// Answers a GET below the Web API root from a simulator's data (its overlay
/// included).
pub fn get_in(data: Db<'_>, request: &ApiRequest<'_>) -> Result<ApiResponse, ODataError> {
    let path = percent_decode_str(request.path)
        .decode_utf8()
        .map_err(|_| ODataError::segment_not_found(request.path))?
        .into_owned();
    let options = QueryOptions::parse(request.query)?;
    let segments: Vec<&str> = path.split('/').collect();
    let first = segments.first().copied().unwrap_or_default();
    match first {
        "" if segments.len() == 1 => Ok(service_document(data, request)),
        "$metadata" => Err(ODataError::not_implemented(
            "The simulator does not serve the CSDL $metadata document.",
        )),
        "WhoAmI" | "WhoAmI()" if segments.len() == 1 => Ok(request.ok(json!({
            "@odata.context": request.context("Microsoft.Dynamics.CRM.WhoAmIResponse"),
            "BusinessUnitId": data.base().business_unit_id,
            "UserId": data.caller_id(),
            "OrganizationId": data.base().organization_id,
        }))),
        _ => {
            let (name, key) = split_segment(first)?;
            if name == "EntityDefinitions" {
                return metadata::get(data, request, &options, key, &segments[1..]);
            }
            let Some(entity) = data.entity_by_set(name) else {
                return Err(ODataError::segment_not_found(first));
            };
            if segments.len() > 1 {
                return Err(ODataError::not_implemented(format!(
                    "The simulator does not implement navigation below '{first}'."
                )));
            }
            match key {
                None => records::collection(data, request, &options, entity),
                Some(raw) => {
                    let id = match parse_key(name, raw)? {
                        Key::Id(id) => id,
                        Key::Named(property, id) if property == entity.primary_id_attribute => id,
                        Key::Named(property, _) => {
                            return Err(ODataError::not_implemented(format!(
                                "The simulator does not implement alternate key '{property}'."
                            )));
                        }
                    };
                    records::single(data, request, &options, entity, &id)
                }
            }
        }
    }
}

fn service_document(data: Db<'_>, request: &ApiRequest<'_>) -> ApiResponse {
    let sets: Vec<Value> = data
        .entities()
        .iter()
        .map(|e| json!({"name": e.entity_set_name, "kind": "EntitySet", "url": e.entity_set_name}))
        .chain(std::iter::once(
            json!({"name": "EntityDefinitions", "kind": "EntitySet", "url": "EntityDefinitions"}),
        ))
        .collect();
    request.ok(json!({
        "@odata.context": format!("{}{API_PREFIX}$metadata", request.base_url),
        "value": sets,
    }))
}

#[cfg(test)]
mod tests;
