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

/// The shape of the records' payload. A test pins sample records of it: a change to
/// `Journaled`'s types that changes their bytes fails it until this moves with a new pin.
const FORMAT: u8 = 3;

/// Bytes reserved for a record's payload: a send with a short body and a few variables.
const PAYLOAD_CAPACITY: usize = 384;

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
        // Room for a typical send up front: grown from one byte, the buffer was reallocated
        // six times a record.
        let mut out = Vec::with_capacity(PAYLOAD_CAPACITY);
        out.push(FORMAT);
        postcard::to_extend(self, out).expect("a journaled operation serializes")
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

/// A journaled operation's failure as a store error. Only a send refuses, and only on its
/// first run: any other refusal is a bug, or a rerun that differs from its first, named by
/// `what` in the error.
pub fn store_error(refused: SendRefused, what: &str) -> StoreError {
    match refused {
        SendRefused::Store(e) => e,
        other => StoreError::Corrupt(format!("{what} refused: {other:?}")),
    }
}

/// Runs `records` again, in order, inside the open transaction. Any difference from their
/// first run (a refusal, a failure) is an error: the caller must not commit.
pub fn run_again(c: &Connection, w: &WriterState<'_>, records: &[Record]) -> StoreResult<()> {
    for record in records {
        let op = Journaled::from_payload(record.seq, &record.payload)?;
        op.run(c, w).map_err(|refused| {
            let what = format!("journal record {}, run again", record.seq);
            store_error(refused, &what)
        })?;
        if let Some(e) = w.take_doom() {
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use waygate_core::money::Money;
    use waygate_core::status::MessageStatus;

    /// `samples()` as this version writes them (hex of each payload), pinned for `FORMAT`.
    /// A change to `Journaled`'s types that changes these bytes needs a new `FORMAT` and a
    /// new pin: a restart must not misread the records an older version left.
    const PINNED: (u8, &[&str]) = (
        3,
        &[
            "03000e120c2b31343135353535303132330103416461011602036f6e650374776f01f4030e48656c6c6f206f6e\
             652c2074776f904e0001036b2d3102abcd80a0abfef9620103534d310201d0afabfef9620b756e64656c697665\
             72656401e6d403010b556e726561636861626c6501",
            "03000e120c2b313431353535353031323300000e48656c6c6f206f6e652c2074776f904e000080a0abfef96200\
             c0a90700",
            "0301a0bfabfef9628004",
            "030206080003534d320401d0afabfef9620b756e64656c69766572656401e6d403010b556e726561636861626c\
             650180bff4fef96209",
            "0302060801d0d807126f757473696465207468652077696e646f7709",
            "0302060802120335303309",
            "030206080310140974696d6564206f757409",
            "0303",
        ],
    );

    /// One record of every operation and every shape its fields can take.
    pub(in crate::store::sqlite) fn samples() -> Vec<Journaled> {
        let followups = vec![ScheduledStatus {
            at: 1_700_000_001_000,
            status: "undelivered".into(),
            error_code: Some(30003),
            error_message: Some("Unreachable".into()),
        }];
        let send = NewSend {
            user_id: 7,
            sender_id: 9,
            recipient: "+14155550123".into(),
            recipient_name: Some("Ada".into()),
            template: Some(TemplateSend {
                template_id: 11,
                variables: vec!["one".into(), "two".into()],
                messaging_limit: Some(250),
            }),
            body: "Hello one, two".into(),
            price: SendPrice {
                window_closed: Money::from_micros(5_000),
                window_open: Money::ZERO,
            },
            idempotency: Some(IdempotencyKey {
                key: "k-1".into(),
                request_hash: vec![0xab, 0xcd],
            }),
            now: 1_700_000_000_000,
            dispatch: Dispatch::Accepted {
                sid: "SM1".into(),
                status: MessageStatus::Queued,
                followups: followups.clone(),
            },
            template_opens: true,
        };
        let freeform = NewSend {
            recipient_name: None,
            template: None,
            idempotency: None,
            dispatch: Dispatch::Queue { lease_ms: 60_000 },
            template_opens: false,
            ..send.clone()
        };
        let dispatch = |result| Journaled::Dispatch {
            job_id: 3,
            message_id: 4,
            result,
            now: -5,
        };
        vec![
            Journaled::Send(send),
            Journaled::Send(freeform),
            Journaled::DueStatuses {
                now: 1_700_000_002_000,
                limit: 256,
            },
            dispatch(DispatchResult::Accepted {
                sid: "SM2".into(),
                status: MessageStatus::Sent,
                followups,
                recheck_at: Some(1_700_000_600_000),
            }),
            dispatch(DispatchResult::Rejected {
                code: 63016,
                message: "outside the window".into(),
            }),
            dispatch(DispatchResult::Retry {
                at: 9,
                error: "503".into(),
            }),
            dispatch(DispatchResult::Unknown {
                since: 8,
                at: 10,
                error: "timed out".into(),
            }),
            Journaled::Commit,
        ]
    }

    #[test]
    fn records_keep_the_pinned_shape_of_their_format() {
        let written: Vec<String> = samples()
            .iter()
            .map(|op| hex::encode(op.payload()))
            .collect();
        assert_eq!(
            FORMAT, PINNED.0,
            "FORMAT moved: pin the samples as this version writes them"
        );
        assert_eq!(
            written, PINNED.1,
            "the records' shape changed: move FORMAT, then pin the new bytes"
        );
        for (op, bytes) in samples().iter().zip(PINNED.1) {
            let back = Journaled::from_payload(1, &hex::decode(bytes).unwrap()).unwrap();
            assert_eq!(format!("{back:?}"), format!("{op:?}"));
        }
    }

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
                recheck_at: None,
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
            refused.contains("record 3") && refused.contains(&format!("format {}", FORMAT + 1)),
            "{refused}"
        );
        assert!(Journaled::from_payload(4, &payload[..payload.len() - 1]).is_err());
    }
}
