//! Per-user send rate limit (API.md §4) as a generic cell rate algorithm: one stored timestamp
//! per key is enough, which makes it easy to keep in a shared store across nodes.

const MICROS_PER_SECOND: i64 = 1_000_000;

/// Rate `per_second` with bursts of up to `burst` requests at once.
#[derive(Debug, Clone, Copy)]
pub struct Gcra {
    /// Time one request "costs", in µs.
    emission_interval: i64,
    /// How far the theoretical arrival time may run ahead of now: `burst` requests' worth.
    burst_window: i64,
    burst: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow { remaining: u32 },
    Deny { retry_after_micros: u64 },
}

impl Gcra {
    /// `per_second` and `burst` are clamped to at least 1.
    pub fn new(per_second: u32, burst: u32) -> Gcra {
        let per_second = i64::from(per_second.max(1));
        let burst = burst.max(1);
        // At least 1 µs, so rates above a million per second stay well defined.
        let emission_interval = (MICROS_PER_SECOND / per_second).max(1);
        Gcra {
            emission_interval,
            burst_window: emission_interval * i64::from(burst),
            burst,
        }
    }

    /// = burst, for X-RateLimit-Limit.
    pub fn limit(&self) -> u32 {
        self.burst
    }

    /// The time one request costs, in µs: what a copy of this rule elsewhere (a shared
    /// store's script) needs to decide alike.
    pub fn emission_interval_micros(&self) -> i64 {
        self.emission_interval
    }

    /// How far the theoretical arrival time may run ahead of now, in µs.
    pub fn burst_window_micros(&self) -> i64 {
        self.burst_window
    }

    /// `tat` is the stored theoretical arrival time in µs (None = fresh key). Allowed requests
    /// advance it; a denied request leaves it unchanged (so it is not counted against the next
    /// window). `remaining` = how many more requests would be allowed right now after this one.
    pub fn check(&self, tat: &mut Option<i64>, now_micros: i64) -> Decision {
        let start = tat.map_or(now_micros, |stored| stored.max(now_micros));
        let next = start.saturating_add(self.emission_interval);
        let allowed_from = next.saturating_sub(self.burst_window);
        if now_micros < allowed_from {
            let wait = allowed_from.saturating_sub(now_micros);
            return Decision::Deny {
                retry_after_micros: wait.unsigned_abs(),
            };
        }
        *tat = Some(next);
        let headroom = now_micros
            .saturating_add(self.burst_window)
            .saturating_sub(next)
            / self.emission_interval;
        let remaining = headroom.clamp(0, i64::from(self.burst));
        Decision::Allow {
            remaining: u32::try_from(remaining).unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000;

    /// Runs `n` requests at `now` and returns their decisions.
    fn burst(gcra: &Gcra, tat: &mut Option<i64>, now: i64, n: usize) -> Vec<Decision> {
        (0..n).map(|_| gcra.check(tat, now)).collect()
    }

    #[test]
    fn allows_a_burst_of_five_then_denies() {
        let gcra = Gcra::new(5, 5);
        let mut tat = None;
        let now = 1_000 * SECOND;
        let decisions = burst(&gcra, &mut tat, now, 6);
        let expected: Vec<Decision> = (0..5)
            .rev()
            .map(|remaining| Decision::Allow { remaining })
            .chain([Decision::Deny {
                retry_after_micros: 200_000,
            }])
            .collect();
        assert_eq!(decisions, expected);
    }

    #[test]
    fn retry_after_shrinks_as_time_passes() {
        let gcra = Gcra::new(5, 5);
        let mut tat = None;
        burst(&gcra, &mut tat, 0, 5);
        assert_eq!(
            gcra.check(&mut tat, 150_000),
            Decision::Deny {
                retry_after_micros: 50_000
            }
        );
    }

    #[test]
    fn recovers_one_request_per_interval() {
        let gcra = Gcra::new(5, 5);
        let mut tat = None;
        burst(&gcra, &mut tat, 0, 5);
        assert_eq!(
            gcra.check(&mut tat, 200_000),
            Decision::Allow { remaining: 0 }
        );
        assert!(matches!(
            gcra.check(&mut tat, 200_000),
            Decision::Deny { .. }
        ));
        assert_eq!(
            gcra.check(&mut tat, 400_000),
            Decision::Allow { remaining: 0 }
        );
    }

    #[test]
    fn full_burst_returns_after_a_quiet_second() {
        let gcra = Gcra::new(5, 5);
        let mut tat = None;
        burst(&gcra, &mut tat, 0, 5);
        assert_eq!(
            gcra.check(&mut tat, SECOND),
            Decision::Allow { remaining: 4 }
        );
        // Idle time beyond that does not bank extra credit.
        let mut tat = None;
        burst(&gcra, &mut tat, 0, 5);
        let later = burst(&gcra, &mut tat, 60 * SECOND, 6);
        assert_eq!(later[0], Decision::Allow { remaining: 4 });
        assert!(matches!(later[5], Decision::Deny { .. }));
    }

    #[test]
    fn denied_requests_are_not_counted() {
        let gcra = Gcra::new(5, 5);
        let mut tat = None;
        burst(&gcra, &mut tat, 0, 5);
        let stored = tat;
        for _ in 0..100 {
            assert!(matches!(
                gcra.check(&mut tat, 100_000),
                Decision::Deny { .. }
            ));
        }
        assert_eq!(tat, stored);
        // Exactly as if the hammering had never happened.
        assert_eq!(
            gcra.check(&mut tat, 200_000),
            Decision::Allow { remaining: 0 }
        );
    }

    #[test]
    fn steady_rate_is_sustained() {
        let gcra = Gcra::new(5, 5);
        let mut tat = None;
        for i in 0..50 {
            assert_eq!(
                gcra.check(&mut tat, i * 200_000),
                Decision::Allow { remaining: 4 },
                "request {i}"
            );
        }
    }

    #[test]
    fn burst_of_one_allows_one_at_a_time() {
        let gcra = Gcra::new(2, 1);
        let mut tat = None;
        assert_eq!(gcra.check(&mut tat, 0), Decision::Allow { remaining: 0 });
        assert_eq!(
            gcra.check(&mut tat, 0),
            Decision::Deny {
                retry_after_micros: 500_000
            }
        );
        assert_eq!(
            gcra.check(&mut tat, 500_000),
            Decision::Allow { remaining: 0 }
        );
    }

    #[test]
    fn clamps_zero_settings_and_reports_limit() {
        let gcra = Gcra::new(0, 0);
        assert_eq!(gcra.limit(), 1);
        assert_eq!(Gcra::new(5, 10).limit(), 10);
        let mut tat = None;
        assert_eq!(gcra.check(&mut tat, 0), Decision::Allow { remaining: 0 });
        assert_eq!(
            gcra.check(&mut tat, 0),
            Decision::Deny {
                retry_after_micros: 1_000_000
            }
        );
    }

    #[test]
    fn extreme_rates_and_times_do_not_overflow() {
        let fast = Gcra::new(u32::MAX, u32::MAX);
        let mut tat = None;
        assert!(matches!(
            fast.check(&mut tat, i64::MAX),
            Decision::Allow { .. }
        ));
        let gcra = Gcra::new(5, 5);
        let mut tat = Some(i64::MAX);
        assert!(matches!(
            gcra.check(&mut tat, i64::MIN),
            Decision::Deny { .. }
        ));
    }
}
