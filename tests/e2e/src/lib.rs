//! Shared set-up of the end-to-end tests: a simulator per test, the plugin loaded
//! in-process over a fresh database, and the real `goals-host` binary for CLI tests.

use dataverse_sim::{RunningSimulator, SimConfig};
use goals_host::bindings::{Aggregation, CurrencyChoice, MetricSpec, ViewKind, ViewRef};
use goals_host::connections::{self, ConnectionRecord, NewConnection};
use goals_host::db::Database;
use goals_host::goals::clock::{Clock, ManualClock};
use goals_host::goals::keyresults::{self, ItemKind, KeyResult, Link, NewKeyResult};
use goals_host::goals::linking::{self, Wanted};
use goals_host::goals::progress::{Direction, Unit};
use goals_host::goals::scheduler::Scheduler;
use goals_host::goals::sync::Syncer;
use goals_host::runtime::{self, CallTarget, PluginRuntime, PluginSource};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::OnceLock;
use tokio::sync::OnceCell;

pub use dataverse_sim::dataset;

mod device;
pub mod postgres;
pub mod tally;

/// Unix seconds of a JSON time (RFC 3339, as every time in the CLI's JSON).
pub fn seconds(time: &Value) -> Option<i64> {
    let parsed = humantime::parse_rfc3339(time.as_str()?).ok()?;
    let since = parsed.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_secs()).ok()
}

/// A running simulator with the credentials it accepts.
pub struct Sim {
    pub server: RunningSimulator,
    pub config: SimConfig,
}

impl Sim {
    pub async fn start() -> Sim {
        let config = SimConfig::default();
        let server = RunningSimulator::start(([127, 0, 0, 1], 0).into(), config.clone())
            .await
            .expect("start the simulator");
        Sim { server, config }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// `connection add` of this simulator (reached at `url`, its own) under
    /// `name`, allowing loopback; how it signs in is up to the caller.
    pub fn connection_add<'a>(&'a self, name: &'a str, url: &'a str) -> Vec<&'a str> {
        vec![
            "connection",
            "add",
            "--name",
            name,
            "--url",
            url,
            "--authority",
            url,
            "--tenant",
            &self.config.tenant,
            "--client-id",
            &self.config.client_id,
            "--allow-loopback",
        ]
    }

    pub fn new_connection(&self, name: &str) -> NewConnection {
        goals_host::demo::simulator_connection(&self.url(), &self.config, name)
    }
}

/// What the "Hot Leads" view counts, from the seeded rows: open leads rated hot.
pub fn hot_leads() -> f64 {
    dataset()
        .rows("lead")
        .iter()
        .filter(|row| {
            row.get("statecode") == Some(&serde_json::json!(0))
                && row.get("leadqualitycode") == Some(&serde_json::json!(1))
        })
        .count() as f64
}

/// The metric of the "Hot Leads" view's count: `--entity`, `--view`, `--column`
/// and `--aggregation` as `measure` and `kr link` take them.
pub const HOT_LEADS_METRIC: [&str; 8] = [
    "--entity",
    "lead",
    "--view",
    "Hot Leads",
    "--column",
    "fullname",
    "--aggregation",
    "count",
];

/// The metric of a seeded view, found by name, in the base currency.
pub fn seeded_spec(entity: &str, view: &str, column: &str, aggregation: Aggregation) -> MetricSpec {
    let seeded = dataset().view_by_name(view).expect("seeded view");
    let kind = match seeded.kind {
        dataverse_sim::ViewKind::System => ViewKind::System,
        dataverse_sim::ViewKind::Personal => ViewKind::Personal,
    };
    MetricSpec {
        entity: entity.to_string(),
        view: ViewRef {
            id: seeded.id.clone(),
            kind,
        },
        column: column.to_string(),
        aggregation,
        currency: CurrencyChoice::Base,
    }
}

/// `kr link KR` to the count of the Sales Hub's "Hot Leads" view through
/// `connection`, then `extra` arguments.
pub fn hot_leads_link<'a>(kr: &'a str, connection: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let link = [
        "kr",
        "link",
        kr,
        "--connection",
        connection,
        "--app",
        "Sales Hub",
    ];
    [&link[..], &HOT_LEADS_METRIC, extra].concat()
}

/// `measure` of the count of the "Hot Leads" view through `connection`.
pub fn hot_leads_measure(connection: &str) -> Vec<&str> {
    [
        &["measure", "--connection", connection][..],
        &HOT_LEADS_METRIC,
    ]
    .concat()
}

/// `kr create` of a Key Result counting up from 0 to 10,000.
pub const CREATE_KR: [&str; 10] = [
    "kr",
    "create",
    "--title",
    "Work hot leads",
    "--owner",
    "ana",
    "--start",
    "0",
    "--target",
    "10000",
];

/// The plugin compiled once per test binary.
async fn compiled() -> &'static PluginRuntime {
    static COMPILED: OnceCell<PluginRuntime> = OnceCell::const_new();
    COMPILED
        .get_or_init(|| async {
            let db = Database::open_in_memory().expect("in-memory database");
            runtime::load(&PluginSource::Embedded, db)
                .await
                .expect("load the embedded plugin")
        })
        .await
}

/// The plugin over a fresh in-memory database, with a connection to `sim`.
pub async fn plugin_with_connection(sim: &Sim) -> (PluginRuntime, ConnectionRecord) {
    let (runtime, _, conn) = plugin_with_database(sim).await;
    (runtime, conn)
}

/// The same, and the database the plugin stores in and the connection lives in.
pub async fn plugin_with_database(sim: &Sim) -> (PluginRuntime, Database, ConnectionRecord) {
    let db = Database::open_in_memory().expect("in-memory database");
    let runtime = runtime::with_database(compiled().await, db.clone());
    let conn = connections::add(&db, runtime.info(), sim.new_connection("sim"))
        .await
        .expect("add the simulator connection");
    (runtime, db, conn)
}

/// The connection as the engine's calls take it.
pub fn target(conn: &ConnectionRecord) -> CallTarget {
    goals_host::engine::call_target(conn).expect("the connection's credential opens")
}

/// Makes `template`'s Key Result and link into `total` of each, in one
/// transaction: copies of it, every other one on `other_connection` (so both
/// connections have links due all through a round). SQL both backends run.
pub async fn copy_links(db: &Database, template: i64, total: i64, other_connection: &str) {
    let other = other_connection.to_string();
    db.run(move |sql| {
        let tx = sql.transaction()?;
        tx.execute(
            "WITH RECURSIVE copies (n) AS (
                 SELECT 1 UNION ALL SELECT n + 1 FROM copies WHERE n < ?2 - 1)
             INSERT INTO key_results (organization_id, title, owner, unit, start_value,
                 target_value, direction, created_at)
             SELECT organization_id, 'Copy ' || n, owner, unit, start_value, target_value,
                 direction, created_at
             FROM key_results, copies WHERE id = ?1",
            goals_host::params![template, total],
        )?;
        tx.execute(
            "INSERT INTO metric_links (key_result_id, connection_id, app_id, app_name,
                 entity, entity_name, view_id, view_kind, view_name, column_name,
                 column_display, aggregation, currency, interval_seconds, state,
                 next_run_at, created_at)
             SELECT k.id, CASE k.id % 2 WHEN 0 THEN ?2 ELSE l.connection_id END,
                 l.app_id, l.app_name, l.entity, l.entity_name, l.view_id, l.view_kind,
                 l.view_name, l.column_name, l.column_display, l.aggregation, l.currency,
                 l.interval_seconds, 'active', l.next_run_at, l.created_at
             FROM key_results k, metric_links l
             WHERE l.key_result_id = ?1 AND k.id <> ?1",
            goals_host::params![template, other],
        )?;
        tx.commit()?;
        Ok(())
    })
    .await
    .expect("copy the template's link");
}

/// The Goals side in-process: a database, the plugin, a clock the test moves, a
/// syncer, and a connection to a simulator, in the enabled default organization.
pub struct World {
    pub sim: Sim,
    pub db: Database,
    pub runtime: Arc<PluginRuntime>,
    pub clock: ManualClock,
    pub syncer: Arc<Syncer>,
    pub conn: ConnectionRecord,
    /// On PostgreSQL: the test's database and the host's data directory, kept
    /// as long as the world.
    _postgres: Option<(postgres::TestDatabase, tempfile::TempDir)>,
}

/// A fixed start, so tests read the same times every run.
pub const START: i64 = 1_800_000_000;

impl World {
    pub async fn new() -> World {
        Self::with_limit(usize::MAX).await
    }

    /// With at most `per_connection` syncs at once per connection.
    pub async fn with_limit(per_connection: usize) -> World {
        Self::build(per_connection, None).await
    }

    /// With plugin calls under `limits`.
    pub async fn with_limits(limits: goals_host::limits::Limits) -> World {
        Self::build(usize::MAX, Some(limits)).await
    }

    /// On a fresh PostgreSQL database, or `None` when there is no server to
    /// test with (see [`postgres::TestDatabase`]).
    pub async fn on_postgres(test: &str) -> Option<World> {
        let database = postgres::TestDatabase::create(test).await?;
        Some(Self::build_on(usize::MAX, None, Some(database)).await)
    }

    async fn build(per_connection: usize, limits: Option<goals_host::limits::Limits>) -> World {
        Self::build_on(per_connection, limits, None).await
    }

    async fn build_on(
        per_connection: usize,
        limits: Option<goals_host::limits::Limits>,
        postgres: Option<postgres::TestDatabase>,
    ) -> World {
        let sim = Sim::start().await;
        let (runtime, db, conn, postgres) = match postgres {
            None => {
                let (runtime, db, conn) = plugin_with_database(&sim).await;
                (runtime, db, conn, None)
            }
            Some(database) => {
                let data_dir = tempfile::tempdir().expect("a data directory");
                let db = Database::open_postgres(&database.url, data_dir.path())
                    .await
                    .expect("open the test database");
                let runtime = runtime::with_database(compiled().await, db.clone());
                let conn = connections::add(&db, runtime.info(), sim.new_connection("sim"))
                    .await
                    .expect("add the simulator connection");
                (runtime, db, conn, Some((database, data_dir)))
            }
        };
        let runtime = match limits {
            Some(limits) => runtime.with_limits(limits),
            None => runtime,
        };
        let runtime = Arc::new(runtime);
        let clock = ManualClock::new(START);
        let syncer = Arc::new(Syncer::new(
            db.clone(),
            runtime.clone(),
            Arc::new(clock.clone()),
            per_connection,
        ));
        World {
            sim,
            db,
            runtime,
            clock,
            syncer,
            conn,
            _postgres: postgres,
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Where the data is, when on PostgreSQL.
    pub fn database_url(&self) -> Option<&str> {
        self._postgres
            .as_ref()
            .map(|(database, _)| database.url.as_str())
    }

    /// The key this world's host seals with, for other hosts sharing its
    /// PostgreSQL database (`GOALS_HOST_SECRET_KEY_FILE`).
    pub fn key_file(&self) -> PathBuf {
        let (_, own_dir) = self._postgres.as_ref().expect("a world on PostgreSQL");
        own_dir.path().join("secret.key")
    }

    /// Another host on this world's PostgreSQL database: its own connections,
    /// data directory and lease, the same plugin, clock and data.
    pub async fn peer_host(&self, per_connection: usize) -> (Arc<Syncer>, tempfile::TempDir) {
        let url = self.database_url().expect("a world on PostgreSQL");
        let data_dir = tempfile::tempdir().expect("a data directory");
        // Hosts sharing a database share its key.
        std::fs::copy(self.key_file(), data_dir.path().join("secret.key"))
            .expect("give the peer the key");
        let db = Database::open_postgres(url, data_dir.path())
            .await
            .expect("open the shared database");
        let runtime = Arc::new(runtime::with_database(&self.runtime, db.clone()));
        let syncer = Arc::new(Syncer::new(
            db,
            runtime,
            Arc::new(self.clock.clone()),
            per_connection,
        ));
        (syncer, data_dir)
    }

    pub fn scheduler(&self, concurrency: usize) -> Scheduler {
        Scheduler::new(Arc::clone(&self.syncer), concurrency)
    }

    /// A Key Result counting up from 0 to 10,000 in the default organization.
    pub async fn key_result(&self, title: &str) -> KeyResult {
        keyresults::create(
            &self.db,
            NewKeyResult {
                kind: ItemKind::KeyResult,
                parent_id: None,
                due_date: None,
                period: Default::default(),
                organization_id: self.conn.organization_id,
                title: title.to_string(),
                owner: "owner@contoso.example".to_string(),
                unit: Unit::Number,
                currency_code: None,
                start: 0.0,
                target: 10_000.0,
                direction: Direction::Increase,
            },
            self.now(),
        )
        .await
        .expect("create a Key Result")
    }

    /// Links a Key Result to an aggregation of a Sales Hub view, hourly.
    pub async fn link(
        &self,
        kr: &KeyResult,
        entity: &str,
        view: &str,
        column: &str,
        aggregation: Aggregation,
    ) -> Link {
        self.link_on(&self.conn, kr, entity, view, column, aggregation)
            .await
    }

    /// [`World::link`] through another connection `conn`.
    pub async fn link_on(
        &self,
        conn: &ConnectionRecord,
        kr: &KeyResult,
        entity: &str,
        view: &str,
        column: &str,
        aggregation: Aggregation,
    ) -> Link {
        let chosen = linking::choose(
            &self.runtime,
            conn,
            &Wanted {
                app: "Sales Hub".to_string(),
                entity: entity.to_string(),
                view: view.to_string(),
                measure: goals_host::goals::linking::WantedMeasure::Column {
                    column: column.to_string(),
                    aggregation,
                },
                currency: CurrencyChoice::Base,
                window: None,
            },
        )
        .await
        .expect("choose the metric");
        keyresults::save_link(&self.db, kr.id, chosen.metric, 3600, self.now())
            .await
            .expect("save the link")
    }

    pub async fn link_of(&self, kr: &KeyResult) -> Link {
        keyresults::link(&self.db, kr.id)
            .await
            .expect("read the link")
            .expect("the Key Result is linked")
    }

    pub async fn value_of(&self, kr: &KeyResult) -> Option<f64> {
        keyresults::get_by_id(&self.db, kr.id)
            .await
            .expect("read the Key Result")
            .current_value
    }
}

/// The cargo running this test (`CARGO`), else the one that built it, else
/// the one on `PATH`.
pub fn cargo_binary() -> String {
    std::env::var("CARGO")
        .ok()
        .or(option_env!("CARGO").map(str::to_string))
        .unwrap_or_else(|| "cargo".to_string())
}

/// The `goals-host` binary, built from the current sources once per test run.
pub fn goals_host_binary() -> &'static Path {
    &workspace_binaries().goals_host
}

/// The `dataverse-sim` binary, built from the current sources once per test run.
pub fn simulator_binary() -> &'static Path {
    &workspace_binaries().simulator
}

struct Binaries {
    goals_host: PathBuf,
    simulator: PathBuf,
}

/// Builds the workspace's binaries with the test's cargo. It selects what
/// `cargo test --workspace` selects (every package, tests included), so cargo
/// resolves the same features and reuses every compiled dependency: building
/// one package alone would unify features differently and rebuild wasmtime.
fn workspace_binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        let mut build = std::process::Command::new(cargo_binary());
        build
            .args([
                "build",
                "--quiet",
                "--workspace",
                "--bins",
                "--tests",
                "--message-format=json",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        let messages = cargo_messages(build, "the workspace's binaries");
        let binary = |name: &str| {
            messages
                .iter()
                .filter(|m| m["target"]["name"] == name && m["profile"]["test"] == false)
                .find_map(|m| m["executable"].as_str().map(PathBuf::from))
                .unwrap_or_else(|| panic!("cargo reported no {name} executable"))
        };
        Binaries {
            goals_host: binary("goals-host"),
            simulator: binary("dataverse-sim"),
        }
    })
}

/// Where the CLI keeps compiled plugins for the tests: beside the binary, in the
/// build's target directory, so it is shared and never left in /tmp.
/// The URL a service announces as its first line on stdout (`listening on
/// URL`), within two minutes (the demo walks its flow first); `lines` goes
/// on after it.
pub async fn announced_url<R>(lines: &mut tokio::io::Lines<R>) -> String
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    let first = tokio::time::timeout(std::time::Duration::from_secs(120), lines.next_line())
        .await
        .expect("a first line within two minutes")
        .expect("readable output")
        .expect("a first line");
    first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("the first line announces the address: {first}"))
        .to_string()
}

pub fn shared_cache_dir() -> PathBuf {
    goals_host_binary()
        .parent()
        .map(|dir| dir.join("e2e-precompiled"))
        .unwrap_or_else(|| PathBuf::from("e2e-precompiled"))
}

/// Runs the CLI with its own data directory.
pub struct Cli {
    data_dir: tempfile::TempDir,
    /// Where the data is, when on PostgreSQL rather than in `data_dir`.
    postgres: Option<postgres::TestDatabase>,
    /// Seconds every later command's clock runs ahead of the wall clock.
    clock_offset: std::sync::atomic::AtomicI64,
}

pub struct Run {
    pub output: Output,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn success(&self) -> bool {
        self.output.status.success()
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl Default for Cli {
    fn default() -> Self {
        Self::new()
    }
}

impl Cli {
    pub fn new() -> Cli {
        Cli {
            data_dir: tempfile::Builder::new()
                .prefix("goals-e2e-")
                .tempdir()
                .expect("temporary data directory"),
            postgres: None,
            clock_offset: Default::default(),
        }
    }

    /// Commands keeping their data on a fresh PostgreSQL database, or `None`
    /// when there is no server to test with.
    pub async fn on_postgres(test: &str) -> Option<Cli> {
        let database = postgres::TestDatabase::create(test).await?;
        Some(Cli {
            postgres: Some(database),
            ..Cli::new()
        })
    }

    /// Moves the clock of every later command `seconds` ahead, as if that time
    /// had passed (the host's hidden `--clock-offset`), instead of waiting.
    pub fn advance_clock(&self, seconds: i64) {
        self.clock_offset
            .fetch_add(seconds, std::sync::atomic::Ordering::SeqCst);
    }

    /// Now, by the clock the commands see.
    pub fn now(&self) -> i64 {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        wall + self.clock_offset.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// Where the data is, when on PostgreSQL.
    pub fn database_url(&self) -> Option<&str> {
        self.postgres.as_ref().map(|database| database.url.as_str())
    }

    /// `goals-host` with this data directory and `args`, not started yet: for
    /// tests that signal or kill the process.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(goals_host_binary());
        command
            .arg("--data-dir")
            .arg(self.data_dir.path())
            // One compiled plugin for every test of the binary.
            .env("GOALS_HOST_CACHE_DIR", shared_cache_dir())
            // The key, the plugin and the log filter are the defaults unless the
            // test gives its own.
            .env_remove("GOALS_HOST_SECRET_KEY")
            .env_remove("GOALS_HOST_PLUGIN")
            .env_remove("RUST_LOG")
            .env_remove("GOALS_HOST_DATABASE_URL")
            .env(
                "GOALS_HOST_CLOCK_OFFSET",
                self.clock_offset
                    .load(std::sync::atomic::Ordering::SeqCst)
                    .to_string(),
            )
            .args(args)
            .kill_on_drop(true);
        if let Some(database) = &self.postgres {
            command.env("GOALS_HOST_DATABASE_URL", &database.url);
        }
        command
    }

    pub async fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = self
            .command(args)
            .envs(env.iter().copied())
            .output()
            .await
            .expect("run goals-host");
        Run {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            output,
        }
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_with_env(args, &[]).await
    }

    /// Runs a command that must succeed with `--json`, returning its document.
    pub async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let run = self.run(&all).await;
        assert!(
            run.success(),
            "goals-host {args:?} failed:\n{}\n{}",
            run.stdout,
            run.stderr
        );
        run.json()
    }

    /// A Key Result linked to the count of Hot Leads through `connection` and
    /// synced once, with `env` set for both commands; returns its id.
    pub async fn linked_hot_leads_kr(&self, connection: &str, env: &[(&str, &str)]) -> String {
        // Titles are unique per organization: one Key Result per connection.
        let title = format!("Work hot leads through {connection}");
        let mut create: Vec<&str> = CREATE_KR.to_vec();
        create[3] = &title;
        create.push("--json");
        let created = self.run_with_env(&create, env).await;
        assert!(created.success(), "{}", created.stderr);
        let kr = created.json()["id"].to_string();
        let linked = self
            .run_with_env(&hot_leads_link(&kr, connection, &["--json"]), env)
            .await;
        assert!(linked.success(), "{}", linked.stderr);
        let linked = linked.json();
        assert_eq!(linked["run"]["status"], "success", "{linked}");
        assert_eq!(
            linked["key_result"]["current_value"],
            serde_json::json!(hot_leads())
        );
        kr
    }

    /// Adds a connection named `name` to the simulator, the secret passed through
    /// an environment variable as a user would.
    pub async fn add_connection(&self, sim: &Sim, name: &str) -> Run {
        self.add_connection_with(sim, name, &sim.config.client_secret, &[], &[])
            .await
    }

    /// `connection add` of the simulator under `name` with `secret` (right or
    /// wrong) passed through `SIM_SECRET`, after the global arguments `leading`
    /// (e.g. `--org NAME`, `-vv`) and with `env` set as well.
    pub async fn add_connection_with(
        &self,
        sim: &Sim,
        name: &str,
        secret: &str,
        leading: &[&str],
        env: &[(&str, &str)],
    ) -> Run {
        self.add_connection_flags(sim, name, secret, leading, &[], env)
            .await
    }

    /// [`Cli::add_connection_with`] with `--no-verify`: saved without signing
    /// in, so a wrong secret is found only by a later call.
    pub async fn add_unverified_connection(
        &self,
        sim: &Sim,
        name: &str,
        secret: &str,
        leading: &[&str],
        env: &[(&str, &str)],
    ) -> Run {
        self.add_connection_flags(sim, name, secret, leading, &["--no-verify"], env)
            .await
    }

    /// `connection add NAME --url URL --no-verify` with a made-up tenant,
    /// client id and secret, then `flags`: for what a connection's URLs may be,
    /// before any sign-in.
    pub async fn add_unverified_url(&self, name: &str, url: &str, flags: &[&str]) -> Run {
        let args = [
            &[
                "connection",
                "add",
                "--name",
                name,
                "--no-verify",
                "--url",
                url,
            ][..],
            &[
                "--tenant",
                "t",
                "--client-id",
                "c",
                "--client-secret-env",
                "S",
            ],
            flags,
        ]
        .concat();
        self.run_with_env(&args, &[("S", "x")]).await
    }

    async fn add_connection_flags(
        &self,
        sim: &Sim,
        name: &str,
        secret: &str,
        leading: &[&str],
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> Run {
        let url = sim.url();
        let args = [
            leading,
            &sim.connection_add(name, &url),
            &["--client-secret-env", "SIM_SECRET"],
            flags,
        ]
        .concat();
        let mut env = env.to_vec();
        env.push(("SIM_SECRET", secret));
        self.run_with_env(&args, &env).await
    }
}

/// The misbehaving test component (`tests/misbehave`, package
/// `misbehaving-plugin`), built from the current sources once per test run
/// into `<workspace>/target/plugin-build` beside the embedded plugin.
pub fn misbehaving_component() -> &'static Path {
    static COMPONENT: OnceLock<PathBuf> = OnceLock::new();
    COMPONENT.get_or_init(|| test_component("misbehaving-plugin", "misbehaving_plugin"))
}

/// The second test integration (`tests/tally`, id `example.tally`), built like
/// the misbehaving component.
pub fn tally_component() -> &'static Path {
    static COMPONENT: OnceLock<PathBuf> = OnceLock::new();
    COMPONENT.get_or_init(|| test_component("tally-integration", "tally_integration"))
}

/// Builds the test component of `package` and returns the `.wasm` of `target`.
fn test_component(package: &str, target: &str) -> PathBuf {
    build_guest(&["--package", package, "--profile", "plugin"])
        .into_iter()
        .filter(|message| message["target"]["name"] == target)
        .filter_map(|message| message["filenames"].as_array().cloned())
        .flatten()
        .filter_map(|file| file.as_str().map(PathBuf::from))
        .find(|file| file.extension().is_some_and(|ext| ext == "wasm"))
        .unwrap_or_else(|| panic!("cargo reported no {target}.wasm component"))
}

/// Builds a guest of the workspace for wasm32-wasip2 (`args` name the package,
/// target and profile) into `<workspace>/target/plugin-build`, beside the
/// embedded plugin, and returns cargo's JSON messages.
pub fn build_guest(args: &[&str]) -> Vec<Value> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/e2e lives inside the workspace")
        .to_path_buf();
    let mut build = std::process::Command::new(cargo_binary());
    build
        .current_dir(&workspace)
        .args(["build", "--quiet", "--target", "wasm32-wasip2"])
        .args(args)
        .arg("--target-dir")
        .arg(workspace.join("target").join("plugin-build"))
        .arg("--message-format=json")
        // Flags and wrappers meant for host builds (coverage) must not leak into
        // the guest build.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS");
    cargo_messages(build, &format!("{args:?} for wasm32-wasip2"))
}

/// Runs `build` (a `cargo build --message-format=json`) and returns cargo's
/// messages; a failed build fails the test with cargo's own report.
pub fn cargo_messages(mut build: std::process::Command, what: &str) -> Vec<Value> {
    let output = build
        .output()
        .unwrap_or_else(|e| panic!("run cargo to build {what}: {e}"));
    assert!(
        output.status.success(),
        "building {what} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .collect()
}
