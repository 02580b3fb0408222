//! A signed-in conversation with one Dataverse environment, counting what it costs.

use crate::auth;
use crate::batch;
use crate::errors;
use crate::platform::{HttpRequest, HttpResponse, Level, Platform};
use crate::types::{Connection, Error};
use serde::de::DeserializeOwned;

const API_PATH: &str = "/api/data/v9.2/";

/// Annotations the plugin reads: formatted values, aliased-column names, lookup
/// targets, and the paging annotations of FetchXML.
const PREFER_ANNOTATIONS: &str = "odata.include-annotations=\"*\"";

pub struct Session<'a> {
    platform: &'a dyn Platform,
    conn: &'a Connection,
    token: Option<String>,
    requests: u32,
    bytes_received: u64,
}

impl<'a> Session<'a> {
    pub fn new(platform: &'a dyn Platform, conn: &'a Connection) -> Self {
        Session {
            platform,
            conn,
            token: None,
            requests: 0,
            bytes_received: 0,
        }
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
        let response = self.get(path_and_query, subject)?;
        serde_json::from_slice(&response.body)
            .map_err(|e| errors::unexpected_body(&format!("answer for {subject}"), &e.to_string()))
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
        let parts = batch::parse_response(content_type, &response.body)
            .map_err(|e| errors::unexpected_body("batch answer", &e.to_string()))?;
        if parts.len() != paths.len() {
            return Err(errors::unexpected_body(
                "batch answer",
                &format!("{} answers to {} queries", parts.len(), paths.len()),
            ));
        }
        Ok(parts)
    }

    /// Sends the request `build` makes with a token; a 401 on a cached token gets
    /// one fresh token and one retry, never a loop.
    fn signed_in(
        &mut self,
        subject: &str,
        build: impl Fn(&str) -> HttpRequest,
    ) -> Result<HttpResponse, Error> {
        let mut retried = false;
        loop {
            let token = self.token()?;
            let response = self.send(&build(&token))?;
            if (200..300).contains(&response.status) {
                return Ok(response);
            }
            if response.status == 401 && !retried {
                // The cached token may have been revoked before its expiry.
                retried = true;
                self.token = None;
                auth::forget_token(self.platform, self.conn);
                continue;
            }
            return Err(errors::from_dataverse(&response, subject));
        }
    }

    fn token(&mut self) -> Result<String, Error> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        let token = match auth::cached_token(self.platform, self.conn) {
            Some(token) => token,
            None => {
                self.platform
                    .log(Level::Debug, "requesting an access token");
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
        self.requests += 1;
        let response = self
            .platform
            .send(request)
            .map_err(|e| errors::from_transport(&e, &request.url))?;
        self.bytes_received += response.body.len() as u64;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::fake::FakePlatform;
    use crate::types::Credential;

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
