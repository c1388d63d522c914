//! Random faults at configured rates: what real networks do to a fraction of requests, drawn from
//! a seeded generator so that a run can be replayed. Scripted faults (`inject`) take precedence.

use crate::faults::{Fault, ReadFault};
use crate::random::Rng;

/// Per-request probabilities of the create call's faults. At most one fault hits a request, so
/// the probabilities must sum to at most 1; the rest of the requests succeed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CreateFaultRates {
    /// [`Fault::ServerError`]: 500, not created.
    pub server_error: f64,
    /// [`Fault::CreatedThenServerError`]: created, then 500.
    pub created_then_server_error: f64,
    /// [`Fault::TooManyRequests`] with `retry_after_secs`: not created.
    pub too_many_requests: f64,
    /// [`Fault::Slow`] by `slow_ms`: created, answered late.
    pub slow: f64,
    /// [`Fault::DropConnection`]: no answer, not created.
    pub drop_connection: f64,
    pub retry_after_secs: u64,
    pub slow_ms: u64,
}

/// Per-request probabilities of one read endpoint's faults (at most one per request, sum ≤ 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReadFaultRates {
    pub server_error: f64,
    pub too_many_requests: f64,
    /// Answers after `slow_ms`, so a client's timeout fires.
    pub slow: f64,
    /// Closes the connection unanswered.
    pub drop_connection: f64,
    pub retry_after_secs: u64,
    pub slow_ms: u64,
}

/// Per-callback probabilities, drawn independently. Like Twilio, a lost callback is never resent;
/// the message's status moves on regardless, so only a fetch tells the truth.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CallbackFaultRates {
    /// The callback is never posted.
    pub drop: f64,
    /// The callback is posted twice.
    pub duplicate: f64,
    /// The callback is held back so that later ones overtake it.
    pub reorder: f64,
}

/// All random-fault rates of a fake account; the default is no random fault at all.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultRates {
    pub create: CreateFaultRates,
    pub list: ReadFaultRates,
    pub fetch: ReadFaultRates,
    pub callbacks: CallbackFaultRates,
}

const DEFAULT_RETRY_AFTER_SECS: u64 = 1;
/// Longer than the client timeouts tests use, short enough not to stall a graceful stop for long.
const DEFAULT_SLOW_MS: u64 = 5_000;

impl Default for CreateFaultRates {
    fn default() -> Self {
        CreateFaultRates {
            server_error: 0.0,
            created_then_server_error: 0.0,
            too_many_requests: 0.0,
            slow: 0.0,
            drop_connection: 0.0,
            retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
            slow_ms: DEFAULT_SLOW_MS,
        }
    }
}

impl Default for ReadFaultRates {
    fn default() -> Self {
        ReadFaultRates {
            server_error: 0.0,
            too_many_requests: 0.0,
            slow: 0.0,
            drop_connection: 0.0,
            retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
            slow_ms: DEFAULT_SLOW_MS,
        }
    }
}

impl FaultRates {
    /// Refuses probabilities outside `[0, 1]` and exclusive sets that sum above 1.
    pub fn check(&self) -> anyhow::Result<()> {
        let c = &self.create;
        exclusive(
            "create",
            &[
                c.server_error,
                c.created_then_server_error,
                c.too_many_requests,
                c.slow,
                c.drop_connection,
            ],
        )?;
        for (name, r) in [("list", &self.list), ("fetch", &self.fetch)] {
            exclusive(
                name,
                &[
                    r.server_error,
                    r.too_many_requests,
                    r.slow,
                    r.drop_connection,
                ],
            )?;
        }
        let cb = &self.callbacks;
        for p in [cb.drop, cb.duplicate, cb.reorder] {
            probability("callbacks", p)?;
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
    // A little slack for sums like 0.1 + 0.2 + 0.7 that are 1 on paper.
    anyhow::ensure!(
        sum <= 1.0 + 1e-9,
        "{what} fault rates sum to {sum}, above 1"
    );
    Ok(())
}

/// Picks at most one of `choices` with their probabilities, from a single draw.
fn pick<F>(rng: &Rng, choices: impl IntoIterator<Item = (f64, F)>) -> Option<F> {
    let draw = rng.unit();
    let mut bound = 0.0;
    choices.into_iter().find_map(|(p, fault)| {
        bound += p;
        (p > 0.0 && draw < bound).then_some(fault)
    })
}

impl CreateFaultRates {
    /// The random fault for one create request, if it draws one.
    pub(crate) fn draw(&self, rng: &Rng) -> Option<Fault> {
        pick(
            rng,
            [
                (self.server_error, Fault::ServerError),
                (
                    self.created_then_server_error,
                    Fault::CreatedThenServerError,
                ),
                (
                    self.too_many_requests,
                    Fault::TooManyRequests {
                        retry_after_secs: self.retry_after_secs,
                    },
                ),
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
    /// The random fault for one read request, if it draws one.
    pub(crate) fn draw(&self, rng: &Rng) -> Option<ReadFault> {
        pick(
            rng,
            [
                (self.server_error, ReadFault::ServerError),
                (
                    self.too_many_requests,
                    ReadFault::TooManyRequests {
                        retry_after_secs: self.retry_after_secs,
                    },
                ),
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
        rates.create.server_error = 0.6;
        rates.create.slow = 0.4;
        assert!(rates.check().is_ok());
        rates.create.drop_connection = 0.1;
        assert!(rates.check().is_err());
        let mut rates = FaultRates::default();
        rates.fetch.too_many_requests = -0.1;
        assert!(rates.check().is_err());
        let mut rates = FaultRates::default();
        rates.callbacks.drop = f64::NAN;
        assert!(rates.check().is_err());
        rates.callbacks = CallbackFaultRates {
            drop: 1.0,
            duplicate: 1.0,
            reorder: 1.0,
        };
        assert!(rates.check().is_ok());
    }

    #[test]
    fn draws_split_by_rate() {
        let rng = Rng::from_seed(1);
        let rates = CreateFaultRates {
            server_error: 0.5,
            drop_connection: 0.5,
            ..CreateFaultRates::default()
        };
        let draws: Vec<_> = (0..1000).map(|_| rates.draw(&rng)).collect();
        assert!(
            draws.iter().all(Option::is_some),
            "rates summing to 1 always fault"
        );
        let errors = draws
            .iter()
            .filter(|f| **f == Some(Fault::ServerError))
            .count();
        assert!(
            (420..=580).contains(&errors),
            "{errors} server errors of 1000"
        );
        assert_eq!(CreateFaultRates::default().draw(&rng), None);
    }
}
