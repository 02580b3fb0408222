//! Client-side aggregation throughput of the plugin's paging read
//! ([`dynamics365_plugin::paging::read`]) over an in-memory [`Platform`]: no
//! network, every page answered from bodies generated before the clock starts.
//!
//! The same code runs natively (the `goals-e2e` bench links it as a library) and
//! in wasm (`src/main.rs` built for `wasm32-wasip2` and run by wasmtime), so the
//! two throughputs compare the plugin's code, not its surroundings.

use dynamics365_plugin::client::Session;
use dynamics365_plugin::connection::{Connection, Credential};
use dynamics365_plugin::fetchxml::{ColumnRef, MetricQuery, ViewQuery};
use dynamics365_plugin::paging::{self, PAGE_SIZE, PageRead};
use dynamics365_plugin::platform::{
    HttpRequest, HttpResponse, Level, Method, Platform, TransportError,
};
use dynamics365_plugin::types::{Aggregation, MetricValue};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The aggregations the benchmark runs, by their WIT names.
pub const AGGREGATIONS: [(&str, Aggregation); 3] = [
    ("sum", Aggregation::Sum),
    ("count-distinct", Aggregation::CountDistinct),
    ("average", Aggregation::Average),
];

/// The entity, its primary key and the aggregated column.
const ENTITY_SET: &str = "accounts";
const PRIMARY_ID: &str = "accountid";
const COLUMN: &str = "numberofemployees";

/// Distinct values of the column: row `i` holds `(i * 7919) % DISTINCT`, which
/// runs through every value once in each block of `DISTINCT` rows.
const DISTINCT: u64 = 50_000;

const TOKEN: &str = r#"{"token_type":"Bearer","expires_in":3599,"access_token":"t"}"#;

/// The annotation Dataverse sends with every page but the last: the next page's
/// number and a cookie naming the page's last row, URL-encoded twice.
fn cookie(page: usize, last_row: usize) -> String {
    format!(
        "<cookie pagenumber=\"{}\" pagingcookie=\"%253ccookie%2520page%253d%2522{page}%2522%253e%253c{PRIMARY_ID}%2520last%253d%2522{last_row}%2522%2520%252f%253e%253c%252fcookie%253e\" istracking=\"False\" />",
        page + 1
    )
}

/// One measured read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// Rows the read aggregated.
    pub rows: usize,
    /// Wall-clock time of `paging::read` alone.
    pub seconds: f64,
    /// The aggregate (NaN when it has none).
    pub value: f64,
}

impl Report {
    pub fn rows_per_second(&self) -> f64 {
        self.rows as f64 / self.seconds
    }
}

/// The WIT name of an aggregation the benchmark runs.
pub fn aggregation_named(name: &str) -> Option<Aggregation> {
    AGGREGATIONS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, aggregation)| *aggregation)
}

/// The value of the column in row `index`.
fn column_value(index: usize) -> u64 {
    (index as u64).wrapping_mul(7919) % DISTINCT
}

/// The page bodies of a view of `rows` rows, generated once and replayed by every
/// repetition.
pub struct Pages {
    rows: usize,
    bodies: Vec<Vec<u8>>,
}

impl Pages {
    /// Bodies as Dataverse sends them: 5,000 rows a page, every page but the last
    /// claiming more records and carrying a paging cookie.
    pub fn generate(rows: usize) -> Pages {
        let page_size = PAGE_SIZE as usize;
        let pages = rows.div_ceil(page_size).max(1);
        let bodies = (0..pages)
            .map(|page| {
                let first = page * page_size;
                let last = rows.min(first + page_size);
                let mut body = String::with_capacity((last - first) * 80 + 256);
                body.push_str(r#"{"value":["#);
                for index in first..last {
                    if index > first {
                        body.push(',');
                    }
                    body.push_str(&format!(
                        r#"{{"{PRIMARY_ID}":"00000000-0000-0000-0000-{index:012}","{COLUMN}":{}}}"#,
                        column_value(index)
                    ));
                }
                body.push(']');
                if page + 1 < pages {
                    let cookie = serde_json::to_string(&cookie(page + 1, last - 1))
                        .expect("a string serializes");
                    body.push_str(&format!(
                        r#","@Microsoft.Dynamics.CRM.morerecords":true,"@Microsoft.Dynamics.CRM.fetchxmlpagingcookie":{cookie}"#
                    ));
                }
                body.push('}');
                body.into_bytes()
            })
            .collect();
        Pages { rows, bodies }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// One timed paging read. The responses are copied out of the bodies before
    /// the clock starts, so the timing holds only the plugin's work: building each
    /// page's FetchXML, the session's request handling, parsing each page and
    /// aggregating its rows.
    ///
    /// Panics if the read fails or does not see every row exactly once.
    pub fn run(&self, aggregation: Aggregation) -> Report {
        let platform = InMemory::new(&self.bodies);
        let conn = connection();
        let query = view_query();
        let column = ColumnRef::from_cell(COLUMN);
        let read = PageRead {
            query: &query,
            entity_set: ENTITY_SET,
            primary_id: PRIMARY_ID,
            column: &column,
            value_key: COLUMN,
            aggregation,
        };

        let started = Instant::now();
        let mut session = Session::new(&platform, &conn);
        let result = paging::read(&mut session, &read);
        let seconds = started.elapsed().as_secs_f64();

        let (partial, _) = result.unwrap_or_else(|e| panic!("the paging read failed: {e:?}"));
        assert_eq!(partial.rows, self.rows as u64, "rows aggregated");
        assert_eq!(platform.pages_left(), 0, "every page was read");
        assert_eq!(platform.tokens.get(), 1, "one sign-in");
        assert!(platform.slept.get().is_zero(), "no retries");
        let value = match partial.value(aggregation) {
            Some(MetricValue::Number(n)) => n,
            _ => f64::NAN,
        };
        Report {
            rows: self.rows,
            seconds,
            value,
        }
    }

    /// One untimed warm-up read, then `repetitions` timed reads (at least one).
    pub fn samples(&self, aggregation: Aggregation, repetitions: usize) -> Vec<Report> {
        self.run(aggregation);
        (0..repetitions.max(1))
            .map(|_| self.run(aggregation))
            .collect()
    }

    /// The report of the median of [`Pages::samples`].
    pub fn median(&self, aggregation: Aggregation, repetitions: usize) -> Report {
        median_of(&self.samples(aggregation, repetitions))
    }
}

/// One timed paging read of a view of `rows` rows (pages generated untimed first).
pub fn run(rows: usize, aggregation: Aggregation) -> Report {
    Pages::generate(rows).run(aggregation)
}

/// The median of `repetitions` timed reads after a warm-up.
pub fn median(rows: usize, aggregation: Aggregation, repetitions: usize) -> Report {
    Pages::generate(rows).median(aggregation, repetitions)
}

/// The report with the median time (the upper one of an even count).
///
/// Panics on no reports.
pub fn median_of(reports: &[Report]) -> Report {
    let mut sorted = reports.to_vec();
    sorted.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    sorted[sorted.len() / 2]
}

fn connection() -> Connection {
    Connection {
        id: "bench".into(),
        environment_url: "https://org.crm.dynamics.com".into(),
        authority_url: "https://login.microsoftonline.com".into(),
        tenant: "tenant".into(),
        client_id: "app".into(),
        credential: Credential::ClientSecret("secret".into()),
    }
}

fn view_query() -> MetricQuery {
    ViewQuery::parse(
        "<fetch><entity name='account'><attribute name='name'/>\
         <attribute name='numberofemployees'/><order attribute='name'/>\
         <filter><condition attribute='statecode' operator='eq' value='0'/></filter>\
         </entity></fetch>",
    )
    .expect("the bench view parses")
    .metric_query(&[], &|_| true)
    .expect("the bench view reduces to a metric query")
}

fn response(body: Vec<u8>) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![(
            "content-type".to_string(),
            "application/json; odata.metadata=minimal".to_string(),
        )],
        body,
    }
}

/// Answers the token request with a token and each page request with the next
/// page; no storage (so each read signs in once), no logging.
struct InMemory {
    pages: RefCell<VecDeque<HttpResponse>>,
    tokens: Cell<u32>,
    slept: Cell<Duration>,
}

impl InMemory {
    fn new(bodies: &[Vec<u8>]) -> InMemory {
        InMemory {
            pages: RefCell::new(bodies.iter().cloned().map(response).collect()),
            tokens: Cell::new(0),
            slept: Cell::new(Duration::ZERO),
        }
    }

    fn pages_left(&self) -> usize {
        self.pages.borrow().len()
    }
}

impl Platform for InMemory {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        match request.method {
            Method::Post => {
                self.tokens.set(self.tokens.get() + 1);
                Ok(response(TOKEN.as_bytes().to_vec()))
            }
            Method::Get => self
                .pages
                .borrow_mut()
                .pop_front()
                .ok_or_else(|| TransportError::Failed("no page left".to_string())),
        }
    }

    fn storage_get(&self, _key: &str) -> Option<Vec<u8>> {
        None
    }

    fn storage_set(&self, _key: &str, _value: &[u8], _ttl_seconds: Option<u32>) {}

    fn storage_delete(&self, _key: &str) {}

    fn log(&self, _level: Level, _message: &str) {}

    /// Only a retry sleeps, and none is expected: recorded, never waited.
    fn sleep(&self, pause: Duration) {
        self.slept.set(self.slept.get() + pause);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_row_once() {
        let rows = 12_345;
        let sum: u64 = (0..rows).map(column_value).sum();
        let report = run(rows, Aggregation::Sum);
        assert_eq!(report.rows, rows);
        assert_eq!(report.value, sum as f64);
        assert_eq!(
            run(rows, Aggregation::CountDistinct).value,
            DISTINCT.min(rows as u64) as f64
        );
    }

    #[test]
    fn names_round_trip() {
        for (name, aggregation) in AGGREGATIONS {
            assert_eq!(aggregation_named(name), Some(aggregation));
        }
        assert_eq!(aggregation_named("median"), None);
    }
}
