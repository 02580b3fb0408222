//! The Goals side in-process with a clock the tests control: hourly syncs with
//! jitter, bounded concurrency (per connection and overall), single-flight Sync
//! now, each sync outcome, the admins' switches, check-ins and alerts.

use dataverse_sim::Fault;
use goals_e2e::{World, dataset, hot_leads};
use goals_host::bindings::Aggregation;
use goals_host::connections::{self, Secret, Status};
use goals_host::goals::admin;
use goals_host::goals::alerts;
use goals_host::goals::keyresults::{self, LinkState};
use goals_host::goals::sync::{self, SyncError, Trigger};
use std::collections::BTreeSet;
use std::time::Duration;

/// A Dataverse failure the plugin does not retry within the call (a 500), so the
/// scheduler's backoff takes over.
fn outage(world: &World) {
    world.sim.server.inject_fault(Fault::Status {
        status: 500,
        retry_after_seconds: None,
    });
}

async fn hot_leads_kr(world: &World, title: &str) -> keyresults::KeyResult {
    let kr = world.key_result(title).await;
    world
        .link(&kr, "lead", "Hot Leads", "fullname", Aggregation::Count)
        .await;
    kr
}

async fn futures_next_runs(world: &World, krs: &[keyresults::KeyResult]) -> Vec<i64> {
    let mut next = Vec::new();
    for kr in krs {
        next.push(world.link_of(kr).await.next_run_at);
    }
    next
}

#[tokio::test]
async fn per_connection_concurrency_is_bounded_at_the_simulator() {
    let world = World::with_limit(3).await;
    let mut krs = Vec::new();
    for i in 0..12 {
        krs.push(hot_leads_kr(&world, &format!("KR {i}")).await);
    }
    // Warm the token and metadata caches first, so every sync is one request.
    world.syncer.sync(krs[0].id, Trigger::Manual).await.unwrap();
    world.clock.advance(4000);
    world.sim.server.set_latency(Duration::from_millis(150));
    let round = world.scheduler(16).run_due().await.unwrap();
    assert_eq!(round.succeeded, 12);
    let peak = world.sim.server.peak_concurrency();
    assert!(peak <= 3, "{peak} requests at once, over the limit of 3");
    assert!(
        peak >= 2,
        "syncs of one connection do run concurrently (peak {peak})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overall_concurrency_is_bounded_across_connections() {
    // Each connection alone may run the plugin's 48 syncs at once.
    let world = World::new().await;
    let second = connections::add(
        &world.db,
        world.runtime.info(),
        world.sim.new_connection("second"),
    )
    .await
    .expect("add the second connection");
    let mut krs = Vec::new();
    for i in 0..12 {
        let kr = world.key_result(&format!("KR {i}")).await;
        let conn = if i % 2 == 0 { &world.conn } else { &second };
        world
            .link_on(
                conn,
                &kr,
                "lead",
                "Hot Leads",
                "fullname",
                Aggregation::Count,
            )
            .await;
        krs.push(kr);
    }
    // Warm the token and metadata caches of both connections, so every sync is
    // one request.
    for kr in &krs[..2] {
        world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
    }
    world.clock.advance(4000);
    // Slow answers: the scheduler's two syncs overlap.
    world.sim.server.set_latency(Duration::from_millis(300));
    let round = world.scheduler(2).run_due().await.unwrap();
    assert_eq!(round.succeeded, 12, "{round:?}");
    let per_connection = world.sim.server.peak_concurrency_per_token();
    assert_eq!(
        per_connection.len(),
        2,
        "both connections synced, each with its own token: {per_connection:?}"
    );
    let peak = world.sim.server.peak_concurrency();
    assert!(
        peak <= 2,
        "{peak} requests at once over both connections ({per_connection:?}), over the \
         scheduler's limit of 2"
    );
    assert!(peak > 1, "syncs do run concurrently (peak {peak})");
}

async fn wait_until_running(world: &World, kr: &keyresults::KeyResult) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while world.link_of(kr).await.running_since.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sync of '{}' never started",
            kr.title
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Each test runs on SQLite and again on PostgreSQL (when a server is
/// configured, see `goals_e2e::postgres`): the same flows, on either backend.
macro_rules! on_both_backends {
    ($($test:meta; fn $name:ident($world:ident) $body:block)*) => {
        mod sqlite {
            use super::*;
            $(#[$test] async fn $name() { let $world = World::new().await; $body })*
        }
        mod postgres {
            use super::*;
            $(
                #[$test]
                async fn $name() {
                    let Some($world) = World::on_postgres(stringify!($name)).await else {
                        return;
                    };
                    $body
                }
            )*
        }
    };
}

on_both_backends! {
    tokio::test; fn links_sync_every_hour_spread_by_jitter(world) {
        let mut krs = Vec::new();
        for i in 0..24 {
            krs.push(hot_leads_kr(&world, &format!("KR {i}")).await);
        }
        let scheduler = world.scheduler(8);
        let linked_at = world.now();
        let first = scheduler.run_due().await.expect("first round");
        assert_eq!(first.succeeded, 24, "new links sync at once");
        for kr in &krs {
            assert_eq!(world.value_of(kr).await, Some(hot_leads()));
        }
        let next: Vec<i64> = futures_next_runs(&world, &krs).await;
        assert!(
            next.iter()
                .all(|at| (linked_at + 1..=linked_at + 3600).contains(at)),
            "the next sync is within the hour: {next:?}"
        );
        assert!(
            next.iter().collect::<BTreeSet<_>>().len() >= 16,
            "links added together spread out: {next:?}"
        );
        assert_eq!(
            scheduler.run_due().await.unwrap().started,
            0,
            "nothing due yet"
        );

        // Four hours in steps of a minute, the scheduler looking each minute.
        for _ in 0..4 * 60 {
            world.clock.advance(60);
            scheduler.run_due().await.unwrap();
        }
        for kr in &krs {
            let mut starts: Vec<i64> = sync::history(&world.db, kr.id, 20, None)
                .await
                .unwrap()
                .iter()
                .inspect(|r| {
                    assert_eq!(
                        (r.trigger.as_str(), r.status.as_str()),
                        ("scheduled", "success")
                    )
                })
                .map(|r| r.started_at)
                .collect();
            starts.reverse();
            let gaps: Vec<i64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
            assert!(
                gaps.len() >= 3,
                "a first sync and one each hour: {starts:?}"
            );
            assert!(
                gaps[1..].iter().all(|gap| *gap == 3600),
                "hourly on the link's slot, without drifting: {gaps:?}"
            );
        }
    }

    tokio::test; fn a_link_falling_due_starts_while_a_slow_sync_is_still_running(world) {
        let krs = [
            hot_leads_kr(&world, "First").await,
            hot_leads_kr(&world, "Second").await,
        ];
        let mut slots = Vec::new();
        for kr in &krs {
            world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
            slots.push((world.link_of(kr).await.next_run_at, kr));
        }
        slots.sort_by_key(|(at, _)| *at);
        let [(early_at, early), (late_at, late)] = [slots[0], slots[1]];
        assert!(early_at < late_at, "two links with distinct slots");

        world.clock.advance(early_at - world.now());
        world.sim.server.set_latency(Duration::from_secs(4));
        let scheduler = world.scheduler(8);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(async move {
            scheduler
                .run(Duration::from_millis(20), async {
                    let _ = stopped.await;
                })
                .await
        });
        wait_until_running(&world, early).await;
        world.clock.advance(late_at - world.now());
        wait_until_running(&world, late).await;
        assert!(
            world.link_of(early).await.running_since.is_some(),
            "the second link started while the first was still syncing"
        );
        let _ = stop.send(());
        let total = running.await.unwrap().unwrap();
        assert_eq!((total.started, total.succeeded), (2, 2));
    }

    tokio::test; fn sync_now_never_overlaps_a_running_sync_of_the_same_link(world) {
        let kr = hot_leads_kr(&world, "Hot leads").await;
        world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
        world.clock.advance(4000);
        world.sim.server.set_latency(Duration::from_millis(400));
        let scheduler = world.scheduler(4);
        let scheduled = tokio::spawn(async move { scheduler.run_due().await });
        // Wait until the scheduled sync holds the link.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while world.link_of(&kr).await.running_since.is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the scheduled sync never started"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let now = world.syncer.sync(kr.id, Trigger::Manual).await;
        assert!(
            matches!(now, Err(SyncError::AlreadyRunning { .. })),
            "{now:?}"
        );
        let round = scheduled.await.unwrap().unwrap();
        assert_eq!(round.succeeded, 1);
        let after = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
        assert_eq!(after.status, "success");
        let runs = sync::history(&world.db, kr.id, 10, None).await.unwrap();
        assert_eq!(
            runs.len(),
            3,
            "no run was recorded for the refused Sync now"
        );
    }

    tokio::test; fn throttling_waits_as_long_as_dataverse_asks(world) {
        let kr = hot_leads_kr(&world, "Hot leads").await;
        world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
        world.sim.server.inject_fault(Fault::Status {
            status: 429,
            retry_after_seconds: Some(120),
        });
        let run = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
        assert_eq!(
            (run.status.as_str(), run.error_kind.as_deref()),
            ("failure", Some("throttled"))
        );
        let link = world.link_of(&kr).await;
        assert_eq!(link.next_run_at, world.now() + 120);
        assert_eq!(link.failures, 0, "throttling is not a failure of the link");
        assert_eq!(
            world.value_of(&kr).await,
            Some(hot_leads()),
            "the value stays"
        );
    }

    tokio::test; fn a_throttle_holds_for_every_link_of_the_connection(world) {
        let (first, second) = (
            hot_leads_kr(&world, "First").await,
            hot_leads_kr(&world, "Second").await,
        );
        world.syncer.sync(first.id, Trigger::Manual).await.unwrap();
        world.syncer.sync(second.id, Trigger::Manual).await.unwrap();
        world.clock.advance(4000);
        world.sim.server.inject_fault(Fault::Status {
            status: 429,
            retry_after_seconds: Some(120),
        });
        let run = world.syncer.sync(first.id, Trigger::Manual).await.unwrap();
        assert_eq!(run.error_kind.as_deref(), Some("throttled"));
        // Dataverse throttles the user: the other link, due too, waits as well.
        let sent = world.sim.server.requests().len();
        let round = world.scheduler(4).run_due().await.unwrap();
        assert_eq!(round.started, 0, "nothing of the connection is sent: {round:?}");
        assert_eq!(world.sim.server.requests().len(), sent);
        let until = world.now() + 120;
        assert_eq!(
            sync::throttled_until(&world.db, second.id, world.now()).await.unwrap(),
            Some(until),
            "Sync now of the other link is refused until then"
        );
        let scheduled = world.syncer.sync(second.id, Trigger::Scheduled).await;
        assert!(
            matches!(scheduled, Err(SyncError::Throttled { until: at, .. }) if at == until),
            "{scheduled:?}"
        );
        world.clock.advance(120);
        let round = world.scheduler(4).run_due().await.unwrap();
        assert_eq!((round.started, round.succeeded), (2, 2), "{round:?}");
    }

    tokio::test; fn upstream_failures_back_off_exponentially_and_keep_the_value(world) {
        let kr = hot_leads_kr(&world, "Hot leads").await;
        world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
        let mut delays = Vec::new();
        for _ in 0..3 {
            outage(&world);
            let run = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
            assert_eq!(run.error_kind.as_deref(), Some("upstream"));
            delays.push(world.link_of(&kr).await.next_run_at - world.now());
        }
        let expected: Vec<i64> = (1..=3)
            .map(|failures| sync::backoff(failures, 3600, kr.id))
            .collect();
        assert_eq!(delays, expected);
        for (delay, full) in delays.iter().zip([60, 120, 240]) {
            assert!(
                (full - full / 5..=full).contains(delay),
                "{delays:?}: doubling, jittered"
            );
        }
        assert_eq!(world.value_of(&kr).await, Some(hot_leads()));
        let run = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
        assert_eq!(run.status, "success");
        assert_eq!(
            world.link_of(&kr).await.failures,
            0,
            "a success resets the backoff"
        );
        let open = alerts::list(&world.db, false).await.unwrap();
        assert!(
            open.is_empty(),
            "transient failures raise no alert: {open:?}"
        );
    }

    tokio::test; fn a_refused_credential_stops_the_connection_until_sign_in(world) {
        let kr = hot_leads_kr(&world, "Hot leads").await;
        world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
        connections::set_secret(&world.db, &world.conn.id, &Secret::new("wrong"))
            .await
            .unwrap();
        world
            .db
            .run(|conn| Ok(conn.execute("DELETE FROM plugin_kv", goals_host::params![])?))
            .await
            .unwrap();
        world.clock.advance(4000);
        let scheduler = world.scheduler(4);
        let round = scheduler.run_due().await.unwrap();
        assert_eq!(round.failed, 1);
        let conn = connections::get_by_id(&world.db, &world.conn.id)
            .await
            .unwrap();
        assert_eq!(conn.status, Status::NeedsSignIn);
        assert!(
            conn.status_reason
                .unwrap_or_default()
                .contains("AADSTS7000215")
        );
        assert_eq!(world.value_of(&kr).await, Some(hot_leads()));

        world.clock.advance(4000);
        assert_eq!(
            scheduler.run_due().await.unwrap().started,
            0,
            "its links stop"
        );
        let refused = world.syncer.sync(kr.id, Trigger::Manual).await;
        assert!(
            matches!(refused, Err(SyncError::ConnectionUnavailable(_))),
            "{refused:?}"
        );
        let open = alerts::list(&world.db, false).await.unwrap();
        let sign_in: Vec<_> = open.iter().filter(|a| a.kind == "needs-sign-in").collect();
        assert_eq!(sign_in.len(), 1, "one needs-sign-in alert: {open:?}");

        connections::set_secret(
            &world.db,
            &world.conn.id,
            &Secret::new(world.sim.config.client_secret.clone()),
        )
        .await
        .unwrap();
        connections::set_status(&world.db, &world.conn.id, Status::Ok, None)
            .await
            .unwrap();
        assert_eq!(
            scheduler.run_due().await.unwrap().succeeded,
            1,
            "links resume"
        );
    }

    tokio::test; fn a_deleted_view_breaks_the_link_until_it_is_redone(world) {
        let kr = hot_leads_kr(&world, "Hot leads").await;
        world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
        let view = dataset().view_by_name("Hot Leads").unwrap();
        world.sim.server.delete_view(&view.id);
        world.clock.advance(4000);
        let scheduler = world.scheduler(4);
        assert_eq!(scheduler.run_due().await.unwrap().failed, 1);
        let link = world.link_of(&kr).await;
        assert_eq!(link.state, LinkState::Broken);
        assert!(link.state_reason.unwrap_or_default().contains("relink"));
        assert_eq!(
            world.value_of(&kr).await,
            Some(hot_leads()),
            "the last good value stays"
        );
        world.clock.advance(4000);
        assert_eq!(
            scheduler.run_due().await.unwrap().started,
            0,
            "a broken link stops"
        );
        for _ in 0..3 {
            world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
        }
        let open = alerts::list(&world.db, false).await.unwrap();
        assert_eq!(
            open.len(),
            1,
            "one alert per broken link, not per run: {open:?}"
        );
        assert_eq!(open[0].kind, "broken-link");

        world
            .link(
                &kr,
                "lead",
                "Qualified Leads",
                "fullname",
                Aggregation::Count,
            )
            .await;
        assert_eq!(
            scheduler.run_due().await.unwrap().succeeded,
            1,
            "relinked, it runs again"
        );
        assert!(alerts::list(&world.db, false).await.unwrap().is_empty());
    }

    tokio::test; fn either_admin_switch_stops_syncs_and_says_why(world) {
        let kr = hot_leads_kr(&world, "Hot leads").await;
        world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
        let scheduler = world.scheduler(4);
        for (switch_off, switch_on) in [("tenant", "tenant"), ("organization", "organization")] {
            match switch_off {
                "tenant" => admin::set_tenant_integration(&world.db, "default", false)
                    .await
                    .map(|_| ()),
                _ => admin::set_organization_integration(&world.db, "default", false)
                    .await
                    .map(|_| ()),
            }
            .unwrap();
            world.clock.advance(4000);
            assert_eq!(
                scheduler.run_due().await.unwrap().started,
                0,
                "{switch_off} off: no syncs"
            );
            let refused = world.syncer.sync(kr.id, Trigger::Manual).await;
            let Err(SyncError::Disabled(reason)) = refused else {
                panic!("{refused:?}");
            };
            assert!(reason.contains(switch_off), "{reason}");
            match switch_on {
                "tenant" => admin::set_tenant_integration(&world.db, "default", true)
                    .await
                    .map(|_| ()),
                _ => admin::set_organization_integration(&world.db, "default", true)
                    .await
                    .map(|_| ()),
            }
            .unwrap();
            assert_eq!(
                scheduler.run_due().await.unwrap().succeeded,
                1,
                "{switch_on} on: syncs resume"
            );
        }
    }

    tokio::test; fn a_check_in_is_kept_until_the_next_sync_unless_paused(world) {
        let kr = hot_leads_kr(&world, "Hot leads").await;
        let scheduler = world.scheduler(4);
        scheduler.run_due().await.unwrap();
        let checked = keyresults::check_in(&world.db, kr.id, 42.0, world.now())
            .await
            .unwrap();
        assert_eq!(
            (checked.current_value, checked.current_source.as_deref()),
            (Some(42.0), Some("check-in"))
        );
        world.clock.advance(4000);
        scheduler.run_due().await.unwrap();
        assert_eq!(
            world.value_of(&kr).await,
            Some(hot_leads()),
            "the sync replaced it"
        );

        keyresults::set_paused(&world.db, kr.id, true, world.now())
            .await
            .unwrap();
        keyresults::check_in(&world.db, kr.id, 7.0, world.now())
            .await
            .unwrap();
        world.clock.advance(8000);
        assert_eq!(
            scheduler.run_due().await.unwrap().started,
            0,
            "paused links do not sync"
        );
        assert_eq!(world.value_of(&kr).await, Some(7.0));
        keyresults::set_paused(&world.db, kr.id, false, world.now())
            .await
            .unwrap();
        assert_eq!(
            scheduler.run_due().await.unwrap().succeeded,
            1,
            "resumed links sync at once"
        );
    }

    tokio::test; fn a_link_without_success_for_two_intervals_is_stale_once(world) {
        let kr = hot_leads_kr(&world, "Hot leads").await;
        let scheduler = world.scheduler(4);
        scheduler.run_due().await.unwrap();
        for _ in 0..4 {
            outage(&world);
            world.clock.advance(4000);
            scheduler.run_due().await.unwrap();
        }
        let open = alerts::list(&world.db, false).await.unwrap();
        assert_eq!(open.len(), 1, "{open:?}");
        assert_eq!(open[0].kind, "stale");
        assert_eq!(open[0].subject, alerts::kr_subject(kr.id));
        world.clock.advance(4000);
        scheduler.run_due().await.unwrap();
        assert!(
            alerts::list(&world.db, false).await.unwrap().is_empty(),
            "a success closes it"
        );
    }

    tokio::test; fn a_restart_retries_syncs_it_interrupted_once(world) {
        let kr = hot_leads_kr(&world, "Hot leads").await;
        // A sync claimed but never finished: the host died mid-sync.
        world
            .db
            .run(move |conn| {
                conn.execute(
                    "UPDATE metric_links SET running_since = ?2, next_run_at = ?3
                     WHERE key_result_id = ?1",
                    goals_host::params![kr.id, goals_e2e::START, goals_e2e::START + 3600],
                )?;
                conn.execute(
                    "INSERT INTO sync_runs (key_result_id, trigger, started_at, status)
                     VALUES (?1, 'scheduled', ?2, 'running')",
                    goals_host::params![kr.id, goals_e2e::START],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let scheduler = world.scheduler(4);
        assert_eq!(scheduler.recover().await.unwrap(), 1);
        let round = scheduler.run_due().await.unwrap();
        assert_eq!(round.succeeded, 1, "the interrupted sync runs again, once");
        let runs = sync::history(&world.db, kr.id, 10, None).await.unwrap();
        let statuses: Vec<&str> = runs.iter().map(|r| r.status.as_str()).collect();
        assert_eq!(statuses, ["success", "interrupted"]);
        assert_eq!(scheduler.run_due().await.unwrap().started, 0);
    }

    tokio::test; fn connection_names_are_unique_per_organization(world) {
        admin::create_tenant(&world.db, "Fabrikam", 0)
            .await
            .unwrap();
        admin::create_organization(&world.db, "Fabrikam Sales", "Fabrikam", 0)
            .await
            .unwrap();
        let mut other = world.sim.new_connection("sim");
        other.organization = "Fabrikam Sales".to_string();
        connections::add(&world.db, world.runtime.info(), other.clone())
            .await
            .expect("same name, other organization");
        let again = connections::add(&world.db, world.runtime.info(), other).await;
        assert!(matches!(
            again,
            Err(connections::ConnectionError::DuplicateName { .. })
        ));
        let ambiguous = connections::get(&world.db, "sim", None).await;
        assert!(matches!(
            ambiguous,
            Err(connections::ConnectionError::Ambiguous { .. })
        ));
        let found = connections::get(&world.db, "sim", Some("Fabrikam Sales"))
            .await
            .unwrap();
        assert_eq!(found.organization, "Fabrikam Sales");
    }

    tokio::test; fn the_scheduler_sweeps_old_runs_and_keeps_each_outcomes_latest(world) {
        let kr = hot_leads_kr(&world, "Hot leads").await;
        let mut failed_run = None;
        // A hundred days of daily Sync now; on day 5 the view's answer fails.
        for day in 0..100 {
            if day == 5 {
                world.sim.server.inject_fault(Fault::Status {
                    status: 500,
                    retry_after_seconds: None,
                });
            }
            let run = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
            if day == 5 {
                assert_eq!(run.status, "failure", "{run:?}");
                failed_run = Some(run.id);
            }
            world.clock.advance(86_400);
        }
        let count = |sql: &'static str| {
            let db = world.db.clone();
            async move {
                db.run(move |conn| Ok(conn.query_row(sql, goals_host::params![], |r| r.get::<i64>(0))?))
                    .await
                    .unwrap()
            }
        };
        assert_eq!(count("SELECT count(*) FROM sync_runs").await, 100);
        assert_eq!(
            count("SELECT count(*) FROM sync_queries").await,
            1,
            "a hundred runs of one query keep its text once"
        );
        assert_eq!(
            count("SELECT count(*) FROM sync_runs WHERE query IS NOT NULL").await,
            0
        );

        world
            .scheduler(4)
            .with_keep_days(30)
            .run_due()
            .await
            .unwrap();
        let kept = sync::history(&world.db, kr.id, 1000, None).await.unwrap();
        let cutoff = world.now() - 30 * 86_400;
        let (recent, old): (Vec<_>, Vec<_>) = kept.iter().partition(|r| r.started_at >= cutoff);
        assert_eq!(
            recent.len(),
            31,
            "the last 30 days' runs are all kept, and the round's own sync"
        );
        assert_eq!(
            old.iter().map(|r| r.id).collect::<Vec<_>>(),
            [failed_run.expect("the failed run")],
            "of older runs only the latest failure stays"
        );
        assert!(
            recent
                .iter()
                .all(|r| r.query.as_deref().is_some_and(|q| q.contains("<fetch"))),
            "runs still show their query"
        );
        assert_eq!(count("SELECT count(*) FROM sync_queries").await, 1);
    }

    tokio::test; fn a_running_scheduler_takes_over_the_claim_of_a_peer_that_died(world) {
        let kr = hot_leads_kr(&world, "Hot leads").await;
        world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
        // A peer host claimed the link and died mid-sync: its process lock is gone
        // (this host cannot see it alive), its lease not yet lapsed.
        let now = world.now();
        world
            .db
            .run(move |conn| {
                conn.execute(
                    "UPDATE metric_links SET running_since = ?2, running_owner = '4242-00000000000000aa',
                         claim_expires_at = ?3, next_run_at = ?2 WHERE key_result_id = ?1",
                    goals_host::params![kr.id, now, now + 30],
                )?;
                conn.execute(
                    "INSERT INTO sync_runs (key_result_id, trigger, started_at, status, owner)
                     VALUES (?1, 'scheduled', ?2, 'running', '4242-00000000000000aa')",
                    goals_host::params![kr.id, now],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        if world.database_url().is_some() {
            // Hosts sharing PostgreSQL may run on other machines: a peer is
            // known dead only once its claim's lease lapses.
            world.clock.advance(sync::CLAIM_LEASE_SECONDS);
        }
        let scheduler = world.scheduler(4);
        let round = scheduler
            .run(
                Duration::from_millis(20),
                tokio::time::sleep(Duration::from_secs(2)),
            )
            .await
            .unwrap();
        assert_eq!(round.succeeded, 1, "{round:?}");
        let statuses: Vec<String> = sync::history(&world.db, kr.id, 10, None)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.status)
            .collect();
        assert_eq!(statuses, ["success", "interrupted", "success"]);
        assert!(world.link_of(&kr).await.running_since.is_none());
    }
}
