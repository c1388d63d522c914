//! Webhook subscriptions, and the events queued for them.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use rusqlite::{params, Connection};

use super::jobs;
use super::rows::{self, all, one, WEBHOOK_COLUMNS};
use crate::model::Webhook;
use crate::store::catalog::json_list;
use crate::store::outbox;
use crate::store::StoreResult;

pub use crate::model::{MESSAGE_RECEIVED, MESSAGE_STATUS, SENDER_STATUS, TEMPLATE_STATUS};

/// The writer's copy of who subscribed to what, by user: every send and status change asks,
/// and almost always the answer is nobody, so this saves a query per event. Subscriptions
/// change only through the writer (`create`, `delete`), which invalidates it; the CLI has no
/// webhook commands.
#[derive(Default)]
pub struct Subscriptions {
    by_user: RefCell<HashMap<i64, Subscribed>>,
    /// The event types that some live webhook of any user wants.
    wanted_by_anyone: RefCell<Option<HashSet<String>>>,
}

/// A user's live webhooks: (id, events wanted).
type Subscribed = Rc<[(i64, Vec<String>)]>;

/// Users remembered at most; past it the copy starts over.
const SUBSCRIPTIONS_KEPT: usize = 100_000;

impl Subscriptions {
    /// The ids of `user_id`'s live webhooks that want `event_type`.
    fn wanting(&self, c: &Connection, user_id: i64, event_type: &str) -> StoreResult<Vec<i64>> {
        let cached = self.by_user.borrow().get(&user_id).cloned();
        let subscribed = match cached {
            Some(subscribed) => subscribed,
            None => {
                let loaded: Subscribed = list(c, user_id)?
                    .into_iter()
                    .map(|w| (w.id, w.events))
                    .collect();
                let mut by_user = self.by_user.borrow_mut();
                if by_user.len() >= SUBSCRIPTIONS_KEPT {
                    by_user.clear();
                }
                by_user.insert(user_id, loaded.clone());
                loaded
            }
        };
        Ok(subscribed
            .iter()
            .filter(|(_, events)| events.iter().any(|e| e == event_type))
            .map(|(id, _)| *id)
            .collect())
    }

    /// Whether any live webhook wants `event_type`: when none does, a status step need not
    /// look up whose message moved.
    pub fn anyone_wants(&self, c: &Connection, event_type: &str) -> StoreResult<bool> {
        if let Some(wanted) = &*self.wanted_by_anyone.borrow() {
            return Ok(wanted.contains(event_type));
        }
        let wanted: HashSet<String> = all(
            c,
            &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE deleted_at IS NULL"),
            [],
            rows::webhook,
        )?
        .into_iter()
        .flat_map(|w| w.events)
        .collect();
        let found = wanted.contains(event_type);
        *self.wanted_by_anyone.borrow_mut() = Some(wanted);
        Ok(found)
    }

    /// Forgets everything: after a subscription changed, or a transaction that may have
    /// filled the copy from uncommitted rows failed.
    pub fn clear(&self) {
        self.by_user.borrow_mut().clear();
        *self.wanted_by_anyone.borrow_mut() = None;
    }
}

pub fn create(
    c: &Connection,
    subscriptions: &Subscriptions,
    user_id: i64,
    url: &str,
    events: &[String],
    secret: &str,
    now: i64,
) -> StoreResult<Webhook> {
    let events_json = json_list(events);
    c.prepare_cached("INSERT INTO webhooks (user_id, url, events, secret, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![user_id, url, events_json, secret, now])?;
    subscriptions.clear();
    Ok(Webhook {
        id: c.last_insert_rowid(),
        user_id,
        url: url.to_string(),
        events: events.to_vec(),
        secret: secret.to_string(),
        previous_secret: None,
        created_at: now,
    })
}

pub fn list(c: &Connection, user_id: i64) -> StoreResult<Vec<Webhook>> {
    all(
        c,
        &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE user_id = ?1 AND deleted_at IS NULL ORDER BY id"),
        [user_id],
        rows::webhook,
    )
}

pub fn get(c: &Connection, id: i64) -> StoreResult<Option<Webhook>> {
    one(
        c,
        &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?1 AND deleted_at IS NULL"),
        [id],
        rows::webhook,
    )
}

pub fn delete(
    c: &Connection,
    subscriptions: &Subscriptions,
    id: i64,
    now: i64,
) -> StoreResult<bool> {
    let changed = c
        .prepare_cached("UPDATE webhooks SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL")?
        .execute(params![id, now])?;
    subscriptions.clear();
    Ok(changed == 1)
}

pub fn rotate(c: &Connection, id: i64, secret: &str, old_valid_until: i64) -> StoreResult<bool> {
    let changed = c
        .prepare_cached(
            "UPDATE webhooks SET previous_secret = secret, previous_secret_until = ?3, secret = ?2 \
             WHERE id = ?1 AND deleted_at IS NULL",
        )?
        .execute(params![id, secret, old_valid_until])?;
    Ok(changed == 1)
}

/// Queues one delivery job per subscription of `user_id` that wants `event_type`, carrying
/// the event body as it is now, so that every retry sends the same bytes. The data (a
/// Message, Template or Sender as the API shows it) is built only when someone subscribed.
pub fn enqueue_event<D: serde::Serialize>(
    c: &Connection,
    subscriptions: &Subscriptions,
    user_id: i64,
    event_type: &str,
    at: i64,
    data: impl FnOnce() -> StoreResult<D>,
) -> StoreResult<()> {
    let targets = subscriptions.wanting(c, user_id, event_type)?;
    if targets.is_empty() {
        return Ok(());
    }
    let (event_id, body) = outbox::event(event_type, at, data()?);
    for webhook_id in targets {
        let delivery = outbox::delivery(webhook_id, &event_id, &body);
        jobs::enqueue(c, jobs::WEBHOOK, &delivery, at, at)?;
    }
    Ok(())
}
