//! OData query options of the Web API: reading the query string and the `Prefer`
//! header, binding `$select`/`$orderby` to a type, and `$filter` (see [`filter`]).

pub mod filter;

use crate::data::{AttributeType, EntityDef, Row};
use crate::errors::{ODataError, codes};
use percent_encoding::percent_decode_str;
use serde_json::Value;
use std::cmp::Ordering;

pub use filter::Filter;

/// The primitive kinds `$filter` distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdmKind {
    String,
    Int,
    Decimal,
    Bool,
    Guid,
    DateTime,
    /// Labels and other structured values: selectable, not filterable.
    Complex,
}

/// The properties of one OData type.
pub trait PropertySchema {
    /// The qualified type name for messages, e.g. `Microsoft.Dynamics.CRM.account`.
    fn type_name(&self) -> String;
    /// The row key and kind of a property, by its Web API name.
    fn property(&self, name: &str) -> Option<(String, EdmKind)>;
}

pub fn edm_kind(attribute_type: AttributeType) -> EdmKind {
    match attribute_type {
        AttributeType::String | AttributeType::Memo | AttributeType::EntityName => EdmKind::String,
        AttributeType::Integer
        | AttributeType::BigInt
        | AttributeType::Picklist
        | AttributeType::State
        | AttributeType::Status => EdmKind::Int,
        AttributeType::Decimal | AttributeType::Double | AttributeType::Money => EdmKind::Decimal,
        AttributeType::Boolean => EdmKind::Bool,
        AttributeType::DateTime => EdmKind::DateTime,
        AttributeType::Uniqueidentifier
        | AttributeType::Lookup
        | AttributeType::Customer
        | AttributeType::Owner => EdmKind::Guid,
    }
}

impl PropertySchema for EntityDef {
    fn type_name(&self) -> String {
        format!("Microsoft.Dynamics.CRM.{}", self.logical_name)
    }

    fn property(&self, name: &str) -> Option<(String, EdmKind)> {
        self.attribute_by_odata_name(name)
            .map(|a| (a.logical_name.clone(), edm_kind(a.attribute_type)))
    }
}

/// A fixed property list, for the metadata types.
pub struct StaticSchema {
    pub type_name: &'static str,
    pub properties: &'static [(&'static str, EdmKind)],
}

impl PropertySchema for StaticSchema {
    fn type_name(&self) -> String {
        self.type_name.to_string()
    }

    fn property(&self, name: &str) -> Option<(String, EdmKind)> {
        self.properties
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, kind)| (n.to_string(), *kind))
    }
}

/// The query options of one request, percent-decoded.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct QueryOptions {
    pub select: Option<String>,
    pub filter: Option<String>,
    pub orderby: Option<String>,
    pub top: Option<usize>,
    pub count: bool,
    pub expand: Option<String>,
    pub apply: Option<String>,
    pub skiptoken: Option<String>,
    pub fetch_xml: Option<String>,
    pub saved_query: Option<String>,
    pub user_query: Option<String>,
}

fn decode(raw: &str) -> Result<String, ODataError> {
    // `+` stays a plus: OData values are percent-encoded, not form-encoded.
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            ODataError::bad_request(
                codes::ODATA_QUERY,
                "The query string is not valid UTF-8 after percent-decoding.",
            )
        })
}

fn query_error(message: String) -> ODataError {
    ODataError::bad_request(codes::ODATA_QUERY, message)
}

impl QueryOptions {
    /// Reads a raw query string. Option names are case-sensitive; `$skip`,
    /// `$search` and `$format` are refused as Dataverse refuses them.
    pub fn parse(raw: Option<&str>) -> Result<QueryOptions, ODataError> {
        let mut options = QueryOptions::default();
        let mut seen: Vec<String> = Vec::new();
        for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name)?;
            let value = decode(value)?;
            if seen.contains(&name) {
                return Err(query_error(format!(
                    "Query option '{name}' was specified more than once, but it must be specified at most once."
                )));
            }
            seen.push(name.clone());
            match name.as_str() {
                "$select" => options.select = Some(value),
                "$filter" => options.filter = Some(value),
                "$orderby" => options.orderby = Some(value),
                "$top" => {
                    let top = value.trim().parse::<usize>().map_err(|_| {
                        query_error(format!(
                            "Invalid value '{value}' for $top query option found. The $top query option requires a non-negative integer value."
                        ))
                    })?;
                    options.top = Some(top);
                }
                "$count" => match value.as_str() {
                    "true" => options.count = true,
                    "false" => options.count = false,
                    _ => {
                        return Err(query_error(format!(
                            "'{value}' is not a valid count option."
                        )));
                    }
                },
                "$expand" => options.expand = Some(value),
                "$apply" => options.apply = Some(value),
                "$skiptoken" => options.skiptoken = Some(value),
                "$skip" | "$search" | "$format" => {
                    return Err(query_error(format!(
                        "The query parameter {name} is not supported"
                    )));
                }
                "fetchXml" => options.fetch_xml = Some(value),
                "savedQuery" => options.saved_query = Some(value),
                "userQuery" => options.user_query = Some(value),
                other if other.starts_with('$') => {
                    return Err(query_error(format!(
                        "The query parameter {other} is not supported"
                    )));
                }
                // Other custom options (parameter aliases, tags) do not change the answer.
                _ => {}
            }
        }
        Ok(options)
    }
}

/// `$select=a,b` bound to a schema: the Web API names, validated.
pub fn parse_select(select: &str, schema: &dyn PropertySchema) -> Result<Vec<String>, ODataError> {
    let mut names = Vec::new();
    for name in select.split(',').map(str::trim) {
        if name.is_empty() {
            return Err(query_error(format!(
                "Syntax error at position {} in '{select}'.",
                select.len()
            )));
        }
        if name == "*" {
            continue;
        }
        if schema.property(name).is_none() {
            return Err(ODataError::property_not_found(name, &schema.type_name()));
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// One `$orderby` item: row key, kind and direction.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub key: String,
    pub kind: EdmKind,
    pub descending: bool,
}

pub fn parse_orderby(
    orderby: &str,
    schema: &dyn PropertySchema,
) -> Result<Vec<OrderBy>, ODataError> {
    let mut items = Vec::new();
    for item in orderby.split(',') {
        let mut words = item.split_whitespace();
        let Some(name) = words.next() else {
            return Err(query_error(format!(
                "Syntax error at position {} in '{orderby}'.",
                orderby.len()
            )));
        };
        let descending = match words.next() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(query_error(format!(
                    "Syntax error: '{other}' is not a valid sort direction in '{orderby}'."
                )));
            }
        };
        if words.next().is_some() {
            return Err(query_error(format!("Syntax error in '{orderby}'.")));
        }
        let (key, kind) = schema
            .property(name)
            .ok_or_else(|| ODataError::property_not_found(name, &schema.type_name()))?;
        if kind == EdmKind::Complex {
            return Err(query_error(format!(
                "The $orderby expression must evaluate to a single value of primitive type; '{name}' is not."
            )));
        }
        items.push(OrderBy {
            key,
            kind,
            descending,
        });
    }
    Ok(items)
}

/// Orders two JSON values as Dataverse's database does: nulls first, text
/// without regard to case, dates chronologically.
pub fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let a = a.filter(|v| !v.is_null());
    let b = b.filter(|v| !v.is_null());
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::String(x)), Some(Value::String(y))) => {
            let folded = |s: &'_ str| s.chars().flat_map(char::to_lowercase).collect::<Vec<_>>();
            // Most keys differ in ASCII; fold without allocating when possible.
            if x.is_ascii() && y.is_ascii() {
                x.bytes()
                    .map(|b| b.to_ascii_lowercase())
                    .cmp(y.bytes().map(|b| b.to_ascii_lowercase()))
                    .then_with(|| x.cmp(y))
            } else {
                folded(x).cmp(&folded(y)).then_with(|| x.cmp(y))
            }
        }
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

/// Sorts rows by `$orderby`, then by `key` so the order is total.
pub fn sort_rows(rows: &mut [&Row], order: &[OrderBy], key: &str) {
    rows.sort_by(|a, b| {
        for item in order {
            let ordering = compare_values(a.get(&item.key), b.get(&item.key));
            let ordering = if item.descending {
                ordering.reverse()
            } else {
                ordering
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        compare_values(a.get(key), b.get(key))
    });
}

/// Which instance annotations the client asked for with
/// `Prefer: odata.include-annotations="..."`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Annotations {
    patterns: Vec<String>,
}

impl Annotations {
    pub fn all() -> Annotations {
        Annotations {
            patterns: vec!["*".to_string()],
        }
    }

    pub fn none() -> Annotations {
        Annotations::default()
    }

    /// Whether `term` (e.g. `OData.Community.Display.V1.FormattedValue`) is wanted.
    pub fn includes(&self, term: &str) -> bool {
        let mut included = false;
        for pattern in &self.patterns {
            let (negated, pattern) = match pattern.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, pattern.as_str()),
            };
            let hit = pattern == "*"
                || pattern == term
                || pattern
                    .strip_suffix('*')
                    .is_some_and(|prefix| term.starts_with(prefix));
            if hit {
                // An exclusion wins over any inclusion.
                if negated {
                    return false;
                }
                included = true;
            }
        }
        included
    }

    pub fn formatted_values(&self) -> bool {
        self.includes(FORMATTED_VALUE)
    }
}

pub const FORMATTED_VALUE: &str = "OData.Community.Display.V1.FormattedValue";
pub const ATTRIBUTE_NAME: &str = "OData.Community.Display.V1.AttributeName";
pub const LOOKUP_LOGICAL_NAME: &str = "Microsoft.Dynamics.CRM.lookuplogicalname";
pub const MORE_RECORDS: &str = "Microsoft.Dynamics.CRM.morerecords";
pub const PAGING_COOKIE: &str = "Microsoft.Dynamics.CRM.fetchxmlpagingcookie";
pub const TOTAL_RECORD_COUNT: &str = "Microsoft.Dynamics.CRM.totalrecordcount";
pub const TOTAL_RECORD_COUNT_EXCEEDED: &str =
    "Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded";

/// The `Prefer` header(s) of a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Preferences {
    pub annotations: Annotations,
    /// The raw annotation list, echoed in `Preference-Applied`.
    pub annotations_raw: Option<String>,
    pub max_page_size: Option<usize>,
    /// `odata.continue-on-error` (a `$batch` runs every part despite failures).
    pub continue_on_error: bool,
}

impl Preferences {
    /// Reads every `Prefer` header value; preferences are comma-separated, and
    /// the annotation list is quoted and may itself contain commas.
    pub fn parse<'a>(headers: impl IntoIterator<Item = &'a str>) -> Preferences {
        let mut prefs = Preferences::default();
        for header in headers {
            for item in split_outside_quotes(header) {
                let (name, value) = match item.split_once('=') {
                    Some((n, v)) => (n.trim(), v.trim()),
                    None => (item.trim(), ""),
                };
                match name {
                    "odata.include-annotations" => {
                        let list = value.trim_matches('"');
                        prefs.annotations_raw = Some(list.to_string());
                        prefs.annotations = Annotations {
                            patterns: list
                                .split(',')
                                .map(str::trim)
                                .filter(|p| !p.is_empty())
                                .map(str::to_string)
                                .collect(),
                        };
                    }
                    "odata.maxpagesize" => {
                        prefs.max_page_size = value.trim_matches('"').parse().ok();
                    }
                    "odata.continue-on-error" => {
                        prefs.continue_on_error =
                            !value.trim_matches('"').eq_ignore_ascii_case("false");
                    }
                    _ => {}
                }
            }
        }
        prefs
    }
}

fn split_outside_quotes(text: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&text[start..]);
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_string_is_percent_decoded_keeping_plus() {
        let options = QueryOptions::parse(Some(
            "$select=name%2Cid&$filter=contains(name,%27a+b%20c%27)&$top=5&fetchXml=%3Cfetch%2F%3E",
        ))
        .unwrap();
        assert_eq!(options.select.as_deref(), Some("name,id"));
        assert_eq!(options.filter.as_deref(), Some("contains(name,'a+b c')"));
        assert_eq!(options.top, Some(5));
        assert_eq!(options.fetch_xml.as_deref(), Some("<fetch/>"));
    }

    #[test]
    fn unsupported_and_miscased_options_are_refused() {
        for raw in ["$skip=10", "$search=x", "$format=json", "$Select=name"] {
            let error = QueryOptions::parse(Some(raw)).unwrap_err();
            assert_eq!(error.status, 400, "{raw}");
            assert!(error.message.contains("is not supported"), "{raw}");
        }
        assert!(QueryOptions::parse(Some("$top=x")).is_err());
        assert!(QueryOptions::parse(Some("$top=1&$top=2")).is_err());
        assert!(QueryOptions::parse(Some("$filter=%FF")).is_err());
        assert!(QueryOptions::parse(Some("tag=anything")).is_ok());
    }

    #[test]
    fn prefer_header_lists_are_split_outside_quotes() {
        let prefs = Preferences::parse([
            "odata.maxpagesize=3,odata.include-annotations=\"OData.Community.Display.V1.FormattedValue,Microsoft.Dynamics.CRM.*\"",
        ]);
        assert_eq!(prefs.max_page_size, Some(3));
        assert!(prefs.annotations.formatted_values());
        assert!(prefs.annotations.includes(MORE_RECORDS));
        assert!(!prefs.annotations.includes(ATTRIBUTE_NAME));
        assert!(
            Preferences::parse(["odata.include-annotations=\"*\""])
                .annotations
                .includes(ATTRIBUTE_NAME)
        );
        assert!(
            !Preferences::parse(Vec::<&str>::new())
                .annotations
                .formatted_values()
        );
    }

    #[test]
    fn continue_on_error_is_read_from_the_prefer_header() {
        assert!(!Preferences::parse(Vec::<&str>::new()).continue_on_error);
        assert!(Preferences::parse(["odata.continue-on-error"]).continue_on_error);
        let both = Preferences::parse(["odata.include-annotations=\"*\", odata.continue-on-error"]);
        assert!(both.continue_on_error && both.annotations.formatted_values());
        assert!(Preferences::parse(["odata.continue-on-error=true"]).continue_on_error);
        assert!(!Preferences::parse(["odata.continue-on-error=false"]).continue_on_error);
    }

    #[test]
    fn select_and_orderby_are_bound_to_the_type() {
        let data = crate::data::dataset();
        let account = data.entity("account").unwrap();
        assert_eq!(
            parse_select("name,_ownerid_value", account).unwrap(),
            ["name", "_ownerid_value"]
        );
        let error = parse_select("Name", account).unwrap_err();
        assert_eq!(
            error.message,
            "Could not find a property named 'Name' on type 'Microsoft.Dynamics.CRM.account'."
        );
        let order = parse_orderby("revenue desc, name", account).unwrap();
        assert_eq!(order.len(), 2);
        assert!(order[0].descending);
        assert!(parse_orderby("name sideways", account).is_err());
        assert!(parse_orderby("nope", account).is_err());
    }

    #[test]
    fn values_order_nulls_first_and_text_without_case() {
        use serde_json::json;
        assert_eq!(compare_values(None, Some(&json!(1))), Ordering::Less);
        assert_eq!(
            compare_values(Some(&json!("apple")), Some(&json!("Banana"))),
            Ordering::Less
        );
        assert_eq!(
            compare_values(Some(&json!(10)), Some(&json!(9.5))),
            Ordering::Greater
        );
    }
}
