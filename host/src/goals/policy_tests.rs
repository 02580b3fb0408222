//! The sync policy over a fake engine: each outcome of a call, scripted here,
//! and what the platform makes of it. No component, no network.

use crate::bindings::{
    Aggregation, App, Column, CredentialKind, CurrencyChoice, DeviceCode, Entity, Error, Identity,
    Measurement, MetricSpec, MetricValue, PluginInfo, Setting, SettingKind, SignInStatus, Throttle,
    View, ViewKind, ViewRef,
};
use crate::connections::{self, ConnectionRecord, NewConnection, Secret, SignIn, Status};
use crate::db::Database;
use crate::engine::{Call, Engine};
use crate::goals::alerts;
use crate::goals::clock::ManualClock;
use crate::goals::keyresults::{self, ItemKind, LinkState, MetricChoice, NewKeyResult};
use crate::goals::progress::{Direction, Unit};
use crate::goals::sync::{SyncError, Syncer, Trigger};
use crate::outbound::TrafficReading;
use crate::runtime::CallError;
use std::sync::{Arc, Mutex};

const NOW: i64 = 1_800_000_000;

/// Answers every measurement with what the test last scripted.
struct FakeEngine {
    info: PluginInfo,
    answer: Mutex<Result<Measurement, Error>>,
    calls: Mutex<usize>,
    /// Held by a test, measurements wait for it: a sync caught mid-call.
    gate: tokio::sync::Mutex<()>,
}

impl FakeEngine {
    fn new() -> FakeEngine {
        FakeEngine {
            info: PluginInfo {
                id: "test.fake".to_string(),
                name: "Fake".to_string(),
                version: "1.0.0".to_string(),
                settings: vec![Setting {
                    key: "url".to_string(),
                    label: "URL".to_string(),
                    help: String::new(),
                    kind: SettingKind::Endpoint,
                    required: true,
                    default_value: None,
                }],
                credentials: vec![CredentialKind::ApiKey],
                default_sync_interval_seconds: 3600,
                min_sync_interval_seconds: 60,
                max_concurrent_per_connection: 2,
                aggregations: vec![Aggregation::Count],
            },
            answer: Mutex::new(Err(Error::Upstream("not scripted".to_string()))),
            calls: Mutex::new(0),
            gate: tokio::sync::Mutex::new(()),
        }
    }

    fn answer(&self, answer: Result<Measurement, Error>) {
        *self.answer.lock().unwrap() = answer;
    }

    fn calls(&self) -> usize {
        *self.calls.lock().unwrap()
    }
}

fn measured(value: f64) -> Measurement {
    Measurement {
        value: Some(MetricValue::Number(value)),
        records: 3,
        currency: None,
        requests: 1,
        bytes_received: 100,
        query: "q".to_string(),
    }
}

fn not_here<'a, T: Send + 'a>() -> Call<'a, T> {
    Box::pin(async {
        Err(CallError::Trap(anyhow::anyhow!(
            "not used by the sync policy"
        )))
    })
}

impl Engine for FakeEngine {
    fn info(&self, _conn: &ConnectionRecord) -> Result<&PluginInfo, CallError> {
        Ok(&self.info)
    }
    fn declared(&self, _id: &str) -> Option<&PluginInfo> {
        Some(&self.info)
    }
    fn traffic(&self) -> TrafficReading {
        TrafficReading::default()
    }
    fn list_apps<'a>(&'a self, _: &'a ConnectionRecord) -> Call<'a, Vec<App>> {
        not_here()
    }
    fn list_entities<'a>(&'a self, _: &'a ConnectionRecord, _: &'a str) -> Call<'a, Vec<Entity>> {
        not_here()
    }
    fn list_views<'a>(
        &'a self,
        _: &'a ConnectionRecord,
        _: &'a str,
        _: Option<&'a str>,
    ) -> Call<'a, Vec<View>> {
        not_here()
    }
    fn list_columns<'a>(
        &'a self,
        _: &'a ConnectionRecord,
        _: &'a str,
        _: &'a ViewRef,
    ) -> Call<'a, Vec<Column>> {
        not_here()
    }
    fn fetch_and_aggregate_within<'a>(
        &'a self,
        _: &'a ConnectionRecord,
        _: &'a MetricSpec,
        _: &'a [crate::bindings::DateWindow],
        _: Option<&'a crate::bindings::ChartSelection>,
    ) -> Call<'a, Measurement> {
        *self.calls.lock().unwrap() += 1;
        let answer = self.answer.lock().unwrap().clone();
        Box::pin(async move {
            drop(self.gate.lock().await);
            answer.map_err(|error| CallError::Plugin { error })
        })
    }
    fn list_charts<'a>(
        &'a self,
        _: &'a ConnectionRecord,
        _: &'a str,
    ) -> Call<'a, Vec<crate::bindings::Chart>> {
        not_here()
    }
    fn fetch_series<'a>(
        &'a self,
        _: &'a ConnectionRecord,
        _: &'a MetricSpec,
        _: &'a [crate::bindings::DateWindow],
        _: Option<&'a crate::bindings::ChartSelection>,
        _: &'a [crate::bindings::DateWindow],
    ) -> Call<'a, Vec<Measurement>> {
        not_here()
    }
    fn start_device_sign_in<'a>(&'a self, _: &'a ConnectionRecord) -> Call<'a, DeviceCode> {
        not_here()
    }
    fn poll_device_sign_in<'a>(&'a self, _: &'a ConnectionRecord) -> Call<'a, SignInStatus> {
        not_here()
    }
    fn who_am_i<'a>(&'a self, _: &'a ConnectionRecord) -> Call<'a, Identity> {
        not_here()
    }
}

/// A database with one linked Key Result on a connection of the fake.
async fn linked(engine: &FakeEngine) -> (Database, i64, ConnectionRecord) {
    let db = Database::open_in_memory().unwrap();
    let conn = connections::add(
        &db,
        &engine.info,
        NewConnection {
            organization: connections::DEFAULT_ORGANIZATION.to_string(),
            added_by: "test".to_string(),
            name: "fake".to_string(),
            integration: "test.fake".to_string(),
            settings: vec![("url".to_string(), "https://fake.example".to_string())],
            sign_in: SignIn::ApiKey,
            secret: Some(Secret::new("key")),
            allow_loopback: false,
        },
    )
    .await
    .unwrap();
    let kr = keyresults::create(
        &db,
        NewKeyResult {
            kind: ItemKind::KeyResult,
            parent_id: None,
            due_date: None,
            period: Default::default(),
            organization_id: conn.organization_id,
            title: "Deals".to_string(),
            owner: "ana".to_string(),
            unit: Unit::Number,
            currency_code: None,
            start: 0.0,
            target: 100.0,
            direction: Direction::Increase,
        },
        NOW,
    )
    .await
    .unwrap();
    let metric = MetricChoice {
        connection_id: conn.id.clone(),
        app_id: "a".to_string(),
        app_name: "App".to_string(),
        entity: "e".to_string(),
        entity_name: "E".to_string(),
        view: ViewRef {
            id: "v".to_string(),
            kind: ViewKind::System,
        },
        view_name: "V".to_string(),
        column: "c".to_string(),
        column_display: "C".to_string(),
        aggregation: Aggregation::Count,
        currency: CurrencyChoice::Base,
        period_column: None,
        chart: None,
    };
    keyresults::save_link(&db, kr.id, metric, 3600, NOW)
        .await
        .unwrap();
    (db, kr.id, conn)
}

#[tokio::test]
async fn each_outcome_of_a_call_moves_the_link_as_the_contract_says() {
    let engine = Arc::new(FakeEngine::new());
    let (db, kr, conn) = linked(&engine).await;
    let clock = ManualClock::new(NOW);
    let syncer = Syncer::new(
        db.clone(),
        engine.clone(),
        Arc::new(clock.clone()),
        usize::MAX,
    );
    let value =
        |db: Database| async move { keyresults::get_by_id(&db, kr).await.unwrap().current_value };

    engine.answer(Ok(measured(42.0)));
    let run = syncer.sync(kr, Trigger::Manual).await.unwrap();
    assert_eq!((run.status.as_str(), run.value), ("success", Some(42.0)));
    assert_eq!(value(db.clone()).await, Some(42.0));

    // Throttled: the value stays, the next try waits at least the delay.
    engine.answer(Err(Error::Throttled(Throttle {
        retry_after_seconds: 900,
        message: "slow down".to_string(),
    })));
    let run = syncer.sync(kr, Trigger::Manual).await.unwrap();
    assert_eq!(run.error_kind.as_deref(), Some("throttled"));
    assert_eq!(
        value(db.clone()).await,
        Some(42.0),
        "the last good value stays"
    );
    let link = keyresults::link(&db, kr).await.unwrap().unwrap();
    assert!(
        link.next_run_at >= NOW + 900,
        "waits for the delay: {}",
        link.next_run_at
    );

    // Upstream: retried with backoff, the link stays active.
    engine.answer(Err(Error::Upstream("503".to_string())));
    syncer.sync(kr, Trigger::Manual).await.unwrap();
    let link = keyresults::link(&db, kr).await.unwrap().unwrap();
    assert_eq!(link.state, LinkState::Active);
    assert!(link.failures >= 1);

    // Unauthorized: the connection needs sign-in, an alert says how.
    engine.answer(Err(Error::Unauthorized("key revoked".to_string())));
    syncer.sync(kr, Trigger::Manual).await.unwrap();
    let after = connections::get_by_id(&db, &conn.id).await.unwrap();
    assert_eq!(after.status, Status::NeedsSignIn);
    let open = alerts::list(&db, false).await.unwrap();
    assert!(
        open.iter()
            .any(|a| a.kind == "needs-sign-in" && a.message.contains("--api-key-env")),
        "{open:?}"
    );
    let calls = engine.calls();
    assert!(
        syncer.sync(kr, Trigger::Manual).await.is_err(),
        "no sync until signed in"
    );
    assert_eq!(engine.calls(), calls, "nothing sent meanwhile");

    // Not found: the link is broken until it is redone.
    connections::set_status(&db, &conn.id, Status::Ok, None)
        .await
        .unwrap();
    engine.answer(Err(Error::NotFound("view deleted".to_string())));
    syncer.sync(kr, Trigger::Manual).await.unwrap();
    let link = keyresults::link(&db, kr).await.unwrap().unwrap();
    assert_eq!(link.state, LinkState::Broken);
    assert_eq!(value(db.clone()).await, Some(42.0), "never a wrong number");
}

#[tokio::test]
async fn a_new_links_first_sync_waits_for_a_scheduled_one_that_claimed_it() {
    let engine = Arc::new(FakeEngine::new());
    let (db, kr, _) = linked(&engine).await;
    let syncer = Arc::new(Syncer::new(
        db,
        engine.clone(),
        Arc::new(ManualClock::new(NOW)),
        usize::MAX,
    ));
    engine.answer(Ok(measured(7.0)));
    let gate = engine.gate.lock().await;
    // The scheduler claims the link saved a moment ago and is mid-call.
    let scheduled = tokio::spawn({
        let syncer = Arc::clone(&syncer);
        async move { syncer.sync(kr, Trigger::Scheduled).await }
    });
    while engine.calls() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(matches!(
        syncer.sync(kr, Trigger::Manual).await,
        Err(SyncError::AlreadyRunning { .. })
    ));
    let first = tokio::spawn({
        let syncer = Arc::clone(&syncer);
        async move { syncer.sync_new_link(kr).await }
    });
    // Time for its first try to meet the running sync (the outcome does not
    // depend on it; only a try made later would not show the wait).
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    drop(gate);
    assert_eq!(scheduled.await.unwrap().unwrap().status, "success");
    let run = first
        .await
        .unwrap()
        .expect("a run, not \"already running\"");
    assert_eq!((run.status.as_str(), run.value), ("success", Some(7.0)));
    assert_eq!(engine.calls(), 2);
}
