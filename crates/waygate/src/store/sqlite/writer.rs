//! The writer thread: every write runs here, in one long transaction at a time.
//!
//! Two kinds of operation run in it. A journaled one (a send, a status step, a dispatch
//! outcome) is answered once its record is synced in the journal (`journal`); SQLite commits
//! those in bulk, every `COMMIT_EVERY` or when a read needs to see them, without syncing,
//! so that the pages they share (index leaves, table tails) are written once for thousands.
//! Any other ("plain") operation that changed something is committed right after it runs and
//! answered once the WAL holding that commit is synced: what it did cannot be replayed.
//!
//! The writer syncs between rounds (`wal_sync`): what arrived while it ran or synced the
//! last round is run, then synced and answered together (group commit of the journal).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::journal::{self, Record};
use super::journaled::{self, Journaled};
use super::statements::Statements;
use super::wal_sync::Durability;
use super::{messaging, webhooks};
use crate::store::{StoreError, StoreResult};

/// Most messages taken from the inbox before the writer syncs and answers them (and looks at
/// committing).
const MAX_BATCH: usize = 1024;

/// How long journaled operations collect in one SQLite transaction. Longer shares more
/// pages per commit; the commit's page writes hold the writer up meanwhile, and the sends
/// that arrive then wait. 50 ms rather than 100 took the p99 at half the peak from 10-23 ms
/// to 10-12.5 ms (six interleaved pairs) without lowering the peak (docs/PERFORMANCE.md).
const COMMIT_EVERY: Duration = Duration::from_millis(50);

/// Journaled operations one transaction holds at most (bounds the memory kept to run them
/// again after a rollback).
const MAX_JOURNALED: usize = 16 * 1024;

/// Answers one operation once what it did is durable, or with the error that undid it.
pub type Reply = Box<dyn FnOnce(StoreResult<()>) + Send>;

/// What an operation leaves for the writer.
pub enum Done {
    /// Not journaled: committed at once if it changed anything.
    Plain(Reply),
    /// Journaled: the record to append if it changed anything (`None`: it failed).
    Journaled(Reply, Option<Vec<u8>>),
}

impl Done {
    fn into_reply(self) -> Reply {
        match self {
            Done::Plain(reply) | Done::Journaled(reply, _) => reply,
        }
    }
}

/// An operation for the writer; given the connection and the writer's state, or the error
/// that kept the transaction from starting.
pub type WriteOp = Box<dyn FnOnce(StoreResult<(&Connection, &WriterState<'_>)>) -> Done + Send>;

pub enum ToWriter {
    Op(WriteOp),
    /// Commit what the open transaction holds (a read must see it), then answer.
    Flush(Reply),
    /// The last handle on the store is gone: commit what is open, then stop.
    Stop,
}

/// Progress marks the store's threads share: the last journaled record, the last one in a
/// SQLite commit, and the last one in a commit known to be synced (the checkpointer's).
pub struct Marks {
    pub journaled: AtomicU64,
    pub committed: AtomicU64,
    pub durable: AtomicU64,
    /// The journal could not be written: its records no longer match the open transaction.
    pub journal_failed: AtomicBool,
}

impl Marks {
    /// Every record up to `seq` is durably in SQLite (what recovery leaves).
    pub fn at(seq: u64) -> Marks {
        Marks {
            journaled: AtomicU64::new(seq),
            committed: AtomicU64::new(seq),
            durable: AtomicU64::new(seq),
            journal_failed: AtomicBool::new(false),
        }
    }
}

/// What the writer thread keeps beside its connection for the operations it runs.
pub struct WriterState<'c> {
    pub statements: Statements<'c>,
    pub subscriptions: webhooks::Subscriptions,
    pub followups: messaging::Followups,
    /// Set when an operation that runs without a savepoint failed after it may have
    /// written: the open transaction must be rolled back.
    doomed: RefCell<Option<StoreError>>,
}

impl<'c> WriterState<'c> {
    pub fn new(conn: &'c Connection) -> WriterState<'c> {
        WriterState {
            statements: Statements::new(conn),
            subscriptions: Default::default(),
            followups: Default::default(),
            doomed: Default::default(),
        }
    }

    pub fn doom(&self, error: StoreError) {
        self.doomed.borrow_mut().get_or_insert(error);
    }

    pub fn take_doom(&self) -> Option<StoreError> {
        self.doomed.borrow_mut().take()
    }

    /// Forgets what a rolled-back transaction left here.
    fn rolled_back(&self) {
        self.followups.discard();
        // It may have been filled from rows that are now gone.
        self.subscriptions.clear();
    }
}

pub fn execute(conn: &Connection, sql: &str) -> StoreResult<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Plain commits so far, as the database counts them (other processes commit too).
pub fn plain_commits(conn: &Connection) -> StoreResult<u64> {
    Ok(conn
        .prepare_cached("SELECT plain_commits FROM journal_state")?
        .query_row([], |r| r.get(0))?)
}

pub struct Writer<'c> {
    conn: &'c Connection,
    state: WriterState<'c>,
    marks: Arc<Marks>,
    durability: Durability,
    /// When the open transaction began (none open: `None`).
    opened: Option<Instant>,
    /// The last record's sequence number.
    seq: u64,
    /// Plain commits the open transaction's operations run after.
    plain_commits: u64,
    /// Records run in the open transaction, to run again if it rolls back.
    uncommitted: Vec<u8>,
    uncommitted_count: usize,
    /// Records not synced yet, and the replies waiting for them.
    pending: Vec<u8>,
    pending_replies: Vec<Reply>,
    /// The next batch must sync the WAL.
    wal_dirty: bool,
    flush_waiters: Vec<Reply>,
    /// Set when records could not be run again after a rollback: nothing more is written
    /// (the journal holds them for the next start).
    broken: Option<StoreError>,
}

impl<'c> Writer<'c> {
    pub fn new(
        conn: &'c Connection,
        marks: Arc<Marks>,
        seq: u64,
        durability: Durability,
    ) -> Writer<'c> {
        Writer {
            conn,
            state: WriterState::new(conn),
            marks,
            durability,
            opened: None,
            seq,
            plain_commits: 0,
            uncommitted: Vec::new(),
            uncommitted_count: 0,
            pending: Vec::new(),
            pending_replies: Vec::new(),
            wal_dirty: false,
            flush_waiters: Vec::new(),
            broken: None,
        }
    }

    pub fn run_loop(mut self, inbox: mpsc::Receiver<ToWriter>) {
        let mut stopping = false;
        while !stopping {
            let first = match self.opened {
                None => inbox.recv().ok(),
                Some(at) => match inbox.recv_timeout(COMMIT_EVERY.saturating_sub(at.elapsed())) {
                    Ok(message) => Some(message),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                },
            };
            if first.is_none() && self.opened.is_none() {
                break;
            }
            let mut next = first;
            let mut taken = 0;
            while let Some(message) = next.take().or_else(|| inbox.try_recv().ok()) {
                match message {
                    ToWriter::Op(op) => self.run(op),
                    ToWriter::Flush(reply) => match self.opened {
                        Some(_) => self.flush_waiters.push(reply),
                        None => reply(Ok(())),
                    },
                    ToWriter::Stop => stopping = true,
                }
                taken += 1;
                if taken >= MAX_BATCH {
                    break;
                }
            }
            self.stop_if_journal_failed();
            // Answered before a commit, whose page writes would hold them up.
            self.sync_and_answer();
            let due = self.opened.is_some_and(|at| {
                stopping
                    || !self.journaling()
                    || self.uncommitted_count == 0
                    || self.uncommitted_count >= MAX_JOURNALED
                    || !self.flush_waiters.is_empty()
                    || at.elapsed() >= COMMIT_EVERY
            });
            if due {
                self.commit(None);
                // Its record, so that the journal holds it before the writer waits.
                self.sync_and_answer();
            }
        }
        if self.opened.is_some() {
            self.commit(None);
        }
        self.sync_and_answer();
    }

    /// False when another process holds the journal: then every write is plain.
    fn journaling(&self) -> bool {
        self.durability.journal.is_some()
    }

    fn begin(&mut self) -> StoreResult<()> {
        execute(self.conn, "BEGIN IMMEDIATE")?;
        let plain = plain_commits(self.conn)?;
        if plain != self.plain_commits {
            // Another process committed (or this is the first transaction): the records that
            // follow depend on that commit, so the WAL is synced before they count.
            self.plain_commits = plain;
            self.wal_dirty = true;
        }
        self.opened = Some(Instant::now());
        Ok(())
    }

    /// Runs `op` in the open transaction, beginning one if none is open.
    fn run(&mut self, op: WriteOp) {
        self.stop_if_journal_failed();
        if let Some(e) = self.broken.clone() {
            op(Err(e.clone())).into_reply()(Err(e));
            return;
        }
        if self.opened.is_none() {
            if let Err(e) = self.begin() {
                tracing::error!(error = %e, "cannot begin a write transaction");
                op(Err(e.clone())).into_reply()(Err(e));
                return;
            }
        }
        let changes = self.conn.total_changes();
        let done = op(Ok((self.conn, &self.state)));
        if let Some(error) = self.state.take_doom() {
            // Its own answer is already the error; its neighbours are run again.
            self.pending_replies.push(done.into_reply());
            self.roll_back_and_run_again(error);
            return;
        }
        let wrote = self.conn.total_changes() != changes;
        match done {
            Done::Journaled(reply, Some(payload)) if self.journaling() && wrote => {
                self.append(&payload);
                self.pending_replies.push(reply);
            }
            Done::Plain(reply) | Done::Journaled(reply, _) if wrote => self.commit(Some(reply)),
            // Read only: answered with the next batch, once what it saw is durable.
            Done::Plain(reply) | Done::Journaled(reply, _) => self.pending_replies.push(reply),
        }
    }

    fn append(&mut self, payload: &[u8]) {
        self.seq += 1;
        let start = self.pending.len();
        journal::encode(&mut self.pending, self.seq, self.plain_commits, payload);
        self.uncommitted.extend_from_slice(&self.pending[start..]);
        self.uncommitted_count += 1;
        self.marks.journaled.store(self.seq, Ordering::Release);
    }

    /// Commits the open transaction; `plain` is the reply of the plain operation that made
    /// it necessary, answered once the WAL is synced.
    fn commit(&mut self, plain: Option<Reply>) {
        let started = Instant::now();
        metrics::histogram!("waygate_store_batch_operations").record(self.uncommitted_count as f64);
        if self.uncommitted_count > 0 {
            // Replays write the promised status jobs at the same point.
            self.append(&Journaled::Commit.payload());
        }
        let result = self
            .state
            .followups
            .write(self.conn)
            .and_then(|()| {
                self.conn
                    .prepare_cached(
                        "UPDATE journal_state SET applied_seq = MAX(applied_seq, ?1), \
                         plain_commits = plain_commits + ?2",
                    )?
                    .execute(rusqlite::params![self.seq, plain.is_some()])?;
                Ok(())
            })
            .and_then(|()| execute(self.conn, "COMMIT"));
        metrics::histogram!("waygate_store_commit_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => {
                self.opened = None;
                self.uncommitted.clear();
                self.uncommitted_count = 0;
                self.marks.committed.store(self.seq, Ordering::Release);
                for waiter in std::mem::take(&mut self.flush_waiters) {
                    waiter(Ok(()));
                }
                if let Some(reply) = plain {
                    self.plain_commits += 1;
                    self.pending_replies.push(reply);
                    self.wal_dirty = true;
                    self.sync_and_answer();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "a commit failed; running its journaled operations again");
                if let Some(reply) = plain {
                    reply(Err(e.clone()));
                }
                self.roll_back_and_run_again(e);
            }
        }
    }

    /// Undoes the open transaction and runs its journaled operations again in a new one:
    /// they may already be acknowledged. If that fails, the writer stops writing.
    fn roll_back_and_run_again(&mut self, cause: StoreError) {
        self.roll_back();
        let records: Vec<Record> = journal::decode(&self.uncommitted);
        let rerun = match records.is_empty() {
            true => Ok(()),
            false => self
                .begin()
                .and_then(|()| journaled::run_again(self.conn, &self.state, &records)),
        };
        if let Err(e) = rerun {
            tracing::error!(error = %e, cause = %cause, "journaled operations could not be run again; no more writes until a restart replays the journal");
            self.stop_writing(e);
        }
    }

    fn roll_back(&mut self) {
        let _ = execute(self.conn, "ROLLBACK");
        self.opened = None;
        self.state.rolled_back();
    }

    /// Rolls back what is open and refuses every write from now on.
    fn stop_writing(&mut self, e: StoreError) {
        self.roll_back();
        for waiter in std::mem::take(&mut self.flush_waiters) {
            waiter(Err(e.clone()));
        }
        self.broken = Some(e);
    }

    /// Once the journal failed, the open transaction holds operations that no record
    /// describes (their callers were told of the failure): it is rolled back, and the writer
    /// writes nothing more. The records answered before are in the journal for a restart.
    fn stop_if_journal_failed(&mut self) {
        if self.broken.is_some() || !self.marks.journal_failed.load(Ordering::Acquire) {
            return;
        }
        let e = StoreError::Corrupt("the journal cannot be written; restart to recover".into());
        tracing::error!(error = %e, "no more writes");
        self.stop_writing(e);
    }

    /// Makes what waits durable (the pending records, the WAL after a plain commit), then
    /// answers the replies waiting for it.
    fn sync_and_answer(&mut self) {
        if self.pending.is_empty() && self.pending_replies.is_empty() && !self.wal_dirty {
            return;
        }
        let synced = self.durability.sync(
            &self.pending,
            self.seq,
            std::mem::take(&mut self.wal_dirty),
            &self.marks,
        );
        self.pending.clear();
        metrics::histogram!("waygate_store_synced_operations")
            .record(self.pending_replies.len() as f64);
        for reply in self.pending_replies.drain(..) {
            reply(synced.clone());
        }
    }
}
