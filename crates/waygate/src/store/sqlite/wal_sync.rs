//! Durability for the writer's answers. The writer commits with `synchronous=NORMAL`, which
//! in WAL mode writes a transaction's frames to the WAL file without syncing it. Between
//! rounds of operations the writer syncs the WAL if a plain commit is in it, appends and
//! syncs the journal records the round ran, and only then answers the round's callers. So
//! every answered write is on disk (in the WAL, or in the journal from which a restart runs
//! it again), and each sync is shared by every operation that arrived meanwhile.
//!
//! The syncing is the writer's own, not another thread's: a sync thread that overlapped it
//! with the writer's next round added two thread wakeups a round, which on these machines
//! (vCPUs that halt when idle) cost more than the overlap saved (docs/PERFORMANCE.md,
//! eleventh session).
//!
//! Why this is safe: a transaction's frames are written to the WAL before its COMMIT returns,
//! so a sync started afterwards covers them; a checkpoint never copies unsynced frames into
//! the database file (the checkpointer's connection syncs the WAL first); nothing outside the
//! process learns of a write before its reply (providers are called, and jobs claimed, only
//! after their own write has been answered).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::journal::Journal;
use super::writer::Marks;
use crate::store::{StoreError, StoreResult};

/// The WAL file that the database at `db` writes to, kept open for syncing.
pub struct WalFile {
    path: PathBuf,
    file: File,
}

impl WalFile {
    /// Opens the WAL of `db`; the writer's connection must already be in WAL mode and have
    /// run a transaction, so that the file exists.
    pub fn open(db: &Path) -> StoreResult<WalFile> {
        let mut path = db.as_os_str().to_owned();
        path.push("-wal");
        let path = PathBuf::from(path);
        let file = File::open(&path).map_err(|e| cannot("open", &path, e))?;
        Ok(WalFile { path, file })
    }

    /// Syncs the WAL's data. SQLite keeps the same file while any connection is open (it
    /// rewinds and truncates, but does not replace it); the inode check makes sure of that.
    pub fn sync(&mut self) -> StoreResult<()> {
        let now = std::fs::metadata(&self.path).map_err(|e| cannot("stat", &self.path, e))?;
        let held = self
            .file
            .metadata()
            .map_err(|e| cannot("stat", &self.path, e))?;
        if (now.dev(), now.ino()) != (held.dev(), held.ino()) {
            self.file = File::open(&self.path).map_err(|e| cannot("reopen", &self.path, e))?;
        }
        self.file
            .sync_data()
            .map_err(|e| cannot("sync", &self.path, e))
    }
}

fn cannot(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Corrupt(format!("cannot {what} {}: {e}", path.display()))
}

/// What makes the writer's answered operations durable: the WAL (for plain commits) and the
/// journal (for journaled records), synced by the writer between rounds of operations.
pub struct Durability {
    pub wal: WalFile,
    /// `None` when another process holds the journal.
    pub journal: Option<Journal>,
}

impl Durability {
    /// Syncs the WAL if `wal` (a plain commit is in it), then appends and syncs `records`
    /// (the last numbered `last_seq`): a record may depend on a plain commit of the same
    /// round. A journal that could not be written is marked failed in `marks`: its records
    /// no longer match what the writer ran.
    pub fn sync(
        &mut self,
        records: &[u8],
        last_seq: u64,
        wal: bool,
        marks: &Marks,
    ) -> StoreResult<()> {
        let started = std::time::Instant::now();
        let wal_synced = match wal {
            true => self.wal.sync(),
            false => Ok(()),
        };
        let synced = wal_synced.and_then(|()| match self.journal.as_mut() {
            Some(journal) if !records.is_empty() => journal
                .append(records, last_seq, marks.durable.load(Ordering::Acquire))
                .map_err(|e| {
                    marks.journal_failed.store(true, Ordering::Release);
                    StoreError::Corrupt(format!("cannot write the journal: {e}"))
                }),
            _ => Ok(()),
        });
        metrics::histogram!("waygate_store_sync_seconds").record(started.elapsed().as_secs_f64());
        if let Err(e) = &synced {
            tracing::error!(error = %e, "the WAL or the journal could not be synced; the writes they hold are not acknowledged");
        }
        synced
    }
}
