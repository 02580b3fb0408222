//! What the plugin needs from the outside world, as a trait.
//!
//! In the component these are wasi:http and the host's storage and log imports;
//! in native unit tests they are fakes. Everything else in the crate is plain,
//! deterministic code over this trait.

use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub fn get(url: String) -> Self {
        HttpRequest {
            method: Method::Get,
            url,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn post(url: String, content_type: &str, body: Vec<u8>) -> Self {
        HttpRequest {
            method: Method::Post,
            url,
            headers: vec![("content-type", content_type.to_string())],
            body,
        }
    }

    pub fn post_form(url: String, pairs: &[(&str, &str)]) -> Self {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .into_bytes();
        Self::post(url, "application/x-www-form-urlencoded", body)
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Why a request got no HTTP response at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// The host refused to send it (not on the connection's allow-list).
    Denied(String),
    /// Connection, TLS, DNS or protocol failure; may succeed later.
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
}

pub trait Platform {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError>;
    fn storage_get(&self, key: &str) -> Option<Vec<u8>>;
    /// Best effort: a cache that cannot be written only costs a later request.
    fn storage_set(&self, key: &str, value: &[u8], ttl_seconds: Option<u32>);
    fn storage_delete(&self, key: &str);
    fn log(&self, level: Level, message: &str);

    /// Pauses before a retry.
    fn sleep(&self, pause: std::time::Duration) {
        std::thread::sleep(pause);
    }

    /// Time left before the host stops the call in progress; `None` when
    /// nothing stops it (native use).
    fn time_left(&self) -> Option<std::time::Duration> {
        None
    }

    fn now_unix_seconds(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or_default()
    }
}

#[cfg(test)]
pub mod fake {
    //! A scripted platform for unit tests: answers requests from a queue and
    //! records what was sent.

    use super::*;
    use std::cell::RefCell;
    use std::collections::{HashMap, VecDeque};

    /// Stored values with the TTL they were stored with.
    type Stored = HashMap<String, (Vec<u8>, Option<u32>)>;

    #[derive(Default)]
    pub struct FakePlatform {
        pub responses: RefCell<VecDeque<Result<HttpResponse, TransportError>>>,
        pub sent: RefCell<Vec<HttpRequest>>,
        pub storage: RefCell<Stored>,
        pub slept: RefCell<Vec<std::time::Duration>>,
        /// Time left before the call's deadline when the test starts; sleeping
        /// spends it. `None`: no deadline.
        pub deadline: Option<std::time::Duration>,
    }

    impl FakePlatform {
        pub fn respond(&self, status: u16, headers: &[(&str, &str)], body: &str) -> &Self {
            self.responses.borrow_mut().push_back(Ok(HttpResponse {
                status,
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_lowercase(), v.to_string()))
                    .collect(),
                body: body.as_bytes().to_vec(),
            }));
            self
        }

        pub fn fail(&self, error: TransportError) -> &Self {
            self.responses.borrow_mut().push_back(Err(error));
            self
        }
    }

    impl Platform for FakePlatform {
        fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
            self.sent.borrow_mut().push(request.clone());
            self.responses
                .borrow_mut()
                .pop_front()
                .unwrap_or_else(|| panic!("unexpected request to {}", request.url))
        }
        fn storage_get(&self, key: &str) -> Option<Vec<u8>> {
            self.storage.borrow().get(key).map(|(v, _)| v.clone())
        }
        fn storage_set(&self, key: &str, value: &[u8], ttl_seconds: Option<u32>) {
            self.storage
                .borrow_mut()
                .insert(key.to_string(), (value.to_vec(), ttl_seconds));
        }
        fn storage_delete(&self, key: &str) {
            self.storage.borrow_mut().remove(key);
        }
        fn log(&self, _level: Level, _message: &str) {}
        fn sleep(&self, pause: std::time::Duration) {
            self.slept.borrow_mut().push(pause);
        }
        fn time_left(&self) -> Option<std::time::Duration> {
            let slept: std::time::Duration = self.slept.borrow().iter().sum();
            self.deadline.map(|left| left.saturating_sub(slept))
        }
        fn now_unix_seconds(&self) -> u64 {
            1_800_000_000
        }
    }
}
