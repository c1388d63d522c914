//! The journal: an append-only log that makes the hot writes (sends, status steps,
//! dispatch outcomes) durable without writing SQLite's B-tree pages for each of them.
//!
//! A journaled operation runs in the writer's open transaction like any other; what it was
//! asked to do goes into the journal as a record, and the caller is answered once the
//! journal file holding the record is synced. SQLite then commits many such operations at
//! once (`writer::COMMIT_EVERY`'s worth, without syncing), so that hundreds of sends share
//! each index leaf they touch. After a crash, the records that SQLite had not durably
//! committed are run again, in order, on the state they first ran on (`recover`), which gives
//! the same rows: the operations are deterministic given the database and their inputs.
//!
//! Two files take turns: records go to one until it is large and every record in the other
//! is in a synced SQLite commit; then the other is written again from its start. Files are
//! overwritten, not truncated, and grow by zero-filled steps ahead of the records, so that a
//! sync writes data only, not the file's size (records after the newest are stale: their
//! numbers are below the database's mark, and recovery skips them).
//!
//! Only one process may journal (an exclusive lock on the first file); another process that
//! opens the same database (the CLI beside a running server) writes plainly, and so does a
//! one-shot command once it has run what the journal held.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A record: length of the payload, CRC-32 of the rest, sequence number, the count of plain
/// commits whose effects the operation saw, the payload.
const HEADER: usize = 4 + 4 + 8 + 8;

/// Bytes a file takes before records move to the other one (when it is free).
const ROTATE_BYTES: u64 = 8 * 1024 * 1024;

/// Zeros written ahead of the records when they reach a file's end.
const GROW_BYTES: u64 = 1024 * 1024;

/// One journaled operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Numbers every record, from 1, without gaps.
    pub seq: u64,
    /// Plain commits (those of operations that are not journaled) the operation ran after.
    /// Recovery stops at a record whose plain commits did not all reach the disk: such a
    /// record was never acknowledged, and running it without them could differ.
    pub plain_before: u64,
    pub payload: Vec<u8>,
}

pub fn encode(out: &mut Vec<u8>, seq: u64, plain_before: u64, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("a journal record is smaller than 4 GiB");
    let mut crc = crc32fast::Hasher::new();
    crc.update(&seq.to_le_bytes());
    crc.update(&plain_before.to_le_bytes());
    crc.update(payload);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&plain_before.to_le_bytes());
    out.extend_from_slice(payload);
}

/// The records in `bytes`, up to the first that is cut short or damaged (a write the crash
/// interrupted: nothing after it was acknowledged).
pub fn decode(bytes: &[u8]) -> Vec<Record> {
    let mut records = Vec::new();
    let mut rest = bytes;
    while rest.len() >= HEADER {
        let word = |at: usize| u32::from_le_bytes(rest[at..at + 4].try_into().expect("4 bytes"));
        let long = |at: usize| u64::from_le_bytes(rest[at..at + 8].try_into().expect("8 bytes"));
        let len = word(0) as usize;
        let Some(payload) = rest.get(HEADER..HEADER + len) else {
            break;
        };
        let mut crc = crc32fast::Hasher::new();
        crc.update(&rest[8..HEADER]);
        crc.update(payload);
        if crc.finalize() != word(4) {
            break;
        }
        records.push(Record {
            seq: long(8),
            plain_before: long(16),
            payload: payload.to_vec(),
        });
        rest = &rest[HEADER + len..];
    }
    records
}

/// The two journal files of one database, owned by the one process that journals.
pub struct Journal {
    files: [File; 2],
    /// The file records go to.
    current: usize,
    /// Where the next record goes in the current file.
    len: u64,
    /// Each file's size.
    size: [u64; 2],
    /// The last record's sequence number in each file (0: none).
    last_seq: [u64; 2],
    /// An append failed: what follows it in the file could be read as if nothing were
    /// missing, so nothing more is appended (a restart runs the intact records again).
    failed: bool,
}

fn paths(db: &Path) -> [PathBuf; 2] {
    [0, 1].map(|n| {
        let mut path = db.as_os_str().to_owned();
        path.push(format!("-journal{n}"));
        PathBuf::from(path)
    })
}

impl Journal {
    /// Opens (creating) the journal of the database at `db`; `None` when another process
    /// holds it.
    pub fn open(db: &Path) -> std::io::Result<Option<Journal>> {
        let [first, second] = paths(db);
        let open = |path: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
        };
        let files = [open(&first)?, open(&second)?];
        match files[0].try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        // The files' names must survive a crash before any record in them counts.
        if let Some(dir) = first.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        let size = [files[0].metadata()?.len(), files[1].metadata()?.len()];
        Ok(Some(Journal {
            files,
            current: 0,
            len: 0,
            size,
            last_seq: [0, 0],
            failed: false,
        }))
    }

    /// Every intact record in both files, in sequence order.
    pub fn read_all(&mut self) -> std::io::Result<Vec<Record>> {
        let mut records = Vec::new();
        for file in &mut self.files {
            let mut bytes = Vec::new();
            file.seek(SeekFrom::Start(0))?;
            file.read_to_end(&mut bytes)?;
            records.extend(decode(&bytes));
        }
        records.sort_by_key(|r| r.seq);
        Ok(records)
    }

    /// Empties both files, once every record in them is durably in SQLite.
    pub fn clear(&mut self) -> std::io::Result<()> {
        for file in &self.files {
            file.set_len(0)?;
            file.sync_all()?;
        }
        self.current = 0;
        self.len = 0;
        self.size = [0, 0];
        self.last_seq = [0, 0];
        Ok(())
    }

    /// Appends encoded records (the last numbered `last_seq`) and syncs them. `durable_seq`
    /// is the last record known to be in a synced SQLite commit: the other file is reused
    /// only when every record in it is.
    pub fn append(&mut self, bytes: &[u8], last_seq: u64, durable_seq: u64) -> std::io::Result<()> {
        if self.failed {
            return Err(std::io::Error::other("an earlier append failed"));
        }
        let result = self.write(bytes, last_seq, durable_seq);
        self.failed = result.is_err();
        result
    }

    fn write(&mut self, bytes: &[u8], last_seq: u64, durable_seq: u64) -> std::io::Result<()> {
        let other = 1 - self.current;
        if self.len >= ROTATE_BYTES && self.last_seq[other] <= durable_seq {
            self.current = other;
            self.len = 0;
        }
        let end = self.len + bytes.len() as u64;
        let file = &self.files[self.current];
        let size = &mut self.size[self.current];
        if end > *size {
            let grown = end.div_ceil(GROW_BYTES) * GROW_BYTES;
            let zeros = vec![0u8; (grown - *size) as usize];
            file.write_all_at(&zeros, *size)?;
            *size = grown;
        }
        file.write_all_at(bytes, self.len)?;
        file.sync_data()?;
        self.len = end;
        self.last_seq[self.current] = last_seq;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, payload: &str) -> Record {
        Record {
            seq,
            plain_before: seq / 2,
            payload: payload.as_bytes().to_vec(),
        }
    }

    fn encoded(records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            encode(&mut out, r.seq, r.plain_before, &r.payload);
        }
        out
    }

    #[test]
    fn records_read_back_and_reading_stops_at_a_torn_or_damaged_one() {
        let records = [record(1, "one"), record(2, ""), record(3, "three")];
        let bytes = encoded(&records);
        assert_eq!(decode(&bytes), records);
        // Cut inside the last record: the first two remain.
        assert_eq!(decode(&bytes[..bytes.len() - 1]), records[..2]);
        // A flipped bit in the second record's payload hides it and everything after it.
        let mut damaged = encoded(&records[..2]);
        damaged.extend(encoded(&[record(3, "three")]));
        let second_seq_at = encoded(&records[..1]).len() + 8;
        damaged[second_seq_at] ^= 1;
        assert_eq!(decode(&damaged), records[..1]);
    }

    #[test]
    fn files_take_turns_only_once_the_other_is_durable_and_one_process_holds_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.db");
        let mut journal = Journal::open(&db).unwrap().unwrap();
        assert!(Journal::open(&db).unwrap().is_none(), "a second holder");
        let big = "x".repeat(ROTATE_BYTES as usize);
        let append = |journal: &mut Journal, seq: u64, payload: &str, durable: u64| {
            let mut bytes = Vec::new();
            encode(&mut bytes, seq, 0, payload.as_bytes());
            journal.append(&bytes, seq, durable).unwrap();
            journal.current
        };
        let seqs = |journal: &mut Journal| -> Vec<u64> {
            journal.read_all().unwrap().iter().map(|r| r.seq).collect()
        };
        assert_eq!(append(&mut journal, 1, &big, 0), 0);
        // The first file is full and the second free: records move there.
        assert_eq!(append(&mut journal, 2, "two", 0), 1);
        assert_eq!(append(&mut journal, 3, &big, 0), 1);
        // Both full: the first still holds record 1, which SQLite has not made durable,
        // so the second keeps growing.
        assert_eq!(append(&mut journal, 4, "four", 0), 1);
        assert_eq!(seqs(&mut journal), [1, 2, 3, 4]);
        // Record 1 is durable: the first file is written again from its start, and what is
        // left of record 1 after the new one reads as damaged.
        assert_eq!(append(&mut journal, 5, "five", 1), 0);
        assert_eq!(seqs(&mut journal), [2, 3, 4, 5]);
        let size = journal.files[0].metadata().unwrap().len();
        assert_eq!(size, journal.size[0], "overwritten, not truncated");
        journal.clear().unwrap();
        assert!(journal.read_all().unwrap().is_empty());
        drop(journal);
        assert!(Journal::open(&db).unwrap().is_some(), "free once dropped");
    }
}
