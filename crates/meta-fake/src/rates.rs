//! Random faults at configured rates, drawn from a seeded generator so that a run can be replayed.
//! Scripted faults (`inject`, `inject_reads`) take precedence.

use crate::faults::{Fault, ReadFault};
use crate::random::Rng;

/// Per-request probabilities of the send call's faults; at most one hits a request, so they must
/// sum to at most 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SendFaultRates {
    /// [`Fault::ServerError`]: 500, not accepted.
    pub server_error: f64,
    /// [`Fault::AcceptedThenServerError`]: accepted, then 500.
    pub accepted_then_server_error: f64,
    /// [`Fault::Error`] with 130429 (429): not accepted.
    pub rate_limited: f64,
    /// [`Fault::Slow`] by `slow_ms`: accepted, answered late.
    pub slow: f64,
    /// [`Fault::DropConnection`]: no answer, not accepted.
    pub drop_connection: f64,
    pub slow_ms: u64,
}

/// Per-request probabilities of one read endpoint's faults (at most one per request, sum ≤ 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReadFaultRates {
    pub server_error: f64,
    /// 429/80007.
    pub rate_limited: f64,
    pub slow: f64,
    pub drop_connection: f64,
    pub slow_ms: u64,
}

/// Per-item probabilities (a status, or a template/quality change), drawn independently. A lost
/// item is never posted; the message's status moves on regardless.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WebhookFaultRates {
    pub drop: f64,
    pub duplicate: f64,
    /// Held back so that later items overtake it.
    pub reorder: f64,
}

/// All random-fault rates of a fake account; the default is none at all.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultRates {
    pub send: SendFaultRates,
    pub template: ReadFaultRates,
    pub phone_number: ReadFaultRates,
    pub webhooks: WebhookFaultRates,
}

/// Longer than the client timeouts tests use, short enough not to stall a graceful stop.
const DEFAULT_SLOW_MS: u64 = 5_000;

impl Default for SendFaultRates {
    fn default() -> Self {
        SendFaultRates {
            server_error: 0.0,
            accepted_then_server_error: 0.0,
            rate_limited: 0.0,
            slow: 0.0,
            drop_connection: 0.0,
            slow_ms: DEFAULT_SLOW_MS,
        }
    }
}

impl Default for ReadFaultRates {
    fn default() -> Self {
        ReadFaultRates {
            server_error: 0.0,
            rate_limited: 0.0,
            slow: 0.0,
            drop_connection: 0.0,
            slow_ms: DEFAULT_SLOW_MS,
        }
    }
}

impl FaultRates {
    /// Refuses probabilities outside `[0, 1]` and exclusive sets summing above 1.
    pub fn check(&self) -> anyhow::Result<()> {
        let s = &self.send;
        exclusive(
            "send",
            &[
                s.server_error,
                s.accepted_then_server_error,
                s.rate_limited,
                s.slow,
                s.drop_connection,
            ],
        )?;
        for (name, r) in [
            ("template", &self.template),
            ("phone number", &self.phone_number),
        ] {
            exclusive(
                name,
                &[r.server_error, r.rate_limited, r.slow, r.drop_connection],
            )?;
        }
        let w = &self.webhooks;
        for p in [w.drop, w.duplicate, w.reorder] {
            probability("webhook", p)?;
        }
        Ok(())
    }
}

fn probability(what: &str, p: f64) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&p),
        "{what} fault rate {p} is not a probability"
    );
    Ok(())
}

fn exclusive(what: &str, rates: &[f64]) -> anyhow::Result<()> {
    for &p in rates {
        probability(what, p)?;
    }
    let sum: f64 = rates.iter().sum();
    // Slack for sums like 0.1 + 0.2 + 0.7 that are 1 on paper.
    anyhow::ensure!(
        sum <= 1.0 + 1e-9,
        "{what} fault rates sum to {sum}, above 1"
    );
    Ok(())
}

/// At most one of `choices`, picked with their probabilities from a single draw.
fn pick<F>(rng: &Rng, choices: impl IntoIterator<Item = (f64, F)>) -> Option<F> {
    let draw = rng.unit();
    let mut bound = 0.0;
    choices.into_iter().find_map(|(p, fault)| {
        bound += p;
        (p > 0.0 && draw < bound).then_some(fault)
    })
}

impl SendFaultRates {
    pub(crate) fn draw(&self, rng: &Rng) -> Option<Fault> {
        pick(
            rng,
            [
                (self.server_error, Fault::ServerError),
                (
                    self.accepted_then_server_error,
                    Fault::AcceptedThenServerError,
                ),
                (self.rate_limited, Fault::Error { code: 130_429 }),
                (
                    self.slow,
                    Fault::Slow {
                        delay_ms: self.slow_ms,
                    },
                ),
                (self.drop_connection, Fault::DropConnection),
            ],
        )
    }
}

impl ReadFaultRates {
    pub(crate) fn draw(&self, rng: &Rng) -> Option<ReadFault> {
        pick(
            rng,
            [
                (self.server_error, ReadFault::ServerError),
                (self.rate_limited, ReadFault::RateLimited),
                (
                    self.slow,
                    ReadFault::Slow {
                        delay_ms: self.slow_ms,
                    },
                ),
                (self.drop_connection, ReadFault::DropConnection),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_must_be_probabilities_summing_to_at_most_one() {
        assert!(FaultRates::default().check().is_ok());
        let mut rates = FaultRates::default();
        rates.send.server_error = 0.5;
        rates.send.slow = 0.5;
        assert!(rates.check().is_ok());
        rates.send.drop_connection = 0.1;
        assert!(rates.check().is_err());
        let mut rates = FaultRates::default();
        rates.phone_number.rate_limited = -0.1;
        assert!(rates.check().is_err());
        let mut rates = FaultRates::default();
        rates.webhooks.drop = f64::NAN;
        assert!(rates.check().is_err());
        rates.webhooks = WebhookFaultRates {
            drop: 1.0,
            duplicate: 1.0,
            reorder: 1.0,
        };
        assert!(rates.check().is_ok());
    }

    #[test]
    fn draws_split_by_rate() {
        let rng = Rng::from_seed(2);
        let rates = SendFaultRates {
            server_error: 0.5,
            rate_limited: 0.5,
            ..SendFaultRates::default()
        };
        let draws: Vec<_> = (0..1000).map(|_| rates.draw(&rng)).collect();
        assert!(draws.iter().all(Option::is_some));
        let limited = draws
            .iter()
            .filter(|f| **f == Some(Fault::Error { code: 130_429 }))
            .count();
        assert!((420..=580).contains(&limited), "{limited} of 1000");
        assert_eq!(SendFaultRates::default().draw(&rng), None);
    }
}
