//! Turning Dataverse, identity-platform and transport failures into the contract's
//! error cases, each with a message that says what to do.

use crate::platform::{HttpResponse, TransportError};
use crate::types::{Error, Throttle};
use serde::Deserialize;

/// Dataverse's error code when an aggregate covers more than 50,000 rows.
const AGGREGATE_LIMIT_CODES: [&str; 2] = ["0x8004e023", "-2147164125"];

/// When a 429 comes without `Retry-After`, wait this long.
const DEFAULT_RETRY_AFTER_SECONDS: u32 = 60;

/// Longest excerpt of a server message carried into an error.
const MAX_DETAIL: usize = 300;

#[derive(Deserialize)]
struct ODataErrorBody {
    error: ODataError,
}

#[derive(Deserialize)]
struct ODataError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct IdentityErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Dataverse's error code when a query names a column the table does not have.
const NO_ATTRIBUTE_CODE: &str = "0x80041103";

fn error_code(response: &HttpResponse) -> String {
    serde_json::from_slice::<ODataErrorBody>(&response.body)
        .map(|body| body.error.code.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Whether the response is Dataverse refusing an aggregate over more than 50,000
/// rows.
pub fn is_aggregate_limit(response: &HttpResponse) -> bool {
    response.status == 400 && AGGREGATE_LIMIT_CODES.contains(&error_code(response).as_str())
}

/// Maps a non-success Dataverse response. `subject` names what was asked for, e.g.
/// "view 3f2a…", and appears in not-found messages.
pub fn from_dataverse(response: &HttpResponse, subject: &str) -> Error {
    let (code, message) = match serde_json::from_slice::<ODataErrorBody>(&response.body) {
        Ok(body) => (body.error.code.to_ascii_lowercase(), body.error.message),
        Err(_) => (String::new(), String::new()),
    };
    let detail = detail(&message, response.status);
    match response.status {
        429 => throttled(
            response,
            &format!("Dataverse is throttling requests: {detail}"),
        ),
        400 if AGGREGATE_LIMIT_CODES.contains(&code.as_str()) => Error::Limit(
            "the view has more than 50,000 rows, Dataverse's limit for aggregating on the \
             server (0x8004E023); narrow the view with a filter or choose a smaller view"
                .to_string(),
        ),
        400 if code == NO_ATTRIBUTE_CODE => Error::NotFound(format!(
            "a column the metric reads no longer exists in Dataverse ({detail}); choose the \
             column again"
        )),
        400 => Error::Invalid(format!("Dataverse rejected the query: {detail}")),
        401 => Error::Unauthorized(format!(
            "Dataverse refused the access token (401: {detail}); check that the app \
             registration has an application user in this environment, then sign in again"
        )),
        403 => Error::Unauthorized(format!(
            "Dataverse denied access (403: {detail}); an administrator must give the \
             connection's user a security role that can read this data"
        )),
        404 => Error::NotFound(format!(
            "Dataverse has no {subject}: it was deleted or renamed; choose it again"
        )),
        413 | 414 => Error::Limit(format!(
            "the request is too large for Dataverse ({detail}); use a simpler view"
        )),
        status if status >= 500 => Error::Upstream(format!(
            "Dataverse failed ({detail}); the sync will be retried"
        )),
        _ => Error::Upstream(format!("unexpected answer from Dataverse ({detail})")),
    }
}

/// Maps a non-success answer of the identity platform's token endpoint.
pub fn from_identity(response: &HttpResponse, client_id: &str, tenant: &str) -> Error {
    if response.status == 429 {
        return throttled(response, "the identity platform is throttling sign-ins");
    }
    if response.status >= 500 {
        return Error::Upstream(format!(
            "the identity platform failed (HTTP {}); the sign-in will be retried",
            response.status
        ));
    }
    let body: IdentityErrorBody =
        serde_json::from_slice(&response.body).unwrap_or(IdentityErrorBody {
            error: String::new(),
            error_description: String::new(),
        });
    let first_line = body.error_description.lines().next().unwrap_or_default();
    let aadsts = first_line
        .split(':')
        .next()
        .filter(|code| code.starts_with("AADSTS"))
        .unwrap_or_default();
    let what_to_do = match aadsts {
        "AADSTS7000215" => "the client secret is wrong (often its Secret ID was copied \
             instead of its Value): give the secret's Value, or create a new client secret for \
             the app registration, and sign the connection in again with it"
            .to_string(),
        "AADSTS7000222" => "the client secret has expired: create a new client secret for the \
             app registration and sign the connection in again with it"
            .to_string(),
        "AADSTS700016" => format!(
            "application {client_id} does not exist in tenant {tenant}: check the client id \
             and tenant of the connection"
        ),
        "AADSTS90002" | "AADSTS900023" => {
            format!("tenant {tenant} does not exist: check the tenant of the connection")
        }
        "AADSTS500011" => "the environment is not known to this tenant: check the environment \
             URL of the connection"
            .to_string(),
        // Signing in again cannot help with these: only the tenant's administrator
        // can change what the directory allows.
        "AADSTS65001" => format!(
            "application {client_id} has not been granted consent in tenant {tenant}: an \
             administrator of the tenant must grant consent to it (Enterprise applications, \
             Permissions), then sign in again"
        ),
        "AADSTS50105" => format!(
            "the person is not assigned to application {client_id}: an administrator of \
             tenant {tenant} must assign them to it, then sign in again"
        ),
        "AADSTS50057" => format!(
            "the account is disabled: an administrator of tenant {tenant} must re-enable it, \
             then sign in again"
        ),
        "AADSTS53003" => format!(
            "Conditional Access blocked the sign-in: an administrator of tenant {tenant} must \
             adjust the Conditional Access policy for application {client_id}, then sign in \
             again"
        ),
        "AADSTS50076" | "AADSTS50079" | "AADSTS50078" => {
            "multi-factor authentication is required: the connection's owner must sign in \
             again interactively and complete it"
                .to_string()
        }
        "AADSTS50126" => "the user name or password is wrong: the connection's owner must \
             sign in again with the right account"
            .to_string(),
        "AADSTS50173" | "AADSTS70008" | "AADSTS700082" => {
            "the person's sign-in has expired or was revoked (unused for too long, a changed \
             password or a new policy): the connection's owner must sign in again"
                .to_string()
        }
        "AADSTS70019" => {
            "the sign-in code expired before it was used: start the sign-in again".to_string()
        }
        _ if body.error == "authorization_declined" => {
            "the person declined the sign-in: start it again to connect".to_string()
        }
        _ if body.error == "invalid_grant" => "the sign-in is no longer valid: the \
             connection's owner must sign in again"
            .to_string(),
        _ => format!(
            "sign-in was refused ({}): check the connection's tenant, client id and secret",
            if body.error.is_empty() {
                format!("HTTP {}", response.status)
            } else {
                body.error.clone()
            }
        ),
    };
    let code = if aadsts.is_empty() {
        String::new()
    } else {
        format!("{aadsts}: ")
    };
    Error::Unauthorized(format!("{code}{what_to_do}"))
}

/// Maps a request that got no response.
pub fn from_transport(error: &TransportError, url: &str) -> Error {
    let origin = origin(url);
    match error {
        TransportError::Denied(reason) => Error::Invalid(format!(
            "the host refused the request to {origin} ({reason}); the connection's URLs \
             decide where the plugin may connect"
        )),
        TransportError::Failed(reason) => Error::Upstream(format!(
            "could not reach {origin}: {reason}; check the environment URL and that this \
             machine can reach it; the sync will be retried"
        )),
    }
}

/// A success status whose body is not what Dataverse documents.
pub fn unexpected_body(what: &str, problem: &str) -> Error {
    Error::Upstream(format!(
        "Dataverse sent an unexpected {what} ({problem}); the sync will be retried"
    ))
}

fn throttled(response: &HttpResponse, message: &str) -> Error {
    let retry_after_seconds = response
        .header("retry-after")
        .and_then(|value| value.trim().parse::<u32>().ok())
        .unwrap_or(DEFAULT_RETRY_AFTER_SECONDS);
    Error::Throttled(Throttle {
        retry_after_seconds,
        message: format!("{message}; retry after {retry_after_seconds} s"),
    })
}

fn detail(message: &str, status: u16) -> String {
    let message = message.trim();
    if message.is_empty() {
        return format!("HTTP {status}");
    }
    let mut excerpt: String = message.chars().take(MAX_DETAIL).collect();
    if excerpt.len() < message.len() {
        excerpt.push('…');
    }
    format!("HTTP {status}: {excerpt}")
}

/// `scheme://host[:port]` of a URL, so messages never echo query strings.
pub fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[after_scheme..]
        .find('/')
        .map(|i| i + after_scheme)
        .unwrap_or(url.len());
    &url[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn dataverse_statuses_map_to_actionable_cases() {
        let throttled = from_dataverse(
            &response(
                429,
                &[("retry-after", "17")],
                r#"{"error":{"code":"0x80072322","message":"Number of requests exceeded"}}"#,
            ),
            "view",
        );
        match throttled {
            Error::Throttled(t) => assert_eq!(t.retry_after_seconds, 17),
            other => panic!("{other:?}"),
        }
        let limit = from_dataverse(
            &response(
                400,
                &[],
                r#"{"error":{"code":"0x8004E023","message":"AggregateQueryRecordLimit exceeded. Cannot perform this operation."}}"#,
            ),
            "view",
        );
        assert!(matches!(limit, Error::Limit(m) if m.contains("50,000")));
        assert!(matches!(
            from_dataverse(&response(404, &[], r#"{"error":{"code":"","message":"Not found"}}"#), "view v1"),
            Error::NotFound(m) if m.contains("view v1")
        ));
        assert!(matches!(
            from_dataverse(&response(401, &[], ""), "x"),
            Error::Unauthorized(_)
        ));
        assert!(matches!(
            from_dataverse(&response(503, &[], "<html>down</html>"), "x"),
            Error::Upstream(m) if m.contains("503")
        ));
        assert!(matches!(
            from_dataverse(&response(400, &[], r#"{"error":{"code":"0x80040217","message":"bad filter"}}"#), "x"),
            Error::Invalid(m) if m.contains("bad filter")
        ));
    }

    #[test]
    fn identity_errors_name_the_aadsts_code_and_the_fix() {
        let body = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1","error_codes":[7000215]}"#;
        match from_identity(&response(401, &[], body), "app", "contoso") {
            Error::Unauthorized(message) => {
                assert!(message.starts_with("AADSTS7000215:"), "{message}");
                assert!(message.contains("client secret"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            from_identity(&response(400, &[], r#"{"error":"unauthorized_client","error_description":"AADSTS700016: Application not found"}"#), "c1", "t1"),
            Error::Unauthorized(m) if m.contains("c1") && m.contains("t1")
        ));
        assert!(matches!(
            from_identity(&response(502, &[], ""), "c", "t"),
            Error::Upstream(_)
        ));
    }

    /// Whose action each AADSTS code calls for.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Who {
        /// An administrator of the tenant.
        Admin,
        /// The person, signing in again.
        Person,
        /// Whoever manages the connection's app registration and settings.
        Manager,
    }

    #[test]
    fn each_aadsts_code_says_who_must_act_and_what_to_do() {
        let table: [(&str, Who, &[&str]); 14] = [
            (
                "AADSTS65001",
                Who::Admin,
                &["grant consent", "application c1"],
            ),
            (
                "AADSTS50105",
                Who::Admin,
                &["assign them", "application c1"],
            ),
            ("AADSTS50057", Who::Admin, &["disabled", "re-enable"]),
            ("AADSTS53003", Who::Admin, &["Conditional Access", "adjust"]),
            (
                "AADSTS50076",
                Who::Person,
                &["multi-factor", "interactively"],
            ),
            (
                "AADSTS50079",
                Who::Person,
                &["multi-factor", "interactively"],
            ),
            ("AADSTS50126", Who::Person, &["password is wrong"]),
            ("AADSTS70008", Who::Person, &["expired"]),
            ("AADSTS700082", Who::Person, &["expired"]),
            ("AADSTS50173", Who::Person, &["expired"]),
            (
                "AADSTS700016",
                Who::Manager,
                &["application c1 does not exist", "t1"],
            ),
            ("AADSTS7000215", Who::Manager, &["client secret is wrong"]),
            (
                "AADSTS7000222",
                Who::Manager,
                &["client secret has expired"],
            ),
            ("AADSTS90002", Who::Manager, &["tenant t1 does not exist"]),
        ];
        // Every code is checked before failing, so a failure lists them all.
        let mut wrong = Vec::new();
        for (code, who, wording) in table {
            let body = format!(
                r#"{{"error":"invalid_grant","error_description":"{code}: text.\r\nTrace ID: 1"}}"#
            );
            let message = match from_identity(&response(400, &[], &body), "c1", "t1") {
                Error::Unauthorized(message) => message,
                other => {
                    wrong.push(format!("{code}: not unauthorized but {other:?}"));
                    continue;
                }
            };
            let admin = message.contains("an administrator of the tenant must")
                || message.contains("an administrator of tenant t1 must");
            let person = message.contains("the connection's owner must sign in again");
            if !message.starts_with(&format!("{code}: "))
                || !wording.iter().all(|words| message.contains(words))
                || admin != (who == Who::Admin)
                || person != (who == Who::Person)
            {
                wrong.push(format!("{code} (for {who:?}): {message}"));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn transport_errors_name_only_the_origin() {
        let error = from_transport(
            &TransportError::Failed("connection refused".into()),
            "https://org.crm.dynamics.com/api/data/v9.2/x?secret=1",
        );
        match error {
            Error::Upstream(m) => {
                assert!(m.contains("https://org.crm.dynamics.com"));
                assert!(!m.contains("secret"));
            }
            other => panic!("{other:?}"),
        }
    }
}
