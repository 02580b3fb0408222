//! Adding a connection and making one usable again: the steps the CLI and the
//! API share, so both check the same things before anything is saved.

use crate::bindings::{Identity, PluginInfo};
use crate::connections::{self, ConnectionError, ConnectionRecord, NewConnection, Secret, Status};
use crate::db::Database;
use crate::engine::Engine;
use crate::goals::alerts::{self, AlertKind};
use crate::goals::clock::Timestamp;
use crate::outbound::{OutboundPolicy, SystemResolver};
use crate::params;

/// Checks `new` and saves it: the URLs against the outbound policy every call
/// meets (an internal address is refused now, not at the first call), then,
/// when `verify`, a service principal's credentials, so a wrong secret, tenant
/// or client id is said now, not at the first sync. Nothing is saved unless
/// every check passes. `verify` is `None` to skip the sign-in, else what to add
/// to the message of a failed one.
pub async fn add(
    db: &Database,
    runtime: &dyn Engine,
    info: &PluginInfo,
    new: NewConnection,
    verify: Option<&str>,
) -> anyhow::Result<(ConnectionRecord, Option<Identity>)> {
    let candidate = connections::candidate(db, info, new.clone()).await?;
    OutboundPolicy::new(&candidate.origins, candidate.allow_loopback)
        .check_origins(&SystemResolver)
        .await
        .map_err(|reason| ConnectionError::Invalid {
            field: "endpoint".to_string(),
            value: candidate.origins.join(", "),
            reason: format!("{reason}; nothing was saved"),
        })?;
    let identity = match verify {
        Some(hint) if new.sign_in.has_secret() => {
            Some(signed_in(db, runtime, &candidate, hint).await?)
        }
        _ => None,
    };
    let record = connections::add(db, info, new).await?;
    Ok((record, identity))
}

/// Signs in with the credentials of a connection not yet saved and asks WhoAmI;
/// nothing stays behind either way.
async fn signed_in(
    db: &Database,
    runtime: &dyn Engine,
    candidate: &ConnectionRecord,
    hint: &str,
) -> anyhow::Result<Identity> {
    let verified = runtime.who_am_i(candidate).await;
    connections::forget_plugin_storage(db, &candidate.id).await?;
    verified.map_err(|error| {
        anyhow::Error::from(error).context(format!(
            "connection '{}' was not added: signing in to {} failed (nothing was saved{hint})",
            candidate.name,
            candidate.url()
        ))
    })
}

/// After a successful sign-in, or enabled by an admin: the connection is usable
/// again and its links that waited run at once.
pub async fn usable_again(
    db: &Database,
    record: &ConnectionRecord,
    now: Timestamp,
) -> anyhow::Result<()> {
    connections::set_status(db, &record.id, Status::Ok, None).await?;
    let id = record.id.clone();
    db.run(move |conn| {
        let tx = conn.transaction()?;
        alerts::close(
            &tx,
            AlertKind::NeedsSignIn,
            &alerts::connection_subject(&id),
            now,
        )?;
        tx.execute(
            "UPDATE metric_links SET next_run_at = CASE WHEN next_run_at < ?2 THEN next_run_at ELSE ?2 END
             WHERE connection_id = ?1",
            params![id, now],
        )?;
        tx.commit()?;
        Ok(())
    })
    .await?;
    Ok(())
}

/// Replaces a connection's secret with `secret`, proved first under a storage
/// scope of its own (a token cached for the old secret must not vouch for the
/// new one); nothing changes if the sign-in fails. The caller then makes the
/// connection usable again.
pub async fn replace_secret(
    db: &Database,
    runtime: &dyn Engine,
    record: &ConnectionRecord,
    secret: &Secret,
) -> anyhow::Result<()> {
    let mut candidate = record.clone();
    candidate.id = format!("{}-sign-in", record.id);
    candidate.secret = Some(secret.clone());
    let verified = runtime.who_am_i(&candidate).await;
    connections::forget_plugin_storage(db, &candidate.id).await?;
    verified?;
    connections::set_secret(db, &record.id, secret).await?;
    connections::forget_plugin_storage(db, &record.id).await?;
    Ok(())
}

/// An admin stops every sync through a connection; its Key Results show why.
pub async fn disable(
    db: &Database,
    record: &ConnectionRecord,
    reason: Option<&str>,
) -> Result<(), ConnectionError> {
    let reason = match reason.map(str::trim) {
        Some(reason) if !reason.is_empty() => format!("disabled by an admin: {reason}"),
        _ => "disabled by an admin".to_string(),
    };
    connections::set_status(db, &record.id, Status::Disabled, Some(&reason)).await
}
