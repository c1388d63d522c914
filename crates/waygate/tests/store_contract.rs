//! The store contract: what every `Store` backend must do, written once against `dyn Store`
//! and run against each backend (the embedded SQLite store and PostgreSQL, each on a fresh
//! database of its own). Money, idempotency, jobs and statuses are checked through the trait
//! alone, so both backends are held to the same rules.

#[path = "store_contract/messaging.rs"]
mod messaging;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "store_contract/tenants.rs"]
mod tenants;

use std::future::Future;
use std::sync::Arc;

use waygate::model::{
    NewSender, NewTemplate, ProviderKind, QualityRating, SenderStatus, TemplateStatus,
};
use waygate::store::postgres::PgStore;
use waygate::store::sqlite::SqliteStore;
use waygate::store::{
    Dispatch, DispatchResult, IdempotencyKey, NewSend, SendPrice, SendRefused, StatusApplied,
    StatusTarget, StatusUpdate, Store, TemplateSend,
};
use waygate_core::money::Money;
use waygate_core::pricing::Category;
use waygate_core::status::MessageStatus;
use waygate_core::template::TemplateBody;

const NOW: i64 = 1_700_000_000_000;
const PRICE: Money = Money::from_micros(20_000);

/// What keeps a backend's database alive (and drops it after the test).
type Guard = Box<dyn std::any::Any>;

/// Every backend, each on a database of its own.
async fn backends() -> Vec<(&'static str, Arc<dyn Store>, Guard)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("contract.db")).expect("sqlite opens");
    let schema = postgres::PgSchema::create().await;
    let pg = PgStore::connect(&schema.url, 4)
        .await
        .expect("postgres store opens");
    vec![
        ("sqlite", Arc::new(sqlite), Box::new(dir)),
        ("postgres", Arc::new(pg), Box::new(schema)),
    ]
}

/// Runs `n` copies of `op` released together, and returns their results in order.
pub(crate) async fn race<T, F, Fut>(n: usize, op: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let start = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let start = start.clone();
            let run = op(i);
            tokio::spawn(async move {
                start.wait().await;
                run.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.expect("a racer panicked"));
    }
    results
}

struct Tenant {
    user_id: i64,
    sender_id: i64,
    template_id: i64,
}

async fn tenant(store: &dyn Store, credit: Money) -> Tenant {
    let user = store
        .create_user("Acme".into(), "ops@acme.test".into(), NOW)
        .await
        .unwrap();
    let sender = store
        .create_sender(
            user.id,
            NewSender {
                phone_number: "+14155550100".into(),
                display_name: "Acme".into(),
                status: SenderStatus::Online,
                quality_rating: QualityRating::Green,
                messaging_limit: None,
                provider: ProviderKind::Twilio,
                provider_ref: None,
                waba_id: None,
            },
            NOW,
        )
        .await
        .unwrap()
        .unwrap();
    let template = store
        .create_template(
            sender.id,
            NewTemplate {
                name: "code".into(),
                language: "en".into(),
                category: Category::Utility,
                status: TemplateStatus::Approved,
                body: TemplateBody::parse("Hello {{1}}.").unwrap(),
                variables: vec!["1".into()],
                provider_ref: Some("HX0123456789abcdef0123456789abcdef".into()),
                samples: Vec::new(),
                header_text: None,
                footer_text: None,
                buttons: Vec::new(),
                rejection_reason: None,
                sync_at: None,
            },
            NOW,
        )
        .await
        .unwrap()
        .unwrap();
    store
        .credit(user.id, credit, "seed".into(), NOW)
        .await
        .unwrap()
        .unwrap();
    Tenant {
        user_id: user.id,
        sender_id: sender.id,
        template_id: template.id,
    }
}

fn send(t: &Tenant, to: &str, key: Option<&str>) -> NewSend {
    NewSend {
        user_id: t.user_id,
        sender_id: t.sender_id,
        recipient: to.into(),
        recipient_name: None,
        template: Some(TemplateSend {
            template_id: t.template_id,
            variables: vec!["Ada".into()],
            messaging_limit: None,
        }),
        body: "Hello Ada.".into(),
        price: SendPrice::flat(PRICE),
        idempotency: key.map(|k| IdempotencyKey {
            key: k.into(),
            request_hash: vec![1, 2, 3],
        }),
        now: NOW,
        dispatch: Dispatch::Queue { lease_ms: 60_000 },
        template_opens: true,
    }
}

async fn balance(store: &dyn Store, user_id: i64) -> Money {
    store.get_user(user_id).await.unwrap().unwrap().balance
}

#[tokio::test]
async fn a_send_is_charged_once_and_refused_without_balance() {
    for (name, store, _dir) in backends().await {
        let t = tenant(store.as_ref(), Money::from_micros(30_000)).await;
        store
            .record_send(send(&t, "+14155551234", None))
            .await
            .unwrap();
        assert_eq!(
            balance(store.as_ref(), t.user_id).await,
            Money::from_micros(10_000),
            "{name}"
        );
        let refused = store.record_send(send(&t, "+14155551235", None)).await;
        assert!(
            matches!(refused, Err(SendRefused::InsufficientBalance)),
            "{name}: {refused:?}"
        );
        assert_eq!(
            balance(store.as_ref(), t.user_id).await,
            Money::from_micros(10_000),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_credit_counts_once_per_reference() {
    for (name, store, _dir) in backends().await {
        let t = tenant(store.as_ref(), Money::ZERO).await;
        let first = store
            .credit(t.user_id, PRICE, "invoice-1".into(), NOW)
            .await
            .unwrap()
            .unwrap();
        let again = store
            .credit(t.user_id, PRICE, "invoice-1".into(), NOW)
            .await
            .unwrap()
            .unwrap();
        assert!(first.created && !again.created, "{name}");
        assert_eq!(again.balance, PRICE, "{name}");
    }
}

#[tokio::test]
async fn an_idempotency_key_replays_its_send_and_refuses_another_body() {
    for (name, store, _dir) in backends().await {
        let t = tenant(store.as_ref(), Money::from_micros(1_000_000)).await;
        let first = store
            .record_send(send(&t, "+14155551234", Some("k-1")))
            .await
            .unwrap();
        let again = store
            .record_send(send(&t, "+14155551234", Some("k-1")))
            .await;
        match again {
            Err(SendRefused::Replay(_)) => {}
            other => panic!("{name}: {other:?}"),
        }
        let mut other_body = send(&t, "+14155551234", Some("k-1"));
        other_body.idempotency.as_mut().unwrap().request_hash = vec![9];
        let reused = store.record_send(other_body).await;
        assert!(
            matches!(reused, Err(SendRefused::IdempotencyKeyReused)),
            "{name}: {reused:?}"
        );
        let charged = Money::from_micros(1_000_000 - PRICE.micros());
        assert_eq!(
            balance(store.as_ref(), t.user_id).await,
            charged,
            "{name}: charged once"
        );
        assert!(first.job_id.is_some(), "{name}");
    }
}

#[tokio::test]
async fn a_claimed_job_is_leased_and_an_unsettled_send_is_marked_of_unknown_outcome() {
    for (name, store, _dir) in backends().await {
        let t = tenant(store.as_ref(), Money::from_micros(1_000_000)).await;
        let recorded = store
            .record_send(send(&t, "+14155551234", None))
            .await
            .unwrap();
        assert!(
            store
                .claim_jobs(NOW + 59_000, 60_000, 10)
                .await
                .unwrap()
                .is_empty(),
            "{name}: leased by the request that recorded it"
        );
        let claimed = store.claim_jobs(NOW + 61_000, 60_000, 10).await.unwrap();
        assert_eq!(claimed.len(), 1, "{name}");
        assert!(
            store
                .claim_jobs(NOW + 62_000, 60_000, 10)
                .await
                .unwrap()
                .is_empty(),
            "{name}: one claimer at a time"
        );
        let outgoing = store.outgoing(vec![recorded.message_id]).await.unwrap();
        assert_eq!(
            outgoing[0].unknown_since,
            Some(NOW),
            "{name}: the first attempt never settled"
        );
    }
}

#[tokio::test]
async fn statuses_move_forward_only_and_a_failure_refunds_once() {
    for (name, store, _dir) in backends().await {
        let t = tenant(store.as_ref(), Money::from_micros(1_000_000)).await;
        let recorded = store
            .record_send(send(&t, "+14155551234", None))
            .await
            .unwrap();
        store
            .record_dispatch(
                recorded.job_id.unwrap(),
                recorded.message_id,
                DispatchResult::Accepted {
                    sid: "SM00000000000000000000000000000001".into(),
                    status: MessageStatus::Queued,
                    followups: Vec::new(),
                    recheck_at: None,
                },
                NOW,
            )
            .await
            .unwrap();
        let update = |status, at| StatusUpdate {
            target: StatusTarget::Provider {
                sid: "SM00000000000000000000000000000001".into(),
                message_id: None,
            },
            status,
            error_code: Some(30003),
            error_message: Some("Unreachable destination handset".into()),
            at,
        };
        let failed = store
            .apply_status(update(MessageStatus::Undelivered, NOW + 1))
            .await
            .unwrap();
        assert_eq!(failed, StatusApplied::Advanced, "{name}");
        let again = store
            .apply_status(update(MessageStatus::Undelivered, NOW + 2))
            .await
            .unwrap();
        assert_eq!(
            again,
            StatusApplied::Ignored,
            "{name}: a repeat changes nothing"
        );
        let back = store
            .apply_status(update(MessageStatus::Sent, NOW + 3))
            .await
            .unwrap();
        assert_eq!(back, StatusApplied::Ignored, "{name}: never backwards");
        assert_eq!(
            balance(store.as_ref(), t.user_id).await,
            Money::from_micros(1_000_000),
            "{name}: refunded exactly once"
        );
        let message = store
            .get_message(recorded.message_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(message.status, "undelivered", "{name}");
    }
}
