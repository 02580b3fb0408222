//! The component's exports: `fetch-and-aggregate` misbehaves, everything else
//! answers at once without I/O.

use crate::bindings::exports::goals::integration::{discovery, metrics, sign_in};
use crate::bindings::goals::integration::{log, storage};
use crate::bindings::{Guest, export};
use crate::types::{
    App, Column, Connection, DeviceCode, Entity, Error, Identity, Measurement, MetricSpec,
    MetricValue, PluginInfo, SignInStatus, View, ViewRef,
};
use crate::{
    FLOOD_CAP, FLOOD_VALUE_BYTES, FORBIDDEN_URL, MEMORY_BOMB_CAP, Misbehaviour, well_behaved_app,
};
use std::hint::black_box;
use std::time::Duration;

struct Component;

impl Guest for Component {
    fn describe() -> PluginInfo {
        crate::describe()
    }
}

impl discovery::Guest for Component {
    fn list_apps(_conn: Connection) -> Result<Vec<App>, Error> {
        Ok(vec![well_behaved_app()])
    }

    fn list_entities(_conn: Connection, _app: String) -> Result<Vec<Entity>, Error> {
        Ok(Vec::new())
    }

    fn list_views(
        _conn: Connection,
        _entity: String,
        _search: Option<String>,
    ) -> Result<Vec<View>, Error> {
        Ok(Vec::new())
    }

    fn list_columns(
        _conn: Connection,
        _entity: String,
        _view: ViewRef,
    ) -> Result<Vec<Column>, Error> {
        Ok(Vec::new())
    }
}

impl metrics::Guest for Component {
    fn fetch_and_aggregate(conn: Connection, spec: MetricSpec) -> Result<Measurement, Error> {
        let Some(misbehaviour) = Misbehaviour::parse(&spec.column) else {
            return Err(Error::Invalid(format!(
                "unknown misbehaviour '{}'",
                spec.column
            )));
        };
        log::write(log::Level::Info, &format!("misbehaving: {misbehaviour:?}"));
        match misbehaviour {
            Misbehaviour::Loop => spin(),
            Misbehaviour::Memory => memory_bomb(),
            Misbehaviour::ForbiddenHost => get(FORBIDDEN_URL),
            Misbehaviour::PrivateAddress => get(&conn.environment_url),
            Misbehaviour::HugeResponse => get(&format!(
                "{}{}",
                conn.environment_url.trim_end_matches('/'),
                spec.entity
            )),
            Misbehaviour::StorageFlood => {
                let value_bytes = spec.entity.parse().unwrap_or(FLOOD_VALUE_BYTES);
                storage_flood(value_bytes)
            }
            Misbehaviour::Panic => panic!("the misbehaving plugin panics on purpose"),
        }
    }
}

impl sign_in::Guest for Component {
    fn start_device_sign_in(_conn: Connection) -> Result<DeviceCode, Error> {
        Err(Error::Invalid(
            "the misbehaving plugin has no sign-in".to_string(),
        ))
    }

    fn poll_device_sign_in(_conn: Connection) -> Result<SignInStatus, Error> {
        Ok(SignInStatus::Complete)
    }

    fn who_am_i(_conn: Connection) -> Result<Identity, Error> {
        Ok(Identity {
            user_id: "misbehaving-user".to_string(),
            organization_id: "misbehaving-organization".to_string(),
            business_unit_id: "misbehaving-business-unit".to_string(),
        })
    }
}

export!(Component with_types_in crate::bindings);

/// A measurement for the misbehaviours that, against a host missing a
/// protection, end normally: the test then sees a success it did not expect.
fn measured(records: u64, requests: u32, bytes_received: u64, query: String) -> Measurement {
    Measurement {
        value: Some(MetricValue::Number(records as f64)),
        records,
        currency: None,
        requests,
        bytes_received,
        query,
    }
}

/// Computes forever; `black_box` keeps the optimiser from proving the loop
/// useless.
fn spin() -> ! {
    let mut counter: u64 = 0;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Allocates 1 MiB blocks and writes to every byte, keeping them all, until an
/// allocation fails: Rust's allocation-error handler then aborts (a trap).
fn memory_bomb() -> Result<Measurement, Error> {
    const BLOCK: usize = 1 << 20;
    let mut kept: Vec<Vec<u8>> = Vec::new();
    while kept.len() * BLOCK < MEMORY_BOMB_CAP {
        let mut block = Vec::with_capacity(BLOCK);
        block.resize(BLOCK, 0xA5_u8);
        kept.push(black_box(block));
    }
    let total = black_box(&kept).iter().map(Vec::len).sum::<usize>();
    Ok(measured(
        0,
        0,
        0,
        format!("allocated {total} bytes without being stopped"),
    ))
}

/// One GET, the whole body read. The error says which step failed, so a test can
/// tell a response refused up front from one cut off while streaming.
fn get(url: &str) -> Result<Measurement, Error> {
    let response = waki::Client::new()
        .get(url)
        .connect_timeout(Duration::from_secs(5))
        .send()
        .map_err(|e| Error::Upstream(format!("sending GET {url} failed: {e:#}")))?;
    let status = response.status_code();
    let body = response
        .body()
        .map_err(|e| Error::Upstream(format!("reading the body of GET {url} failed: {e:#}")))?;
    Ok(measured(
        0,
        1,
        body.len() as u64,
        format!("GET {url} answered {status} with {} bytes", body.len()),
    ))
}

/// Stores `value_bytes`-byte values under new keys until the host refuses.
fn storage_flood(value_bytes: usize) -> Result<Measurement, Error> {
    let value = vec![0x5A_u8; value_bytes];
    for i in 0..FLOOD_CAP {
        storage::set(&format!("flood-{i:05}"), &value, None).map_err(Error::Limit)?;
    }
    Ok(measured(
        u64::from(FLOOD_CAP),
        0,
        0,
        format!("stored {FLOOD_CAP} values of {value_bytes} bytes without being stopped"),
    ))
}
