//! The writer thread: every write runs here, many to a transaction (group commit).
//!
//! Operations run as they arrive inside an open transaction. The transaction commits as
//! soon as the disk is free, that is when the sync thread (`wal_sync`) has answered every
//! batch handed to it; while a sync runs, arriving operations join the open transaction. So
//! a commit carries what arrived during one sync, however fast the disk is, and the pages
//! that a batch's operations share (table tails, an index leaf) are written to the WAL once
//! per batch rather than once per operation.

use std::cell::RefCell;
use std::sync::mpsc;
use std::time::Instant;

use rusqlite::Connection;

use super::{messaging, webhooks};
use crate::store::{StoreError, StoreResult};

/// Most operations one transaction carries; bounds the latency one commit adds.
const MAX_BATCH: usize = 1024;

/// Answers one operation once its commit is durable, or with the error that undid it.
pub type Reply = Box<dyn FnOnce(StoreResult<()>) + Send>;
/// An operation for the writer; given the connection and the writer's state, or the error
/// that kept the transaction from starting.
pub type WriteOp = Box<dyn FnOnce(StoreResult<(&Connection, &WriterState)>) -> Reply + Send>;

pub enum ToWriter {
    Op(WriteOp),
    /// The sync thread answered this many committed batches.
    Synced(usize),
    /// The last handle on the store is gone: commit what is open, then stop.
    Stop,
}

/// What the writer thread keeps beside its connection for the operations it runs.
#[derive(Default)]
pub struct WriterState {
    pub subscriptions: webhooks::Subscriptions,
    pub followups: messaging::Followups,
    /// Set when an operation that runs without a savepoint failed after it may have
    /// written: the open transaction cannot commit, and every operation in it fails.
    doomed: RefCell<Option<StoreError>>,
}

impl WriterState {
    pub fn doom(&self, error: StoreError) {
        self.doomed.borrow_mut().get_or_insert(error);
    }
}

pub fn writer_loop(
    conn: Connection,
    inbox: mpsc::Receiver<ToWriter>,
    committed: mpsc::Sender<Vec<Reply>>,
) {
    let state = WriterState::default();
    // Replies of the operations in the open transaction (none open when empty).
    let mut open: Vec<Reply> = Vec::new();
    // Batches handed to the sync thread and not answered yet.
    let mut syncing = 0usize;
    let mut stopping = false;
    while !stopping {
        let Ok(first) = inbox.recv() else { break };
        let mut next = Some(first);
        while let Some(message) = next.take().or_else(|| inbox.try_recv().ok()) {
            match message {
                ToWriter::Op(op) => run(&conn, &state, op, &mut open),
                ToWriter::Synced(batches) => syncing = syncing.saturating_sub(batches),
                ToWriter::Stop => stopping = true,
            }
            if open.len() >= MAX_BATCH {
                break;
            }
        }
        let due = syncing == 0 || open.len() >= MAX_BATCH || stopping;
        if !open.is_empty() && due && commit(&conn, &state, std::mem::take(&mut open), &committed) {
            syncing += 1;
        }
    }
    if !open.is_empty() {
        commit(&conn, &state, open, &committed);
    }
}

fn execute(conn: &Connection, sql: &str) -> StoreResult<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Runs `op` in the open transaction, beginning one if none is open.
fn run(conn: &Connection, state: &WriterState, op: WriteOp, open: &mut Vec<Reply>) {
    if open.is_empty() {
        if let Err(e) = execute(conn, "BEGIN IMMEDIATE") {
            tracing::error!(error = %e, "cannot begin a write transaction");
            op(Err(e.clone()))(Err(e));
            return;
        }
    }
    open.push(op(Ok((conn, state))));
}

/// Commits the open transaction and hands its replies to the sync thread; answers them at
/// once if it failed. Returns whether a batch went to the sync thread.
fn commit(
    conn: &Connection,
    state: &WriterState,
    replies: Vec<Reply>,
    committed: &mpsc::Sender<Vec<Reply>>,
) -> bool {
    let started = Instant::now();
    metrics::histogram!("waygate_store_batch_operations").record(replies.len() as f64);
    let doomed = state.doomed.borrow_mut().take();
    let result = match doomed {
        Some(error) => Err(error),
        None => state
            .followups
            .write(conn)
            .and_then(|()| execute(conn, "COMMIT")),
    };
    metrics::histogram!("waygate_store_commit_seconds").record(started.elapsed().as_secs_f64());
    let error = match result {
        Ok(()) => match committed.send(replies) {
            Ok(()) => return true,
            // The sync thread is gone: nothing can be acknowledged any more.
            Err(unsent) => return answer(unsent.0, StoreError::Closed),
        },
        Err(e) => e,
    };
    let _ = execute(conn, "ROLLBACK");
    state.followups.discard();
    // It may have been filled from rows that are now gone.
    state.subscriptions.clear();
    answer(replies, error)
}

fn answer(replies: Vec<Reply>, error: StoreError) -> bool {
    for reply in replies {
        reply(Err(error.clone()));
    }
    false
}
