//! Durability off the writer's path. The writer commits with `synchronous=NORMAL`, which in
//! WAL mode writes a transaction's frames to the WAL file without syncing it, and hands its
//! replies here, with the journal records it ran since. This thread syncs the WAL when a
//! batch carries a plain commit, appends and syncs the records, and only then answers, while
//! the writer already runs what comes next. So every answered write is on disk (in the WAL,
//! or in the journal from which a restart runs it again), but the writer never waits for
//! the disk.
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
use std::sync::{mpsc, Arc};

use super::journal::Journal;
use super::writer::{Batch, Marks, Reply, ToWriter};
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

/// Answers the writer's batches once what they hold is on disk: the WAL when a batch
/// carries a plain commit, the journal records they carry (appended in one write and one
/// `fdatasync` for every batch that arrived during the last sync). Tells the writer how
/// many batches it answered, until the writer stops.
pub fn sync_loop(
    mut wal: WalFile,
    mut journal: Option<Journal>,
    marks: Arc<Marks>,
    batches: mpsc::Receiver<Batch>,
    writer: mpsc::Sender<ToWriter>,
) {
    while let Ok(first) = batches.recv() {
        let mut round = vec![first];
        while let Ok(more) = batches.try_recv() {
            round.push(more);
        }
        let started = std::time::Instant::now();
        let synced = sync_round(&mut wal, journal.as_mut(), &marks, &mut round);
        metrics::histogram!("waygate_store_sync_seconds").record(started.elapsed().as_secs_f64());
        if let Err(e) = &synced {
            tracing::error!(error = %e, "the WAL or the journal could not be synced; the writes they hold are not acknowledged");
        }
        let count = round.len();
        let replies: Vec<Reply> = round.into_iter().flat_map(|b| b.replies).collect();
        metrics::histogram!("waygate_store_synced_operations").record(replies.len() as f64);
        for reply in replies {
            reply(synced.clone());
        }
        let _ = writer.send(ToWriter::Synced(count));
    }
}

/// The WAL first: a record may depend on a plain commit in the same round.
fn sync_round(
    wal: &mut WalFile,
    journal: Option<&mut Journal>,
    marks: &Marks,
    round: &mut [Batch],
) -> StoreResult<()> {
    if round.iter().any(|b| b.wal) {
        wal.sync()?;
    }
    let last_seq = round.iter().map(|b| b.last_seq).max().unwrap_or(0);
    let mut records = Vec::new();
    for batch in round.iter_mut() {
        if records.is_empty() {
            records = std::mem::take(&mut batch.journal);
        } else {
            records.extend_from_slice(&batch.journal);
        }
    }
    match journal {
        Some(journal) if !records.is_empty() => journal
            .append(&records, last_seq, marks.durable.load(Ordering::Acquire))
            .map_err(|e| {
                marks.journal_failed.store(true, Ordering::Release);
                StoreError::Corrupt(format!("cannot write the journal: {e}"))
            }),
        _ => Ok(()),
    }
}
