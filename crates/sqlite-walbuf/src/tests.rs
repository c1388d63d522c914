use std::cell::Cell;
use std::path::Path;

use rusqlite::{params, Connection, OpenFlags};

use super::*;

thread_local! {
    /// Writes of gathered bytes made by this thread.
    pub(super) static FLUSHES: Cell<u64> = const { Cell::new(0) };
}

fn flushes() -> u64 {
    FLUSHES.with(Cell::get)
}

fn open_buffered(path: &Path) -> Connection {
    assert!(register());
    let c = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), NAME).unwrap();
    c.execute_batch(
        "PRAGMA page_size = 2048; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         PRAGMA wal_autocheckpoint = 0;
         CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, k INTEGER, v BLOB);
         CREATE INDEX IF NOT EXISTS t_k ON t(k);",
    )
    .unwrap();
    c
}

/// Rows and bytes as another connection, through the default VFS, sees them.
fn seen(path: &Path) -> (i64, i64) {
    let c = Connection::open(path).unwrap();
    c.query_row(
        "SELECT count(*), coalesce(sum(length(v)), 0) FROM t",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

/// Inserts `rows` rows of `size` bytes, with index keys spread so pages all over change.
fn insert(c: &Connection, from: i64, rows: i64, size: usize) {
    let mut stmt = c
        .prepare_cached("INSERT INTO t (k, v) VALUES (?1, ?2)")
        .unwrap();
    for i in from..from + rows {
        stmt.execute(params![(i * 7919) % 10_007, vec![(i % 251) as u8; size]])
            .unwrap();
    }
}

/// One transaction that inserts what `insert` does, committed.
fn commit_rows(c: &Connection, from: i64, rows: i64, size: usize) {
    c.execute_batch("BEGIN IMMEDIATE").unwrap();
    insert(c, from, rows, size);
    c.execute_batch("COMMIT").unwrap();
}

#[test]
fn each_commit_reaches_the_file_in_one_write_before_the_commit_returns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let c = open_buffered(&path);
    for round in 0..20 {
        let before = flushes();
        commit_rows(&c, round * 50, 50, 300);
        assert_eq!(
            flushes() - before,
            1,
            "round {round}: one write for the whole commit"
        );
        assert_eq!(seen(&path), ((round + 1) * 50, (round + 1) * 50 * 300));
    }
}

#[test]
fn a_transaction_past_the_limit_is_written_in_parts_and_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let c = open_buffered(&path);
    let before = flushes();
    commit_rows(&c, 0, 5_000, 2_000); // about 10 MiB of pages
    assert!(flushes() - before >= 3, "{} writes", flushes() - before);
    assert_eq!(seen(&path), (5_000, 5_000 * 2_000));
}

#[test]
fn rolled_back_and_spilled_transactions_leave_a_sound_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let c = open_buffered(&path);
    // A small cache makes SQLite spill pages into the WAL before the transaction ends.
    c.execute_batch("PRAGMA cache_size = 20").unwrap();
    c.execute_batch("BEGIN IMMEDIATE").unwrap();
    insert(&c, 0, 2_000, 500);
    c.execute_batch("ROLLBACK").unwrap();
    for round in 0..5 {
        commit_rows(&c, round * 400, 400, 500);
    }
    c.execute_batch("BEGIN IMMEDIATE").unwrap();
    insert(&c, 10_000, 1_000, 500);
    c.execute_batch("ROLLBACK").unwrap();
    assert_eq!(seen(&path), (2_000, 2_000 * 500));
    let check: String = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn what_the_files_hold_after_each_commit_is_the_committed_data() {
    // A copy of the files while the connection is still open is what a crash would leave:
    // only what was written to them (the copy has no WAL index, so SQLite rebuilds it from
    // the WAL's frames).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let c = open_buffered(&path);
    for round in 0..3 {
        commit_rows(&c, round * 100, 100, 700);
        let copy = tempfile::tempdir().unwrap();
        let copied = copy.path().join("db");
        std::fs::copy(&path, &copied).unwrap();
        std::fs::copy(dir.path().join("db-wal"), copy.path().join("db-wal")).unwrap();
        assert_eq!(seen(&copied), ((round + 1) * 100, (round + 1) * 100 * 700));
    }
}
