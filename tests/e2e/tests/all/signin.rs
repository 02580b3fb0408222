//! People's sign-in and the token lifecycle, in-process: device code, silent
//! refresh with exactly one retry, a revoked sign-in stopping the connection
//! until the person signs in again.

use goals_e2e::target;
use goals_e2e::{Sim, World, dataset, plugin_with_database};
use goals_host::bindings::{Aggregation, Error, SignInStatus};
use goals_host::connections::{self, ConnectionRecord, NewConnection, SignIn, Status};
use goals_host::db::Database;
use goals_host::goals::alerts;
use goals_host::goals::sync::{SyncError, Trigger};
use goals_host::runtime::{CallError, PluginRuntime};
use std::time::Duration;

/// Adds a connection that signs in as a person, and signs the person in.
async fn person_connection(
    sim: &Sim,
    runtime: &PluginRuntime,
    db: &Database,
    name: &str,
) -> ConnectionRecord {
    let mut new: NewConnection = sim.new_connection(name);
    new.sign_in = SignIn::DeviceCode;
    new.secret = None;
    let conn = connections::add(db, runtime.info(), new)
        .await
        .expect("add");
    assert_eq!(
        conn.status,
        Status::NeedsSignIn,
        "not usable before the sign-in"
    );
    sign_in(sim, runtime, &conn).await;
    connections::set_status(db, &conn.id, Status::Ok, None)
        .await
        .expect("status");
    connections::get_by_id(db, &conn.id).await.expect("read")
}

async fn sign_in(sim: &Sim, runtime: &PluginRuntime, conn: &ConnectionRecord) {
    let code = runtime
        .start_device_sign_in(&target(conn))
        .await
        .expect("device code");
    assert!(code.message.contains(&code.user_code));
    assert!(code.verification_uri.starts_with(&sim.url()));
    assert_eq!(
        runtime
            .poll_device_sign_in(&target(conn))
            .await
            .expect("poll"),
        SignInStatus::Pending
    );
    sim.server.approve_device_code(&code.user_code);
    assert_eq!(
        runtime
            .poll_device_sign_in(&target(conn))
            .await
            .expect("poll"),
        SignInStatus::Complete
    );
}

#[tokio::test]
async fn a_person_signs_in_with_a_device_code_and_the_connection_acts_as_them() {
    let sim = Sim::start().await;
    let (runtime, db, _) = plugin_with_database(&sim).await;
    let conn = person_connection(&sim, &runtime, &db, "alice").await;
    let identity = runtime.who_am_i(&target(&conn)).await.expect("who am i");
    assert_eq!(identity.user_id, dataset().delegated_user_id);
    assert_ne!(identity.user_id, dataset().application_user_id);
    let apps = runtime
        .list_apps(&target(&conn))
        .await
        .expect("apps as the person");
    assert!(!apps.is_empty());
}

#[tokio::test]
async fn a_declined_or_expired_sign_in_is_unauthorized_and_says_to_start_again() {
    let sim = Sim::start().await;
    let (runtime, db, _) = plugin_with_database(&sim).await;
    let mut new = sim.new_connection("bob");
    new.sign_in = SignIn::DeviceCode;
    new.secret = None;
    let conn = connections::add(&db, runtime.info(), new).await.unwrap();

    let code = runtime.start_device_sign_in(&target(&conn)).await.unwrap();
    sim.server.deny_device_code(&code.user_code);
    let declined = runtime
        .poll_device_sign_in(&target(&conn))
        .await
        .unwrap_err();
    assert!(
        matches!(&declined, CallError::Plugin { error: Error::Unauthorized(m), .. } if m.contains("declined")),
        "{declined}"
    );

    runtime.start_device_sign_in(&target(&conn)).await.unwrap();
    sim.server.advance_clock(Duration::from_secs(901));
    let expired = runtime
        .poll_device_sign_in(&target(&conn))
        .await
        .unwrap_err();
    assert!(
        matches!(&expired, CallError::Plugin { error: Error::Unauthorized(m), .. } if m.contains("AADSTS70019")),
        "{expired}"
    );
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_silently_with_exactly_one_retry() {
    let world = World::new().await;
    let conn = person_connection(&world.sim, &world.runtime, &world.db, "alice").await;
    let apps = world
        .runtime
        .list_apps(&target(&conn))
        .await
        .expect("warm the caches");
    assert!(!apps.is_empty());

    // The access token dies early on the server's side (the plugin still thinks
    // it good): one 401, one refresh, one retry.
    world.sim.server.expire_tokens();
    world.sim.server.clear_requests();
    world
        .runtime
        .list_apps(&target(&conn))
        .await
        .expect("still works");
    let requests = world.sim.server.requests();
    let summary: Vec<(u16, Option<String>)> = requests
        .iter()
        .map(|r| (r.status, r.grant_type.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (401, None),
            (200, Some("refresh_token".to_string())),
            (200, None)
        ],
        "{requests:?}"
    );

    // The rotated refresh token was kept: the next refresh works (the simulator
    // rejects a refresh token used twice).
    world.sim.server.expire_tokens();
    world
        .runtime
        .list_apps(&target(&conn))
        .await
        .expect("a second refresh works");
}

#[tokio::test]
async fn a_revoked_sign_in_stops_the_connection_until_the_person_signs_in_again() {
    let world = World::new().await;
    let conn = person_connection(&world.sim, &world.runtime, &world.db, "alice").await;
    let kr = world.key_result("Hot leads").await;
    // Link through the person's connection.
    let mut link = world
        .link(&kr, "lead", "Hot Leads", "fullname", Aggregation::Count)
        .await;
    link.metric.connection_id = conn.id.clone();
    goals_host::goals::keyresults::save_link(&world.db, kr.id, link.metric, 3600, world.now())
        .await
        .unwrap();
    let scheduler = world.scheduler(4);
    assert_eq!(scheduler.run_due().await.unwrap().succeeded, 1);

    world.sim.server.revoke_refresh_tokens();
    world.sim.server.expire_tokens();
    world.clock.advance(4000);
    let round = scheduler.run_due().await.unwrap();
    assert_eq!(round.failed, 1);
    let stopped = connections::get_by_id(&world.db, &conn.id).await.unwrap();
    assert_eq!(stopped.status, Status::NeedsSignIn);
    let reason = stopped.status_reason.clone().unwrap_or_default();
    assert!(reason.contains("AADSTS50173"), "{reason}");
    assert!(reason.contains("sign in again"), "{reason}");
    let waiting = world.syncer.sync(kr.id, Trigger::Manual).await;
    assert!(
        matches!(waiting, Err(SyncError::ConnectionUnavailable(_))),
        "{waiting:?}"
    );
    let open = alerts::list(&world.db, false).await.unwrap();
    assert!(open.iter().any(|a| a.kind == "needs-sign-in"));

    // The person signs in again; the link resumes.
    sign_in(&world.sim, &world.runtime, &stopped).await;
    connections::set_status(&world.db, &conn.id, Status::Ok, None)
        .await
        .unwrap();
    world.clock.advance(4000);
    assert_eq!(scheduler.run_due().await.unwrap().succeeded, 1);
}
