//! A signed-in conversation with one Dataverse environment, counting what it costs.

use crate::auth;
use crate::batch;
use crate::connection::Connection;
use crate::errors;
use crate::platform::{HttpRequest, HttpResponse, Level, Platform, TransportError};
use crate::types::{Error, Throttle};
use serde::de::DeserializeOwned;
use std::time::Duration;

const API_PATH: &str = "/api/data/v9.2/";

/// The wait before the one retry a call makes of a transient failure (a
/// 502/503/504, a dropped connection, a garbled answer). One retry rides out a
/// blip; an outage is the scheduler's to wait out (it backs off between syncs),
/// so a failing sync costs two requests, not five.
pub const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Retries one call makes in all, of transient failures and throttling alike.
pub const MAX_RETRIES: u32 = 1;

/// The most one call waits in total for retries and `Retry-After`, so it ends
/// well inside the host's call deadline (60 s by default). A longer
/// `Retry-After` is handed to the scheduler as `throttled`.
pub const RETRY_BUDGET: Duration = Duration::from_secs(15);

/// Time a wait must leave before the host's deadline, for the retried request
/// and the work after it. The host stops a call at its deadline without any
/// result, so a wait that would not leave this much is not made: the call ends
/// with the error it has (`throttled` with the delay, or `upstream`), which the
/// scheduler acts on.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// When a 429 comes without `Retry-After`, wait this long.
const DEFAULT_RETRY_AFTER_SECONDS: u32 = 60;

/// Annotations the plugin reads: formatted values, aliased-column names, lookup
/// targets, and the paging annotations of FetchXML.
const PREFER_ANNOTATIONS: &str = "odata.include-annotations=\"*\"";

pub struct Session<'a> {
    platform: &'a dyn Platform,
    conn: &'a Connection,
    token: Option<String>,
    requests: u32,
    bytes_received: u64,
    /// Time spent waiting to retry, against [`RETRY_BUDGET`].
    waited: Duration,
    /// Transient failures retried so far.
    retries: u32,
}

impl<'a> Session<'a> {
    pub fn new(platform: &'a dyn Platform, conn: &'a Connection) -> Self {
        Session {
            platform,
            conn,
            token: None,
            requests: 0,
            bytes_received: 0,
            waited: Duration::ZERO,
            retries: 0,
        }
    }

    /// Waits before a retry if the budget allows it; false when it does not.
    /// The budget is [`RETRY_BUDGET`] in all, and never more than the time left
    /// in the call minus [`DEADLINE_MARGIN`].
    fn wait(&mut self, pause: Duration) -> bool {
        let fits_deadline = self
            .platform
            .time_left()
            .is_none_or(|left| pause.saturating_add(DEADLINE_MARGIN) <= left);
        if self.waited + pause > RETRY_BUDGET || !fits_deadline {
            return false;
        }
        self.waited += pause;
        self.platform.sleep(pause);
        true
    }

    /// Waits `pause` before the call's one retry; false when it was used, or the
    /// wait does not fit the budget or the deadline.
    fn retry_after(&mut self, pause: Duration) -> bool {
        if self.retries >= MAX_RETRIES || !self.wait(pause) {
            return false;
        }
        self.retries += 1;
        true
    }

    /// Waits before retrying a transient failure; false when it cannot.
    fn back_off(&mut self) -> bool {
        self.retry_after(RETRY_PAUSE)
    }

    /// The platform, borrowed for as long as the session's own borrow of it.
    pub fn platform(&self) -> &'a dyn Platform {
        self.platform
    }

    /// HTTP requests made so far, sign-in included.
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// Response body bytes received so far.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// GETs `path_and_query` under the Web API root and decodes the JSON answer.
    /// `subject` names what is asked for in a not-found error.
    pub fn get_json<T: DeserializeOwned>(
        &mut self,
        path_and_query: &str,
        subject: &str,
    ) -> Result<T, Error> {
        loop {
            let response = self.get(path_and_query, subject)?;
            match serde_json::from_slice(&response.body) {
                Ok(value) => return Ok(value),
                // A garbled answer (cut off, or a proxy's HTML page sent as 200) is
                // transient: ask again rather than trust any of it.
                Err(e) if !self.back_off() => {
                    return Err(errors::unexpected_body(
                        &format!("answer for {subject}"),
                        &e.to_string(),
                    ));
                }
                Err(_) => {}
            }
        }
    }

    /// GETs `path_and_query` under the Web API root; any non-success status becomes
    /// an error.
    pub fn get(&mut self, path_and_query: &str, subject: &str) -> Result<HttpResponse, Error> {
        let url = format!(
            "{}{API_PATH}{path_and_query}",
            auth::environment_url(self.conn)
        );
        self.signed_in(subject, |token| {
            HttpRequest::get(url.clone())
                .header("accept", "application/json")
                .header("odata-maxversion", "4.0")
                .header("odata-version", "4.0")
                .header("if-none-match", "null")
                .header("prefer", PREFER_ANNOTATIONS)
                .header("authorization", format!("Bearer {token}"))
        })
    }

    /// GETs `path_and_query` and returns the answer whatever its status (after
    /// the usual retries): for reads whose failure the caller interprets.
    pub fn get_raw(&mut self, path_and_query: &str) -> Result<HttpResponse, Error> {
        let mut parts = self.batch(&[path_and_query.to_string()], "the request")?;
        parts
            .pop()
            .ok_or_else(|| errors::unexpected_body("batch answer", "no answer"))
    }

    /// GETs every `path_and_query` in one `$batch` request and returns each answer,
    /// in order, whatever its status: the caller decides what a failed part means.
    pub fn batch(&mut self, paths: &[String], subject: &str) -> Result<Vec<HttpResponse>, Error> {
        if paths.len() > batch::MAX_PARTS {
            return Err(Error::Limit(format!(
                "{} queries are more than the {} a Dataverse batch allows",
                paths.len(),
                batch::MAX_PARTS
            )));
        }
        let url = format!("{}{API_PATH}$batch", auth::environment_url(self.conn));
        let boundary = format!("batch_goals_{}", self.requests);
        let absolute: Vec<String> = paths.iter().map(|p| format!("{API_PATH}{p}")).collect();
        // Batched reads are aggregates and probes: formatted values would only add
        // bytes to every sync.
        let body = batch::request_body(&boundary, &absolute, None);
        let content_type = format!("multipart/mixed; boundary=\"{boundary}\"");
        let response = self.signed_in(subject, |token| {
            HttpRequest::post(url.clone(), &content_type, body.clone())
                .header("accept", "application/json")
                .header("odata-maxversion", "4.0")
                .header("odata-version", "4.0")
                .header("if-none-match", "null")
                // Every part's answer is wanted, failed or not.
                .header("prefer", "odata.continue-on-error")
                .header("authorization", format!("Bearer {token}"))
        })?;
        let content_type = response.header("content-type").unwrap_or_default();
        let problem = match batch::parse_response(content_type, &response.body) {
            Ok(parts) if parts.len() == paths.len() => return Ok(parts),
            Ok(parts) => format!("{} answers to {} queries", parts.len(), paths.len()),
            Err(e) => e.to_string(),
        };
        // A garbled batch answer is transient too.
        if self.back_off() {
            return self.batch(paths, subject);
        }
        Err(errors::unexpected_body("batch answer", &problem))
    }

    /// Sends the request `build` makes with a token; a 401 on a cached token gets
    /// one fresh token and one retry, never a loop.
    /// Transient failures (502/503/504, a dropped connection) are retried with
    /// backoff and a 429 after its `Retry-After`, within [`RETRY_BUDGET`].
    fn signed_in(
        &mut self,
        subject: &str,
        build: impl Fn(&str) -> HttpRequest,
    ) -> Result<HttpResponse, Error> {
        let mut refreshed = false;
        loop {
            let token = self.token()?;
            let request = build(&token);
            let response = match self.send_raw(&request) {
                Ok(response) => response,
                Err(TransportError::Failed(_)) if self.back_off() => continue,
                Err(error) => return Err(errors::from_transport(&error, &request.url)),
            };
            match response.status {
                200..=299 => return Ok(response),
                401 if !refreshed => {
                    // The token may have expired or been revoked early.
                    refreshed = true;
                    self.token = None;
                    auth::forget_token(self.platform, self.conn);
                }
                429 => {
                    let seconds =
                        retry_after_seconds(&response).unwrap_or(DEFAULT_RETRY_AFTER_SECONDS);
                    // At least a second, so `Retry-After: 0` still spends the budget
                    // and a server that always answers so is not asked forever.
                    let pause = Duration::from_secs(u64::from(seconds.max(1)));
                    if !self.retry_after(pause) {
                        return Err(Error::Throttled(Throttle {
                            retry_after_seconds: seconds,
                            message: format!(
                                "Dataverse is throttling requests; retry after {seconds} s"
                            ),
                        }));
                    }
                }
                // Unavailable for a stated while: waited out when it fits the
                // call, else handed to the scheduler to wait, like a 429.
                503 if let Some(seconds) = retry_after_seconds(&response) => {
                    let pause = Duration::from_secs(u64::from(seconds.max(1)));
                    if !self.retry_after(pause) {
                        return Err(Error::Throttled(Throttle {
                            retry_after_seconds: seconds,
                            message: format!(
                                "Dataverse is unavailable (HTTP 503); retry after {seconds} s"
                            ),
                        }));
                    }
                }
                502..=504 if self.back_off() => {}
                _ => return Err(errors::from_dataverse(&response, subject)),
            }
        }
    }

    fn token(&mut self) -> Result<String, Error> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        let token = match auth::cached_token(self.platform, self.conn) {
            Some(token) => token,
            None => {
                self.platform.log(Level::Info, "signing in");
                let request = auth::token_request(self.platform, self.conn)?;
                let response = self.send(&request)?;
                auth::accept_token_response(self.platform, self.conn, &response)?
            }
        };
        self.token = Some(token.clone());
        Ok(token)
    }

    /// The connection the session acts on.
    pub fn connection(&self) -> &'a Connection {
        self.conn
    }

    /// Sends a request as it is (no token), counting it.
    pub fn send(&mut self, request: &HttpRequest) -> Result<HttpResponse, Error> {
        self.send_raw(request)
            .map_err(|e| errors::from_transport(&e, &request.url))
    }

    fn send_raw(&mut self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        self.requests += 1;
        let response = self.platform.send(request)?;
        self.bytes_received += response.body.len() as u64;
        Ok(response)
    }
}

/// `Retry-After` in seconds, when the answer gives it as a number (Dataverse
/// does; an HTTP date is not used by it).
fn retry_after_seconds(response: &HttpResponse) -> Option<u32> {
    response
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u32>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::Credential;
    use crate::platform::fake::FakePlatform;

    fn connection() -> Connection {
        Connection {
            id: "c1".into(),
            environment_url: "https://org.crm.dynamics.com".into(),
            authority_url: "https://login.microsoftonline.com".into(),
            tenant: "t1".into(),
            client_id: "app".into(),
            credential: Credential::ClientSecret("secret".into()),
        }
    }

    const TOKEN: &str = r#"{"token_type":"Bearer","expires_in":3599,"access_token":"tok"}"#;

    #[test]
    fn signs_in_once_and_sends_documented_headers() {
        let platform = FakePlatform::default();
        platform
            .respond(200, &[], TOKEN)
            .respond(200, &[], r#"{"value":[]}"#)
            .respond(200, &[], r#"{"value":[1]}"#);
        let conn = connection();
        let mut session = Session::new(&platform, &conn);
        let _: serde_json::Value = session.get_json("appmodules", "apps").unwrap();
        let _: serde_json::Value = session.get_json("appmodules", "apps").unwrap();
        assert_eq!(session.requests(), 3);
        assert_eq!(session.bytes_received(), (TOKEN.len() + 12 + 13) as u64);
        let sent = platform.sent.borrow();
        assert_eq!(
            sent[1].url,
            "https://org.crm.dynamics.com/api/data/v9.2/appmodules"
        );
        let header = |name: &str| {
            sent[1]
                .headers
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(header("authorization").as_deref(), Some("Bearer tok"));
        assert_eq!(header("odata-version").as_deref(), Some("4.0"));
        assert!(header("prefer").unwrap().contains("include-annotations"));
    }

    #[test]
    fn a_transient_failure_is_retried_once() {
        for failure in [Answer::Status(503), Answer::Reset, Answer::Garbled] {
            let platform = FakePlatform::default();
            platform.respond(200, &[], TOKEN);
            failure.give(&platform);
            platform.respond(200, &[], r#"{"value":[]}"#);
            let conn = connection();
            let mut session = Session::new(&platform, &conn);
            let _: serde_json::Value = session.get_json("appmodules", "apps").unwrap();
            assert_eq!(session.requests(), 3, "{failure:?}");
            assert_eq!(*platform.slept.borrow(), [RETRY_PAUSE], "{failure:?}");
        }
        // A second failure in the same call is the scheduler's to retry.
        let platform = FakePlatform::default();
        platform.respond(200, &[], TOKEN);
        Answer::Status(502).give(&platform);
        Answer::Reset.give(&platform);
        platform.respond(200, &[], r#"{"value":[]}"#);
        let conn = connection();
        let mut session = Session::new(&platform, &conn);
        assert!(matches!(
            session.get_json::<serde_json::Value>("appmodules", "apps"),
            Err(Error::Upstream(_))
        ));
        assert_eq!(
            session.requests(),
            3,
            "the token, the request and one retry"
        );
    }

    /// A transient failure the fake platform gives.
    #[derive(Debug, Clone, Copy)]
    enum Answer {
        Status(u16),
        Reset,
        Garbled,
    }

    impl Answer {
        fn give(self, platform: &FakePlatform) {
            match self {
                Answer::Status(status) => {
                    platform.respond(status, &[], "");
                }
                Answer::Reset => {
                    platform.fail(crate::platform::TransportError::Failed("reset".into()));
                }
                Answer::Garbled => {
                    platform.respond(200, &[], "<html>a proxy's page</html>");
                }
            }
        }
    }

    #[test]
    fn a_503_with_retry_after_is_waited_out_or_handed_on_as_throttled() {
        let platform = FakePlatform::default();
        platform
            .respond(200, &[], TOKEN)
            .respond(503, &[("Retry-After", "3")], "")
            .respond(200, &[], "{}");
        let conn = connection();
        let mut session = Session::new(&platform, &conn);
        session.get("WhoAmI", "identity").unwrap();
        assert_eq!(*platform.slept.borrow(), [Duration::from_secs(3)]);

        let platform = FakePlatform::default();
        platform
            .respond(200, &[], TOKEN)
            .respond(503, &[("Retry-After", "600")], "");
        let mut session = Session::new(&platform, &conn);
        match session.get("WhoAmI", "identity") {
            Err(Error::Throttled(throttle)) => assert_eq!(throttle.retry_after_seconds, 600),
            other => panic!("{other:?}"),
        }
        assert!(
            platform.slept.borrow().is_empty(),
            "600 s do not fit a call"
        );
    }

    #[test]
    fn retries_stop_when_the_budget_is_spent() {
        let platform = FakePlatform::default();
        platform.respond(200, &[], TOKEN);
        for _ in 0..5 {
            platform.respond(502, &[], "");
        }
        let conn = connection();
        let mut session = Session::new(&platform, &conn);
        assert!(matches!(
            session.get("appmodules", "apps"),
            Err(Error::Upstream(_))
        ));
        assert_eq!(platform.slept.borrow().len(), MAX_RETRIES as usize);
        assert_eq!(
            platform.sent.borrow().len(),
            3,
            "the token, the request, one retry"
        );
    }

    #[test]
    fn throttling_waits_for_retry_after_within_the_budget_only() {
        let platform = FakePlatform::default();
        platform
            .respond(200, &[], TOKEN)
            .respond(429, &[("Retry-After", "2")], "")
            .respond(200, &[], "{}")
            .respond(429, &[("Retry-After", "120")], "");
        let conn = connection();
        let mut session = Session::new(&platform, &conn);
        session.get("WhoAmI", "identity").unwrap();
        assert_eq!(*platform.slept.borrow(), [Duration::from_secs(2)]);
        match session.get("WhoAmI", "identity") {
            Err(Error::Throttled(throttle)) => assert_eq!(throttle.retry_after_seconds, 120),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            platform.slept.borrow().len(),
            1,
            "no wait beyond the budget"
        );
    }

    #[test]
    fn a_retry_after_past_the_call_deadline_is_returned_as_throttled_at_once() {
        let platform = FakePlatform {
            deadline: Some(Duration::from_secs(5)),
            ..FakePlatform::default()
        };
        platform
            .respond(200, &[], TOKEN)
            .respond(429, &[("Retry-After", "10")], "")
            .respond(429, &[("Retry-After", "2")], "")
            .respond(200, &[], "{}")
            .respond(429, &[("Retry-After", "2")], "");
        let conn = connection();
        let mut session = Session::new(&platform, &conn);
        match session.get("WhoAmI", "identity") {
            Err(Error::Throttled(throttle)) => assert_eq!(throttle.retry_after_seconds, 10),
            other => panic!("{other:?}"),
        }
        assert!(platform.slept.borrow().is_empty(), "10 s do not fit in 5");
        // 2 s and the margin fit in 5 s...
        session.get("WhoAmI", "identity").unwrap();
        assert_eq!(*platform.slept.borrow(), [Duration::from_secs(2)]);
        // ...but no longer in the 3 s left after waiting them.
        match session.get("WhoAmI", "identity") {
            Err(Error::Throttled(throttle)) => assert_eq!(throttle.retry_after_seconds, 2),
            other => panic!("{other:?}"),
        }
        assert_eq!(platform.slept.borrow().len(), 1);
    }

    #[test]
    fn backoff_stops_where_the_call_deadline_leaves_no_room() {
        let platform = FakePlatform {
            deadline: Some(Duration::from_millis(2500)),
            ..FakePlatform::default()
        };
        platform.respond(200, &[], TOKEN);
        for _ in 0..5 {
            platform.respond(503, &[], "");
        }
        let conn = connection();
        let mut session = Session::new(&platform, &conn);
        assert!(matches!(
            session.get("appmodules", "apps"),
            Err(Error::Upstream(_))
        ));
        // The pause and the margin do not fit in 2.5 s.
        assert!(platform.slept.borrow().is_empty());
    }

    #[test]
    fn a_401_gets_one_fresh_token_and_one_retry() {
        let platform = FakePlatform::default();
        platform
            .respond(200, &[], TOKEN)
            .respond(401, &[], "")
            .respond(200, &[], TOKEN)
            .respond(401, &[], "");
        let conn = connection();
        let mut session = Session::new(&platform, &conn);
        let result = session.get("WhoAmI", "identity");
        assert!(matches!(result, Err(Error::Unauthorized(_))));
        assert_eq!(platform.sent.borrow().len(), 4, "no retry loop");
    }
}
