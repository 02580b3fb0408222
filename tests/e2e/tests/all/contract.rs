//! The contract itself: the built plugin fits `goals:integration@0.4.0` as
//! `wit/` alone describes it, components built against the frozen 0.2.0 and
//! 0.1.0 still load and answer, and what a 0.1 host stored under the plugin's
//! display name is found again under the 0.2 id.

use goals_e2e::target;
use goals_e2e::{World, misbehaving_component, seeded_spec};
use goals_host::bindings::{Aggregation, SettingKind};
use goals_host::db::{self, Database};
use goals_host::runtime::{self, EMBEDDED_PLUGIN, PluginSource};
use std::path::Path;

fn wit_dir(version: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../wit")
        .join(version)
}

/// Whether `component` targets the integration world of `wit/VERSION`, as
/// `wasm-tools component targets wit/VERSION --world integration` checks: every
/// import of the component is one the world declares.
fn targets(version: &str, component: &[u8]) -> anyhow::Result<()> {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve.push_dir(wit_dir(version))?;
    let world = resolve.select_world(&[package], Some("integration"))?;
    wit_component::targets(&resolve, world, component)
}

#[test]
fn the_built_plugin_targets_the_0_4_world_of_wit_alone() {
    targets("v0.4.0", EMBEDDED_PLUGIN)
        .unwrap_or_else(|e| panic!("the plugin does not target the 0.4.0 world: {e:#}"));
    // The second integration, written against wit/ alone, stays a 0.2 one.
    let tally = std::fs::read(goals_e2e::tally_component()).expect("the tally component");
    targets("v0.2.0", &tally)
        .unwrap_or_else(|e| panic!("tally does not target the 0.2.0 world: {e:#}"));
    assert!(
        targets("v0.4.0", &tally).is_err(),
        "0.2 and 0.4 are different worlds"
    );
}

/// A 0.2 component loads and measures (`integrations.rs` syncs tally), but is
/// never asked for a period it cannot apply: the call fails before it is made.
#[tokio::test]
async fn a_0_2_component_is_not_asked_to_limit_a_metric_to_a_period() {
    let db = Database::open_in_memory().unwrap();
    let tally = runtime::load(&PluginSource::File(goals_e2e::tally_component().into()), db)
        .await
        .expect("a 0.2.0 component loads");
    let target = goals_host::runtime::CallTarget {
        integration: tally.info().id.clone(),
        connection: goals_host::bindings::Connection {
            id: "c".to_string(),
            settings: Vec::new(),
            credential: goals_host::bindings::Credential::ApiKey("k".to_string()),
        },
        origins: Vec::new(),
        allow_loopback: false,
    };
    let window = goals_host::bindings::DateWindow {
        column: "createdon".to_string(),
        first_day: Some("2024-01-01".to_string()),
        last_day: None,
    };
    let refused = tally
        .fetch_and_aggregate_within(
            &target,
            &seeded_spec("lead", "Hot Leads", "fullname", Aggregation::Count),
            &[window],
            None,
        )
        .await
        .expect_err("refused");
    assert!(
        refused
            .to_string()
            .contains("cannot limit a metric to a period"),
        "{refused}"
    );
    // A history's points are measured one by one for it, so the same holds.
    let point = goals_host::bindings::DateWindow {
        column: "createdon".to_string(),
        first_day: None,
        last_day: Some("2024-03-31".to_string()),
    };
    let refused = tally
        .fetch_series(
            &target,
            &seeded_spec("lead", "Hot Leads", "fullname", Aggregation::Count),
            &[],
            None,
            &[point],
        )
        .await
        .expect_err("refused");
    assert!(
        refused
            .to_string()
            .contains("cannot limit a metric to a period"),
        "{refused}"
    );
    // Nor for a chart's measure: it has no charts to offer.
    assert!(tally.list_charts(&target, "lead").await.unwrap().is_empty());
    let chart = goals_host::bindings::ChartSelection {
        chart_id: "c".to_string(),
        chart_kind: goals_host::bindings::ViewKind::System,
        measure: "m".to_string(),
        category: None,
    };
    let refused = tally
        .fetch_and_aggregate_within(
            &target,
            &seeded_spec("lead", "Hot Leads", "fullname", Aggregation::Count),
            &[],
            Some(&chart),
        )
        .await
        .expect_err("refused");
    assert!(
        refused.to_string().contains("cannot measure a chart"),
        "{refused}"
    );
}

#[tokio::test]
async fn the_plugin_describes_its_id_and_the_connection_form() {
    let db = Database::open_in_memory().unwrap();
    let runtime = runtime::load(&PluginSource::Embedded, db).await.unwrap();
    let info = runtime.info();
    assert_eq!(info.id, "microsoft.dynamics365");
    assert_eq!(info.name, "Dynamics 365");
    let endpoints: Vec<_> = info
        .settings
        .iter()
        .filter(|s| matches!(s.kind, SettingKind::Endpoint))
        .map(|s| (s.key.as_str(), s.required, s.default_value.as_deref()))
        .collect();
    assert_eq!(
        endpoints,
        [
            ("environment_url", true, None),
            (
                "authority_url",
                false,
                Some("https://login.microsoftonline.com")
            ),
        ]
    );
    assert!(info.settings.iter().all(|s| !s.label.is_empty()));
    assert!(info.min_sync_interval_seconds > 0);
    assert!(info.min_sync_interval_seconds <= info.default_sync_interval_seconds);
}

/// `tests/misbehave` is deliberately built against 0.1.0.
#[tokio::test]
async fn a_component_built_against_0_1_0_still_loads_and_answers() {
    let db = Database::open_in_memory().unwrap();
    let runtime = runtime::load(
        &PluginSource::File(misbehaving_component().into()),
        db.clone(),
    )
    .await
    .expect("a 0.1.0 component loads");
    let info = runtime.info();
    assert_eq!(
        info.id, info.name,
        "0.1 scoped storage by name; it stays its id"
    );
    assert_eq!(info.aggregations, [Aggregation::Count]);
    let keys: Vec<_> = info.settings.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(
        keys,
        ["environment_url", "tenant", "client_id", "authority_url"]
    );

    let sim = goals_e2e::Sim::start().await;
    let conn = goals_host::connections::add(&db, runtime.info(), sim.new_connection("old"))
        .await
        .unwrap();
    let apps = runtime
        .list_apps(&target(&conn))
        .await
        .expect("a 0.1 call answers");
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].name, "Well-behaved app");
}

fn token_requests(world: &World) -> usize {
    world
        .sim
        .server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/oauth2/v2.0/token"))
        .count()
}

async fn values_under(db: &Database, plugin: &str) -> i64 {
    let plugin = plugin.to_string();
    db.run(move |conn| {
        Ok(conn.query_row(
            "SELECT count(*) FROM plugin_kv WHERE plugin = ?1",
            goals_host::params![plugin],
            |r| r.get(0),
        )?)
    })
    .await
    .unwrap()
}

/// The access token and metadata a 0.1 host kept under "Dynamics 365" are
/// moved to `microsoft.dynamics365` when the 0.2 plugin loads: the next
/// measurement signs in no more and reads no metadata again.
#[tokio::test]
async fn storage_kept_under_the_display_name_survives_the_move_to_the_id() {
    let world = World::new().await;
    let spec = seeded_spec("lead", "Hot Leads", "fullname", Aggregation::Count);
    world
        .runtime
        .fetch_and_aggregate(&target(&world.conn), &spec)
        .await
        .unwrap();
    let stored = values_under(&world.db, "microsoft.dynamics365").await;
    assert!(stored > 0, "the plugin keeps its token and metadata");
    // As a 0.1 host left it: everything under the display name.
    db::move_plugin_scope(&world.db, "microsoft.dynamics365", "Dynamics 365")
        .await
        .unwrap();
    assert_eq!(values_under(&world.db, "microsoft.dynamics365").await, 0);

    let reloaded = runtime::load(&PluginSource::Embedded, world.db.clone())
        .await
        .unwrap();
    assert_eq!(values_under(&world.db, "Dynamics 365").await, 0);
    assert_eq!(
        values_under(&world.db, "microsoft.dynamics365").await,
        stored
    );
    let (tokens, requests) = (token_requests(&world), world.sim.server.requests().len());
    let measured = reloaded
        .fetch_and_aggregate(&target(&world.conn), &spec)
        .await
        .unwrap();
    assert_eq!(token_requests(&world), tokens, "the cached token was found");
    assert_eq!(
        world.sim.server.requests().len() - requests,
        measured.requests as usize,
    );
    assert_eq!(measured.requests, 1, "one $batch, no metadata read again");
}

/// A component of the integration world of `wit/VERSION` whose every export
/// traps: `wit-component`'s stand-in, built from the WIT alone.
fn stand_in(version: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve.push_dir(wit_dir(version)).expect("the WIT");
    let world = resolve
        .select_world(&[package], Some("integration"))
        .expect("the world");
    let mut module = wit_component::dummy_module(
        &resolve,
        world,
        wit_parser::ManglingAndAbi::Legacy(wit_parser::LiftLowerAbi::Sync),
    );
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("the component's metadata");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .expect("the module")
        .validate(true)
        .encode()
        .expect("a component")
}

/// Every released world is linked and recognised: a component of 0.4, 0.3 or
/// 0.2 gets as far as its `describe` (which the stand-in traps in), where one
/// the host did not know would be refused before, for its imports or exports.
#[tokio::test]
async fn a_component_of_every_released_world_is_linked_up_to_describe() {
    let dir = tempfile::tempdir().unwrap();
    for version in ["v0.4.0", "v0.3.0", "v0.2.0", "v0.1.0"] {
        let path = dir.path().join(format!("{version}.wasm"));
        std::fs::write(&path, stand_in(version)).unwrap();
        let db = Database::open_in_memory().unwrap();
        let refused = match runtime::load(&PluginSource::File(path), db).await {
            Ok(_) => panic!("{version}: the stand-in's describe traps"),
            Err(error) => format!("{error:#}"),
        };
        assert!(
            refused.contains("calling describe") && !refused.contains("does not export"),
            "{version}: {refused}"
        );
    }
}
