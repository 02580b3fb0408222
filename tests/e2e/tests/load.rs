//! Load: 10,000 links due at once against one connection. Every sync completes,
//! none is lost, and the connection never sees more concurrent requests than the
//! plugin's declared per-connection maximum (the simulator records the peak).

use goals_e2e::{World, dataset};
use goals_host::bindings::Aggregation;
use goals_host::goals::keyresults;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_due_links_all_sync_within_the_connection_limit() {
    let links: i64 = 10_000;
    let world = World::new().await;
    let template = world.key_result("template").await;
    let link = world
        .link(
            &template,
            "account",
            "Active Accounts",
            "name",
            Aggregation::Count,
        )
        .await;
    // Warm the token and metadata caches.
    world
        .syncer
        .sync(template.id, goals_host::goals::sync::Trigger::Manual)
        .await
        .unwrap();

    // The other links are copies of the first, written in one transaction.
    let now = world.now();
    let template_id = template.id;
    world
        .db
        .run(move |conn| {
            let tx = conn.transaction()?;
            for _ in 1..links {
                tx.execute(
                    "INSERT INTO key_results (organization_id, title, owner, unit, start_value,
                         target_value, direction, created_at)
                     SELECT organization_id, title, owner, unit, start_value, target_value,
                         direction, created_at FROM key_results WHERE id = ?1",
                    [template_id],
                )?;
                tx.execute(
                    "INSERT INTO metric_links (key_result_id, connection_id, app_id, app_name,
                         entity, entity_name, view_id, view_kind, view_name, column_name,
                         column_display, aggregation, currency, interval_seconds, state,
                         next_run_at, created_at)
                     SELECT last_insert_rowid(), connection_id, app_id, app_name, entity,
                         entity_name, view_id, view_kind, view_name, column_name,
                         column_display, aggregation, currency, interval_seconds, 'active',
                         ?2, ?2
                     FROM metric_links WHERE key_result_id = ?1",
                    [template_id, now],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
        .unwrap();
    world.clock.advance(link.interval_seconds * 2);

    let limit = world.runtime.info().max_concurrent_per_connection as usize;
    // Answers take a little while, so that syncs overlap and the limit is tested.
    world.sim.server.set_latency(Duration::from_millis(20));
    let started = Instant::now();
    let round = world.scheduler(256).run_due().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(round.started, links as usize);
    assert_eq!(round.succeeded, links as usize, "{round:?}");

    let peak = world.sim.server.peak_concurrency();
    assert!(peak <= limit, "peak {peak} over the limit of {limit}");
    assert!(peak > limit / 2, "the limit is actually used: peak {peak}");

    let (successes, still_due): (i64, i64) = world
        .db
        .run(move |conn| {
            Ok((
                conn.query_row(
                    "SELECT count(*) FROM sync_runs WHERE status = 'success'",
                    [],
                    |r| r.get(0),
                )?,
                conn.query_row(
                    "SELECT count(*) FROM metric_links WHERE next_run_at <= ?1",
                    [now + link.interval_seconds * 2],
                    |r| r.get(0),
                )?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(successes, links + 1, "one run per link, plus the warm-up");
    assert_eq!(still_due, 0, "no link left behind");
    // A small view: the simulator's own aggregation stays cheap next to the host.
    let active = dataset()
        .rows("account")
        .iter()
        .filter(|row| row.get("statecode") == Some(&json!(0)))
        .count() as f64;
    let sample = keyresults::get_by_id(&world.db, template.id + links - 1)
        .await
        .unwrap();
    assert_eq!(sample.current_value, Some(active));
    eprintln!(
        "{links} syncs in {:.1} s ({:.0}/s), peak {peak} concurrent requests (limit {limit})",
        elapsed.as_secs_f64(),
        links as f64 / elapsed.as_secs_f64()
    );
}
