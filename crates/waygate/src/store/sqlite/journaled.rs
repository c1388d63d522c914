//! The operations the journal records, and how each runs: the first time in the writer, and
//! again from its record after a crash or a rolled-back transaction. Each depends only on
//! the database and its record (the clock's reading is in the record), so running the
//! records again in order on the state they first ran on writes the same rows.

use rusqlite::Connection;

use super::journal::Record;
use super::{messaging, WriterState};
use crate::store::*;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum Journaled {
    Send(NewSend),
    DueStatuses {
        now: i64,
        limit: i64,
    },
    Dispatch {
        job_id: i64,
        message_id: i64,
        result: DispatchResult,
        now: i64,
    },
    /// The writer committed here: the status steps promised since the last commit became
    /// jobs (which later status steps find), so a replay writes them at the same point.
    Commit,
}

/// What a journaled operation returned to its caller.
pub enum Applied {
    Send(SendRecorded),
    Statuses(usize),
    Dispatched,
    Committed,
}

impl Journaled {
    pub fn run(&self, c: &Connection, w: &WriterState) -> Result<Applied, SendRefused> {
        Ok(match self {
            Journaled::Send(send) => Applied::Send(messaging::record_send(c, w, send)?),
            Journaled::DueStatuses { now, limit } => {
                Applied::Statuses(messaging::apply_due_statuses(c, w, *now, *limit)?)
            }
            Journaled::Dispatch {
                job_id,
                message_id,
                result,
                now,
            } => {
                messaging::record_dispatch(c, w, *job_id, *message_id, result, *now)?;
                Applied::Dispatched
            }
            Journaled::Commit => {
                w.followups.write(c)?;
                Applied::Committed
            }
        })
    }

    pub fn payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a journaled operation serializes")
    }
}

/// Runs `records` again, in order, inside the open transaction. Any difference from their
/// first run (a refusal, a failure) is an error: the caller must not commit.
pub fn run_again(c: &Connection, w: &WriterState, records: &[Record]) -> StoreResult<()> {
    for record in records {
        let op: Journaled = serde_json::from_slice(&record.payload).map_err(|e| {
            StoreError::Corrupt(format!("journal record {} unreadable: {e}", record.seq))
        })?;
        op.run(c, w).map_err(|refused| match refused {
            SendRefused::Store(e) => e,
            other => StoreError::Corrupt(format!(
                "journal record {} ran differently the second time: {other:?}",
                record.seq
            )),
        })?;
        if let Some(e) = w.take_doom() {
            return Err(e);
        }
    }
    Ok(())
}
