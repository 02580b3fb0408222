//! Which host processes sharing a data directory are alive. Every process holds
//! an exclusive lock on its own file under `<data dir>/processes/`; the OS drops
//! the lock when the process ends, however it ends (`kill -9` included), so the
//! owner of a sync's claim is alive exactly while its file is locked.
//!
//! Hosts on other machines sharing a PostgreSQL database have no file here:
//! whether they are alive this host cannot tell, and the lease of each claim
//! (renewed while its sync runs) decides instead.

use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// How long a claim (of a link, or of a connection's slot) holds without
/// renewal, unless the host is told otherwise: a sync renews its claims three
/// times per lease while it runs, so a claim that lapses belongs to a host that
/// stopped (or lost the database) and the next sync takes it over. Each claim
/// records when it lapses, so hosts with different lease lengths can share a
/// database.
pub const CLAIM_LEASE_SECONDS: i64 = 30;

pub struct ProcessLease {
    id: String,
    /// `None` for an in-memory database, which no other process can share.
    dir: Option<PathBuf>,
    /// Whether processes elsewhere (other machines) share the database.
    shared_beyond_dir: bool,
    /// This host's lease length in seconds, set once at start.
    lease_seconds: AtomicI64,
    _held: Option<File>,
}

impl ProcessLease {
    /// Takes a lease for this process in `data_dir`, and removes the files of
    /// processes that ended without removing their own.
    pub fn acquire(data_dir: &Path) -> io::Result<ProcessLease> {
        let dir = data_dir.join("processes");
        fs::create_dir_all(&dir)?;
        sweep(&dir);
        let id = format!("{}-{:016x}", std::process::id(), fastrand::u64(..));
        // Locked under a name sweeps pass over, then renamed: another process's
        // sweep must never find this file unlocked and take it for a dead one's.
        let pending = dir.join(format!("{id}.pending"));
        let file = File::create(&pending)?;
        file.lock()?;
        fs::rename(&pending, dir.join(format!("{id}.lock")))?;
        Ok(ProcessLease {
            id,
            dir: Some(dir),
            shared_beyond_dir: false,
            lease_seconds: AtomicI64::new(CLAIM_LEASE_SECONDS),
            _held: Some(file),
        })
    }

    /// A lease in `data_dir` for a database that hosts elsewhere share too: an
    /// owner without a file here may be alive on another machine.
    pub fn acquire_shared(data_dir: &Path) -> io::Result<ProcessLease> {
        let mut lease = Self::acquire(data_dir)?;
        lease.shared_beyond_dir = true;
        Ok(lease)
    }

    /// A lease for a database only this process can see.
    pub fn private() -> ProcessLease {
        ProcessLease {
            id: format!("{}-{:016x}", std::process::id(), fastrand::u64(..)),
            dir: None,
            shared_beyond_dir: false,
            lease_seconds: AtomicI64::new(CLAIM_LEASE_SECONDS),
            _held: None,
        }
    }

    /// How long this host's claims hold without renewal (at least 3 seconds:
    /// timestamps are whole seconds, and a claim is renewed thrice per lease).
    pub fn set_lease_seconds(&self, seconds: i64) {
        self.lease_seconds.store(seconds.max(3), Ordering::Relaxed);
    }

    pub fn lease_seconds(&self) -> i64 {
        self.lease_seconds.load(Ordering::Relaxed)
    }

    /// How often a running sync renews its claims.
    pub fn renew_every(&self) -> Duration {
        Duration::from_secs_f64(self.lease_seconds() as f64 / 3.0)
    }

    /// This process's id, recorded with every claim it makes.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the process that recorded `id` may still be running. When its
    /// file cannot be checked, or it has none here but may run elsewhere, it
    /// counts as alive: the claim's lease then ends it.
    pub fn is_alive(&self, id: &str) -> bool {
        if id == self.id {
            return true;
        }
        let Some(dir) = &self.dir else {
            return false;
        };
        if !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return false;
        }
        let path = dir.join(format!("{id}.lock"));
        match File::open(&path) {
            Err(error) => error.kind() != io::ErrorKind::NotFound || self.shared_beyond_dir,
            Ok(file) => match file.try_lock() {
                Ok(()) => {
                    let _ = fs::remove_file(&path);
                    false
                }
                Err(TryLockError::WouldBlock) => true,
                Err(TryLockError::Error(_)) => true,
            },
        }
    }

    /// The ids of the other processes holding a lease in this data directory
    /// now: for work that needs the directory to itself (`migrate-to`).
    pub fn others_alive(&self) -> Vec<String> {
        let Some(entries) = self.dir.as_ref().and_then(|dir| fs::read_dir(dir).ok()) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                Some(name.strip_suffix(".lock")?.to_string())
            })
            .filter(|id| *id != self.id && self.is_alive(id))
            .collect()
    }
}

impl Drop for ProcessLease {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = fs::remove_file(dir.join(format!("{}.lock", self.id)));
        }
    }
}

/// Removes lock files nobody holds.
fn sweep(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|extension| extension != "lock") {
            continue;
        }
        if let Ok(file) = File::open(&path)
            && file.try_lock().is_ok()
        {
            let _ = fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_alive_while_held_and_gone_once_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mine = ProcessLease::acquire(dir.path()).unwrap();
        let other = ProcessLease::acquire(dir.path()).unwrap();
        let other_id = other.id().to_string();
        assert!(mine.is_alive(&other_id));
        assert!(mine.is_alive(mine.id()));
        drop(other);
        assert!(!mine.is_alive(&other_id));
        assert!(!mine.is_alive("1234-00000000000000ff"), "never seen");
        assert!(!mine.is_alive("../goals.db"), "not a lease id");
    }

    #[test]
    fn a_sweep_removes_unheld_lock_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let processes = dir.path().join("processes");
        fs::create_dir_all(&processes).unwrap();
        // A lease being taken: created, not yet locked.
        let pending = processes.join("1-00000000000000aa.pending");
        File::create(&pending).unwrap();
        let dead = processes.join("2-00000000000000bb.lock");
        File::create(&dead).unwrap();
        let lease = ProcessLease::acquire(dir.path()).unwrap();
        assert!(pending.exists(), "a lease being taken is left alone");
        assert!(!dead.exists(), "a dead process's file is removed");
        assert!(processes.join(format!("{}.lock", lease.id())).exists());
    }

    #[test]
    fn a_file_left_unlocked_counts_as_gone_and_is_swept() {
        let dir = tempfile::tempdir().unwrap();
        let processes = dir.path().join("processes");
        fs::create_dir_all(&processes).unwrap();
        // What a killed process leaves: its file, with no lock on it.
        let left = processes.join("99-00000000000000aa.lock");
        File::create(&left).unwrap();
        let mine = ProcessLease::acquire(dir.path()).unwrap();
        assert!(!left.exists(), "swept when a lease is taken");
        File::create(&left).unwrap();
        assert!(!mine.is_alive("99-00000000000000aa"));
        assert!(!left.exists());
    }

    #[test]
    fn an_owner_without_a_file_may_be_alive_elsewhere_when_the_database_is_shared() {
        let dir = tempfile::tempdir().unwrap();
        let mine = ProcessLease::acquire_shared(dir.path()).unwrap();
        assert!(
            mine.is_alive("1234-00000000000000ff"),
            "maybe on another machine"
        );
        let neighbour = ProcessLease::acquire(dir.path()).unwrap();
        let neighbour_id = neighbour.id().to_string();
        assert!(mine.is_alive(&neighbour_id));
        // A file left unlocked here is a process of this machine that ended.
        let left = dir
            .path()
            .join("processes")
            .join("99-00000000000000aa.lock");
        File::create(&left).unwrap();
        assert!(!mine.is_alive("99-00000000000000aa"));
    }

    #[test]
    fn others_alive_lists_the_other_holders_only() {
        let dir = tempfile::tempdir().unwrap();
        let mine = ProcessLease::acquire(dir.path()).unwrap();
        assert!(mine.others_alive().is_empty());
        let other = ProcessLease::acquire(dir.path()).unwrap();
        assert_eq!(mine.others_alive(), [other.id()]);
        drop(other);
        assert!(mine.others_alive().is_empty());
    }

    #[test]
    fn an_in_memory_database_has_no_other_processes() {
        let lease = ProcessLease::private();
        assert!(lease.is_alive(lease.id()));
        assert!(!lease.is_alive("1-0"));
    }
}
