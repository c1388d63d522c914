//! Durability off the writer's path. The writer commits with `synchronous=NORMAL`, which in
//! WAL mode writes a transaction's frames to the WAL file without syncing it, and hands the
//! batch's replies here. This thread syncs the WAL file (one `fdatasync` covering every batch
//! committed since the last one) and only then answers them, while the writer already runs
//! the next batch. So every answered write is on disk, as with `synchronous=FULL`, but the
//! writer never waits for the disk.
//!
//! Why this is safe: a transaction's frames are written to the WAL before its COMMIT returns,
//! so a sync started afterwards covers them; a checkpoint never copies unsynced frames into
//! the database file (the checkpointer's connection syncs the WAL first); nothing outside the
//! process learns of a write before its reply (providers are called, and jobs claimed, only
//! after their own write has been answered).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use super::writer::{Reply, ToWriter};
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
    fn sync(&mut self) -> StoreResult<()> {
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

/// Answers committed batches once the WAL holding them is on disk, and tells the writer
/// how many it answered, until the writer stops.
pub fn sync_loop(
    mut wal: WalFile,
    committed: mpsc::Receiver<Vec<Reply>>,
    writer: mpsc::Sender<ToWriter>,
) {
    while let Ok(first) = committed.recv() {
        let mut replies = first;
        let mut batches = 1;
        while let Ok(more) = committed.try_recv() {
            replies.extend(more);
            batches += 1;
        }
        let started = std::time::Instant::now();
        let synced = wal.sync();
        metrics::histogram!("waygate_store_sync_seconds").record(started.elapsed().as_secs_f64());
        if let Err(e) = &synced {
            tracing::error!(error = %e, "the WAL could not be synced; the writes it holds are not acknowledged");
        }
        metrics::histogram!("waygate_store_synced_operations").record(replies.len() as f64);
        for reply in replies {
            reply(synced.clone());
        }
        let _ = writer.send(ToWriter::Synced(batches));
    }
}
