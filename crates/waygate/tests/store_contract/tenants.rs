//! Tenants, the catalog and webhook subscriptions: API keys, credits once per reference,
//! sender and template changes announced once, catalog readings handed to one claimer at a
//! time, and webhook secrets, when several callers (on PostgreSQL, two nodes' stores on one
//! database) do the same thing at once.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use waygate::model::{
    NewSender, NewTemplate, ProviderKind, QualityRating, Review, SenderPatch, SenderReport,
    SenderStatus, TemplatePatch, TemplateStatus,
};
use waygate::store::postgres::PgStore;
use waygate::store::sqlite::SqliteStore;
use waygate::store::{Store, StoreError};
use waygate_core::money::Money;
use waygate_core::pricing::Category;
use waygate_core::template::TemplateBody;

use super::{backends, Guard, NOW};

/// Callers at once: more than a node's pooled connections, so that they wait on each other.
const RACERS: usize = 8;
const LEASE: i64 = 60_000;

/// Every backend as the stores that share it: the embedded store is one process's, while
/// PostgreSQL is shared by two nodes, each with its own pool.
async fn nodes() -> Vec<(&'static str, Vec<Arc<dyn Store>>, Guard)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("tenants.db")).expect("sqlite opens"));
    let schema = super::postgres::PgSchema::create().await;
    let mut pg: Vec<Arc<dyn Store>> = Vec::new();
    for _ in 0..2 {
        pg.push(Arc::new(
            PgStore::connect(&schema.url, 4)
                .await
                .expect("postgres store opens"),
        ));
    }
    vec![
        ("sqlite", vec![sqlite], Box::new(dir)),
        ("postgres", pg, Box::new(schema)),
    ]
}

/// Runs `op` on `RACERS` tasks released together, each given a node in turn; their results
/// in order.
async fn race<T, F, Fut>(stores: &[Arc<dyn Store>], op: F) -> Vec<T>
where
    F: Fn(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    super::race(RACERS, |i| op(stores[i % stores.len()].clone())).await
}

async fn user(store: &dyn Store) -> i64 {
    store
        .create_user("Acme".into(), "ops@acme.test".into(), NOW)
        .await
        .unwrap()
        .id
}

fn new_sender(phone: &str) -> NewSender {
    NewSender {
        phone_number: phone.into(),
        display_name: "Acme".into(),
        status: SenderStatus::Online,
        quality_rating: QualityRating::Green,
        messaging_limit: Some(1_000),
        provider: ProviderKind::Meta,
        provider_ref: Some(format!("pn-{phone}")),
        waba_id: Some("waba-1".into()),
    }
}

async fn sender(store: &dyn Store, user_id: i64) -> i64 {
    store
        .create_sender(user_id, new_sender("+14155550100"), NOW)
        .await
        .unwrap()
        .unwrap()
        .id
}

fn new_template(name: &str, sync_at: Option<i64>) -> NewTemplate {
    NewTemplate {
        name: name.into(),
        language: "en".into(),
        category: Category::Utility,
        status: TemplateStatus::Pending,
        body: TemplateBody::parse("Your code is {{1}}.").unwrap(),
        variables: vec!["1".into()],
        provider_ref: Some(format!("ref-{name}")),
        samples: vec!["1234".into()],
        header_text: Some("Acme".into()),
        footer_text: None,
        buttons: Vec::new(),
        rejection_reason: None,
        sync_at,
    }
}

/// Subscribes the user to the catalog's events.
async fn subscribe(store: &dyn Store, user_id: i64) {
    store
        .create_webhook(
            user_id,
            "https://hooks.acme.test/wa".into(),
            vec!["sender.status".into(), "template.status".into()],
            "whsec_1".into(),
            NOW,
        )
        .await
        .unwrap();
}

/// The types of the webhook events queued since the last call (claiming their jobs).
async fn events_queued(store: &dyn Store) -> Vec<String> {
    let jobs = store
        .claim_jobs(NOW + 1_000_000, LEASE, 1_000)
        .await
        .unwrap();
    jobs.iter()
        .filter(|job| job.kind == "webhook")
        .map(|job| {
            let payload: serde_json::Value = serde_json::from_str(&job.payload).unwrap();
            let body: serde_json::Value =
                serde_json::from_str(payload["body"].as_str().unwrap()).unwrap();
            body["type"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test]
async fn an_api_key_finds_its_user_until_revoked() {
    for (name, store, _guard) in backends().await {
        let user_id = user(store.as_ref()).await;
        let version = store.directory_version().await.unwrap();
        let key = store
            .create_api_key(user_id, "ci".into(), "wg_live_ab".into(), vec![7; 32], NOW)
            .await
            .unwrap()
            .expect("the user exists");
        assert_eq!((key.user_id, key.prefix.as_str()), (user_id, "wg_live_ab"));
        assert!(
            store.directory_version().await.unwrap() > version,
            "{name}: a new key moves the directory"
        );
        assert_eq!(
            store.user_for_key(vec![7; 32]).await.unwrap(),
            Some(user_id),
            "{name}"
        );
        assert_eq!(store.user_for_key(vec![8; 32]).await.unwrap(), None);
        let missing = store
            .create_api_key(user_id + 100, "ci".into(), "wg".into(), vec![9; 32], NOW)
            .await
            .unwrap();
        assert!(missing.is_none(), "{name}: no key for a missing user");

        assert!(
            store.revoke_api_key(key.id, NOW + 1).await.unwrap(),
            "{name}"
        );
        assert!(
            !store.revoke_api_key(key.id, NOW + 2).await.unwrap(),
            "{name}: revoked once"
        );
        assert_eq!(
            store.user_for_key(vec![7; 32]).await.unwrap(),
            None,
            "{name}"
        );
    }
}

#[tokio::test]
async fn users_senders_and_templates_read_back_as_created() {
    for (name, store, _guard) in backends().await {
        let store = store.as_ref();
        assert!(!store.has_users().await.unwrap(), "{name}");
        let user_id = user(store).await;
        let got = store.get_user(user_id).await.unwrap().unwrap();
        assert_eq!((got.name.as_str(), got.balance), ("Acme", Money::ZERO));
        assert!(store.get_user(user_id + 1).await.unwrap().is_none());
        assert!(store
            .create_sender(user_id + 1, new_sender("+1"), NOW)
            .await
            .unwrap()
            .is_none());

        let sender_id = sender(store, user_id).await;
        let by_phone = store
            .sender_by_phone("+14155550100".into(), ProviderKind::Meta)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (by_phone.id, by_phone.waba_id.as_deref()),
            (sender_id, Some("waba-1"))
        );
        assert!(store
            .sender_by_phone("+14155550100".into(), ProviderKind::Twilio)
            .await
            .unwrap()
            .is_none());
        let online = store
            .list_senders(user_id, Some(SenderStatus::Online))
            .await
            .unwrap();
        let offline = store
            .list_senders(user_id, Some(SenderStatus::Offline))
            .await
            .unwrap();
        assert_eq!((online.len(), offline.len()), (1, 0), "{name}");

        let template = store
            .create_template(sender_id, new_template("code", None), NOW)
            .await
            .unwrap()
            .unwrap();
        let got = store.get_template(template.id).await.unwrap().unwrap();
        assert_eq!(got.samples, vec!["1234".to_string()], "{name}");
        assert_eq!(got.header_text.as_deref(), Some("Acme"));
        assert_eq!(got.updated_at, NOW);
        let by_ref = store
            .template_by_provider_ref("ref-code".into(), ProviderKind::Meta)
            .await
            .unwrap();
        assert_eq!(by_ref.map(|t| t.id), Some(template.id), "{name}");
        assert!(store
            .template_by_provider_ref("ref-code".into(), ProviderKind::Twilio)
            .await
            .unwrap()
            .is_none());
        let pending = store
            .list_templates(sender_id, Some(TemplateStatus::Pending))
            .await
            .unwrap();
        let all = store.list_templates(sender_id, None).await.unwrap();
        let approved = store
            .list_templates(sender_id, Some(TemplateStatus::Approved))
            .await
            .unwrap();
        assert_eq!((pending.len(), all.len(), approved.len()), (1, 1, 0));
        assert!(store
            .create_template(sender_id + 1, new_template("x", None), NOW)
            .await
            .unwrap()
            .is_none());

        let patched = store
            .update_template(
                template.id,
                TemplatePatch {
                    status: None,
                    provider_ref: Some(None),
                },
                NOW + 5,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!((patched.provider_ref, patched.updated_at), (None, NOW + 5));
        assert!(store.delete_template(template.id).await.unwrap(), "{name}");
        assert!(!store.delete_template(template.id).await.unwrap(), "{name}");
        assert!(store.get_template(template.id).await.unwrap().is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_template_name_is_taken_once_per_sender_and_language() {
    for (name, stores, _guard) in nodes().await {
        let user_id = user(stores[0].as_ref()).await;
        let sender_id = sender(stores[0].as_ref(), user_id).await;
        let created = race(&stores, |store| async move {
            store
                .create_template(sender_id, new_template("welcome", None), NOW)
                .await
        })
        .await;
        let won = created.iter().filter(|r| matches!(r, Ok(Some(_)))).count();
        let conflicts = created
            .iter()
            .filter(|r| matches!(r, Err(StoreError::Conflict(_))))
            .count();
        assert_eq!((won, conflicts), (1, RACERS - 1), "{name}: {created:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_credits_of_one_reference_count_once() {
    for (name, stores, _guard) in nodes().await {
        let user_id = user(stores[0].as_ref()).await;
        let amount = Money::from_micros(5_000_000);
        let outcomes = race(&stores, |store| async move {
            store
                .credit(user_id, amount, "invoice-42".into(), NOW)
                .await
                .unwrap()
                .unwrap()
        })
        .await;
        let created = outcomes.iter().filter(|o| o.created).count();
        assert_eq!(created, 1, "{name}: credited once");
        assert!(
            outcomes.iter().all(|o| o.balance == amount),
            "{name}: every answer shows the one credit"
        );
        let balance = stores[0].get_user(user_id).await.unwrap().unwrap().balance;
        assert_eq!(balance, amount, "{name}");

        let others = race(&stores, |store| async move {
            let reference = format!("topup-{}", fastrand::u64(..));
            store
                .credit(user_id, Money::from_micros(1), reference, NOW)
                .await
                .unwrap()
                .unwrap()
        })
        .await;
        assert!(others.iter().all(|o| o.created), "{name}");
        let balance = stores[0].get_user(user_id).await.unwrap().unwrap().balance;
        assert_eq!(
            balance.micros(),
            amount.micros() + RACERS as i64,
            "{name}: distinct references all count"
        );
    }
}

#[tokio::test]
async fn a_credit_past_the_largest_balance_is_refused_and_leaves_the_reference_free() {
    for (name, store, _guard) in backends().await {
        let user_id = user(store.as_ref()).await;
        store
            .credit(user_id, Money::from_micros(10), "a".into(), NOW)
            .await
            .unwrap()
            .unwrap();
        let overflow = store
            .credit(user_id, Money::from_micros(i64::MAX), "b".into(), NOW)
            .await;
        assert!(
            matches!(overflow, Err(StoreError::BalanceOverflow)),
            "{name}: {overflow:?}"
        );
        let balance = store.get_user(user_id).await.unwrap().unwrap().balance;
        assert_eq!(balance, Money::from_micros(10), "{name}");
        let later = store
            .credit(user_id, Money::from_micros(5), "b".into(), NOW)
            .await
            .unwrap()
            .unwrap();
        assert!(
            later.created,
            "{name}: the refused credit did not take its reference"
        );
        assert_eq!(later.balance, Money::from_micros(15));
        assert!(store
            .credit(user_id + 1, Money::from_micros(5), "c".into(), NOW)
            .await
            .unwrap()
            .is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sender_change_is_announced_once() {
    for (name, stores, _guard) in nodes().await {
        let store = stores[0].as_ref();
        let user_id = user(store).await;
        subscribe(store, user_id).await;
        let sender_id = sender(store, user_id).await;
        let renamed = store
            .update_sender(
                sender_id,
                SenderPatch {
                    display_name: Some("Acme Support".into()),
                    ..SenderPatch::default()
                },
                NOW,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(renamed.display_name, "Acme Support");
        assert!(
            events_queued(store).await.is_empty(),
            "{name}: a new name is not announced"
        );

        race(&stores, |store| async move {
            store
                .update_sender(
                    sender_id,
                    SenderPatch {
                        status: Some(SenderStatus::Offline),
                        ..SenderPatch::default()
                    },
                    NOW + 1,
                )
                .await
                .unwrap()
                .unwrap()
        })
        .await;
        assert_eq!(
            events_queued(store).await,
            vec!["sender.status".to_string()],
            "{name}: one change, one event"
        );

        let lifted = store
            .update_sender(
                sender_id,
                SenderPatch {
                    messaging_limit: Some(None),
                    ..SenderPatch::default()
                },
                NOW + 2,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(lifted.messaging_limit, None, "{name}");
        assert_eq!(events_queued(store).await.len(), 1, "{name}");

        let report = SenderReport {
            status: SenderStatus::Online,
            quality_rating: Some(QualityRating::Yellow),
            messaging_limit: Some(10_000),
        };
        let changed = race(&stores, |store| {
            let report = report.clone();
            async move {
                store
                    .record_sender_report(sender_id, report, NOW + 3_600_000, NOW + 3)
                    .await
                    .unwrap()
            }
        })
        .await;
        assert_eq!(
            changed.iter().filter(|c| c.is_some()).count(),
            1,
            "{name}: the change is written once"
        );
        assert_eq!(events_queued(store).await.len(), 1, "{name}");
        let unrated = SenderReport {
            quality_rating: None,
            ..report
        };
        let kept = store
            .record_sender_report(sender_id, unrated, NOW + 3_600_000, NOW + 4)
            .await
            .unwrap();
        assert!(kept.is_none(), "{name}: no rating keeps the last one");
        let sender = store.get_sender(sender_id).await.unwrap().unwrap();
        assert_eq!(
            (sender.status, sender.quality_rating, sender.messaging_limit),
            (SenderStatus::Online, QualityRating::Yellow, Some(10_000)),
            "{name}"
        );
        assert!(events_queued(store).await.is_empty(), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_template_status_change_is_announced_once() {
    for (name, stores, _guard) in nodes().await {
        let store = stores[0].as_ref();
        let user_id = user(store).await;
        subscribe(store, user_id).await;
        let sender_id = sender(store, user_id).await;
        let template = store
            .create_template(sender_id, new_template("code", Some(NOW)), NOW)
            .await
            .unwrap()
            .unwrap();
        let moved = store
            .update_template(
                template.id,
                TemplatePatch {
                    provider_ref: Some(Some("ref-2".into())),
                    ..TemplatePatch::default()
                },
                NOW,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(moved.provider_ref.as_deref(), Some("ref-2"));
        assert!(events_queued(store).await.is_empty(), "{name}");

        let template_id = template.id;
        let reviewed = race(&stores, |store| async move {
            let review = Review {
                status: TemplateStatus::Rejected,
                rejection_reason: Some("INVALID_FORMAT".into()),
            };
            store
                .record_review(template_id, review, Some(NOW + 60_000), NOW + 1)
                .await
                .unwrap()
        })
        .await;
        let changed: Vec<_> = reviewed.iter().flatten().collect();
        assert_eq!(changed.len(), 1, "{name}: the review is written once");
        assert_eq!(
            changed[0].rejection_reason.as_deref(),
            Some("INVALID_FORMAT")
        );
        assert_eq!(
            events_queued(store).await,
            vec!["template.status".to_string()],
            "{name}"
        );

        race(&stores, |store| async move {
            store
                .update_template(
                    template_id,
                    TemplatePatch {
                        status: Some(TemplateStatus::Approved),
                        ..TemplatePatch::default()
                    },
                    NOW + 2,
                )
                .await
                .unwrap()
        })
        .await;
        assert_eq!(events_queued(store).await.len(), 1, "{name}");
        let done = store
            .record_review(
                template_id,
                Review {
                    status: TemplateStatus::Approved,
                    rejection_reason: None,
                },
                None,
                NOW + 3,
            )
            .await
            .unwrap()
            .expect("the reason is cleared");
        assert_eq!(done.rejection_reason, None, "{name}");
        assert_eq!(events_queued(store).await.len(), 1, "{name}");
        assert!(
            store
                .claim_template_syncs(NOW + 10_000_000, LEASE, 10)
                .await
                .unwrap()
                .is_empty(),
            "{name}: no reading after the last"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catalog_readings_go_to_one_claimer_at_a_time() {
    const TEMPLATES: usize = 20;
    for (name, stores, _guard) in nodes().await {
        let store = stores[0].as_ref();
        let user_id = user(store).await;
        let sender_id = sender(store, user_id).await;
        let mut ids = HashSet::new();
        for i in 0..TEMPLATES {
            let template = store
                .create_template(sender_id, new_template(&format!("t{i}"), Some(NOW)), NOW)
                .await
                .unwrap()
                .unwrap();
            ids.insert(template.id);
        }
        store
            .create_template(sender_id, new_template("later", Some(NOW + 1)), NOW)
            .await
            .unwrap();
        store
            .create_template(sender_id, new_template("never", None), NOW)
            .await
            .unwrap();

        let claims = race(&stores, |store| async move {
            store.claim_template_syncs(NOW, LEASE, 3).await.unwrap()
        })
        .await;
        let mut claimed: Vec<i64> = claims.iter().flatten().map(|t| t.id).collect();
        loop {
            let rest = store.claim_template_syncs(NOW, LEASE, 3).await.unwrap();
            if rest.is_empty() {
                break;
            }
            claimed.extend(rest.iter().map(|t| t.id));
        }
        let distinct: HashSet<i64> = claimed.iter().copied().collect();
        assert_eq!(distinct.len(), claimed.len(), "{name}: claimed twice");
        assert_eq!(distinct, ids, "{name}: every due template, only those");

        let back = store
            .claim_template_syncs(NOW + LEASE, LEASE, 100)
            .await
            .unwrap();
        assert_eq!(
            back.len(),
            TEMPLATES + 1,
            "{name}: leases run out, the later one is due"
        );
        let first = back[0].id;
        assert!(store.delete_template(first).await.unwrap());
        let after_delete = store
            .claim_template_syncs(NOW + 3 * LEASE, LEASE, 100)
            .await
            .unwrap();
        assert_eq!(after_delete.len(), TEMPLATES, "{name}");
        assert!(after_delete.iter().all(|t| t.id != first));

        let senders = race(&stores, |store| async move {
            store.claim_sender_syncs(NOW, LEASE, 10).await.unwrap()
        })
        .await;
        let claimed: Vec<i64> = senders.iter().flatten().map(|s| s.id).collect();
        assert_eq!(
            claimed,
            vec![sender_id],
            "{name}: a new sender is read once"
        );
        assert!(store
            .record_sender_report(
                sender_id,
                SenderReport {
                    status: SenderStatus::Online,
                    quality_rating: Some(QualityRating::Green),
                    messaging_limit: Some(1_000),
                },
                NOW + 5 * LEASE,
                NOW,
            )
            .await
            .unwrap()
            .is_none());
        assert!(store
            .claim_sender_syncs(NOW + 4 * LEASE, LEASE, 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            store
                .claim_sender_syncs(NOW + 5 * LEASE, LEASE, 10)
                .await
                .unwrap()
                .len(),
            1,
            "{name}: next reading as scheduled"
        );
    }
}

#[tokio::test]
async fn a_webhook_secret_rotates_and_a_deleted_webhook_is_gone() {
    for (name, store, _guard) in backends().await {
        let user_id = user(store.as_ref()).await;
        let hook = store
            .create_webhook(
                user_id,
                "https://hooks.acme.test/a".into(),
                vec!["message.status".into()],
                "whsec_old".into(),
                NOW,
            )
            .await
            .unwrap();
        let other = store
            .create_webhook(
                user_id,
                "https://hooks.acme.test/b".into(),
                vec!["message.received".into(), "message.status".into()],
                "whsec_b".into(),
                NOW,
            )
            .await
            .unwrap();
        let got = store.get_webhook(hook.id).await.unwrap().unwrap();
        assert_eq!(
            (got.url.as_str(), got.events.clone(), got.previous_secret),
            (
                "https://hooks.acme.test/a",
                vec!["message.status".to_string()],
                None
            ),
            "{name}"
        );

        assert!(store
            .rotate_webhook_secret(hook.id, "whsec_new".into(), NOW + 3_600_000)
            .await
            .unwrap());
        let rotated = store.get_webhook(hook.id).await.unwrap().unwrap();
        assert_eq!(rotated.secret, "whsec_new", "{name}");
        assert_eq!(
            rotated.previous_secret,
            Some(("whsec_old".to_string(), NOW + 3_600_000)),
            "{name}"
        );

        assert!(store.delete_webhook(hook.id, NOW + 1).await.unwrap());
        assert!(
            !store.delete_webhook(hook.id, NOW + 2).await.unwrap(),
            "{name}: deleted once"
        );
        assert!(store.get_webhook(hook.id).await.unwrap().is_none());
        assert!(
            !store
                .rotate_webhook_secret(hook.id, "whsec_x".into(), NOW)
                .await
                .unwrap(),
            "{name}: a deleted webhook keeps no secret"
        );
        let listed: Vec<i64> = store
            .list_webhooks(user_id)
            .await
            .unwrap()
            .iter()
            .map(|w| w.id)
            .collect();
        assert_eq!(listed, vec![other.id], "{name}");
    }
}

#[tokio::test]
async fn only_a_real_change_moves_the_directory() {
    for (name, store, _guard) in backends().await {
        let store = store.as_ref();
        let user_id = user(store).await;
        let sender_id = sender(store, user_id).await;
        let template = store
            .create_template(sender_id, new_template("code", Some(NOW)), NOW)
            .await
            .unwrap()
            .unwrap();
        let key = store
            .create_api_key(user_id, "ci".into(), "wg".into(), vec![1; 32], NOW)
            .await
            .unwrap()
            .unwrap();
        store.revoke_api_key(key.id, NOW).await.unwrap();
        let version = store.directory_version().await.unwrap();

        let pending = Review {
            status: TemplateStatus::Pending,
            rejection_reason: None,
        };
        let same = store
            .record_review(template.id, pending, Some(NOW + LEASE), NOW)
            .await
            .unwrap();
        assert!(same.is_none(), "{name}");
        let report = SenderReport {
            status: SenderStatus::Online,
            quality_rating: Some(QualityRating::Green),
            messaging_limit: Some(1_000),
        };
        let same = store
            .record_sender_report(sender_id, report, NOW + LEASE, NOW)
            .await
            .unwrap();
        assert!(same.is_none(), "{name}");
        assert!(!store.revoke_api_key(key.id, NOW).await.unwrap());
        let taken = store
            .create_template(sender_id, new_template("code", None), NOW)
            .await;
        assert!(matches!(taken, Err(StoreError::Conflict(_))), "{name}");
        assert_eq!(
            store.directory_version().await.unwrap(),
            version,
            "{name}: nothing changed"
        );

        let approved = Review {
            status: TemplateStatus::Approved,
            rejection_reason: None,
        };
        store
            .record_review(template.id, approved, None, NOW)
            .await
            .unwrap()
            .expect("approved");
        assert!(
            store.directory_version().await.unwrap() > version,
            "{name}: a new status drops every node's cache"
        );
    }
}
