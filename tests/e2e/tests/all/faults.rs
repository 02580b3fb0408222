//! Faults injected at the simulator: the plugin retries what is transient within
//! the call, honours Retry-After, and a sync never publishes a partial or wrong
//! value: the Key Result keeps its last good value and the run records the kind
//! of failure.

use dataverse_sim::{Fault, Row};
use goals_e2e::target;
use goals_e2e::{World, hot_leads};
use goals_host::bindings::{Aggregation, Error};
use goals_host::goals::keyresults::{self, KeyResult};
use goals_host::goals::sync::{self, Syncer, Trigger};
use goals_host::limits::Limits;
use goals_host::runtime::CallError;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// A Key Result synced once, with every cache warm.
async fn synced_kr(world: &World) -> KeyResult {
    let kr = world.key_result("Hot leads").await;
    world
        .link(&kr, "lead", "Hot Leads", "fullname", Aggregation::Count)
        .await;
    let run = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
    assert_eq!(run.status, "success");
    kr
}

#[tokio::test]
async fn transient_faults_are_retried_inside_the_call() {
    let world = World::new().await;
    let kr = synced_kr(&world).await;
    for fault in [
        Fault::Status {
            status: 503,
            retry_after_seconds: None,
        },
        Fault::Status {
            status: 502,
            retry_after_seconds: None,
        },
        Fault::Status {
            status: 504,
            retry_after_seconds: None,
        },
        Fault::HtmlError,
        Fault::HtmlOk,
        Fault::TruncatedBody,
        Fault::ResetMidBody,
        Fault::Status {
            status: 429,
            retry_after_seconds: Some(1),
        },
    ] {
        let label = format!("{fault:?}");
        world.sim.server.inject_fault(fault);
        let run = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
        assert_eq!(run.status, "success", "{label}: {:?}", run.error_message);
        assert_eq!(run.value, Some(hot_leads()), "{label}");
        assert_eq!(
            run.requests,
            Some(2),
            "{label}: one failed request, one retry"
        );
    }
}

/// How often a persistent fault is queued: far more than one call can use up
/// (the plugin retries a transient failure once), so every request of
/// the failing sync meets it and some are left over.
const PERSISTENT: usize = 20;

/// The call deadline of the sync that meets slow answers: far shorter than the
/// fault's delay, and long enough that the request is sent before it even on a
/// machine busy with other tests.
const SHORT_DEADLINE: Duration = Duration::from_secs(10);

/// The metric a fault is tried on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    /// Open hot leads, counted by one aggregate query.
    HotLeads,
    /// Distinct companies of the open leads: more than 50,000 rows, so the
    /// plugin reads them page by page with the paging cookie.
    DistinctCompanies,
}

/// A fault the simulator can inject, served to every request of one sync.
struct PersistentFault {
    fault: Fault,
    metric: Metric,
    /// The error kind the failed run records.
    kind: &'static str,
    /// Words of the run's error message that show this fault caused it.
    says: &'static str,
    /// Whether the plugin asks again inside the call before giving up.
    retried: bool,
}

/// Every kind of fault the simulator injects (a new kind does not compile
/// until it is added here).
fn every_fault() -> Vec<PersistentFault> {
    let _every_kind_is_below = |fault: Fault| match fault {
        Fault::Status { .. }
        | Fault::HtmlError
        | Fault::TruncatedBody
        | Fault::Delay(_)
        | Fault::HtmlOk
        | Fault::ResetMidBody
        | Fault::BadPagingCookie => (),
    };
    let status = |status: u16, retried: bool, says: &'static str| PersistentFault {
        fault: Fault::Status {
            status,
            retry_after_seconds: None,
        },
        metric: Metric::HotLeads,
        kind: "upstream",
        says,
        retried,
    };
    let garbled = |fault: Fault, says: &'static str| PersistentFault {
        fault,
        metric: Metric::HotLeads,
        kind: "upstream",
        says,
        retried: true,
    };
    vec![
        // A 500 is Dataverse failing on this request: not retried in the call.
        status(500, false, "HTTP 500"),
        status(502, true, "HTTP 502"),
        status(503, true, "HTTP 503"),
        status(504, true, "HTTP 504"),
        garbled(Fault::HtmlError, "HTTP 502"),
        garbled(Fault::ResetMidBody, "could not reach"),
        garbled(Fault::HtmlOk, "unexpected batch answer"),
        garbled(Fault::TruncatedBody, "unexpected batch answer"),
        PersistentFault {
            fault: Fault::Delay(Duration::from_secs(60)),
            metric: Metric::HotLeads,
            kind: "host-limit",
            says: "--call-timeout",
            retried: false,
        },
        PersistentFault {
            // Longer than the plugin's retry budget (15 s): for the scheduler.
            fault: Fault::Status {
                status: 429,
                retry_after_seconds: Some(300),
            },
            metric: Metric::HotLeads,
            kind: "throttled",
            says: "retry after 300 s",
            retried: false,
        },
        PersistentFault {
            // Unavailable for longer than a call waits: for the scheduler too.
            fault: Fault::Status {
                status: 503,
                retry_after_seconds: Some(300),
            },
            metric: Metric::HotLeads,
            kind: "throttled",
            says: "HTTP 503); retry after 300 s",
            retried: false,
        },
        PersistentFault {
            fault: Fault::BadPagingCookie,
            metric: Metric::DistinctCompanies,
            kind: "upstream",
            says: "paging cookie",
            retried: false,
        },
    ]
}

/// A row that moves the metric up by one.
fn one_more(metric: Metric) -> Row {
    let mut row = Row::new();
    row.insert(
        "leadid".into(),
        json!("0000fa17-0000-4000-8000-000000000001"),
    );
    row.insert("fullname".into(), json!("Fault Tolerance"));
    row.insert("statecode".into(), json!(0));
    row.insert("createdon".into(), json!("2025-06-01T12:00:00Z"));
    match metric {
        Metric::HotLeads => {
            row.insert("leadqualitycode".into(), json!(1));
        }
        Metric::DistinctCompanies => {
            row.insert("companyname".into(), json!("Never Seen Before Ltd"));
        }
    }
    row
}

/// A good sync, then the fault on every request: the sync fails with the
/// fault's kind, the Key Result keeps the good value although the data has
/// changed, and once the fault is gone the next sync publishes the new value.
async fn persistent(case: PersistentFault) {
    let label = format!("{:?}", case.fault);
    let world = World::new().await;
    let kr = world.key_result(&label).await;
    match case.metric {
        Metric::HotLeads => {
            world
                .link(&kr, "lead", "Hot Leads", "fullname", Aggregation::Count)
                .await
        }
        Metric::DistinctCompanies => {
            world
                .link(
                    &kr,
                    "lead",
                    "Open Leads",
                    "companyname",
                    Aggregation::CountDistinct,
                )
                .await
        }
    };
    let good = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
    assert_eq!(good.status, "success", "{label}: {good:?}");
    let good_value = good.value.expect("a value");
    assert!(good_value > 0.0);
    if case.metric == Metric::HotLeads {
        assert_eq!(good_value, hot_leads());
    }

    // The data changes, so a failed sync that published anything would show.
    world
        .sim
        .server
        .add_rows("lead", vec![one_more(case.metric)]);
    world.clock.advance(60);
    for _ in 0..PERSISTENT {
        world.sim.server.inject_fault(case.fault.clone());
    }
    world.sim.server.clear_requests();
    // Slow answers meet a short deadline (only this sync: the others have the
    // default, so a busy machine cannot fail them).
    let syncer = match case.fault {
        Fault::Delay(_) => Arc::new(Syncer::new(
            world.db.clone(),
            Arc::new(world.runtime.with_limits(Limits {
                call_timeout: SHORT_DEADLINE,
                ..Limits::default()
            })),
            Arc::new(world.clock.clone()),
            usize::MAX,
        )),
        _ => Arc::clone(&world.syncer),
    };
    let started = tokio::time::Instant::now();
    let run = syncer.sync(kr.id, Trigger::Manual).await.unwrap();
    let elapsed = started.elapsed();
    let left = world.sim.server.clear_faults();
    let met = PERSISTENT - left;
    let api_requests = world
        .sim
        .server
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/api/"))
        .count();

    assert_eq!(run.status, "failure", "{label}: {run:?}");
    assert_eq!(
        run.error_kind.as_deref(),
        Some(case.kind),
        "{label}: {run:?}"
    );
    let message = run.error_message.clone().unwrap_or_default();
    assert!(message.contains(case.says), "{label}: {message}");
    assert_eq!(run.value, None, "{label}: no partial value is recorded");
    assert!(
        elapsed < Duration::from_secs(30),
        "{label}: no wait past the retry budget or the deadline: {elapsed:?}"
    );
    assert!(left > 0, "{label}: the fault lasted to the end of the sync");
    if case.retried {
        assert_eq!(met, 2, "{label}: one retry in the call, {met} faults met");
    } else {
        assert_eq!(met, 1, "{label}: not retried in the call");
    }
    if case.metric == Metric::HotLeads {
        assert_eq!(met, api_requests, "{label}: every request met the fault");
    }

    let now = keyresults::get_by_id(&world.db, kr.id).await.unwrap();
    assert_eq!(
        now.current_value,
        Some(good_value),
        "{label}: the last good value stays"
    );
    assert_eq!(now.current_at, good.finished_at, "{label}");
    let link = world.link_of(&kr).await;
    assert_eq!(link.last_success_at, good.finished_at, "{label}");
    if case.kind == "throttled" {
        assert_eq!(link.failures, 0, "{label}: throttling is not a failure");
        assert_eq!(link.next_run_at, world.now() + 300, "{label}");
    } else {
        assert_eq!(link.failures, 1, "{label}");
        assert_eq!(
            link.next_run_at,
            world.now() + sync::backoff(1, link.interval_seconds, kr.id),
            "{label}: the scheduler backs off"
        );
    }

    // The fault gone, the next sync publishes the changed data.
    world.clock.advance(60);
    let recovered = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
    assert_eq!(recovered.status, "success", "{label}: {recovered:?}");
    assert_eq!(recovered.value, Some(good_value + 1.0), "{label}");
    assert_eq!(world.value_of(&kr).await, Some(good_value + 1.0), "{label}");
    let statuses: Vec<String> = sync::history(&world.db, kr.id, 10, None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, ["success", "failure", "success"], "{label}");
}

/// Runs the cases against a simulator each, all at once: the retries' waits
/// overlap instead of adding up.
async fn all_at_once(metric: Metric) {
    let mut cases = tokio::task::JoinSet::new();
    for case in every_fault().into_iter().filter(|c| c.metric == metric) {
        cases.spawn(persistent(case));
    }
    assert!(!cases.is_empty());
    while let Some(done) = cases.join_next().await {
        if let Err(error) = done {
            std::panic::resume_unwind(error.into_panic());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_persistent_fault_fails_the_sync_and_keeps_the_last_good_value() {
    all_at_once(Metric::HotLeads).await;
}

/// Apart, as reading the 50,000 rows page by page keeps a core busy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistently_garbled_paging_cookie_fails_the_read_and_keeps_the_last_good_value() {
    all_at_once(Metric::DistinctCompanies).await;
}

#[tokio::test]
async fn a_retry_after_past_the_call_deadline_is_throttled_not_stopped() {
    // Below the plugin's own 15 s retry budget: the deadline decides.
    let world = World::with_limits(Limits {
        call_timeout: Duration::from_secs(5),
        ..Limits::default()
    })
    .await;
    let kr = synced_kr(&world).await;
    let throttle_for_10_s = || Fault::Status {
        status: 429,
        retry_after_seconds: Some(10),
    };

    world.sim.server.inject_fault(throttle_for_10_s());
    let started = tokio::time::Instant::now();
    let outcome = world.runtime.who_am_i(&target(&world.conn)).await;
    let elapsed = started.elapsed();
    match outcome {
        Err(CallError::Plugin {
            error: Error::Throttled(throttle),
            ..
        }) => assert_eq!(throttle.retry_after_seconds, 10),
        other => panic!("expected throttled after {elapsed:?}, got {other:?}"),
    }
    assert!(
        elapsed < Duration::from_secs(2),
        "answered without waiting for the deadline: {elapsed:?}"
    );

    // A sync hands the delay to the scheduler and keeps the value.
    world.sim.server.inject_fault(throttle_for_10_s());
    let run = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
    assert_eq!(
        run.error_kind.as_deref(),
        Some("throttled"),
        "{:?}",
        run.error_message
    );
    assert_eq!(world.link_of(&kr).await.next_run_at, world.now() + 10);
    assert_eq!(world.value_of(&kr).await, Some(hot_leads()));
}

#[tokio::test]
async fn an_expired_token_is_replaced_once_and_the_sync_succeeds() {
    let world = World::new().await;
    let kr = synced_kr(&world).await;
    world.sim.server.expire_tokens();
    world.sim.server.clear_requests();
    let run = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
    assert_eq!(run.status, "success");
    let statuses: Vec<u16> = world
        .sim
        .server
        .requests()
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses,
        [401, 200, 200],
        "one 401, one new token, one retry"
    );
}

/// A Syncer over the same database and clock as `world`, its plugin calls under
/// `limits`.
fn syncer_with(world: &World, limits: Limits) -> Syncer {
    Syncer::new(
        world.db.clone(),
        Arc::new(world.runtime.with_limits(limits)),
        Arc::new(world.clock.clone()),
        usize::MAX,
    )
}

#[tokio::test]
async fn a_host_limit_or_refusal_fails_the_run_and_never_breaks_the_link() {
    let world = World::new().await;
    let kr = synced_kr(&world).await;
    // An answer over the response limit: the host's limit, not the view's fault.
    let tight = syncer_with(
        &world,
        Limits {
            response_body_bytes: 64,
            ..Limits::default()
        },
    );
    world.clock.advance(60);
    let run = tight.sync(kr.id, Trigger::Manual).await.unwrap();
    assert_eq!(run.status, "failure", "{run:?}");
    assert_eq!(run.error_kind.as_deref(), Some("host-refused"), "{run:?}");
    let message = run.error_message.clone().unwrap_or_default();
    assert!(message.contains("--response-limit"), "{message}");
    let link = world.link_of(&kr).await;
    assert_eq!(link.state.as_str(), "active", "{:?}", link.state_reason);
    assert_eq!(link.failures, 1);
    assert!(
        link.next_run_at > world.now() && link.next_run_at <= world.now() + 60,
        "backs off like any failure"
    );
    assert_eq!(world.value_of(&kr).await, Some(hot_leads()));
    let alerts = goals_host::goals::alerts::list(&world.db, false)
        .await
        .unwrap();
    assert!(alerts.is_empty(), "no broken-link alert: {alerts:?}");

    // The limit lifted, the link syncs again by itself.
    world.clock.advance(60);
    let run = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
    assert_eq!(run.status, "success", "{run:?}");
}

#[tokio::test]
async fn a_not_found_is_checked_again_before_the_link_breaks() {
    let world = World::new().await;
    let kr = synced_kr(&world).await;
    let not_found = || Fault::Status {
        status: 404,
        retry_after_seconds: None,
    };
    // Once: a passing 404 (a replica behind) is checked again and passes.
    world.sim.server.inject_fault(not_found());
    let run = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
    assert_eq!(run.status, "success", "{run:?}");
    assert_eq!(world.link_of(&kr).await.state.as_str(), "active");
    assert_eq!(world.sim.server.clear_faults(), 0, "the one 404 was met");

    // Twice in a row: confirmed, the link breaks.
    world.sim.server.inject_fault(not_found());
    world.sim.server.inject_fault(not_found());
    let run = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
    assert_eq!(run.error_kind.as_deref(), Some("not-found"), "{run:?}");
    assert_eq!(world.link_of(&kr).await.state.as_str(), "broken");
    assert_eq!(world.value_of(&kr).await, Some(hot_leads()));
}

#[tokio::test]
async fn a_huge_retry_after_waits_a_day_at_most() {
    let world = World::new().await;
    let kr = synced_kr(&world).await;
    world.sim.server.inject_fault(Fault::Status {
        status: 429,
        retry_after_seconds: Some(99_999_999),
    });
    let run = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
    assert_eq!(run.error_kind.as_deref(), Some("throttled"), "{run:?}");
    assert_eq!(
        world.link_of(&kr).await.next_run_at,
        world.now() + sync::retry_after_cap(3600),
        "capped at a day for an hourly link, not 3.2 years"
    );
}
