//! The embedded SQLite store.
//!
//! Writes go to one writer thread (`writer`). The hot ones (sends, status steps, dispatch
//! outcomes) are journaled: answered once their record is synced in the journal (`journal`,
//! `journaled`), while SQLite commits them in bulk; the others are committed at once and
//! answered once the WAL holding them is synced (`wal_sync`). Plain operations run inside a
//! savepoint, so a refused one leaves nothing behind; the hot paths run without one and
//! refuse before they write (`write_unguarded`). Reads catch SQLite up with the journal,
//! then use a pool of connections on the blocking thread pool (WAL lets them run beside the
//! writer).

mod catalog_sync;
mod jobs;
mod journal;
mod journaled;
mod messaging;
mod rows;
mod statements;
mod status_checks;
mod tenants;
mod wal_sync;
mod webhooks;
mod writer;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};

use async_trait::async_trait;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;
use waygate_core::money::Money;

use super::*;
use journaled::{Applied, Journaled};
use writer::{Done, Marks, ToWriter, WriteOp, Writer, WriterState};

/// Schema versions in order; `PRAGMA user_version` records how many have been applied.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_initial.sql"),
    include_str!("migrations/002_provider_fields.sql"),
    include_str!("migrations/003_directory_version.sql"),
    include_str!("migrations/004_status_batches.sql"),
    include_str!("migrations/005_ledger_kind_check.sql"),
    include_str!("migrations/006_status_jobs_index.sql"),
    include_str!("migrations/007_balances.sql"),
    include_str!("migrations/008_message_status.sql"),
    include_str!("migrations/009_journal_state.sql"),
    include_str!("migrations/010_status_steps_in_place.sql"),
    include_str!("migrations/011_attempts_and_status_checks.sql"),
    include_str!("migrations/012_template_lifecycle.sql"),
    include_str!("migrations/013_meta.sql"),
];
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(Arc::new(e))
    }
}

#[derive(Clone)]
pub struct SqliteStore {
    writer: mpsc::Sender<ToWriter>,
    readers: Arc<ReaderPool>,
    marks: Arc<Marks>,
    journaling: bool,
    /// The store's threads stop once every clone of the store is gone.
    _alive: Arc<Alive>,
}

/// Held by every clone of the store; the last one to go stops the writer (after it commits
/// and syncs what it holds) and the checkpointer.
struct Alive {
    writer: mpsc::Sender<ToWriter>,
}

impl Drop for Alive {
    fn drop(&mut self) {
        let _ = self.writer.send(ToWriter::Stop);
    }
}

/// WAL frames (2 KiB each) after which the checkpointer makes the WAL start over.
const RESTART_FRAMES: i64 = 32_768;

/// How often the WAL is copied back into the database file. A page that several commits
/// changed meanwhile is copied once: every 300 ms instead of 100 took the checkpointer from
/// ~12 to ~8 µs a send at full load, with the same p99 (1 s: ~6 µs, p99 19 -> 24 ms).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(300);

struct ReaderPool {
    path: std::path::PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Bounds the open read connections (each holds its own page cache), so a burst of
    /// reads queues instead of opening a connection per request.
    permits: tokio::sync::Semaphore,
}

/// The writer's page cache, in KiB (as a negative number, which is how SQLite takes KiB).
const WRITER_CACHE_KIB: i64 = -16 * 1024;

/// Prepared statements each connection keeps.
const STATEMENTS_KEPT: usize = 128;

/// Read connections kept at most.
const READERS: usize = 8;

/// Waits for a lock held by another connection (the checkpointer's RESTART, or another
/// process) in 1 ms steps, for up to 10 s. SQLite's own busy timeout backs off to 100 ms
/// sleeps, which turned a short checkpoint into a stall of hundreds of milliseconds.
fn wait_briefly(attempt: i32) -> bool {
    std::thread::sleep(std::time::Duration::from_millis(1));
    attempt < 10_000
}

fn open(path: &Path) -> StoreResult<Connection> {
    // Before the process's first connection, the only time SQLite takes a page cache.
    if !sqlite_pagecache::install() {
        tracing::debug!("SQLite started before waygate's page cache was installed");
    }
    // After the page cache: registering a VFS starts SQLite. Commits then reach the WAL in
    // one write instead of two per page (a fifth of the writer's time was those calls).
    let conn = if sqlite_walbuf::register() {
        Connection::open_with_flags_and_vfs(path, OpenFlags::default(), sqlite_walbuf::NAME)?
    } else {
        tracing::warn!(
            "SQLite's WAL write buffer could not be registered; writing frames one by one"
        );
        Connection::open(path)?
    };
    // rusqlite keeps 16 prepared statements by default; the writer alone uses more, and
    // re-preparing the evicted ones showed in its profile.
    conn.set_prepared_statement_cache_capacity(STATEMENTS_KEPT);
    conn.busy_handler(Some(wait_briefly))?;
    // Plans that never look at bound values. Otherwise SQLite reads a bound `LIMIT ?` while
    // planning and re-prepares the statement whenever that parameter is bound again: every
    // run of the status and claim queries was a fresh prepare (3 % of the writer's samples).
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.execute_batch(
        // Small pages: most pages a send dirties are index leaves at random places, and each
        // is written to the WAL whole (measured: 2 KiB beats 4 KiB by a fifth).
        "PRAGMA page_size = 2048; PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;",
    )?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating and migrating) the database file at `path`, for a server: it keeps
    /// the journal while it runs.
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        SqliteStore::open_with(path, true)
    }

    /// Opens the database as a one-shot command does (`waygate admin`, `migrate`): it runs
    /// what the journal holds, then lets the journal go and writes plainly, so that a server
    /// started while the command runs still takes the journal.
    pub fn open_for_command(path: &Path) -> StoreResult<SqliteStore> {
        SqliteStore::open_with(path, false)
    }

    fn open_with(path: &Path, keep_journal: bool) -> StoreResult<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Corrupt(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let mut conn = open(path)?;
        migrate(&mut conn)?;
        // Commits write the WAL without syncing it; `wal_sync` syncs before answering.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Savepoint journals in memory: past 64 KiB SQLite spills them to a temporary file,
        // and a batch of status steps passes that.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // The hot index leaves outgrow the default 2 MiB cache within minutes; misses were
        // a tenth of the writer's time, each a read from the OS.
        conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
        // Checkpoints run on their own thread, so the writer never stops to copy pages.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // When the WAL starts over, give back the disk it grew to beyond 64 MiB.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        let mut journal = journal::Journal::open(path).map_err(|e| {
            StoreError::Corrupt(format!(
                "cannot open the journal of {}: {e}",
                path.display()
            ))
        })?;
        let mut wal = wal_sync::WalFile::open(path)?;
        let seq = match journal.as_mut() {
            Some(journal) => recover(&conn, &WriterState::new(&conn), journal, &mut wal)?,
            None => {
                tracing::info!("another process holds the journal: this one writes without it");
                0
            }
        };
        if !keep_journal {
            // Closing the files lets the lock go.
            journal = None;
        }
        let marks = Arc::new(Marks::at(seq));
        let (tx, rx) = mpsc::channel::<ToWriter>();
        let spawn_error =
            |e: std::io::Error| StoreError::Corrupt(format!("cannot start a store thread: {e}"));
        let writer_marks = marks.clone();
        let journaling = journal.is_some();
        let durability = wal_sync::Durability { wal, journal };
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || Writer::new(&conn, writer_marks, seq, durability).run_loop(rx))
            .map_err(spawn_error)?;
        let alive = Arc::new(Alive { writer: tx.clone() });
        let checkpointer = open(path)?;
        let db_file = std::fs::File::open(path)
            .map_err(|e| StoreError::Corrupt(format!("cannot open {}: {e}", path.display())))?;
        let checkpoint_wal = wal_sync::WalFile::open(path)?;
        let watch = Arc::downgrade(&alive);
        let checkpoint_marks = marks.clone();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                checkpoint_loop(
                    checkpointer,
                    db_file,
                    checkpoint_wal,
                    checkpoint_marks,
                    watch,
                )
            })
            .map_err(spawn_error)?;
        Ok(SqliteStore {
            writer: tx,
            readers: Arc::new(ReaderPool {
                path: path.to_path_buf(),
                idle: Mutex::new(Vec::new()),
                permits: tokio::sync::Semaphore::new(READERS),
            }),
            marks,
            journaling,
            _alive: alive,
        })
    }

    /// Whether this store journals its hot writes (it holds the journal); otherwise every
    /// write is committed and synced on its own.
    pub fn journals(&self) -> bool {
        self.journaling
    }

    /// Runs `op` in the next group commit and answers once that commit is durable.
    async fn write<T, E>(
        &self,
        op: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.write_with(move |c, _| op(c)).await
    }

    /// `write`, for operations that use the writer's state.
    async fn write_with<T, E>(
        &self,
        op: impl FnOnce(&Connection, &WriterState<'_>) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.submit(move |conn, state| in_savepoint(conn, |c| op(c, state)))
            .await
    }

    /// `write_with` without a savepoint, for a provider's status callback (journaled
    /// operations run the same way): the savepoint's journal copied every page an operation
    /// touched, a tenth of the writer's time. The operation must make every refusal before
    /// its first write; a store error, which may come after one, rolls back the open
    /// transaction (its journaled operations then run again).
    async fn write_unguarded<T, E>(
        &self,
        op: impl FnOnce(&Connection, &WriterState<'_>) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: StoreFailure + From<StoreError> + Send + 'static,
    {
        self.submit(move |conn, state| {
            let result = op(conn, state);
            if let Some(e) = result.as_ref().err().and_then(StoreFailure::store_error) {
                state.doom(e.clone());
            }
            result
        })
        .await
    }

    /// Hands `op` to the writer and waits until the commit holding it is durable.
    async fn submit<T, E>(
        &self,
        op: impl FnOnce(&Connection, &WriterState<'_>) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, E>>();
        let job: WriteOp = Box::new(
            move |writer: StoreResult<(&Connection, &WriterState<'_>)>| {
                let result = match writer {
                    Ok((conn, state)) => op(conn, state),
                    Err(e) => Err(E::from(e)),
                };
                Done::Plain(answer_with(tx, result))
            },
        );
        self.send_to_writer(job, rx).await
    }

    /// Runs a journaled operation: answered once its record is in the synced journal.
    async fn write_journaled(&self, op: Journaled) -> Result<Applied, SendRefused> {
        // Encoded here rather than on the writer thread, which is the busier one.
        let payload = op.payload();
        let (tx, rx) = oneshot::channel::<Result<Applied, SendRefused>>();
        let job: WriteOp = Box::new(
            move |writer: StoreResult<(&Connection, &WriterState<'_>)>| {
                let result = match writer {
                    Ok((conn, state)) => {
                        let result = op.run(conn, state);
                        if let Some(e) = result.as_ref().err().and_then(StoreFailure::store_error) {
                            state.doom(e.clone());
                        }
                        result
                    }
                    Err(e) => Err(SendRefused::Store(e)),
                };
                let record = result.is_ok().then_some(payload);
                Done::Journaled(answer_with(tx, result), record)
            },
        );
        self.send_to_writer(job, rx).await
    }

    async fn send_to_writer<T, E: From<StoreError>>(
        &self,
        job: WriteOp,
        answer: oneshot::Receiver<Result<T, E>>,
    ) -> Result<T, E> {
        self.writer
            .send(ToWriter::Op(job))
            .map_err(|_| E::from(StoreError::Closed))?;
        answer
            .await
            .unwrap_or_else(|_| Err(E::from(StoreError::Closed)))
    }

    /// Waits until SQLite holds every journaled write made so far, so that a read sees
    /// each write that was answered before it began.
    async fn catch_up(&self) -> StoreResult<()> {
        let journaled = self.marks.journaled.load(Ordering::Acquire);
        if self.marks.committed.load(Ordering::Acquire) >= journaled {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel::<StoreResult<()>>();
        let reply: writer::Reply = Box::new(move |result| {
            let _ = tx.send(result);
        });
        self.writer
            .send(ToWriter::Flush(reply))
            .map_err(|_| StoreError::Closed)?;
        rx.await.unwrap_or(Err(StoreError::Closed))
    }

    async fn read<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.catch_up().await?;
        let _permit = self
            .readers
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match pool.idle.lock().map_err(|_| StoreError::Closed)?.pop() {
                Some(conn) => conn,
                None => open(&pool.path)?,
            };
            let result = op(&conn);
            if let Ok(mut idle) = pool.idle.lock() {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}

/// Applies the migrations this database has not seen, each in its own transaction (the
/// version is read under the write lock, so two processes starting at once cannot both apply one).
fn migrate(conn: &mut Connection) -> StoreResult<()> {
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let applied: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let Some(sql) = MIGRATIONS.get(applied) else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", applied + 1)?;
        tx.commit()?;
    }
}

fn in_savepoint<T, E: From<StoreError>>(
    conn: &Connection,
    op: impl FnOnce(&Connection) -> Result<T, E>,
) -> Result<T, E> {
    let run = |sql: &str| -> StoreResult<()> {
        conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    };
    run("SAVEPOINT op")?;
    let result = op(conn);
    if result.is_err() {
        run("ROLLBACK TO op")?;
    }
    run("RELEASE op")?;
    result
}

/// The reply that hands an operation's result to its caller once the writer says how its
/// commit went.
fn answer_with<T: Send + 'static, E: From<StoreError> + Send + 'static>(
    tx: oneshot::Sender<Result<T, E>>,
    result: Result<T, E>,
) -> writer::Reply {
    Box::new(move |commit: StoreResult<()>| {
        let outcome = match commit {
            Ok(()) => result,
            Err(e) => Err(E::from(e)),
        };
        let _ = tx.send(outcome);
    })
}

/// Runs again the journal's records that no synced commit holds, as one transaction, syncs
/// it, and empties the journal; returns the last record's number. Stops before a record
/// that followed a plain commit which did not reach the disk: such a record was never
/// answered (its answer waited for that commit's sync).
fn recover(
    conn: &Connection,
    state: &WriterState<'_>,
    journal: &mut journal::Journal,
    wal: &mut wal_sync::WalFile,
) -> StoreResult<u64> {
    let unreadable =
        |e: std::io::Error| StoreError::Corrupt(format!("cannot read the journal: {e}"));
    writer::execute(conn, "BEGIN IMMEDIATE")?;
    let (applied, plain): (u64, u64) = conn.query_row(
        "SELECT applied_seq, plain_commits FROM journal_state",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut records: Vec<journal::Record> = journal
        .read_all()
        .map_err(unreadable)?
        .into_iter()
        .filter(|r| r.seq > applied)
        .collect();
    let runnable = records
        .iter()
        .zip(applied + 1..)
        .take_while(|(r, seq)| r.seq == *seq && r.plain_before <= plain)
        .count();
    if runnable < records.len() {
        tracing::warn!(
            dropped = records.len() - runnable,
            "journal records after a gap or a lost commit were never answered; dropped"
        );
    }
    records.truncate(runnable);
    let result = journaled::run_again(conn, state, &records)
        .and_then(|()| state.followups.write(conn))
        .and_then(|()| {
            let last = applied + records.len() as u64;
            conn.execute("UPDATE journal_state SET applied_seq = ?1", [last])?;
            writer::execute(conn, "COMMIT")?;
            Ok(last)
        });
    let last = match result {
        Ok(last) => last,
        Err(e) => {
            let _ = writer::execute(conn, "ROLLBACK");
            return Err(e);
        }
    };
    if !records.is_empty() {
        tracing::info!(
            records = records.len(),
            "ran the journal's unapplied records again"
        );
    }
    wal.sync()?;
    journal.clear().map_err(unreadable)?;
    Ok(last)
}

/// A journaled operation answered with another's outcome (a bug, never a state of the data).
fn mismatched() -> StoreError {
    StoreError::Corrupt("a journaled operation returned another kind of outcome".into())
}

/// What an operation without a savepoint failed with: a store error (which may come after
/// a write, so it fails the batch) or a refusal (which comes before any).
trait StoreFailure {
    fn store_error(&self) -> Option<&StoreError>;
}

impl StoreFailure for StoreError {
    fn store_error(&self) -> Option<&StoreError> {
        Some(self)
    }
}

impl StoreFailure for SendRefused {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            SendRefused::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// Copies committed WAL frames into the database file while the writer goes on (PASSIVE
/// never blocks it). Under constant writes a passive checkpoint never quite catches up, and
/// the WAL only starts over once one has, so past `RESTART_FRAMES` a RESTART checkpoint
/// holds the writer off while it copies the frames left and syncs the database, and lets
/// the next commit rewind the WAL. A passive pass right before it keeps that copy short.
///
/// Each round also syncs the WAL and then tells the journal which records are durably in
/// SQLite, so that it can reuse the file holding them.
fn checkpoint_loop(
    conn: Connection,
    db: std::fs::File,
    mut wal: wal_sync::WalFile,
    marks: Arc<Marks>,
    alive: std::sync::Weak<Alive>,
) {
    while alive.strong_count() > 0 {
        std::thread::sleep(CHECKPOINT_EVERY);
        let committed = marks.committed.load(Ordering::Acquire);
        match wal.sync() {
            Ok(()) => marks.durable.store(committed, Ordering::Release),
            Err(e) => tracing::warn!(error = %e, "cannot sync the WAL; will try again"),
        }
        let result = passive_pass(&conn, &db).and_then(|frames| {
            if frames <= RESTART_FRAMES {
                return Ok(());
            }
            passive_pass(&conn, &db)?;
            checkpoint(&conn, "RESTART")?;
            Ok(())
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, "WAL checkpoint failed; will try again");
        }
    }
}

/// A PASSIVE checkpoint, then a sync of the database file, outside every lock; returns the
/// WAL's frames. SQLite syncs the database only after a pass that reaches the WAL's end,
/// which under steady writes only the RESTART does: it then flushed all that the passes had
/// copied since the last restart (tens of MiB, 25-40 ms) while holding the writer off.
fn passive_pass(conn: &Connection, db: &std::fs::File) -> StoreResult<i64> {
    let frames = checkpoint(conn, "PASSIVE")?;
    db.sync_data()
        .map_err(|e| StoreError::Corrupt(format!("cannot sync the database file: {e}")))?;
    Ok(frames)
}

/// Runs one checkpoint; returns the WAL's frames.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get(1))
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn flush(&self) -> StoreResult<()> {
        self.catch_up().await
    }

    async fn has_users(&self) -> StoreResult<bool> {
        self.read(|c| Ok(c.query_row("SELECT EXISTS (SELECT 1 FROM users)", [], |r| r.get(0))?))
            .await
    }

    async fn create_user(&self, name: String, email: String, now: i64) -> StoreResult<User> {
        self.write(move |c| tenants::create_user(c, &name, &email, now))
            .await
    }

    async fn get_user(&self, id: i64) -> StoreResult<Option<User>> {
        self.read(move |c| tenants::get_user(c, id)).await
    }

    async fn create_api_key(
        &self,
        user_id: i64,
        name: String,
        prefix: String,
        hash: Vec<u8>,
        now: i64,
    ) -> StoreResult<Option<ApiKeyRecord>> {
        self.write(move |c| tenants::create_api_key(c, user_id, &name, &prefix, &hash, now))
            .await
    }

    async fn revoke_api_key(&self, id: i64, now: i64) -> StoreResult<bool> {
        self.write(move |c| tenants::revoke_api_key(c, id, now))
            .await
    }

    async fn user_for_key(&self, hash: Vec<u8>) -> StoreResult<Option<i64>> {
        self.read(move |c| tenants::user_for_key(c, &hash)).await
    }

    async fn directory_version(&self) -> StoreResult<i64> {
        self.read(|c| {
            Ok(c.prepare_cached("SELECT version FROM directory_version")?
                .query_row([], |r| r.get(0))?)
        })
        .await
    }

    async fn create_sender(
        &self,
        user_id: i64,
        sender: NewSender,
        now: i64,
    ) -> StoreResult<Option<Sender>> {
        self.write(move |c| tenants::create_sender(c, user_id, &sender, now))
            .await
    }

    async fn update_sender(
        &self,
        id: i64,
        patch: SenderPatch,
        now: i64,
    ) -> StoreResult<Option<Sender>> {
        self.write_with(move |c, w| tenants::update_sender(c, &w.subscriptions, id, &patch, now))
            .await
    }

    async fn get_sender(&self, id: i64) -> StoreResult<Option<Sender>> {
        self.read(move |c| tenants::get_sender(c, id)).await
    }

    async fn sender_by_phone(
        &self,
        phone: String,
        provider: ProviderKind,
    ) -> StoreResult<Option<Sender>> {
        self.read(move |c| tenants::sender_by_phone(c, &phone, provider))
            .await
    }

    async fn list_senders(
        &self,
        user_id: i64,
        status: Option<SenderStatus>,
    ) -> StoreResult<Vec<Sender>> {
        self.read(move |c| tenants::list_senders(c, user_id, status))
            .await
    }

    async fn create_template(
        &self,
        sender_id: i64,
        template: NewTemplate,
        now: i64,
    ) -> StoreResult<Option<Template>> {
        self.write(move |c| tenants::create_template(c, sender_id, &template, now))
            .await
    }

    async fn update_template(
        &self,
        id: i64,
        patch: TemplatePatch,
        now: i64,
    ) -> StoreResult<Option<Template>> {
        self.write_with(move |c, w| tenants::update_template(c, &w.subscriptions, id, &patch, now))
            .await
    }

    async fn delete_template(&self, id: i64) -> StoreResult<bool> {
        self.write(move |c| catalog_sync::delete_template(c, id))
            .await
    }

    async fn claim_template_syncs(
        &self,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<Template>> {
        self.write(move |c| catalog_sync::claim_templates(c, now, lease_ms, limit))
            .await
    }

    async fn record_review(
        &self,
        template_id: i64,
        review: Review,
        next_at: Option<i64>,
        now: i64,
    ) -> StoreResult<Option<Template>> {
        self.write_with(move |c, w| {
            catalog_sync::apply_review(c, &w.subscriptions, template_id, &review, next_at, now)
        })
        .await
    }

    async fn claim_sender_syncs(
        &self,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<Sender>> {
        self.write(move |c| catalog_sync::claim_senders(c, now, lease_ms, limit))
            .await
    }

    async fn record_sender_report(
        &self,
        sender_id: i64,
        report: SenderReport,
        next_at: i64,
        now: i64,
    ) -> StoreResult<Option<Sender>> {
        self.write_with(move |c, w| {
            catalog_sync::apply_sender_report(c, &w.subscriptions, sender_id, &report, next_at, now)
        })
        .await
    }

    async fn get_template(&self, id: i64) -> StoreResult<Option<Template>> {
        self.read(move |c| tenants::get_template(c, id)).await
    }

    async fn template_by_provider_ref(
        &self,
        provider_ref: String,
        provider: ProviderKind,
    ) -> StoreResult<Option<Template>> {
        self.read(move |c| tenants::template_by_provider_ref(c, &provider_ref, provider))
            .await
    }

    async fn list_templates(
        &self,
        sender_id: i64,
        status: Option<TemplateStatus>,
    ) -> StoreResult<Vec<Template>> {
        self.read(move |c| tenants::list_templates(c, sender_id, status))
            .await
    }

    async fn credit(
        &self,
        user_id: i64,
        amount: Money,
        reference: String,
        now: i64,
    ) -> StoreResult<Option<CreditOutcome>> {
        self.write_with(move |c, w| {
            tenants::credit(c, &w.statements, user_id, amount, &reference, now)
        })
        .await
    }

    async fn record_send(&self, send: NewSend) -> Result<SendRecorded, SendRefused> {
        match self.write_journaled(Journaled::Send(send)).await? {
            Applied::Send(recorded) => Ok(recorded),
            _ => Err(SendRefused::Store(mismatched())),
        }
    }

    async fn outgoing(&self, message_ids: Vec<i64>) -> StoreResult<Vec<Outgoing>> {
        self.read(move |c| messaging::outgoing(c, &message_ids))
            .await
    }

    async fn known_sids(&self, sids: Vec<String>) -> StoreResult<Vec<String>> {
        self.read(move |c| messaging::known_sids(c, &sids)).await
    }

    async fn record_dispatch(
        &self,
        job_id: i64,
        message_id: i64,
        result: DispatchResult,
        now: i64,
    ) -> StoreResult<()> {
        let op = Journaled::Dispatch {
            job_id,
            message_id,
            result,
            now,
        };
        match self.write_journaled(op).await {
            Ok(_) => Ok(()),
            Err(refused) => Err(journaled::store_error(refused, "a dispatch outcome")),
        }
    }

    async fn apply_status(&self, update: StatusUpdate) -> StoreResult<StatusApplied> {
        self.write_unguarded(move |c, w| messaging::apply_status(c, w, &update))
            .await
    }

    async fn apply_due_statuses(&self, now: i64, limit: i64) -> StoreResult<usize> {
        match self
            .write_journaled(Journaled::DueStatuses { now, limit })
            .await
        {
            Ok(Applied::Statuses(applied)) => Ok(applied),
            Ok(_) => Err(mismatched()),
            Err(refused) => Err(journaled::store_error(refused, "status steps")),
        }
    }

    async fn record_inbound(&self, inbound: NewInbound) -> StoreResult<Option<Message>> {
        self.write_with(move |c, w| messaging::record_inbound(c, w, &inbound))
            .await
    }

    async fn save_idempotent_response(
        &self,
        user_id: i64,
        key: String,
        status: u16,
        body: String,
    ) -> StoreResult<()> {
        self.write(move |c| messaging::save_idempotent_response(c, user_id, &key, status, &body))
            .await
    }

    async fn idempotent_replay(
        &self,
        user_id: i64,
        key: String,
        request_hash: Vec<u8>,
        now: i64,
    ) -> Result<Option<Replay>, SendRefused> {
        let read = self
            .read(move |c| {
                Ok(messaging::idempotent_replay(
                    c,
                    user_id,
                    &key,
                    &request_hash,
                    now,
                ))
            })
            .await?;
        read
    }

    async fn conversation(
        &self,
        sender_id: i64,
        recipient: String,
    ) -> StoreResult<Option<Conversation>> {
        self.read(move |c| messaging::conversation(c, sender_id, &recipient))
            .await
    }

    async fn get_conversation(&self, id: i64) -> StoreResult<Option<Conversation>> {
        self.read(move |c| messaging::get_conversation(c, id)).await
    }

    async fn list_conversations(&self, query: ConversationQuery) -> StoreResult<Vec<Conversation>> {
        self.read(move |c| messaging::list_conversations(c, &query))
            .await
    }

    async fn get_message(&self, id: i64) -> StoreResult<Option<Message>> {
        self.read(move |c| messaging::get_message(c, id)).await
    }

    async fn list_messages(
        &self,
        conversation_id: i64,
        after: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        self.read(move |c| messaging::list_messages(c, conversation_id, after, limit))
            .await
    }

    async fn create_webhook(
        &self,
        user_id: i64,
        url: String,
        events: Vec<String>,
        secret: String,
        now: i64,
    ) -> StoreResult<Webhook> {
        self.write_with(move |c, w| {
            webhooks::create(c, &w.subscriptions, user_id, &url, &events, &secret, now)
        })
        .await
    }

    async fn list_webhooks(&self, user_id: i64) -> StoreResult<Vec<Webhook>> {
        self.read(move |c| webhooks::list(c, user_id)).await
    }

    async fn get_webhook(&self, id: i64) -> StoreResult<Option<Webhook>> {
        self.read(move |c| webhooks::get(c, id)).await
    }

    async fn delete_webhook(&self, id: i64, now: i64) -> StoreResult<bool> {
        self.write_with(move |c, w| webhooks::delete(c, &w.subscriptions, id, now))
            .await
    }

    async fn rotate_webhook_secret(
        &self,
        id: i64,
        secret: String,
        old_valid_until: i64,
    ) -> StoreResult<bool> {
        self.write(move |c| webhooks::rotate(c, id, &secret, old_valid_until))
            .await
    }

    async fn claim_jobs(&self, now: i64, lease_ms: i64, limit: i64) -> StoreResult<Vec<Job>> {
        self.write(move |c| jobs::claim(c, now, lease_ms, limit))
            .await
    }

    async fn complete_job(&self, id: i64) -> StoreResult<()> {
        self.write(move |c| jobs::complete(c, id)).await
    }

    async fn retry_job(&self, id: i64, run_at: i64, error: String) -> StoreResult<()> {
        self.write(move |c| jobs::retry(c, id, run_at, &error))
            .await
    }

    async fn bury_job(&self, id: i64, error: String) -> StoreResult<()> {
        self.write(move |c| jobs::bury(c, id, &error)).await
    }

    async fn set_aside_send(
        &self,
        job_id: i64,
        message_id: i64,
        reason: String,
        now: i64,
    ) -> StoreResult<()> {
        self.write(move |c| {
            jobs::bury(c, job_id, &reason)?;
            status_checks::mark_unknown(c, message_id, &reason, now)
        })
        .await
    }

    async fn set_aside_jobs(&self, after: i64, limit: i64) -> StoreResult<Vec<SetAsideJob>> {
        self.read(move |c| jobs::set_aside(c, after, limit)).await
    }

    async fn revive_job(&self, id: i64, now: i64) -> StoreResult<bool> {
        self.write(move |c| jobs::revive(c, id, now)).await
    }

    async fn queue_gauges(&self) -> StoreResult<QueueGauges> {
        self.read(|c| {
            Ok(QueueGauges {
                live: jobs::depth(c)?,
                set_aside: jobs::set_aside_count(c)?,
                status_unknown: status_checks::unknown_count(c)?,
            })
        })
        .await
    }

    async fn claim_status_checks(
        &self,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<StatusCheck>> {
        self.write(move |c| status_checks::claim(c, now, lease_ms, limit))
            .await
    }

    async fn record_status_check(&self, message_id: i64, check: CheckRecorded) -> StoreResult<()> {
        self.write(move |c| status_checks::record(c, message_id, &check))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebound_limit_does_not_re_prepare_the_statement() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(&dir.path().join("t.db")).unwrap();
        migrate(&mut c).unwrap();
        let mut stmt = c
            .prepare("SELECT id FROM jobs WHERE kind = 'status' AND dead = 0 AND run_at <= ?1 ORDER BY run_at, id LIMIT ?2")
            .unwrap();
        for (now, limit) in [(1, 32), (2, 64), (3, 32), (4, 2048)] {
            stmt.query_map(rusqlite::params![now, limit], |r| r.get::<_, i64>(0))
                .unwrap()
                .for_each(drop);
        }
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }

    /// A new database with only the first `version` migrations applied (its directory is
    /// removed when the first value is dropped).
    fn at_version(version: usize) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let c = open(&dir.path().join("t.db")).unwrap();
        for sql in &MIGRATIONS[..version] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", version).unwrap();
        (dir, c)
    }

    #[test]
    fn the_ledger_rebuild_keeps_entries_and_still_refuses_unknown_kinds() {
        let (_dir, mut c) = at_version(4);
        c.execute_batch(
            "INSERT INTO ledger_entries (user_id, kind, amount_micros, message_id, reference, created_at) \
             VALUES (1, 'credit', 5, NULL, 'r1', 1), (1, 'charge', -2, 9, NULL, 2)",
        )
        .unwrap();
        migrate(&mut c).unwrap();
        let sum: i64 = c
            .query_row("SELECT SUM(amount_micros) FROM ledger_entries", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(sum, 3);
        let bad = c.execute(
            "INSERT INTO ledger_entries (user_id, kind, amount_micros, created_at) VALUES (1, 'gift', 1, 3)",
            [],
        );
        assert!(bad.is_err(), "the kind check survived");
        let twice = c.execute(
            "INSERT INTO ledger_entries (user_id, kind, amount_micros, reference, created_at) VALUES (1, 'credit', 5, 'r1', 4)",
            [],
        );
        assert!(twice.is_err(), "credit references stay unique");
    }

    #[test]
    fn balances_move_to_their_own_table_and_keep_their_floor() {
        let (_dir, mut c) = at_version(6);
        c.execute_batch(
            "INSERT INTO users (id, name, email, balance_micros, created_at) \
             VALUES (1, 'a', 'a@x', 700, 1), (2, 'b', 'b@x', 0, 1)",
        )
        .unwrap();
        migrate(&mut c).unwrap();
        let a = tenants::get_user(&c, 1).unwrap().unwrap();
        assert_eq!((a.name.as_str(), a.balance.micros()), ("a", 700));
        assert_eq!(
            tenants::get_user(&c, 2).unwrap().unwrap().balance.micros(),
            0
        );
        let w = WriterState::new(&c);
        assert!(!tenants::move_balance(&w.statements, 1, Money::from_micros(-701)).unwrap());
        assert!(tenants::move_balance(&w.statements, 1, Money::from_micros(-700)).unwrap());
        let floor = c.execute("UPDATE balances SET micros = -1 WHERE user_id = 2", []);
        assert!(floor.is_err(), "the balance check survived");
        let created = tenants::create_user(&c, "c", "c@x", 2).unwrap();
        assert_eq!(
            tenants::get_user(&c, created.id).unwrap().unwrap().balance,
            Money::ZERO
        );
    }

    #[test]
    fn message_statuses_move_to_their_own_table_with_history_and_errors() {
        let (_dir, mut c) = at_version(7);
        c.execute_batch(
            r#"INSERT INTO messages (id, conversation_id, user_id, sender_id, direction, recipient_phone,
                 body, status, error_code, error_message, price_micros, status_history, created_at)
               VALUES (7, 1, 1, 1, 'outbound', '+14155550100', 'hi', 'failed', 63016, 'window', 5,
                 '[{"status":"pending","at":1},{"status":"failed","at":2}]', 1)"#,
        )
        .unwrap();
        migrate(&mut c).unwrap();
        let m = messaging::get_message(&c, 7).unwrap().unwrap();
        assert_eq!((m.status.as_str(), m.body.as_str()), ("failed", "hi"));
        assert_eq!(
            (m.error_code, m.error_message.as_deref()),
            (Some(63016), Some("window"))
        );
        assert_eq!(m.status_history.len(), 2);
        let gone = c.prepare("SELECT status FROM messages");
        assert!(gone.is_err(), "the column left the wide table");
    }
    fn free_send(to: &str) -> NewSend {
        NewSend {
            user_id: 1,
            sender_id: 1,
            recipient: to.into(),
            recipient_name: None,
            template: Some(TemplateSend {
                template_id: 1,
                variables: vec!["Ada".into()],
                messaging_limit: None,
            }),
            body: "Hello Ada".into(),
            price: SendPrice::flat(Money::ZERO),
            idempotency: None,
            now: 1_000,
            dispatch: Dispatch::Accepted {
                sid: format!("SM{to}"),
                status: waygate_core::status::MessageStatus::Queued,
                followups: Vec::new(),
            },
            template_opens: true,
        }
    }

    /// A store error after an operation wrote undoes the whole open transaction; the
    /// journaled operations in it, already answered, must come back, and the failed
    /// operation's write must not.
    #[tokio::test]
    async fn a_failed_operation_is_undone_alone_and_its_journaled_neighbours_run_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let mut rounds_with_uncommitted_neighbour = 0;
        for round in 0..5 {
            let before = store
                .record_send(free_send(&format!("+1415555{round:04}")))
                .await
                .unwrap();
            let uncommitted = store.marks.committed.load(Ordering::Acquire)
                < store.marks.journaled.load(Ordering::Acquire);
            let failed: StoreResult<()> = store
                .write_unguarded(|c, _| {
                    c.execute(
                        "UPDATE journal_state SET plain_commits = plain_commits + 1000",
                        [],
                    )?;
                    Err(StoreError::Conflict("failed after writing"))
                })
                .await;
            assert!(failed.is_err());
            let after = store
                .record_send(free_send(&format!("+1415666{round:04}")))
                .await
                .unwrap();
            assert_eq!(after.message_id, before.message_id + 1);
            assert!(store
                .get_message(before.message_id)
                .await
                .unwrap()
                .is_some());
            let plain = store.read(writer::plain_commits).await.unwrap();
            assert!(plain < 1000, "the failed operation's write was kept");
            rounds_with_uncommitted_neighbour += usize::from(uncommitted);
        }
        assert!(
            rounds_with_uncommitted_neighbour > 0,
            "never caught a send before its commit"
        );
    }

    /// Writes `(seq, plain_before)` records into the journal of a new database at `path`.
    /// A journal of `op` under each (sequence number, plain commits before) of `records`.
    fn journal_with(path: &Path, records: &[(u64, u64)], op: &Journaled) {
        migrate(&mut open(path).unwrap()).unwrap();
        let mut journal = journal::Journal::open(path).unwrap().unwrap();
        let mut bytes = Vec::new();
        let payload = op.payload();
        for &(seq, plain_before) in records {
            journal::encode(&mut bytes, seq, plain_before, &payload);
        }
        journal.append(&bytes, records.len() as u64, 0).unwrap();
    }

    fn due_statuses() -> Journaled {
        Journaled::DueStatuses { now: 1, limit: 1 }
    }

    /// The last journal record the database holds.
    async fn applied_seq(store: &SqliteStore) -> u64 {
        store
            .read(|c| Ok(c.query_row("SELECT applied_seq FROM journal_state", [], |r| r.get(0))?))
            .await
            .unwrap()
    }

    /// A record refused when run again (here a charged send, on a database that holds no
    /// balance for its tenant) stops the restart with an error naming it: it was answered,
    /// so it is neither dropped nor run differently.
    #[test]
    fn a_record_refused_when_run_again_stops_the_restart_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        journal_with(
            &path,
            &[(1, 0)],
            &journaled::tests::samples().swap_remove(0),
        );
        let refused = match SqliteStore::open(&path) {
            Ok(_) => panic!("the restart ran a refused record"),
            Err(e) => e.to_string(),
        };
        assert!(
            refused.contains("journal record 1, run again refused: InsufficientBalance"),
            "{refused}"
        );
    }

    /// A one-shot command runs what the journal holds, then lets it go: a server started
    /// while the command runs takes the journal rather than writing without it.
    #[tokio::test]
    async fn a_command_runs_the_journal_then_leaves_it_to_a_server() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        journal_with(&path, &[(1, 0), (2, 0)], &due_statuses());
        let command = SqliteStore::open_for_command(&path).unwrap();
        assert_eq!(
            applied_seq(&command).await,
            2,
            "the command ran the records"
        );
        assert!(!command.journals());
        let server = SqliteStore::open(&path).unwrap();
        assert!(
            server.journals(),
            "the server takes the journal although the command still runs"
        );
        let second = SqliteStore::open(&path).unwrap();
        assert!(!second.journals(), "one process journals at a time");
        drop((server, second, command));
    }

    /// A restart runs the records in order up to a gap, or up to one that ran after a plain
    /// commit the database does not hold: neither, nor anything after it, was answered.
    #[tokio::test]
    async fn recovery_stops_at_a_gap_and_after_a_lost_plain_commit_then_empties_the_journal() {
        for (records, applied) in [
            (vec![(1, 0), (2, 0), (4, 0)], 2),
            (vec![(1, 0), (2, 0), (3, 1), (4, 1)], 2),
            (vec![(2, 0), (1, 0), (3, 0)], 3),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.db");
            journal_with(&path, &records, &due_statuses());
            let store = SqliteStore::open(&path).unwrap();
            let seq = applied_seq(&store).await;
            assert_eq!(seq, applied, "{records:?}");
            assert_eq!(store.marks.journaled.load(Ordering::Acquire), applied);
            drop(store);
            let mut journal_path = path.as_os_str().to_owned();
            journal_path.push("-journal0");
            let left = std::fs::metadata(&journal_path).unwrap().len();
            assert_eq!(
                left, 0,
                "the journal is emptied once its records are in SQLite"
            );
        }
    }
}
