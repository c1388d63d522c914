//! The operations the journal records, and how each runs: the first time in the writer, and
//! again from its record after a crash or a rolled-back transaction. Each depends only on
//! the database and its record (the clock's reading is in the record), so running the
//! records again in order on the state they first ran on writes the same rows.
//!
//! Records are postcard (compact binary, encoded on the request's thread: JSON cost a
//! seventh of the tokio side's instructions) behind a format byte. A record is read back
//! only by a restart of the same version, unless the format byte moves with the shapes:
//! a record of another format stops recovery with an error naming it.

use rusqlite::Connection;

/// The shape of the records' payload; change it with any change to `Journaled`'s types.
const FORMAT: u8 = 1;

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
    pub fn run(&self, c: &Connection, w: &WriterState<'_>) -> Result<Applied, SendRefused> {
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
        postcard::to_extend(self, vec![FORMAT]).expect("a journaled operation serializes")
    }

    fn from_payload(seq: u64, payload: &[u8]) -> StoreResult<Journaled> {
        let unreadable =
            |why: String| StoreError::Corrupt(format!("journal record {seq} unreadable: {why}"));
        match payload.split_first() {
            Some((&FORMAT, body)) => {
                postcard::from_bytes(body).map_err(|e| unreadable(e.to_string()))
            }
            Some((other, _)) => Err(unreadable(format!(
                "format {other}, this version reads {FORMAT} (run the version that wrote it once)"
            ))),
            None => Err(unreadable("empty".into())),
        }
    }
}

/// Runs `records` again, in order, inside the open transaction. Any difference from their
/// first run (a refusal, a failure) is an error: the caller must not commit.
pub fn run_again(c: &Connection, w: &WriterState<'_>, records: &[Record]) -> StoreResult<()> {
    for record in records {
        let op = Journaled::from_payload(record.seq, &record.payload)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_exactly_and_another_format_is_refused_by_name() {
        let op = Journaled::Dispatch {
            job_id: 7,
            message_id: 9,
            result: DispatchResult::Accepted {
                sid: "SM1".into(),
                status: waygate_core::status::MessageStatus::Queued,
                followups: vec![ScheduledStatus {
                    at: 1_000,
                    status: "sent".into(),
                    error_code: None,
                    error_message: Some("é \"quoted\"".into()),
                }],
            },
            now: -5,
        };
        let payload = op.payload();
        let back = Journaled::from_payload(1, &payload).unwrap();
        assert_eq!(format!("{back:?}"), format!("{op:?}"));
        let mut other = payload.clone();
        other[0] = FORMAT + 1;
        let refused = Journaled::from_payload(3, &other).unwrap_err().to_string();
        assert!(
            refused.contains("record 3") && refused.contains("format 2"),
            "{refused}"
        );
        assert!(Journaled::from_payload(4, &payload[..payload.len() - 1]).is_err());
    }
}
