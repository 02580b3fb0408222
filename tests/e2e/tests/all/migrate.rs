//! `goals-host migrate-to`: an SQLite installation moved to PostgreSQL, where
//! the same commands show the same data and syncs carry on. Skipped, saying
//! so, without `GOALS_TEST_DATABASE_URL`.

use goals_e2e::postgres::TestDatabase;
use goals_e2e::{CREATE_KR, Cli, Sim};
use goals_host::db::Database;
use goals_host::params;
use serde_json::Value;

/// `args` on the PostgreSQL database at `url`, with the Cli's data directory
/// (and so its key).
fn on<'a>(url: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    [&["--database-url", url][..], args].concat()
}

fn token_requests(sim: &Sim) -> usize {
    sim.server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/oauth2/v2.0/token"))
        .count()
}

#[tokio::test]
async fn an_sqlite_installation_moves_to_postgres_and_carries_on_there() {
    let Some(database) = TestDatabase::create("migrate-to").await else {
        return;
    };
    let url = database.url.as_str();
    let sim = Sim::start().await;
    let cli = Cli::new();
    let added = cli.add_connection(&sim, "sim").await;
    assert!(added.success(), "{}", added.stderr);
    // Linked and synced once, then synced again: two runs, a cached token.
    let kr = cli.linked_hot_leads_kr("sim", &[]).await;
    let synced = cli.json(&["kr", "sync", &kr]).await;
    assert_eq!(synced["run"]["status"], "success", "{synced}");
    let views: [&[&str]; 4] = [
        &["kr", "list"],
        &["kr", "show", &kr],
        &["kr", "history", &kr],
        &["connection", "list"],
    ];
    let mut before = Vec::new();
    for args in views {
        before.push(cli.json(args).await);
    }

    let moved = cli.json(&["migrate-to", "--database-url", url]).await;
    assert_eq!(moved["database_url"], url, "{moved}");
    let tables = &moved["tables"];
    for (table, rows) in [
        ("tenants", 1),
        ("organizations", 1),
        ("connections", 1),
        ("key_results", 1),
        ("metric_links", 1),
        ("sync_queries", 1),
        ("sync_runs", 2),
        ("alerts", 0),
    ] {
        assert_eq!(tables[table], rows, "{table}: {moved}");
    }
    assert!(
        tables["plugin_kv"].as_u64().is_some_and(|n| n > 0),
        "{moved}"
    );
    let total: u64 = tables
        .as_object()
        .expect("tables")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(moved["rows"], total, "{moved}");
    assert!(
        tables.get("key_check").is_none() && tables.get("hosts").is_none(),
        "{moved}"
    );

    // The same data on PostgreSQL, read with the same key.
    for (args, expected) in views.iter().zip(&before) {
        assert_eq!(&cli.json(&on(url, args)).await, expected, "{args:?}");
    }

    // The stored token opens there: a sync sends no sign-in.
    sim.server.clear_requests();
    let synced = cli.json(&on(url, &["kr", "sync", &kr])).await;
    assert_eq!(synced["run"]["status"], "success", "{synced}");
    assert_eq!(token_requests(&sim), 0, "the copied token was used");
    // And so does the sealed client secret, once the token is gone.
    sim.server.expire_tokens();
    let synced = cli.json(&on(url, &["kr", "sync", &kr])).await;
    assert_eq!(synced["run"]["status"], "success", "{synced}");
    assert_eq!(token_requests(&sim), 1, "signed in with the copied secret");

    // New rows continue after the copied ids.
    let history = cli.json(&on(url, &["kr", "history", &kr])).await;
    assert_eq!(history.as_array().map(Vec::len), Some(4), "{history}");
    let created = cli.json(&on(url, &CREATE_KR)).await;
    let copied: i64 = kr.parse().expect("a numeric id");
    assert!(
        created["id"].as_i64().is_some_and(|id| id > copied),
        "{created}"
    );

    // A second move into the database, which now holds data, is refused and
    // changes nothing.
    let list = cli.json(&on(url, &["kr", "list"])).await;
    let again = cli
        .run(&["migrate-to", "--database-url", url, "--json"])
        .await;
    assert_eq!(again.output.status.code(), Some(2), "{}", again.stderr);
    assert_eq!(again.json()["error"]["kind"], "in-use");
    let message = again.json()["error"]["message"].to_string();
    assert!(
        message.contains("already holds data") && message.contains("in key_results"),
        "{message}"
    );
    assert!(again.stderr.contains("empty database"), "{}", again.stderr);
    assert_eq!(cli.json(&on(url, &["kr", "list"])).await, list);
    assert_eq!(cli.json(&on(url, &["kr", "history", &kr])).await, history);
}

#[tokio::test]
async fn migrate_to_refuses_a_database_sealed_with_another_key() {
    let Some(database) = TestDatabase::create("migrate-to another key").await else {
        return;
    };
    // Another installation's host has used the database.
    let elsewhere = tempfile::tempdir().unwrap();
    drop(
        Database::open_postgres(&database.url, elsewhere.path())
            .await
            .expect("open the test database"),
    );
    let cli = Cli::new();
    cli.json(&["tenant", "create", "acme"]).await;

    let refused = cli
        .run(&["migrate-to", "--database-url", &database.url])
        .await;
    assert_eq!(refused.output.status.code(), Some(1), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("sealed with another key"),
        "{}",
        refused.stderr
    );
    let db = Database::open_postgres(&database.url, elsewhere.path())
        .await
        .unwrap();
    let tenants = goals_host::goals::admin::tenants(&db).await.unwrap();
    let names: Vec<&str> = tenants.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["default"], "nothing was copied");
}

#[tokio::test]
async fn migrate_to_says_what_it_is_missing() {
    let cli = Cli::new();
    let usage = cli.run(&["migrate-to", "--json"]).await;
    assert_eq!(usage.output.status.code(), Some(2), "{}", usage.stderr);
    assert_eq!(usage.json()["error"]["kind"], "usage");
    assert!(usage.stderr.contains("--database-url"), "{}", usage.stderr);

    // A data directory without goals.db, or none at all, is not moved as an
    // empty database; PostgreSQL is not reached, and its password never shown.
    let url = "postgres://goals:hunter2@127.0.0.1:1/goals";
    let no_database = cli.run(&["migrate-to", "--database-url", url]).await;
    assert_eq!(no_database.output.status.code(), Some(3));
    assert!(
        no_database.stderr.contains("no goals.db"),
        "{}",
        no_database.stderr
    );
    assert!(!cli.data_dir().join("goals.db").exists());
    std::fs::remove_dir(cli.data_dir()).unwrap();
    let no_dir = cli
        .run(&["migrate-to", "--database-url", url, "--json"])
        .await;
    assert_eq!(no_dir.output.status.code(), Some(3), "{}", no_dir.stderr);
    assert_eq!(no_dir.json()["error"]["kind"], "not-found");
    assert!(!cli.data_dir().exists(), "not created");
    assert!(!no_dir.stderr.contains("hunter2") && !no_dir.stdout.contains("hunter2"));
}

#[tokio::test]
async fn migrate_to_waits_for_the_data_directorys_other_processes() {
    let Some(database) = TestDatabase::create("migrate-to beside a host").await else {
        return;
    };
    let cli = Cli::new();
    cli.json(&["tenant", "create", "acme"]).await;
    let mut running = cli
        .command(&["run", "--poll", "1"])
        .spawn()
        .expect("start goals-host run");
    // The scheduler holds its lease once its database is open.
    let processes = cli.data_dir().join("processes");
    for _ in 0..200 {
        let held = std::fs::read_dir(&processes).map_or(0, |dir| dir.count());
        if held > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let refused = cli
        .run(&["migrate-to", "--database-url", &database.url])
        .await;
    running.kill().await.expect("stop goals-host run");
    assert_eq!(refused.output.status.code(), Some(2), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("stop `goals-host run`"),
        "{}",
        refused.stderr
    );
    let moved = cli
        .json(&["migrate-to", "--database-url", &database.url])
        .await;
    assert_eq!(moved["tables"]["tenants"], 2, "moved once the host is gone");
}

/// More rows than one page holds, through the library: every one arrives, and
/// the identity continues after the last.
#[tokio::test]
async fn a_long_history_is_copied_page_by_page() {
    let Some(database) = TestDatabase::create("migrate-to a long history").await else {
        return;
    };
    let data_dir = tempfile::tempdir().unwrap();
    let source = Database::open(data_dir.path()).unwrap();
    source
        .run(|sql| {
            sql.execute_batch(
                "INSERT INTO key_results (id, organization_id, title, owner, unit, start_value,
                     target_value, direction, created_at)
                 VALUES (3, 1, 'Deals', 'ana', 'number', 0, 10, 'increase', 0);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1234)
                 INSERT INTO sync_runs (id, key_result_id, trigger, started_at, status, value)
                 SELECT i * 2, 3, 'scheduled', i, 'success', i / 4.0 FROM n;",
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let target = Database::open_postgres(&database.url, data_dir.path())
        .await
        .unwrap();
    let moved = goals_host::migrate::sqlite_to_postgres(&source, &target)
        .await
        .expect("copied");
    let runs = moved.tables.iter().find(|(t, _)| t == "sync_runs");
    assert_eq!(runs, Some(&("sync_runs".to_string(), 1234)), "{moved:?}");
    let (count, sum, next): (i64, f64, i64) = target
        .run(|sql| {
            let (count, sum) = sql.query_row(
                "SELECT count(*), sum(value) FROM sync_runs",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let next = sql.query_row(
                "INSERT INTO sync_runs (key_result_id, trigger, started_at, status)
                 VALUES (3, 'manual', 0, 'running') RETURNING id",
                params![],
                |r| r.get(0),
            )?;
            Ok((count, sum, next))
        })
        .await
        .unwrap();
    assert_eq!(count, 1234);
    assert_eq!(sum, (1..=1234).map(|i| i as f64 / 4.0).sum::<f64>());
    assert_eq!(next, 2469, "after the largest copied id, 2468");
}
