//! Faults injected at the simulator: the plugin retries what is transient within
//! the call, honours Retry-After, and a sync never publishes a partial or wrong
//! value: the Key Result keeps its last good value and the run records the kind
//! of failure.

use dataverse_sim::Fault;
use goals_e2e::{World, dataset};
use goals_host::bindings::{Aggregation, Error};
use goals_host::goals::keyresults::KeyResult;
use goals_host::goals::sync::{self, Trigger};
use goals_host::limits::Limits;
use goals_host::runtime::CallError;
use serde_json::json;
use std::time::Duration;

fn hot_leads() -> f64 {
    dataset()
        .rows("lead")
        .iter()
        .filter(|row| {
            row.get("statecode") == Some(&json!(0)) && row.get("leadqualitycode") == Some(&json!(1))
        })
        .count() as f64
}

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

#[tokio::test]
async fn a_persistent_fault_fails_the_sync_and_keeps_the_last_good_value() {
    let world = World::new().await;
    let kr = synced_kr(&world).await;
    for _ in 0..5 {
        world.sim.server.inject_fault(Fault::TruncatedBody);
    }
    let run = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
    assert_eq!(run.status, "failure");
    assert_eq!(run.error_kind.as_deref(), Some("upstream"));
    assert_eq!(run.value, None, "no partial value is recorded");
    assert_eq!(world.value_of(&kr).await, Some(hot_leads()));
    let link = world.link_of(&kr).await;
    assert_eq!(link.failures, 1);
    assert!(link.next_run_at > world.now(), "the scheduler backs off");
}

#[tokio::test]
async fn a_long_retry_after_is_handed_to_the_scheduler() {
    let world = World::new().await;
    let kr = synced_kr(&world).await;
    world.sim.server.inject_fault(Fault::Status {
        status: 429,
        retry_after_seconds: Some(300),
    });
    let started = tokio::time::Instant::now();
    let run = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "it did not wait 300 s in the call"
    );
    assert_eq!(run.error_kind.as_deref(), Some("throttled"));
    assert_eq!(world.link_of(&kr).await.next_run_at, world.now() + 300);
    assert_eq!(world.value_of(&kr).await, Some(hot_leads()));
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
    let outcome = world.runtime.who_am_i(&world.conn).await;
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
async fn an_answer_slower_than_the_deadline_stops_the_call() {
    let world = World::with_limits(Limits {
        call_timeout: Duration::from_secs(2),
        ..Limits::default()
    })
    .await;
    let kr = synced_kr(&world).await;
    world
        .sim
        .server
        .inject_fault(Fault::Delay(Duration::from_secs(6)));
    let started = tokio::time::Instant::now();
    let run = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(run.error_kind.as_deref(), Some("host-limit"));
    assert!(
        run.error_message
            .unwrap_or_default()
            .contains("--call-timeout")
    );
    assert_eq!(world.value_of(&kr).await, Some(hot_leads()));
    // The next sync works at once.
    let run = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
    assert_eq!(run.status, "success");
    let runs = sync::history(&world.db, kr.id, 10).await.unwrap();
    assert_eq!(runs.len(), 3);
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

#[tokio::test]
async fn a_garbled_paging_cookie_fails_the_read_without_a_partial_value() {
    let world = World::new().await;
    let kr = world.key_result("Distinct companies").await;
    // A distinct count over more than 50,000 rows is read page by page.
    world
        .link(
            &kr,
            "lead",
            "Open Leads",
            "companyname",
            Aggregation::CountDistinct,
        )
        .await;
    let first = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
    assert_eq!(first.status, "success", "{:?}", first.error_message);
    let good = world.value_of(&kr).await;
    assert!(good.is_some_and(|v| v > 0.0));

    world.sim.server.inject_fault(Fault::BadPagingCookie);
    let run = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
    assert_eq!(run.status, "failure");
    assert_eq!(run.error_kind.as_deref(), Some("upstream"));
    assert!(
        run.error_message
            .unwrap_or_default()
            .contains("paging cookie")
    );
    assert_eq!(run.value, None);
    assert_eq!(world.value_of(&kr).await, good, "the last good value stays");
}
