//! Errors as RFC 9457 problem documents (`application/problem+json`), carrying
//! the same stable `kind` the CLI's JSON errors carry.

use crate::cli::failure;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub kind: String,
    pub detail: String,
    /// Members beside the standard ones (e.g. `retry_after_seconds`).
    pub extra: Map<String, Value>,
}

/// The HTTP status of an error kind: the contract's kinds, the CLI's and the
/// API's own.
pub fn status_for(kind: &str) -> StatusCode {
    match kind {
        "not-found" | "no-integration" => StatusCode::NOT_FOUND,
        "usage" | "ambiguous" | "bad-request" => StatusCode::BAD_REQUEST,
        "unauthenticated" => StatusCode::UNAUTHORIZED,
        "forbidden" => StatusCode::FORBIDDEN,
        "invalid-input" | "invalid" | "limit" | "unauthorized" => StatusCode::UNPROCESSABLE_ENTITY,
        "duplicate" | "in-use" | "already-running" | "not-linked" | "disabled" | "not-due"
        | "needs-sign-in" => StatusCode::CONFLICT,
        "too-large" => StatusCode::PAYLOAD_TOO_LARGE,
        "unsupported-media-type" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "throttled" => StatusCode::TOO_MANY_REQUESTS,
        "upstream" | "plugin-failure" | "host-refused" => StatusCode::BAD_GATEWAY,
        "host-limit" => StatusCode::GATEWAY_TIMEOUT,
        "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl Problem {
    pub fn new(kind: &str, detail: impl Into<String>) -> Problem {
        Problem {
            status: status_for(kind),
            kind: kind.to_string(),
            detail: detail.into(),
            extra: Map::new(),
        }
    }

    pub fn with(mut self, member: &str, value: Value) -> Problem {
        self.extra.insert(member.to_string(), value);
        self
    }

    /// What a caller outside the scope of an id is told: the same as for an
    /// id that does not exist, so ids of others cannot be probed.
    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Problem {
        Problem::new("not-found", format!("no {what} with id {id}"))
    }

    fn from_json(rejection: &JsonRejection) -> Problem {
        let kind = match rejection {
            JsonRejection::MissingJsonContentType(_) => "unsupported-media-type",
            JsonRejection::BytesRejection(_)
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                "too-large"
            }
            _ => "bad-request",
        };
        // serde's message names the field and what was wrong with it.
        Problem::new(kind, rejection.body_text())
    }
}

impl From<JsonRejection> for Problem {
    fn from(rejection: JsonRejection) -> Problem {
        Problem::from_json(&rejection)
    }
}

impl From<anyhow::Error> for Problem {
    fn from(error: anyhow::Error) -> Problem {
        let kind = failure::kind(&error);
        let document = failure::error_json(&error);
        let mut problem = Problem::new(kind, format!("{error:#}"));
        if let Some(Value::Object(members)) = document.get("error") {
            for (key, value) in members {
                if !matches!(key.as_str(), "kind" | "message") && !value.is_null() {
                    problem.extra.insert(key.clone(), value.clone());
                }
            }
        }
        if problem.status.is_server_error() && problem.status != StatusCode::BAD_GATEWAY {
            tracing::error!(kind, "request failed: {error:#}");
        }
        problem
    }
}

/// Every error of the platform's modules becomes a problem through its kind.
macro_rules! problem_from {
    ($($error:ty),* $(,)?) => {$(
        impl From<$error> for Problem {
            fn from(error: $error) -> Problem {
                Problem::from(anyhow::Error::from(error))
            }
        }
    )*};
}

problem_from!(
    crate::db::DbError,
    crate::goals::admin::AdminError,
    crate::goals::keyresults::KeyResultError,
    crate::goals::linking::LinkError,
    crate::goals::sync::SyncError,
    crate::goals::tokens::TokenError,
    crate::connections::ConnectionError,
    crate::runtime::CallError,
    crate::integrations::UnknownIntegration,
);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("type".into(), json!("about:blank"));
        body.insert(
            "title".into(),
            json!(self.status.canonical_reason().unwrap_or("Error")),
        );
        body.insert("status".into(), json!(self.status.as_u16()));
        body.insert("detail".into(), json!(self.detail));
        body.insert("kind".into(), json!(self.kind));
        let retry_after = self
            .extra
            .get("retry_after_seconds")
            .and_then(Value::as_u64);
        body.extend(self.extra);
        let mut response = (self.status, axum::Json(Value::Object(body))).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
