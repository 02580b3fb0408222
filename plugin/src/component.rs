//! The component's exports, and the platform the host provides: wasi:http through
//! waki, storage and logging through the world's imports.

use crate::bindings::exports::goals::integration::{discovery, metrics, sign_in};
use crate::bindings::goals::integration::{deadline, log, storage};
use crate::bindings::{Guest, export};
use crate::client::Session;
use crate::connection::Connection;
use crate::platform::{HttpRequest, HttpResponse, Level, Method, Platform, TransportError};
use crate::types::{
    self, App, Chart, Column, DeviceCode, Entity, Error, Identity, Measurement, MetricSpec,
    PluginInfo, SignInStatus, View, ViewRef,
};
use std::time::Duration;

/// Most Dataverse requests answer in well under a second; a slow connect means the
/// environment is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

struct Component;

impl Guest for Component {
    fn describe() -> PluginInfo {
        crate::describe()
    }
}

impl discovery::Guest for Component {
    fn list_apps(conn: types::Connection) -> Result<Vec<App>, Error> {
        crate::discovery::list_apps(&mut Session::new(&Host, &Connection::from_wit(conn)?))
    }

    fn list_entities(conn: types::Connection, app: String) -> Result<Vec<Entity>, Error> {
        crate::discovery::list_entities(
            &mut Session::new(&Host, &Connection::from_wit(conn)?),
            &app,
        )
    }

    fn list_views(
        conn: types::Connection,
        entity: String,
        search: Option<String>,
    ) -> Result<Vec<View>, Error> {
        crate::discovery::list_views(
            &mut Session::new(&Host, &Connection::from_wit(conn)?),
            &entity,
            search.as_deref(),
        )
    }

    fn list_columns(
        conn: types::Connection,
        entity: String,
        view: ViewRef,
    ) -> Result<Vec<Column>, Error> {
        crate::discovery::list_columns(
            &mut Session::new(&Host, &Connection::from_wit(conn)?),
            &entity,
            &view,
        )
    }

    fn list_charts(conn: types::Connection, entity: String) -> Result<Vec<Chart>, Error> {
        crate::charts::list_charts(
            &mut Session::new(&Host, &Connection::from_wit(conn)?),
            &entity,
        )
    }
}

impl metrics::Guest for Component {
    fn fetch_and_aggregate(
        conn: types::Connection,
        spec: MetricSpec,
        windows: Vec<types::DateWindow>,
        chart: Option<types::ChartSelection>,
    ) -> Result<Measurement, Error> {
        crate::metrics::fetch_and_aggregate(
            &mut Session::new(&Host, &Connection::from_wit(conn)?),
            &spec,
            &windows,
            chart.as_ref(),
        )
    }

    fn fetch_series(
        conn: types::Connection,
        spec: MetricSpec,
        windows: Vec<types::DateWindow>,
        chart: Option<types::ChartSelection>,
        points: Vec<types::DateWindow>,
    ) -> Result<Vec<Measurement>, Error> {
        crate::metrics::fetch_series(
            &mut Session::new(&Host, &Connection::from_wit(conn)?),
            &spec,
            &windows,
            chart.as_ref(),
            &points,
        )
    }
}

impl sign_in::Guest for Component {
    fn start_device_sign_in(conn: types::Connection) -> Result<DeviceCode, Error> {
        crate::signin::start_device_sign_in(&mut Session::new(&Host, &Connection::from_wit(conn)?))
    }

    fn poll_device_sign_in(conn: types::Connection) -> Result<SignInStatus, Error> {
        crate::signin::poll_device_sign_in(&mut Session::new(&Host, &Connection::from_wit(conn)?))
    }

    fn who_am_i(conn: types::Connection) -> Result<Identity, Error> {
        crate::signin::who_am_i(&mut Session::new(&Host, &Connection::from_wit(conn)?))
    }
}

export!(Component with_types_in crate::bindings);

/// The host, as seen from inside the component.
struct Host;

impl Platform for Host {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let client = waki::Client::new();
        let builder = match request.method {
            Method::Get => client.get(&request.url),
            Method::Post => client.post(&request.url),
        };
        let response = builder
            .headers(request.headers.iter().map(|(k, v)| (*k, v.as_str())))
            .body(request.body.clone())
            .connect_timeout(CONNECT_TIMEOUT)
            .send()
            .map_err(transport_error)?;
        let status = response.status_code();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response.body().map_err(transport_error)?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    fn storage_get(&self, key: &str) -> Option<Vec<u8>> {
        storage::get(key)
    }

    fn storage_set(&self, key: &str, value: &[u8], ttl_seconds: Option<u32>) {
        if let Err(reason) = storage::set(key, value, ttl_seconds) {
            log::write(
                log::Level::Warn,
                &format!("could not cache '{key}': {reason}"),
            );
        }
    }

    fn storage_delete(&self, key: &str) {
        storage::delete(key);
    }

    fn time_left(&self) -> Option<Duration> {
        Some(Duration::from_millis(deadline::remaining_milliseconds()))
    }

    fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Debug => log::Level::Debug,
            Level::Info => log::Level::Info,
            Level::Warn => log::Level::Warn,
        };
        log::write(level, message);
    }
}

fn transport_error(error: anyhow::Error) -> TransportError {
    use waki::ErrorCode as Code;
    let Some(code) = error.downcast_ref::<Code>() else {
        // Stream errors carry Rust debug text: the detail is for `-v`, the message
        // for people.
        log::write(log::Level::Debug, &format!("transport error: {error:#}"));
        return TransportError::Failed(
            "the connection broke while the answer was read".to_string(),
        );
    };
    let reason = match code {
        Code::HttpRequestDenied => {
            return TransportError::Denied("not allowed for this connection".to_string());
        }
        Code::DnsTimeout | Code::DnsError(_) => "the host name could not be resolved",
        Code::DestinationNotFound | Code::DestinationUnavailable => "the server is unreachable",
        Code::DestinationIpProhibited | Code::DestinationIpUnroutable => {
            "the address cannot be reached"
        }
        Code::ConnectionRefused => "the connection was refused",
        Code::ConnectionTerminated | Code::HttpResponseIncomplete => {
            "the connection closed before the answer was complete"
        }
        Code::ConnectionTimeout
        | Code::ConnectionReadTimeout
        | Code::ConnectionWriteTimeout
        | Code::HttpResponseTimeout => "the server did not answer in time",
        Code::TlsCertificateError => "the server's TLS certificate was rejected",
        Code::TlsProtocolError | Code::TlsAlertReceived(_) => "the TLS handshake failed",
        Code::HttpResponseBodySize(_) => "the answer was larger than the host allows",
        other => {
            log::write(log::Level::Debug, &format!("transport error: {other:?}"));
            return TransportError::Failed("the HTTP exchange failed".to_string());
        }
    };
    TransportError::Failed(reason.to_string())
}
