//! Load: 10,000 links due at once, spread over two connections to one
//! simulator. Every sync completes, none is lost, and each connection never sees
//! more concurrent requests than the plugin's declared per-connection maximum,
//! while both together do: the bound is per connection, not a global cap. The
//! simulator records the peaks overall and per access token, and each
//! connection has its own token.
//!
//! Opt-in, being the slowest test by far: `.ci/run` runs it after the suite, and
//! `cargo test -p goals-e2e --test all -- --ignored load::` does by hand.

use goals_e2e::{World, copy_links, dataset};
use goals_host::bindings::Aggregation;
use goals_host::connections;
use goals_host::goals::keyresults;
use goals_host::goals::sync::Trigger;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the 10,000-link load test runs on request (and in .ci/run)"]
async fn ten_thousand_due_links_on_two_connections_each_stay_within_the_connection_limit() {
    let links: i64 = 10_000;
    let world = World::new().await;
    let first = world.conn.id.clone();
    let second = connections::add(
        &world.db,
        world.runtime.info(),
        world.sim.new_connection("second"),
    )
    .await
    .expect("add the second connection")
    .id;
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

    // The other links are copies of the first, every other one (the even ids)
    // on the second connection, so both have links due all through the round.
    let now = world.now();
    let template_id = template.id;
    copy_links(&world.db, template_id, links, &second).await;
    // Warm the token and metadata caches of both connections (the first copy is
    // on the second connection); these two syncs are before the round.
    for kr in [template_id, template_id + 1] {
        let run = world.syncer.sync(kr, Trigger::Manual).await.unwrap();
        assert_eq!(run.status, "success", "{run:?}");
    }
    world.clock.advance(link.interval_seconds * 2);

    let limit = world.runtime.info().max_concurrent_per_connection as usize;
    // Answers take long next to the host's own work for a sync, so that syncs
    // overlap and each connection fills up to its limit.
    world.sim.server.set_latency(Duration::from_millis(300));
    let started = Instant::now();
    let round = world.scheduler(256).run_due().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(round.started, links as usize);
    assert_eq!(round.succeeded, links as usize, "{round:?}");

    let per_connection = world.sim.server.peak_concurrency_per_token();
    assert_eq!(
        per_connection.len(),
        2,
        "one access token per connection: {per_connection:?}"
    );
    for peak in &per_connection {
        assert!(
            *peak <= limit,
            "a connection had {peak} requests at once, over the limit of {limit}"
        );
        assert!(
            *peak > limit / 2,
            "the limit is actually used: {per_connection:?}"
        );
    }
    let overall = world.sim.server.peak_concurrency();
    assert!(
        overall > limit,
        "at most {overall} requests at once over both connections, not above one \
         connection's limit of {limit} ({per_connection:?}): a global cap would pass too"
    );
    assert!(overall <= 2 * limit, "{overall}");

    let (successes, still_due, synced_value) = world
        .db
        .run(move |conn| {
            let successes = conn.query_map(
                "SELECT l.connection_id, count(*) FROM sync_runs r
                 JOIN metric_links l ON l.key_result_id = r.key_result_id
                 WHERE r.status = 'success' GROUP BY l.connection_id ORDER BY 1",
                goals_host::params![],
                |r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?)),
            )?;
            Ok((
                successes,
                conn.query_row(
                    "SELECT count(*) FROM metric_links WHERE next_run_at <= ?1",
                    goals_host::params![now + link.interval_seconds * 2],
                    |r| r.get::<i64>(0),
                )?,
                conn.query_row(
                    "SELECT count(DISTINCT current_value), count(current_value) FROM key_results",
                    goals_host::params![],
                    |r| Ok((r.get::<i64>(0)?, r.get::<i64>(1)?)),
                )?,
            ))
        })
        .await
        .unwrap();
    // One run per link, plus the warm-up of each connection.
    let mut expected = vec![(first, links / 2 + 1), (second, links / 2 + 1)];
    expected.sort();
    assert_eq!(successes, expected, "one sync per link, none lost");
    assert_eq!(still_due, 0, "no link left behind");
    assert_eq!(synced_value, (1, links), "every Key Result has the value");
    // A small view: the simulator's own aggregation stays cheap next to the host.
    let active = dataset()
        .rows("account")
        .iter()
        .filter(|row| row.get("statecode") == Some(&json!(0)))
        .count() as f64;
    for kr in [template.id, template.id + 1, template.id + links - 1] {
        let sample = keyresults::get_by_id(&world.db, kr).await.unwrap();
        assert_eq!(sample.current_value, Some(active));
    }
    eprintln!(
        "{links} syncs in {:.1} s ({:.0}/s), peak {overall} concurrent requests, \
         {per_connection:?} per connection (limit {limit})",
        elapsed.as_secs_f64(),
        links as f64 / elapsed.as_secs_f64()
    );
}
