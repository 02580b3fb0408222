//! A plugin's request goes to the addresses its host name resolved to when the
//! policy checked them, never to a second answer: the simulator is reached under
//! a name only the injected resolver knows, and a resolver that rebinds the name
//! to the metadata address after its first answer gains nothing.

use goals_e2e::target;
use goals_e2e::{Sim, plugin_with_database};
use goals_host::connections::{self, ConnectionRecord};
use goals_host::db::Database;
use goals_host::outbound::{FixedResolver, Resolution, Resolve};
use goals_host::runtime::PluginRuntime;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `.invalid` never resolves through DNS (RFC 6761): a request reaches the
/// simulator under this name only through the injected resolver.
const SIM_NAME: &str = "dataverse.sim.invalid";

const METADATA: IpAddr = IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254));

/// A connection whose environment and authority are the simulator under
/// [`SIM_NAME`]. The simulator accepts the token scope of whatever origin the
/// Host header names, so its tokens are issued for this name too.
async fn connection_by_name(runtime: &PluginRuntime, db: &Database, sim: &Sim) -> ConnectionRecord {
    let url = format!("http://{SIM_NAME}:{}", sim.server.address().port());
    let mut new = sim.new_connection("sim by name");
    new.set("environment_url", &url);
    new.set("authority_url", &url);
    connections::add(db, runtime.info(), new)
        .await
        .expect("add the connection by name")
}

fn resolving_to_loopback() -> Arc<FixedResolver> {
    Arc::new(FixedResolver::new().with(SIM_NAME, [IpAddr::V4(Ipv4Addr::LOCALHOST)]))
}

/// Answers loopback the first time and the metadata address ever after, as a
/// rebinding DNS server with a zero TTL would.
#[derive(Default)]
struct RebindingResolver {
    calls: AtomicUsize,
}

impl RebindingResolver {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Resolve for RebindingResolver {
    fn resolve<'a>(&'a self, _host: &'a str) -> Resolution<'a> {
        let answer = if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            METADATA
        };
        Box::pin(std::future::ready(Ok(vec![answer])))
    }
}

#[tokio::test]
async fn the_connection_goes_to_the_address_the_resolver_gave() {
    let sim = Sim::start().await;
    let (runtime, db, _) = plugin_with_database(&sim).await;
    let runtime = runtime.with_resolver(resolving_to_loopback());
    let conn = connection_by_name(&runtime, &db, &sim).await;

    let apps = runtime
        .list_apps(&target(&conn))
        .await
        .expect("apps from the simulator reached by name");
    assert!(!apps.is_empty());
    let requests = sim.server.requests();
    assert!(
        requests.iter().any(|r| r.authorized),
        "signed in and called the Web API under the name: {requests:?}"
    );
}

#[tokio::test]
async fn a_name_rebound_after_the_check_is_not_resolved_again() {
    let sim = Sim::start().await;
    let (runtime, db, _) = plugin_with_database(&sim).await;
    let steady = runtime.with_resolver(resolving_to_loopback());
    let conn = connection_by_name(&steady, &db, &sim).await;
    // Sign in with a steady answer, so the call below is a single request.
    steady
        .list_apps(&target(&conn))
        .await
        .expect("a first call");
    sim.server.clear_requests();

    let rebinding = Arc::new(RebindingResolver::default());
    let runtime = steady.with_resolver(rebinding.clone());
    runtime
        .list_apps(&target(&conn))
        .await
        .expect("the request goes to the loopback address that was checked");
    let requests = sim.server.requests();
    assert_eq!(requests.len(), 1, "one request: {requests:?}");
    assert_eq!(
        rebinding.calls(),
        requests.len(),
        "the resolver is asked once per request"
    );

    // The next answer is the metadata address: checked, refused, never sent.
    let error = runtime
        .list_apps(&target(&conn))
        .await
        .expect_err("the metadata address is refused");
    assert!(
        error.to_string().contains("169.254.169.254"),
        "the refusal names the address: {error}"
    );
    assert_eq!(
        sim.server.requests().len(),
        1,
        "nothing more reached the simulator"
    );
    assert!(
        rebinding.calls() >= 2,
        "the refused call resolved the name again"
    );
}
