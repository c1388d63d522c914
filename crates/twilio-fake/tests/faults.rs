//! Random and scripted faults of the Messages API: create, list and fetch.

mod common;

use std::time::Duration;

use common::*;
use twilio_fake::{
    Config, CreateFaultRates, FakeTwilio, FaultRates, ReadEndpoint, ReadFault, ReadFaultRates,
};

const FORM: [(&str, &str); 3] = [("To", TO), ("From", FROM), ("Body", "hi")];

/// What one create request came to, as a client can tell plus what the fake stored.
#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Outcome {
    Created,
    ServerError,
    CreatedThenServerError,
    TooManyRequests,
    Dropped,
    TimedOut { created: bool },
}

/// Posts one create with a client timeout and classifies the result by the answer and by whether
/// a message appeared (requests must be sequential for that to be exact).
async fn create_once(fake: &FakeTwilio, timeout: Duration) -> Outcome {
    let before = fake.messages().len();
    let result = reqwest::Client::new()
        .post(messages_url(fake))
        .basic_auth(fake.account_sid(), Some(fake.auth_token()))
        .timeout(timeout)
        .form(&FORM)
        .send()
        .await;
    let created = fake.messages().len() - before;
    assert!(created <= 1, "one request created {created} messages");
    let created = created == 1;
    let response = match result {
        Ok(response) => response,
        Err(e) if e.is_timeout() => return Outcome::TimedOut { created },
        Err(_) => {
            assert!(!created, "a dropped connection must not create");
            return Outcome::Dropped;
        }
    };
    let answer = answer(response).await;
    match (answer.status, created) {
        (201, true) => Outcome::Created,
        (500, false) => Outcome::ServerError,
        (500, true) => Outcome::CreatedThenServerError,
        (429, false) => {
            assert_eq!(answer.headers["retry-after"], "2");
            assert_error(&answer, 429, 20429);
            Outcome::TooManyRequests
        }
        other => panic!("unexpected {other:?}: {}", answer.json),
    }
}

fn create_rates() -> FaultRates {
    FaultRates {
        create: CreateFaultRates {
            server_error: 0.1,
            created_then_server_error: 0.1,
            too_many_requests: 0.1,
            slow: 0.05,
            drop_connection: 0.1,
            retry_after_secs: 2,
            slow_ms: 400,
        },
        ..FaultRates::default()
    }
}

async fn outcomes(seed: u64, requests: usize) -> Vec<Outcome> {
    let fake = FakeTwilio::start(Config {
        fault_rates: create_rates(),
        seed: Some(seed),
        ..Config::default()
    })
    .await
    .unwrap();
    assert_eq!(fake.seed(), seed);
    let mut outcomes = Vec::with_capacity(requests);
    for _ in 0..requests {
        outcomes.push(create_once(&fake, Duration::from_millis(150)).await);
    }
    assert_eq!(fake.create_requests(), requests);
    outcomes
}

fn count(outcomes: &[Outcome], outcome: Outcome) -> usize {
    outcomes.iter().filter(|o| **o == outcome).count()
}

#[tokio::test]
async fn random_create_faults_follow_their_rates() {
    let outcomes = outcomes(42, 400).await;
    // 400 draws at p = 0.1: mean 40, sd 6; at p = 0.05: mean 20, sd 4.4; 0.55: mean 220, sd 10.
    for (outcome, band) in [
        (Outcome::ServerError, 20..=60),
        (Outcome::CreatedThenServerError, 20..=60),
        (Outcome::TooManyRequests, 20..=60),
        (Outcome::Dropped, 20..=60),
        (Outcome::TimedOut { created: true }, 6..=34),
        (Outcome::Created, 180..=260),
    ] {
        let n = count(&outcomes, outcome);
        assert!(band.contains(&n), "{outcome:?}: {n} of 400");
    }
    assert_eq!(count(&outcomes, Outcome::TimedOut { created: false }), 0);
}

#[tokio::test]
async fn the_same_seed_replays_the_same_faults() {
    let first = outcomes(7, 60).await;
    assert_eq!(first, outcomes(7, 60).await);
    assert_ne!(first, outcomes(8, 60).await);
}

#[tokio::test]
async fn a_running_fake_takes_new_rates_and_refuses_impossible_ones() {
    let fake = FakeTwilio::start(Config::default()).await.unwrap();
    assert_eq!(fake.fault_rates(), FaultRates::default());
    assert_eq!(create(&fake, &FORM).await.status, 201);

    let always = FaultRates {
        create: CreateFaultRates {
            server_error: 1.0,
            ..CreateFaultRates::default()
        },
        ..FaultRates::default()
    };
    fake.set_fault_rates(always).unwrap();
    assert_error(&create(&fake, &FORM).await, 500, 20500);

    let impossible = FaultRates {
        create: CreateFaultRates {
            server_error: 0.6,
            drop_connection: 0.6,
            ..CreateFaultRates::default()
        },
        ..FaultRates::default()
    };
    assert!(fake.set_fault_rates(impossible).is_err());
    assert_eq!(
        fake.fault_rates(),
        always,
        "refused rates leave the old ones"
    );

    fake.set_fault_rates(FaultRates::default()).unwrap();
    assert_eq!(create(&fake, &FORM).await.status, 201);
    assert_eq!(fake.messages().len(), 2);

    let refused = FakeTwilio::start(Config {
        fault_rates: impossible,
        ..Config::default()
    })
    .await;
    assert!(refused.is_err(), "start refuses impossible rates");
}

#[tokio::test]
async fn scripted_faults_come_before_random_ones() {
    let fake = FakeTwilio::start(Config {
        fault_rates: FaultRates {
            create: CreateFaultRates {
                server_error: 1.0,
                ..CreateFaultRates::default()
            },
            ..FaultRates::default()
        },
        ..Config::default()
    })
    .await
    .unwrap();
    fake.inject([twilio_fake::Fault::TooManyRequests {
        retry_after_secs: 9,
    }]);
    let limited = create(&fake, &FORM).await;
    assert_error(&limited, 429, 20429);
    assert_eq!(limited.headers["retry-after"], "9");
    assert_error(&create(&fake, &FORM).await, 500, 20500);
    assert!(fake.messages().is_empty());
}

fn list_path(fake: &FakeTwilio) -> String {
    format!("/2010-04-01/Accounts/{}/Messages.json", fake.account_sid())
}

fn fetch_path(fake: &FakeTwilio, sid: &str) -> String {
    format!(
        "/2010-04-01/Accounts/{}/Messages/{sid}.json",
        fake.account_sid()
    )
}

/// A GET with a short client timeout: Ok(answer), or Err(true) on timeout, Err(false) on a drop.
async fn get_within(fake: &FakeTwilio, path: &str, timeout: Duration) -> Result<Answer, bool> {
    let result = reqwest::Client::new()
        .get(format!("{}{path}", fake.base_url()))
        .basic_auth(fake.account_sid(), Some(fake.auth_token()))
        .timeout(timeout)
        .send()
        .await;
    match result {
        Ok(response) => Ok(answer(response).await),
        Err(e) => Err(e.is_timeout()),
    }
}

#[tokio::test]
async fn scripted_read_faults_hit_their_endpoint_only() {
    let fake = FakeTwilio::start(Config::default()).await.unwrap();
    let sid = create(&fake, &FORM).await.json["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let script = [
        ReadFault::ServerError,
        ReadFault::TooManyRequests {
            retry_after_secs: 3,
        },
        ReadFault::Slow { delay_ms: 400 },
        ReadFault::DropConnection,
    ];
    let short = Duration::from_millis(150);
    for (endpoint, path, other) in [
        (
            ReadEndpoint::Fetch,
            fetch_path(&fake, &sid),
            list_path(&fake),
        ),
        (
            ReadEndpoint::List,
            list_path(&fake),
            fetch_path(&fake, &sid),
        ),
    ] {
        fake.inject_reads(endpoint, script.clone());
        assert_eq!(get(&fake, &other).await.status, 200, "{endpoint:?} only");

        assert_error(&get(&fake, &path).await, 500, 20500);
        let limited = get(&fake, &path).await;
        assert_error(&limited, 429, 20429);
        assert_eq!(limited.headers["retry-after"], "3");
        assert_eq!(get_within(&fake, &path, short).await.err(), Some(true));
        assert_eq!(get_within(&fake, &path, short).await.err(), Some(false));
        let fine = get(&fake, &path).await;
        assert_eq!(fine.status, 200, "{endpoint:?} faults are used up");
    }
    assert_eq!(fake.messages().len(), 1, "reads never create");
}

#[tokio::test]
async fn slow_reads_answer_normally_after_the_delay() {
    let fake = FakeTwilio::start(Config::default()).await.unwrap();
    create(&fake, &FORM).await;
    fake.inject_reads(ReadEndpoint::List, [ReadFault::Slow { delay_ms: 200 }]);
    let started = std::time::Instant::now();
    let listed = get(&fake, &list_path(&fake)).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(listed.json["messages"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn random_read_faults_follow_their_rates() {
    let read = ReadFaultRates {
        server_error: 0.2,
        too_many_requests: 0.1,
        drop_connection: 0.1,
        ..ReadFaultRates::default()
    };
    let fake = FakeTwilio::start(Config {
        fault_rates: FaultRates {
            list: read,
            fetch: ReadFaultRates {
                slow: 1.0,
                slow_ms: 300,
                ..ReadFaultRates::default()
            },
            ..FaultRates::default()
        },
        seed: Some(3),
        ..Config::default()
    })
    .await
    .unwrap();
    let sid = create(&fake, &FORM).await.json["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut errors, mut limited, mut dropped, mut fine) = (0, 0, 0, 0);
    for _ in 0..300 {
        match get_within(&fake, &list_path(&fake), Duration::from_secs(5)).await {
            Ok(a) if a.status == 500 => errors += 1,
            Ok(a) if a.status == 429 => limited += 1,
            Ok(a) if a.status == 200 => fine += 1,
            Ok(a) => panic!("unexpected {}", a.status),
            Err(timeout) => {
                assert!(!timeout);
                dropped += 1;
            }
        }
    }
    // 300 draws: p = 0.2 mean 60 sd 7; p = 0.1 mean 30 sd 5; p = 0.6 mean 180 sd 8.5.
    assert!((35..=85).contains(&errors), "{errors} server errors");
    assert!((15..=45).contains(&limited), "{limited} 429s");
    assert!((15..=45).contains(&dropped), "{dropped} drops");
    assert!((150..=210).contains(&fine), "{fine} answers");

    let slow = get_within(&fake, &fetch_path(&fake, &sid), Duration::from_millis(100)).await;
    assert_eq!(slow.err(), Some(true), "fetch at slow rate 1 times out");
}
