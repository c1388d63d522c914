//! Each user's conversations, newest activity first, kept off the send path.
//!
//! Every send and inbound message moves its conversation to the front of its user's list. An
//! index on `last_message_at` kept that order by rewriting one leaf per send, a different leaf
//! for each user: a quarter of the pages each commit wrote at 64 connections with 1,000 users.
//! Instead a send appends its conversation to `conversation_activity_log`, whose tail page the
//! whole batch shares, and about once a second the writer folds the log into the index
//! `conversations_listed (user_id, listed_at, id)`, where a user's many moves cost one leaf.
//!
//! A new conversation starts with `listed_at` = minus its time: out of the index, which holds
//! positive times only, yet as wide as a time, so that the fold rewrites its row in place
//! (a NULL that grew to a time split the table's pages; measured).
//!
//! The invariant the listing relies on: a conversation that is not in the log has
//! `listed_at = last_message_at`. So the listing takes the indexed order of the conversations
//! not in the log, and places the logged ones by their true `last_message_at`.

use std::cell::Cell;
use std::collections::HashSet;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};

use super::rows::{self, all, CONVERSATION_COLUMNS};
use crate::model::Conversation;
use crate::store::{ConversationQuery, StoreResult};

/// How long moves wait in the log. Longer folds more moves per leaf, and makes the listing
/// read a longer log; a second holds every send of a busy second.
const FOLD_EVERY: Duration = Duration::from_secs(1);

/// Records that the conversation's activity moved (it is new, or `last_message_at` changed).
pub fn moved(c: &Connection, conversation_id: i64) -> StoreResult<()> {
    c.prepare_cached("INSERT INTO conversation_activity_log (conversation_id) VALUES (?1)")?
        .execute([conversation_id])?;
    Ok(())
}

/// When the writer last folded the log.
#[derive(Default)]
pub struct Folds {
    last: Cell<Option<Instant>>,
}

impl Folds {
    /// Folds the log into the index if the last fold is `FOLD_EVERY` old, inside the open
    /// transaction (a commit carries it with its batch).
    pub fn fold_if_due(&self, c: &Connection, now: Instant) -> StoreResult<()> {
        if self
            .last
            .get()
            .is_some_and(|last| now.duration_since(last) < FOLD_EVERY)
        {
            return Ok(());
        }
        self.last.set(Some(now));
        fold(c)
    }
}

/// Moves every logged conversation to its place in the index, then empties the log. The
/// update comes first: should the delete fail, logged conversations that are already in
/// place break nothing.
fn fold(c: &Connection) -> StoreResult<()> {
    c.prepare_cached(
        "UPDATE conversations SET listed_at = last_message_at \
         WHERE id IN (SELECT conversation_id FROM conversation_activity_log) \
         AND listed_at IS NOT last_message_at",
    )?
    .execute([])?;
    c.prepare_cached("DELETE FROM conversation_activity_log")?
        .execute([])?;
    Ok(())
}

/// One page of the user's conversations, newest activity first, after `q.after`.
pub fn list(c: &Connection, q: &ConversationQuery) -> StoreResult<Vec<Conversation>> {
    let (after_at, after_id) = q.after.unwrap_or((i64::MAX, i64::MAX));
    // `+user_id`: walk the log, not the user's every conversation.
    let logged = all(
        c,
        &format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations \
             WHERE id IN (SELECT conversation_id FROM conversation_activity_log) AND +user_id = ?1 \
             AND (?2 IS NULL OR sender_id = ?2) AND (?3 IS NULL OR recipient_phone = ?3)"
        ),
        params![q.user_id, q.sender_id, q.recipient],
        rows::conversation,
    )?;
    let logged_ids: HashSet<i64> = logged.iter().map(|conv| conv.id).collect();
    // Up to one indexed row per logged conversation is stale and dropped below.
    let wanted = q.limit.saturating_add(logged.len() as i64);
    let listed = all(
        c,
        &format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations \
             WHERE user_id = ?1 AND listed_at > 0 \
             AND (?2 IS NULL OR sender_id = ?2) AND (?3 IS NULL OR recipient_phone = ?3) \
             AND (listed_at < ?4 OR (listed_at = ?4 AND id < ?5)) \
             ORDER BY listed_at DESC, id DESC LIMIT ?6"
        ),
        params![
            q.user_id,
            q.sender_id,
            q.recipient,
            after_at,
            after_id,
            wanted
        ],
        rows::conversation,
    )?;
    let mut page: Vec<Conversation> = listed
        .into_iter()
        .filter(|conv| !logged_ids.contains(&conv.id))
        .chain(
            logged
                .into_iter()
                .filter(|conv| (conv.last_message_at, conv.id) < (after_at, after_id)),
        )
        .collect();
    page.sort_unstable_by_key(|conv| std::cmp::Reverse((conv.last_message_at, conv.id)));
    page.truncate(usize::try_from(q.limit).unwrap_or(0));
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = super::super::open(&dir.path().join("t.db")).unwrap();
        super::super::migrate(&mut c).unwrap();
        (dir, c)
    }

    /// What a send does to a conversation's activity: create it or move it, and log the move.
    fn touch(c: &Connection, user_id: i64, recipient: &str, at: i64) -> i64 {
        let id: i64 = c
            .query_row(
                "INSERT INTO conversations (user_id, sender_id, recipient_phone, last_message_at, created_at, listed_at) \
                 VALUES (?1, ?1, ?2, ?3, ?3, -?3) \
                 ON CONFLICT (sender_id, recipient_phone) DO UPDATE SET last_message_at = excluded.last_message_at \
                 RETURNING id",
                params![user_id, recipient, at],
                |r| r.get(0),
            )
            .unwrap();
        moved(c, id).unwrap();
        id
    }

    fn query(user_id: i64, after: Option<(i64, i64)>, limit: i64) -> ConversationQuery {
        ConversationQuery {
            user_id,
            sender_id: None,
            recipient: None,
            after,
            limit,
        }
    }

    /// Every page in turn, as a client following `next_cursor` would read them; stops after
    /// one page more than the user has conversations, so a cursor that repeats fails.
    fn pages(c: &Connection, user_id: i64, per_page: i64) -> Vec<(i64, i64)> {
        let mut seen = Vec::new();
        let mut after = None;
        for _ in 0..=truth(c, user_id).len() {
            let page = list(c, &query(user_id, after, per_page)).unwrap();
            assert!(page.len() <= per_page as usize);
            seen.extend(page.iter().map(|conv| (conv.last_message_at, conv.id)));
            match page.last() {
                Some(last) if page.len() == per_page as usize => {
                    after = Some((last.last_message_at, last.id))
                }
                _ => break,
            }
        }
        seen
    }

    fn truth(c: &Connection, user_id: i64) -> Vec<(i64, i64)> {
        all(
            c,
            "SELECT last_message_at, id FROM conversations WHERE user_id = ?1 \
             ORDER BY last_message_at DESC, id DESC",
            [user_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    }

    #[test]
    fn a_conversation_that_moved_since_the_fold_is_listed_once_at_its_new_place() {
        let (_dir, c) = store();
        let a = touch(&c, 1, "+1", 10);
        let b = touch(&c, 1, "+2", 20);
        fold(&c).unwrap();
        touch(&c, 1, "+1", 30);
        let ids: Vec<i64> = list(&c, &query(1, None, 10))
            .unwrap()
            .iter()
            .map(|conv| conv.id)
            .collect();
        assert_eq!(ids, [a, b]);
        let logged: i64 = c
            .query_row("SELECT count(*) FROM conversation_activity_log", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(logged, 1, "the move waits in the log");
    }

    #[test]
    fn pages_read_the_true_order_whether_or_not_moves_are_folded() {
        let (_dir, c) = store();
        // A fixed pseudo-random walk: three users, moves to new and old conversations, equal
        // times, folds at arbitrary points.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut at = 1_000;
        for step in 0..600 {
            let user = 1 + next(3) as i64;
            let recipient = format!("+{}", next(40));
            at += next(3) as i64;
            touch(&c, user, &recipient, at);
            if next(25) == 0 {
                fold(&c).unwrap();
            }
            if step % 50 == 49 {
                for user in 1..=3 {
                    for per_page in [1, 3, 7, 100] {
                        assert_eq!(pages(&c, user, per_page), truth(&c, user), "step {step}");
                    }
                }
            }
        }
    }

    #[test]
    fn filters_apply_to_logged_and_folded_conversations_alike() {
        let (_dir, c) = store();
        touch(&c, 1, "+1", 10);
        fold(&c).unwrap();
        let moved_again = touch(&c, 1, "+1", 20);
        touch(&c, 1, "+2", 30);
        let mut q = query(1, None, 10);
        q.recipient = Some("+1".into());
        let page = list(&c, &q).unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!((page[0].id, page[0].last_message_at), (moved_again, 20));
    }

    #[test]
    fn the_writer_folds_at_most_once_per_interval() {
        let (_dir, c) = store();
        let folds = Folds::default();
        let start = Instant::now();
        let logged = |c: &Connection| -> i64 {
            c.query_row("SELECT count(*) FROM conversation_activity_log", [], |r| {
                r.get(0)
            })
            .unwrap()
        };
        touch(&c, 1, "+1", 10);
        folds.fold_if_due(&c, start).unwrap();
        assert_eq!(logged(&c), 0, "the first commit folds");
        touch(&c, 1, "+2", 20);
        folds.fold_if_due(&c, start + FOLD_EVERY / 2).unwrap();
        assert_eq!(logged(&c), 1, "too soon");
        folds.fold_if_due(&c, start + FOLD_EVERY).unwrap();
        assert_eq!(logged(&c), 0);
        let listed: Vec<i64> = all(
            &c,
            "SELECT listed_at FROM conversations ORDER BY id",
            [],
            |r| r.get(0),
        )
        .unwrap();
        assert_eq!(listed, [10, 20]);
    }
}
