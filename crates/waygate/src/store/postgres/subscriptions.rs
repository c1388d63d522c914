//! Which users hold a live webhook subscription to which events, kept by each node so that a
//! send or a status step skips reading the subscriptions when nobody can want its event.
//!
//! It only says who *may* want an event: `events::enqueue_event` still reads the
//! subscriptions in the event's transaction. The list is read again when the directory
//! version (moved by trigger on every change of a webhooks row, on any node) has moved; the
//! version is checked once `FRESH` has passed, and this node's own changes drop the list at
//! once. A subscription made on another node therefore counts within `FRESH` plus a read,
//! inside the contract's 2 s.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use deadpool_postgres::GenericClient;
use tokio::sync::Mutex;

use super::rows::get;
use crate::store::StoreResult;

/// How long the version read last is trusted.
const FRESH: Duration = Duration::from_millis(500);

#[derive(Default)]
pub struct Subscriptions {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The directory version the list was read at, and when it was last confirmed.
    read: Option<(i64, Instant)>,
    /// Each subscribed user's events; `None` for events that do not parse (any may be wanted).
    wanted: HashMap<i64, Vec<Option<Vec<String>>>>,
}

impl Subscriptions {
    /// Whether a live subscription of `user_id` may want `event_type`.
    pub async fn may_want(
        &self,
        c: &impl GenericClient,
        user_id: i64,
        event_type: &str,
    ) -> StoreResult<bool> {
        let mut state = self.state.lock().await;
        let confirmed = state.read.filter(|&(_, at)| at.elapsed() < FRESH);
        if confirmed.is_none() {
            state.refresh(c).await?;
        }
        Ok(state.wanted.get(&user_id).is_some_and(|lists| {
            lists.iter().any(|events| {
                events
                    .as_ref()
                    .is_none_or(|events| events.iter().any(|e| e == event_type))
            })
        }))
    }

    /// Drops the list after this node changed a subscription, so that it counts here at once.
    pub async fn changed(&self) {
        self.state.lock().await.read = None;
    }
}

impl State {
    /// Confirms the version, reading the list again when it moved. The version is read first:
    /// a change committed after it moves it again, so the next check catches up.
    async fn refresh(&mut self, c: &impl GenericClient) -> StoreResult<()> {
        let stmt = c
            .prepare_cached("SELECT version FROM directory_version")
            .await?;
        let version: i64 = get(&c.query_one(&stmt, &[]).await?, 0)?;
        let unchanged = self.read.is_some_and(|(read, _)| read == version);
        if !unchanged {
            let stmt = c
                .prepare_cached("SELECT user_id, events FROM webhooks WHERE deleted_at IS NULL")
                .await?;
            let mut wanted: HashMap<i64, Vec<Option<Vec<String>>>> = HashMap::new();
            for row in c.query(&stmt, &[]).await? {
                let events: &str = get(&row, 1)?;
                wanted
                    .entry(get(&row, 0)?)
                    .or_default()
                    .push(serde_json::from_str(events).ok());
            }
            self.wanted = wanted;
        }
        self.read = Some((version, Instant::now()));
        Ok(())
    }
}
