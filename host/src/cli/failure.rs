//! How a failed command reports itself to programs: a stable error kind in the
//! JSON document and an exit code per class of failure, the same for every
//! command (documented in the README's "Exit codes").

use crate::bindings::Error as PluginError;
use crate::connections::ConnectionError;
use crate::goals::admin::AdminError;
use crate::goals::keyresults::KeyResultError;
use crate::goals::linking::LinkError;
use crate::goals::sync::SyncError;
use crate::render::Report;
use crate::resolve::ResolveError;
use crate::runtime::{CallError, error_kind, error_message};
use serde_json::{Value, json};

/// The exit codes of `goals-host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Success = 0,
    /// Anything not covered below (storage, I/O, a state that forbids the command).
    Failure = 1,
    /// The command line or an input value is wrong.
    Usage = 2,
    /// A named thing (Key Result, connection, organization, app, view, column) does not exist.
    NotFound = 3,
    /// The connection needs a new sign-in (`goals-host connection sign-in`).
    NeedsSignIn = 4,
    /// A sync or measurement ran and failed (throttled, upstream, a limit).
    RanAndFailed = 5,
}

/// A command that did its work and reports a failure of it, such as a sync whose
/// run was recorded as failed: the report is printed as usual and the command
/// exits with the failure's code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CommandFailed {
    pub kind: String,
    pub message: String,
    pub text: String,
    pub json: Value,
}

impl CommandFailed {
    /// The report of work that failed with `kind` and `message`; its JSON gains
    /// an `error` member beside what it already holds.
    pub fn new(report: Report, kind: &str, message: &str) -> CommandFailed {
        let mut json = report.json;
        if let Value::Object(members) = &mut json {
            members.insert(
                "error".to_string(),
                json!({ "kind": kind, "message": message }),
            );
        }
        CommandFailed {
            kind: kind.to_string(),
            message: message.to_string(),
            text: report.text,
            json,
        }
    }

    pub fn exit(&self) -> Exit {
        match exit_for_kind(&self.kind) {
            Exit::Usage | Exit::Failure => Exit::RanAndFailed,
            other => other,
        }
    }
}

/// The exit code of an error kind.
pub fn exit_for_kind(kind: &str) -> Exit {
    match kind {
        "usage" | "invalid-input" | "ambiguous" | "duplicate" | "in-use" | "not-linked" => {
            Exit::Usage
        }
        "not-found" => Exit::NotFound,
        "unauthorized" | "needs-sign-in" => Exit::NeedsSignIn,
        "throttled" | "upstream" | "limit" | "invalid" | "host-limit" | "host-refused"
        | "plugin-failure" | "sync-failed" => Exit::RanAndFailed,
        _ => Exit::Failure,
    }
}

/// The stable kind of a failed command's error.
pub fn kind(error: &anyhow::Error) -> &'static str {
    if let Some(failed) = error.downcast_ref::<CommandFailed>() {
        return match exit_for_kind(&failed.kind) {
            Exit::NeedsSignIn => "needs-sign-in",
            Exit::NotFound => "not-found",
            _ => "sync-failed",
        };
    }
    if let Some(call) = error.downcast_ref::<CallError>() {
        return match call {
            CallError::Plugin { error, .. } => error_kind(error),
            CallError::Trap(_) => "plugin-failure",
            CallError::HostLimit(_) => "host-limit",
            CallError::Refused { .. } => "host-refused",
            CallError::NoIntegration(_) => "no-integration",
        };
    }
    if error
        .downcast_ref::<crate::integrations::UnknownIntegration>()
        .is_some()
    {
        return "not-found";
    }
    if let Some(connection) = error.downcast_ref::<ConnectionError>() {
        return match connection {
            ConnectionError::DuplicateName { .. } => "duplicate",
            ConnectionError::NotFound { .. } | ConnectionError::NoOrganization(_) => "not-found",
            ConnectionError::Ambiguous { .. } => "ambiguous",
            ConnectionError::Invalid { .. } => "invalid-input",
            ConnectionError::InUse { .. } => "in-use",
            ConnectionError::Db(_) => "storage",
        };
    }
    if let Some(resolve) = error.downcast_ref::<ResolveError>() {
        return match resolve {
            ResolveError::NotFound { .. } => "not-found",
            ResolveError::Ambiguous { .. } => "ambiguous",
        };
    }
    if let Some(link) = error.downcast_ref::<LinkError>() {
        return match link {
            LinkError::NoEntity { .. }
            | LinkError::NoColumn { .. }
            | LinkError::NoChart { .. }
            | LinkError::NoMeasure { .. } => "not-found",
            _ => "invalid-input",
        };
    }
    if let Some(token) = error.downcast_ref::<crate::goals::tokens::TokenError>() {
        use crate::goals::tokens::TokenError;
        return match token {
            TokenError::Scope(_) => "usage",
            TokenError::NotFound(_) => "not-found",
            TokenError::Admin(admin) => admin_kind(admin),
            TokenError::Db(_) => "storage",
        };
    }
    if let Some(admin) = error.downcast_ref::<AdminError>() {
        return admin_kind(admin);
    }
    if let Some(kr) = error.downcast_ref::<KeyResultError>() {
        return match kr {
            KeyResultError::NotFound { .. }
            | KeyResultError::NotInOrganization { .. }
            | KeyResultError::OtherKind { .. }
            | KeyResultError::NoSuchId(_) => "not-found",
            KeyResultError::Ambiguous { .. } => "ambiguous",
            KeyResultError::NotLinked { .. } => "not-linked",
            KeyResultError::Invalid { .. } => "invalid-input",
            KeyResultError::Db(_) => "storage",
        };
    }
    if let Some(sync) = error.downcast_ref::<SyncError>() {
        return match sync {
            SyncError::NotLinked { .. } => "not-linked",
            SyncError::AlreadyRunning { .. } => "already-running",
            SyncError::NotDue(_) => "not-due",
            SyncError::Throttled { .. } => "throttled",
            SyncError::Disabled(_) => "disabled",
            SyncError::ConnectionUnavailable(_) => "needs-sign-in",
            SyncError::Db(_) => "storage",
        };
    }
    if let Some(migrate) = error.downcast_ref::<crate::migrate::MigrateError>() {
        use crate::migrate::MigrateError;
        return match migrate {
            MigrateError::NoDatabase { .. } => "not-found",
            MigrateError::Backends => "usage",
            MigrateError::InUse { .. } | MigrateError::NotEmpty { .. } => "in-use",
            MigrateError::NoTable { .. } | MigrateError::Copy { .. } | MigrateError::Db(_) => {
                "storage"
            }
        };
    }
    if error.downcast_ref::<UsageError>().is_some() {
        return "usage";
    }
    if let Some(db) = error.downcast_ref::<crate::db::DbError>() {
        return match db {
            crate::db::DbError::NoDataDir { .. } => "not-found",
            _ => "storage",
        };
    }
    "error"
}

fn admin_kind(admin: &AdminError) -> &'static str {
    match admin {
        AdminError::Duplicate { .. } => "duplicate",
        AdminError::NotFound { .. } => "not-found",
        AdminError::BadName { .. } => "invalid-input",
        AdminError::Db(_) => "storage",
    }
}

/// A command line that cannot be acted on, found after parsing (e.g. a missing
/// flag outside a terminal).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The JSON form of a failed command: `{"error": {"kind", "message", ...}}`, where
/// `kind` is stable for programs to act on.
pub fn error_json(error: &anyhow::Error) -> Value {
    if let Some(failed) = error.downcast_ref::<CommandFailed>() {
        return failed.json.clone();
    }
    let kind = kind(error);
    if let Some(CallError::Plugin { error }) = error.downcast_ref::<CallError>() {
        let retry_after = match error {
            PluginError::Throttled(t) => Some(t.retry_after_seconds),
            _ => None,
        };
        return json!({ "error": {
            "kind": kind,
            "message": error_message(error),
            "retry_after_seconds": retry_after,
        }});
    }
    if let Some(CallError::Refused { refusals }) = error.downcast_ref::<CallError>() {
        return json!({ "error": {
            "kind": kind,
            "message": format!("{error:#}"),
            "host_refusals": refusals,
        }});
    }
    json!({ "error": { "kind": kind, "message": format!("{error:#}") } })
}

/// The exit code of a failed command.
pub fn exit(error: &anyhow::Error) -> Exit {
    match error.downcast_ref::<CommandFailed>() {
        Some(failed) => failed.exit(),
        None => exit_for_kind(kind(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_of_failure_has_its_code() {
        let code = |e: anyhow::Error| exit(&e) as u8;
        assert_eq!(
            code(KeyResultError::NoSuchId(7).into()),
            Exit::NotFound as u8
        );
        assert_eq!(code(UsageError("x".into()).into()), 2);
        assert_eq!(code(SyncError::ConnectionUnavailable("x".into()).into()), 4);
        let failed = |kind: &str| {
            CommandFailed::new(
                Report {
                    text: String::new(),
                    json: json!({"run": {}}),
                },
                kind,
                "m",
            )
        };
        assert_eq!(code(failed("upstream").into()), 5);
        assert_eq!(code(failed("invalid").into()), 5);
        assert_eq!(code(failed("unauthorized").into()), 4);
        assert_eq!(code(failed("not-found").into()), 3);
        let json = error_json(&failed("throttled").into());
        assert_eq!(json["error"]["kind"], "throttled");
        assert!(json["run"].is_object(), "the run stays beside the error");
        assert_eq!(code(anyhow::anyhow!("disk full")), 1);
    }
}
