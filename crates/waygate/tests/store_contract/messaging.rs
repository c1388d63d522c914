//! The send path, the status path, jobs and inbound messages when several callers (on the
//! embedded store, several requests; on PostgreSQL, several nodes' connections) do the same
//! thing at once: exactly once, never below zero, never backwards.

use std::collections::HashSet;

use waygate::store::{
    Dispatch, DispatchResult, NewInbound, ScheduledStatus, SendRefused, StatusApplied,
    StatusTarget, StatusUpdate, Store,
};
use waygate_core::money::Money;
use waygate_core::status::MessageStatus;

use super::{backends, balance, race, send, tenant, Guard, Tenant, NOW, PRICE};

/// Callers at once: enough to make every backend's connections wait on each other.
const RACERS: usize = 8;

/// The sum of a user's ledger entries, read from the backend's own database (the store
/// shows only the balance they must explain).
async fn ledger_sum(store: &dyn Store, guard: &Guard, user_id: i64) -> Money {
    store.flush().await.unwrap();
    if let Some(dir) = guard.downcast_ref::<tempfile::TempDir>() {
        let c = rusqlite::Connection::open(dir.path().join("contract.db")).unwrap();
        let sum: i64 = c
            .query_row(
                "SELECT COALESCE(SUM(amount_micros), 0) FROM ledger_entries WHERE user_id = ?1",
                [user_id],
                |r| r.get(0),
            )
            .unwrap();
        return Money::from_micros(sum);
    }
    let schema = guard
        .downcast_ref::<super::postgres::PgSchema>()
        .expect("a backend this suite knows");
    let (client, connection) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let sum: i64 = client
        .query_one(
            "SELECT COALESCE(SUM(amount_micros), 0)::bigint FROM ledger_entries WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .unwrap()
        .get(0);
    Money::from_micros(sum)
}

fn micros(n: i64) -> Money {
    Money::from_micros(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sends_with_one_idempotency_key_make_one_message_and_one_charge() {
    for (name, store, guard) in backends().await {
        let t = tenant(store.as_ref(), micros(1_000_000)).await;
        let results = race(RACERS, |_| {
            let store = store.clone();
            let s = send(&t, "+14155551234", Some("k-race"));
            async move { store.record_send(s).await }
        })
        .await;
        let recorded: Vec<i64> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().map(|r| r.message_id))
            .collect();
        assert_eq!(recorded.len(), 1, "{name}: one message: {results:?}");
        for result in &results {
            match result {
                Ok(_) => {}
                Err(SendRefused::Replay(waygate::store::Replay::InFlight(m))) => {
                    assert_eq!(m.id, recorded[0], "{name}: the first request's message")
                }
                other => panic!("{name}: a repeat replays the first: {other:?}"),
            }
        }
        let charged = micros(1_000_000 - PRICE.micros());
        assert_eq!(balance(store.as_ref(), t.user_id).await, charged, "{name}");
        assert_eq!(
            ledger_sum(store.as_ref(), &guard, t.user_id).await,
            charged,
            "{name}: one charge"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_sends_to_one_recipient_share_one_conversation() {
    for (name, store, _guard) in backends().await {
        let t = tenant(store.as_ref(), micros(1_000_000)).await;
        let results = race(RACERS, |_| {
            let store = store.clone();
            let s = send(&t, "+14155552000", None);
            async move { store.record_send(s).await.map(|r| r.conversation.id) }
        })
        .await;
        let ids: HashSet<i64> = results
            .iter()
            .map(|r| *r.as_ref().expect("every send is recorded"))
            .collect();
        assert_eq!(ids.len(), 1, "{name}: {results:?}");
        let conversation = store
            .conversation(t.sender_id, "+14155552000".into())
            .await
            .unwrap()
            .expect("the conversation");
        assert!(ids.contains(&conversation.id), "{name}");
        let messages = store
            .list_messages(conversation.id, None, 100)
            .await
            .unwrap();
        assert_eq!(messages.len(), RACERS, "{name}: every message in it");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sends_on_a_small_balance_never_take_it_below_zero() {
    for (name, store, guard) in backends().await {
        let credit = micros(PRICE.micros() * 5 + 7);
        let t = tenant(store.as_ref(), credit).await;
        let racers = RACERS * 3;
        let results = race(racers, |i| {
            let store = store.clone();
            let s = send(&t, &format!("+1415555{:04}", 3000 + i), None);
            async move { store.record_send(s).await }
        })
        .await;
        let sent = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(sent, 5, "{name}: as many as the balance pays for");
        for refused in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(
                matches!(refused, SendRefused::InsufficientBalance),
                "{name}: {refused:?}"
            );
        }
        let left = balance(store.as_ref(), t.user_id).await;
        assert_eq!(left, micros(7), "{name}");
        assert_eq!(
            ledger_sum(store.as_ref(), &guard, t.user_id).await,
            left,
            "{name}: the ledger explains the balance"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_template_sends_begin_no_more_conversations_than_the_messaging_limit() {
    for (name, store, _guard) in backends().await {
        let t = tenant(store.as_ref(), micros(1_000_000)).await;
        let results = race(RACERS, |i| {
            let store = store.clone();
            let mut s = send(&t, &format!("+1415555{:04}", 4000 + i), None);
            if let Some(template) = s.template.as_mut() {
                template.messaging_limit = Some(3);
            }
            async move { store.record_send(s).await }
        })
        .await;
        let sent = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(sent, 3, "{name}: {results:?}");
        for refused in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(
                matches!(refused, SendRefused::MessagingLimitReached),
                "{name}: {refused:?}"
            );
        }
    }
}

/// A queued send the provider accepted as `sid`.
async fn accepted(store: &dyn Store, t: &Tenant, to: &str, sid: &str) -> i64 {
    let recorded = store.record_send(send(t, to, None)).await.unwrap();
    store
        .record_dispatch(
            recorded.job_id.unwrap(),
            recorded.message_id,
            DispatchResult::Accepted {
                sid: sid.into(),
                status: MessageStatus::Queued,
                followups: Vec::new(),
                recheck_at: None,
            },
            NOW,
        )
        .await
        .unwrap();
    recorded.message_id
}

fn callback(sid: &str, status: MessageStatus, at: i64) -> StatusUpdate {
    StatusUpdate {
        target: StatusTarget::Provider {
            sid: sid.into(),
            message_id: None,
        },
        status,
        error_code: status.is_failure().then_some(30003),
        error_message: status
            .is_failure()
            .then(|| "Unreachable destination handset".into()),
        at,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_callbacks_never_move_a_status_backwards_and_refund_once() {
    for (name, store, guard) in backends().await {
        let credit = micros(1_000_000);
        let t = tenant(store.as_ref(), credit).await;

        // The same failure reported by every racer: one moves it, one refund.
        let failing = "SM00000000000000000000000000000010";
        accepted(store.as_ref(), &t, "+14155555000", failing).await;
        let applied = race(RACERS, |i| {
            let store = store.clone();
            let update = callback(failing, MessageStatus::Undelivered, NOW + 1 + i as i64);
            async move { store.apply_status(update).await.unwrap() }
        })
        .await;
        let advanced = applied
            .iter()
            .filter(|a| **a == StatusApplied::Advanced)
            .count();
        assert_eq!(advanced, 1, "{name}: {applied:?}");
        assert_eq!(
            balance(store.as_ref(), t.user_id).await,
            credit,
            "{name}: refunded once"
        );

        // Every status at once, each reported several times: whatever order they land in,
        // the history only moves forward, and a failure is refunded only if it won.
        let racing = "SM00000000000000000000000000000011";
        let message_id = accepted(store.as_ref(), &t, "+14155555001", racing).await;
        let statuses = [
            MessageStatus::Sent,
            MessageStatus::Delivered,
            MessageStatus::Read,
            MessageStatus::Failed,
            MessageStatus::Undelivered,
        ];
        race(statuses.len() * 3, |i| {
            let store = store.clone();
            let update = callback(racing, statuses[i % statuses.len()], NOW + 10 + i as i64);
            async move { store.apply_status(update).await.unwrap() }
        })
        .await;
        let message = store.get_message(message_id).await.unwrap().unwrap();
        let history: Vec<MessageStatus> = message
            .status_history
            .iter()
            .map(|step| MessageStatus::parse(&step.status).unwrap())
            .collect();
        for pair in history.windows(2) {
            assert!(
                pair[0].can_advance_to(pair[1]),
                "{name}: {:?} then {:?} in {history:?}",
                pair[0],
                pair[1]
            );
        }
        assert_eq!(
            history.last().map(|s| s.as_str()),
            Some(message.status.as_str()),
            "{name}"
        );
        let failed = MessageStatus::parse(&message.status).unwrap().is_failure();
        let expected = match failed {
            true => credit,
            false => micros(credit.micros() - PRICE.micros()),
        };
        let left = balance(store.as_ref(), t.user_id).await;
        assert_eq!(left, expected, "{name}: {history:?}");
        assert_eq!(
            ledger_sum(store.as_ref(), &guard, t.user_id).await,
            left,
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_never_hand_out_one_job_twice() {
    for (name, store, _guard) in backends().await {
        let t = tenant(store.as_ref(), micros(1_000_000)).await;
        let mut queued = HashSet::new();
        for i in 0..20 {
            let recorded = store
                .record_send(send(&t, &format!("+1415555{:04}", 6000 + i), None))
                .await
                .unwrap();
            queued.insert(recorded.job_id.unwrap());
        }
        // Every claimer takes a few at a time until none is left to it.
        let claimed = race(4, |_| {
            let store = store.clone();
            async move {
                let mut mine = Vec::new();
                loop {
                    let jobs = store.claim_jobs(NOW + 61_000, 60_000, 3).await.unwrap();
                    if jobs.is_empty() {
                        return mine;
                    }
                    mine.extend(jobs.into_iter().map(|job| job.id));
                }
            }
        })
        .await;
        let all: Vec<i64> = claimed.into_iter().flatten().collect();
        let distinct: HashSet<i64> = all.iter().copied().collect();
        assert_eq!(distinct.len(), all.len(), "{name}: a job claimed twice");
        assert_eq!(distinct, queued, "{name}: every due job claimed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_lease_is_taken_over_once_and_marks_only_an_unsettled_send_unknown() {
    for (name, store, _guard) in backends().await {
        let t = tenant(store.as_ref(), micros(1_000_000)).await;
        let unsettled = store
            .record_send(send(&t, "+14155557000", None))
            .await
            .unwrap();
        let settled = store
            .record_send(send(&t, "+14155557001", None))
            .await
            .unwrap();
        // The second's attempt ended: the provider asked for a retry.
        store
            .record_dispatch(
                settled.job_id.unwrap(),
                settled.message_id,
                DispatchResult::Retry {
                    at: NOW + 1_000,
                    error: "503".into(),
                },
                NOW + 500,
            )
            .await
            .unwrap();

        let claims = race(RACERS, |_| {
            let store = store.clone();
            async move { store.claim_jobs(NOW + 61_000, 60_000, 10).await.unwrap() }
        })
        .await;
        let jobs: Vec<_> = claims.into_iter().flatten().collect();
        assert_eq!(jobs.len(), 2, "{name}: each taken over once: {jobs:?}");
        let taken_over = jobs
            .iter()
            .find(|job| Some(job.id) == unsettled.job_id)
            .expect("the unsettled send's job");
        assert_eq!(taken_over.attempts, 0, "{name}: attempts counted afresh");
        assert!(
            taken_over
                .last_error
                .as_deref()
                .unwrap_or_default()
                .contains("interrupted"),
            "{name}: {taken_over:?}"
        );
        let retried = jobs
            .iter()
            .find(|job| Some(job.id) == settled.job_id)
            .expect("the retried send's job");
        assert_eq!(retried.last_error.as_deref(), Some("503"), "{name}");

        let outgoing = store
            .outgoing(vec![settled.message_id, unsettled.message_id, -1])
            .await
            .unwrap();
        let ids: Vec<i64> = outgoing.iter().map(|o| o.message_id).collect();
        assert_eq!(
            ids,
            [settled.message_id, unsettled.message_id],
            "{name}: in the order asked"
        );
        assert_eq!(outgoing[0].unknown_since, None, "{name}: settled");
        assert_eq!(
            outgoing[1].unknown_since,
            Some(NOW),
            "{name}: since its attempt"
        );

        // Its lease runs out again: still of unknown outcome since the first attempt, and
        // this attempt counts as the first reconciliation.
        let again = store.claim_jobs(NOW + 122_000, 60_000, 10).await.unwrap();
        let again = again
            .iter()
            .find(|job| Some(job.id) == unsettled.job_id)
            .expect("taken over again");
        assert_eq!(again.attempts, 1, "{name}");
        let outgoing = store.outgoing(vec![unsettled.message_id]).await.unwrap();
        assert_eq!(outgoing[0].unknown_since, Some(NOW), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_inbound_message_received_at_once_by_every_racer_is_recorded_once() {
    for (name, store, _guard) in backends().await {
        let t = tenant(store.as_ref(), micros(1_000_000)).await;
        let results = race(RACERS, |i| {
            let store = store.clone();
            let inbound = NewInbound {
                sender_id: t.sender_id,
                from: "+14155558000".into(),
                body: "Hi".into(),
                profile_name: Some("Ada".into()),
                provider_sid: Some("SM00000000000000000000000000000020".into()),
                media: Vec::new(),
                button_payload: None,
                reply_to_sid: None,
                at: NOW + i as i64,
            };
            async move { store.record_inbound(inbound).await.unwrap() }
        })
        .await;
        let recorded: Vec<_> = results.into_iter().flatten().collect();
        assert_eq!(recorded.len(), 1, "{name}");
        let conversation = store
            .conversation(t.sender_id, "+14155558000".into())
            .await
            .unwrap()
            .expect("the conversation");
        assert_eq!(conversation.customer_name.as_deref(), Some("Ada"), "{name}");
        let messages = store
            .list_messages(conversation.id, None, 100)
            .await
            .unwrap();
        assert_eq!(messages.len(), 1, "{name}");
        assert_eq!(messages[0].id, recorded[0].id, "{name}");
        assert_eq!(messages[0].status, "received", "{name}");
        assert_eq!(
            store
                .known_sids(vec![
                    "SMunknown".into(),
                    "SM00000000000000000000000000000020".into()
                ])
                .await
                .unwrap(),
            ["SM00000000000000000000000000000020"],
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn due_status_steps_applied_by_racers_at_once_are_each_applied_once() {
    for (name, store, _guard) in backends().await {
        let t = tenant(store.as_ref(), micros(1_000_000)).await;
        let messages = 6;
        let mut ids = Vec::new();
        for i in 0..messages {
            let mut s = send(&t, &format!("+1415555{:04}", 9000 + i), None);
            s.dispatch = Dispatch::Accepted {
                sid: format!("SMsim{i:029}"),
                status: MessageStatus::Queued,
                followups: vec![
                    ScheduledStatus {
                        at: NOW + 1_000,
                        status: "sent".into(),
                        error_code: None,
                        error_message: None,
                    },
                    ScheduledStatus {
                        at: NOW + 2_000,
                        status: "delivered".into(),
                        error_code: None,
                        error_message: None,
                    },
                ],
            };
            ids.push(store.record_send(s).await.unwrap().message_id);
        }
        // Every racer applies what is due until nothing is: each step of each message is
        // counted by exactly one of them.
        let applied = race(4, |_| {
            let store = store.clone();
            async move {
                let mut total = 0;
                loop {
                    match store.apply_due_statuses(NOW + 5_000, 2).await.unwrap() {
                        0 => return total,
                        n => total += n,
                    }
                }
            }
        })
        .await;
        assert_eq!(
            applied.iter().sum::<usize>(),
            ids.len() * 2,
            "{name}: {applied:?}"
        );
        for id in ids {
            let message = store.get_message(id).await.unwrap().unwrap();
            let history: Vec<&str> = message
                .status_history
                .iter()
                .map(|step| step.status.as_str())
                .collect();
            assert_eq!(
                history,
                ["pending", "queued", "sent", "delivered"],
                "{name}"
            );
        }
        let gauges = store.queue_gauges().await.unwrap();
        assert_eq!(gauges.live, 0, "{name}: every status job done");
    }
}
