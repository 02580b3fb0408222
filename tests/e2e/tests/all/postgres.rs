//! PostgreSQL as the host's database: the same schema and data as SQLite's, and
//! the CLI's whole flow with `--database-url`. (The scheduler's and syncs' flows
//! run on both backends in `goals`.) Each test has a database of its own; all
//! are skipped, saying so, without `GOALS_TEST_DATABASE_URL`.

use goals_e2e::postgres::TestDatabase;
use goals_e2e::{Cli, Sim, World, hot_leads};
use goals_host::bindings::Aggregation;
use goals_host::db::Database;
use goals_host::goals::scheduler::Scheduler;
use goals_host::goals::sync::{SyncError, Trigger};
use goals_host::params;
use goals_host::sql::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One row in every table, every column set, through the SQL both backends run
/// (`?1`, where given, is bytes: the two have no common literal for them).
const ROWS: &[(&str, &str)] = &[
    (
        "tenants",
        "INSERT INTO tenants (id, name, integration_enabled, created_at)
         VALUES (7, 'Fabrikam', 1, 1800000000)",
    ),
    (
        "organizations",
        "INSERT INTO organizations (id, tenant_id, name, integration_enabled, created_at)
         VALUES (8, 7, 'Fabrikam Sales', 0, 1800000001)",
    ),
    (
        "connections",
        "INSERT INTO connections (id, organization_id, name, integration, settings, origins,
             sign_in, client_secret, allow_loopback, added_by, status, status_reason,
             created_at, throttled_until)
         VALUES ('c1', 8, 'CRM', 'microsoft.dynamics365',
             '[[\"environment_url\",\"https://fabrikam.crm.dynamics.com\"]]',
             '[\"https://fabrikam.crm.dynamics.com\"]', 'client-secret', 'gh1.sealed', 0,
             'admin@fabrikam.example', 'disabled', 'license review', 1800000002, 1800000300)",
    ),
    (
        "key_results",
        "INSERT INTO key_results (id, organization_id, title, owner, unit, currency_code,
             start_value, target_value, direction, current_value, current_source, current_at,
             created_at)
         VALUES (9, 8, 'Pipeline', 'ana@fabrikam.example', 'currency', 'EUR', 0.5, 1000000.25,
             'increase', 1234.5, 'sync', 1800000003, 1800000004)",
    ),
    (
        "metric_links",
        "INSERT INTO metric_links (key_result_id, connection_id, app_id, app_name, entity,
             entity_name, view_id, view_kind, view_name, column_name, column_display,
             aggregation, currency, interval_seconds, state, state_reason, next_run_at,
             failures, running_since, last_success_at, last_attempt_at, created_at,
             running_owner, claim_expires_at)
         VALUES (9, 'c1', 'app', 'Sales Hub', 'opportunity', 'Opportunity', 'v1', 'personal',
             'Open Opportunities', 'estimatedvalue', 'Est. Revenue', 'sum', 'transaction',
             3600, 'broken', 'the view was deleted', 1800003600, 2, 1800000005, 1800000006,
             1800000007, 1800000008, '4242-00000000000000aa', 1800000009)",
    ),
    (
        "sync_queries",
        "INSERT INTO sync_queries (id, text) VALUES (5, '<fetch aggregate=\"true\"/>')",
    ),
    (
        "sync_runs",
        "INSERT INTO sync_runs (id, key_result_id, trigger, started_at, finished_at, status,
             value, currency, records, requests, bytes, error_kind, error_message, query,
             owner, query_id)
         VALUES (11, 9, 'manual', 1800000010, 1800000011, 'failure', 99.75, 'EUR', 1088, 3,
             86213, 'not-found', 'the view is gone', NULL, '4242-00000000000000aa', 5)",
    ),
    (
        "alerts",
        "INSERT INTO alerts (id, kind, subject, message, opened_at, closed_at)
         VALUES (12, 'broken-link', 'kr:9', 'the view was deleted', 1800000012, 1800000013)",
    ),
    (
        "hosts",
        "INSERT INTO hosts (id, hostname, pid, version, started_at, heartbeat_at, lease_seconds)
         VALUES ('4242-00000000000000aa', 'host-a', 4242, '0.1.0', 1800000015, 1800000016, 30)",
    ),
    (
        "api_tokens",
        "INSERT INTO api_tokens (id, hash, role, tenant_id, organization_id, user_email,
             created_at, revoked_at)
         VALUES ('00aa11bb22cc', 'ab01', 'member', 7, 8, 'ana@contoso.com', 1800000017,
             1800000018)",
    ),
    (
        "plugin_kv",
        "INSERT INTO plugin_kv (plugin, connection_id, key, value, expires_at)
         VALUES ('microsoft.dynamics365', 'c1', 'token', ?1, 1800000014)",
    ),
];

type Tables = BTreeMap<String, (Vec<String>, Vec<Vec<Value>>)>;

/// Every table of `db` with its columns and rows, after writing [`ROWS`].
async fn round_trip(db: &Database) -> Tables {
    db.run(|sql| {
        let tx = sql.transaction()?;
        let bytes: Vec<u8> = vec![0, 255, 16];
        for (_, row) in ROWS {
            if row.contains("?1") {
                tx.execute(row, params![bytes])?;
            } else {
                tx.execute(row, params![])?;
            }
        }
        // The default tenant and organization are stamped when each schema was
        // made, which need not be the same second.
        tx.execute("UPDATE tenants SET created_at = 0 WHERE id = 1", params![])?;
        tx.execute(
            "UPDATE organizations SET created_at = 0 WHERE id = 1",
            params![],
        )?;
        tx.commit()?;
        let tables: Vec<String> = if sql.is_postgres() {
            sql.query_map(
                // Beside the data, what only hosts sharing a database need:
                // the schema's version, the check that they share the key,
                // and the connections' slots they share.
                "SELECT table_name::TEXT FROM information_schema.tables
                 WHERE table_schema = 'public'
                   AND table_name NOT IN ('schema_version', 'key_check', 'connection_slots')",
                params![],
                |r| r.get(0),
            )?
        } else {
            sql.query_map(
                "SELECT name FROM sqlite_master
                 WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                params![],
                |r| r.get(0),
            )?
        };
        let mut read = Tables::new();
        for table in tables {
            let rows = sql.query_map(
                &format!("SELECT * FROM {table} ORDER BY 1, 2"),
                params![],
                |r| Ok((r.names().to_vec(), r.values().to_vec())),
            )?;
            let names = rows.first().map(|(n, _)| n.clone()).unwrap_or_default();
            read.insert(table, (names, rows.into_iter().map(|(_, v)| v).collect()));
        }
        Ok(read)
    })
    .await
    .expect("write and read every table")
}

#[tokio::test]
async fn every_table_holds_the_same_data_on_both_backends() {
    let Some(database) = TestDatabase::create("the round trip").await else {
        return;
    };
    let data_dir = tempfile::tempdir().unwrap();
    let postgres = Database::open_postgres(&database.url, data_dir.path())
        .await
        .expect("open the test database");
    let sqlite = Database::open_in_memory().unwrap();

    let on_sqlite = round_trip(&sqlite).await;
    let on_postgres = round_trip(&postgres).await;
    let written: Vec<&str> = ROWS.iter().map(|(table, _)| *table).collect();
    for table in on_sqlite.keys() {
        assert!(
            written.contains(&table.as_str()),
            "{table} has no row in ROWS: add one so its columns are compared"
        );
    }
    assert_eq!(
        on_sqlite.keys().collect::<Vec<_>>(),
        on_postgres.keys().collect::<Vec<_>>(),
        "the same tables"
    );
    for (table, sqlite_rows) in &on_sqlite {
        assert_eq!(sqlite_rows, &on_postgres[table], "table {table}");
        assert!(!sqlite_rows.1.is_empty(), "{table} was written");
    }
}

#[tokio::test]
async fn a_reopened_database_keeps_its_data_and_migrates_once() {
    let Some(database) = TestDatabase::create("reopening").await else {
        return;
    };
    let data_dir = tempfile::tempdir().unwrap();
    let first = Database::open_postgres(&database.url, data_dir.path())
        .await
        .unwrap();
    goals_host::goals::admin::create_tenant(&first, "Contoso", 0)
        .await
        .unwrap();
    drop(first);
    // Two hosts starting together: the migration lock lets one migrate.
    let (a, b) = tokio::join!(
        Database::open_postgres(&database.url, data_dir.path()),
        Database::open_postgres(&database.url, data_dir.path())
    );
    let (a, _b) = (a.expect("the first host"), b.expect("the second host"));
    let tenants = goals_host::goals::admin::tenants(&a).await.unwrap();
    let names: Vec<&str> = tenants.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["Contoso", "default"]);
}

#[tokio::test]
async fn a_wrong_database_url_names_the_server_but_not_the_password() {
    let cli = Cli::new();
    let run = cli
        .run_with_env(
            &["kr", "list"],
            &[(
                "GOALS_HOST_DATABASE_URL",
                "postgres://goals:hunter2@127.0.0.1:1/goals",
            )],
        )
        .await;
    assert!(!run.success());
    assert!(run.stderr.contains("127.0.0.1:1"), "{}", run.stderr);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
}

#[tokio::test]
async fn the_cli_links_and_syncs_a_key_result_on_postgres() {
    let Some(cli) = Cli::on_postgres("the CLI flow").await else {
        return;
    };
    let sim = Sim::start().await;
    let added = cli.add_connection(&sim, "sim").await;
    assert!(added.success(), "{}", added.stderr);
    let kr = cli.linked_hot_leads_kr("sim", &[]).await;
    let details = cli.json(&["kr", "show", &kr]).await;
    assert_eq!(details["key_result"]["current_value"], hot_leads());

    cli.advance_clock(4000);
    let round = cli.json(&["run", "--once"]).await;
    assert_eq!(round["succeeded"], 1, "{round}");
    let history = cli.json(&["kr", "history", &kr]).await;
    let triggers: Vec<&str> = history
        .as_array()
        .expect("the runs")
        .iter()
        .filter_map(|run| run["trigger"].as_str())
        .collect();
    assert_eq!(triggers, ["scheduled", "manual"], "{history}");
    let sync = cli.json(&["kr", "sync", &kr]).await;
    assert_eq!(sync["run"]["status"], "success", "{sync}");

    // Nothing of it is in the data directory: the data is on the server.
    assert!(!cli.data_dir().join("goals.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hosts_sharing_the_database_sync_each_due_link_once() {
    let Some(world) = World::on_postgres("two hosts").await else {
        return;
    };
    const LINKS: usize = 30;
    let mut krs = Vec::new();
    for i in 0..LINKS {
        let kr = world.key_result(&format!("KR {i}")).await;
        world
            .link(&kr, "lead", "Hot Leads", "fullname", Aggregation::Count)
            .await;
        krs.push(kr);
    }
    let (peer, _peer_dir) = world.peer_host(usize::MAX).await;
    let (here, there) = (world.scheduler(6), Scheduler::new(Arc::clone(&peer), 6));
    let (a, b) = tokio::join!(here.run_due(), there.run_due());
    let (a, b) = (a.expect("this host's round"), b.expect("the peer's round"));
    assert_eq!(a.succeeded + b.succeeded, LINKS, "{a:?} {b:?}");
    assert_eq!(a.failed + b.failed, 0, "{a:?} {b:?}");
    // A host that listed the links as due before the other synced them all
    // finds them synced, and leaves them.
    for kr in &krs {
        let late = peer.sync(kr.id, Trigger::Scheduled).await;
        assert!(matches!(late, Err(SyncError::NotDue(_))), "{late:?}");
    }
    let runs_per_link: Vec<i64> = world
        .db
        .run(|sql| {
            Ok(sql.query_map(
                "SELECT count(*) FROM sync_runs GROUP BY key_result_id",
                params![],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(runs_per_link, vec![1; LINKS], "each link synced once");
}

#[tokio::test]
async fn hosts_share_one_access_token_and_metadata_cache_per_connection() {
    let Some(world) = World::on_postgres("a shared token").await else {
        return;
    };
    let kr = world.key_result("Hot leads").await;
    world
        .link(&kr, "lead", "Hot Leads", "fullname", Aggregation::Count)
        .await;
    let first = world.syncer.sync(kr.id, Trigger::Manual).await.unwrap();
    assert_eq!(first.status, "success", "{first:?}");

    // Another host, which never signed in nor read the view, syncs with one
    // request: the token and the metadata this host stored.
    let (peer, _peer_dir) = world.peer_host(usize::MAX).await;
    world.sim.server.clear_requests();
    let run = peer.sync(kr.id, Trigger::Manual).await.unwrap();
    assert_eq!(run.status, "success", "{run:?}");
    let paths: Vec<String> = world
        .sim
        .server
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert!(
        !paths
            .iter()
            .any(|path| path.ends_with("/oauth2/v2.0/token")),
        "the peer signed in again: {paths:?}"
    );
    assert_eq!(run.requests, Some(1), "one aggregate request: {paths:?}");
}

#[tokio::test]
async fn a_throttle_seen_by_one_host_holds_for_every_host() {
    let Some(world) = World::on_postgres("a shared throttle").await else {
        return;
    };
    let (first, second) = (
        world.key_result("First").await,
        world.key_result("Second").await,
    );
    for kr in [&first, &second] {
        world
            .link(kr, "lead", "Hot Leads", "fullname", Aggregation::Count)
            .await;
    }
    world.clock.advance(4000);
    world.sim.server.inject_fault(dataverse_sim::Fault::Status {
        status: 429,
        retry_after_seconds: Some(300),
    });
    let run = world.syncer.sync(first.id, Trigger::Manual).await.unwrap();
    assert_eq!(run.error_kind.as_deref(), Some("throttled"));

    // The peer has heard nothing from Dataverse, and still waits.
    let (peer, _peer_dir) = world.peer_host(usize::MAX).await;
    let sent = world.sim.server.requests().len();
    let round = Scheduler::new(Arc::clone(&peer), 4)
        .run_due()
        .await
        .unwrap();
    assert_eq!(round.started, 0, "{round:?}");
    assert_eq!(world.sim.server.requests().len(), sent, "nothing sent");
    world.clock.advance(300);
    let round = Scheduler::new(Arc::clone(&peer), 4)
        .run_due()
        .await
        .unwrap();
    assert_eq!(round.succeeded, 2, "{round:?}");
}

#[tokio::test]
async fn a_host_with_another_key_refuses_to_start_and_changes_nothing() {
    let Some(world) = World::on_postgres("another key").await else {
        return;
    };
    let url = world.database_url().expect("on PostgreSQL").to_string();
    let elsewhere = tempfile::tempdir().unwrap();
    let refused = Database::open_postgres(&url, elsewhere.path()).await;
    let message = refused.err().expect("another key is refused").to_string();
    assert!(message.contains("sealed with another key"), "{message}");

    // The same through the CLI: a failure that says what to do, no change.
    let cli = Cli::new();
    let run = cli
        .run_with_env(&["kr", "list"], &[("GOALS_HOST_DATABASE_URL", &url)])
        .await;
    assert!(!run.success());
    assert!(
        run.stderr.contains("GOALS_HOST_SECRET_KEY"),
        "{}",
        run.stderr
    );
    let conn = goals_host::connections::get_by_id(&world.db, &world.conn.id)
        .await
        .unwrap();
    assert_eq!(conn.status, goals_host::connections::Status::Ok);
}

/// Dataverse limits concurrent requests per user, whichever host sends them: two
/// hosts, each allowed the integration's whole maximum, stay under it together.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connections_limit_holds_across_hosts() {
    let Some(world) = World::on_postgres("the shared limit").await else {
        return;
    };
    let maximum = world.runtime.info().max_concurrent_per_connection as usize;
    let links = maximum * 5 / 2;
    for i in 0..links {
        let kr = world.key_result(&format!("KR {i}")).await;
        world
            .link(&kr, "lead", "Hot Leads", "fullname", Aggregation::Count)
            .await;
    }
    // Linking signed in already: every sync is one request.
    world
        .sim
        .server
        .set_latency(std::time::Duration::from_millis(300));
    let (peer, _peer_dir) = world.peer_host(usize::MAX).await;
    let (here, there) = (
        world.scheduler(2 * maximum),
        Scheduler::new(peer, 2 * maximum),
    );
    let (a, b) = tokio::join!(here.run_due(), there.run_due());
    let (a, b) = (a.expect("this host's round"), b.expect("the peer's round"));
    assert_eq!(a.succeeded + b.succeeded, links, "{a:?} {b:?}");
    assert!(
        a.succeeded > 0 && b.succeeded > 0,
        "both hosts synced: {a:?} {b:?}"
    );
    let peak = world.sim.server.peak_concurrency();
    assert!(
        peak <= maximum,
        "{peak} requests at once from two hosts, over the connection's {maximum}"
    );
}
