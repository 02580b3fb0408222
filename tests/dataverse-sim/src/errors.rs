//! The OData error answer of the Web API: `{"error":{"code":"0x...","message":"..."}}`
//! with the HTTP status Dataverse uses for the case.

use serde_json::{Value, json};

/// Dataverse codes used by the simulator. Where the documentation shows a code for a
/// case, that code is used; the others are Dataverse's general codes for the kind.
pub mod codes {
    /// Unknown property in `$select`/`$filter`/`$orderby` (the troubleshooting page
    /// shows `0x0` for "Could not find a property named ...").
    pub const PROPERTY_NOT_FOUND: &str = "0x0";
    /// Unknown entity set, function or path segment.
    pub const RESOURCE_NOT_FOUND: &str = "0x8006088a";
    /// OData URI parse errors (syntax errors, unsupported options).
    pub const ODATA_QUERY: &str = "0x80060888";
    /// A record that does not exist.
    pub const OBJECT_DOES_NOT_EXIST: &str = "0x80040217";
    /// Missing, unknown or expired access token.
    pub const UNAUTHORIZED: &str = "0x80040220";
    /// An argument (FetchXML, paging, condition value) that is not acceptable.
    pub const INVALID_ARGUMENT: &str = "0x80040203";
    /// FetchXML names an attribute its entity does not have.
    pub const QUERY_BUILDER_NO_ATTRIBUTE: &str = "0x80041103";
    /// FetchXML names an entity that does not exist.
    pub const QUERY_BUILDER_NO_ENTITY: &str = "0x80041102";
    /// More than 15 link-entities in one query.
    pub const LINK_ENTITY_LIMIT: &str = "0x8004430D";
    /// An aggregate over more rows than the aggregate limit.
    pub const AGGREGATE_LIMIT: &str = "0x8004E023";
}

/// An error answer of the Web API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ODataError {
    /// HTTP status of the answer.
    pub status: u16,
    /// The `error.code` string, e.g. `0x8004E023`.
    pub code: String,
    /// The `error.message` string.
    pub message: String,
}

impl ODataError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        ODataError {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, codes::INVALID_ARGUMENT, message)
    }

    /// A query that Dataverse would run but the simulator does not implement.
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(501, "0x0", message)
    }

    pub fn property_not_found(property: &str, type_name: &str) -> Self {
        Self::new(
            400,
            codes::PROPERTY_NOT_FOUND,
            format!("Could not find a property named '{property}' on type '{type_name}'."),
        )
    }

    pub fn segment_not_found(segment: &str) -> Self {
        Self::new(
            404,
            codes::RESOURCE_NOT_FOUND,
            format!("Resource not found for the segment '{segment}'."),
        )
    }

    pub fn record_not_found(entity: &str, id: &str) -> Self {
        Self::new(
            404,
            codes::OBJECT_DOES_NOT_EXIST,
            format!("Entity '{entity}' With Id = {id} Does Not Exist"),
        )
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, codes::UNAUTHORIZED, message)
    }

    pub fn aggregate_limit() -> Self {
        Self::new(
            400,
            codes::AGGREGATE_LIMIT,
            "AggregateQueryRecordLimit exceeded. Cannot perform this operation.",
        )
    }

    pub fn no_attribute(entity: &str, attribute: &str) -> Self {
        Self::new(
            400,
            codes::QUERY_BUILDER_NO_ATTRIBUTE,
            format!(
                "'{entity}' entity doesn't contain attribute with Name = '{attribute}' and \
                 NameMapping = 'Logical'."
            ),
        )
    }

    /// The JSON body `{"error":{"code":..,"message":..}}`.
    pub fn body(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message}})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_documented_shape() {
        let body = ODataError::aggregate_limit().body();
        assert_eq!(body["error"]["code"], "0x8004E023");
        assert_eq!(
            body["error"]["message"],
            "AggregateQueryRecordLimit exceeded. Cannot perform this operation."
        );
        assert_eq!(body.as_object().map(|o| o.len()), Some(1));
    }

    #[test]
    fn property_message_names_the_type() {
        let error = ODataError::property_not_found("x", "Microsoft.Dynamics.CRM.savedquery");
        assert_eq!(error.status, 400);
        assert_eq!(
            error.message,
            "Could not find a property named 'x' on type 'Microsoft.Dynamics.CRM.savedquery'."
        );
    }
}
