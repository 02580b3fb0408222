//! The web console: a few standard JavaScript modules, HTML and CSS embedded in
//! the binary and served by `goals-host serve` at `/`. The page talks only to
//! the API; the token it signs in with lives in an HttpOnly, SameSite=Strict
//! cookie, never in the page, a URL or the browser's storage.

mod assets;

use crate::api::{ApiState, Body, Problem};
use crate::goals::tokens::{self, Token};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

/// The cookie that carries a console session's token.
pub const SESSION_COOKIE: &str = "goals_session";
/// The header every console request sends; a state-changing request that comes
/// with the cookie but without it is refused (a cross-site form cannot set it,
/// and a cross-site script may not without a CORS preflight this host never
/// grants).
pub const CSRF_HEADER: &str = "x-goals-console";

/// What the console's pages may load and run: only this host's own files, no
/// inline script or style, never framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
    base-uri 'none'; form-action 'self'";

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{file}", get(asset))
        .route(
            "/console/session",
            get(session).post(sign_in).delete(sign_out),
        )
}

/// Headers every console response carries.
fn hardened(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn index() -> Response {
    asset_response("index.html")
}

async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    asset_response(&file)
}

fn asset_response(file: &str) -> Response {
    match assets::find(file) {
        Some((content_type, body)) => hardened(
            (
                [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
                body,
            )
                .into_response(),
        ),
        None => {
            hardened(Problem::new("not-found", format!("no console file '{file}'")).into_response())
        }
    }
}

/// The value of cookie `name` in a request's headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn session_json(token: &Token) -> serde_json::Value {
    json!({
        "role": token.role.as_str(),
        "tenant_id": token.tenant_id,
        "tenant": token.tenant,
        "organization_id": token.organization_id,
        "organization": token.organization,
        "user": token.user,
    })
}

/// The cookie's attributes: HttpOnly (no script reads it), SameSite=Strict (no
/// other site sends it), and Secure unless the console is reached over plain
/// HTTP on this machine (a browser keeps a Secure cookie of http://localhost
/// too, but not of another plain-HTTP host, where a proxy should add TLS).
fn cookie_attributes(headers: &HeaderMap) -> &'static str {
    let forwarded_https = headers
        .get("x-forwarded-proto")
        .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"));
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let loopback = ["localhost", "127.0.0.1", "[::1]"]
        .iter()
        .any(|name| host == *name || host.starts_with(&format!("{name}:")));
    if forwarded_https || !loopback {
        "Path=/; HttpOnly; SameSite=Strict; Secure"
    } else {
        "Path=/; HttpOnly; SameSite=Strict"
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    token: String,
}

fn require_console_header(headers: &HeaderMap) -> Result<(), Problem> {
    if headers.contains_key(CSRF_HEADER) {
        Ok(())
    } else {
        Err(Problem::new(
            "forbidden",
            format!("console requests that change something carry the {CSRF_HEADER} header"),
        ))
    }
}

async fn sign_in(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Body(body): Body<SignIn>,
) -> Result<Response, Problem> {
    require_console_header(&headers)?;
    let token = body.token.trim();
    let Some(found) = tokens::authenticate(&state.db, token).await? else {
        return Err(Problem::new(
            "unauthenticated",
            "this token is not known or was revoked; ask an admin for one (`goals-host token \
             create`)",
        ));
    };
    let cookie = format!("{SESSION_COOKIE}={token}; {}", cookie_attributes(&headers));
    let mut response = axum::Json(session_json(&found)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|_| {
            Problem::new("bad-request", "a token is made of letters and digits only")
        })?,
    );
    Ok(hardened(response))
}

async fn session(State(state): State<ApiState>, headers: HeaderMap) -> Result<Response, Problem> {
    let signed_out = || Problem::new("unauthenticated", "not signed in");
    let token = cookie(&headers, SESSION_COOKIE).ok_or_else(signed_out)?;
    let found = tokens::authenticate(&state.db, token)
        .await?
        .ok_or_else(signed_out)?;
    Ok(hardened(axum::Json(session_json(&found)).into_response()))
}

async fn sign_out(headers: HeaderMap) -> Result<Response, Problem> {
    require_console_header(&headers)?;
    let cleared = format!(
        "{SESSION_COOKIE}=; Max-Age=0; {}",
        cookie_attributes(&headers)
    );
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(&cleared) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(hardened(response))
}
