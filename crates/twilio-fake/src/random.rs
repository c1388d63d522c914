//! Randomness for SIDs, idempotency tokens, shuffles and fault draws.
//!
//! Seeded once (from the OS, or by the caller so a run can be replayed), then SplitMix64 over an
//! atomic counter: lock-free, infallible at request time, and every output is distinct (the mix is
//! a bijection of a counter that never repeats), so SIDs cannot collide within an instance.

use std::sync::atomic::{AtomicU64, Ordering};

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

pub(crate) struct Rng {
    state: AtomicU64,
}

impl Rng {
    pub(crate) fn from_seed(seed: u64) -> Rng {
        Rng {
            state: AtomicU64::new(seed),
        }
    }

    /// A fresh seed for runs that did not ask for one.
    pub(crate) fn os_seed() -> anyhow::Result<u64> {
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
        Ok(u64::from_le_bytes(seed))
    }

    pub(crate) fn next_u64(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(GOLDEN_GAMMA, Ordering::Relaxed)
            .wrapping_add(GOLDEN_GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, from the top 53 bits.
    pub(crate) fn unit(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p` (0 never, 1 always).
    pub(crate) fn chance(&self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in `0..=max` (modulo bias is irrelevant at the sizes used here).
    pub(crate) fn up_to(&self, max: u64) -> u64 {
        self.next_u64() % max.saturating_add(1).max(1)
    }

    /// A Twilio SID: two-letter prefix + 32 lowercase hex.
    pub(crate) fn sid(&self, prefix: &str) -> String {
        format!("{prefix}{:016x}{:016x}", self.next_u64(), self.next_u64())
    }

    /// A UUID-v4-shaped token, like Twilio's `I-Twilio-Idempotency-Token`.
    pub(crate) fn uuid(&self) -> String {
        let (a, b) = (self.next_u64(), self.next_u64());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }

    /// Fisher–Yates shuffle.
    pub(crate) fn shuffle<T>(&self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;
    use std::collections::HashSet;

    #[test]
    fn sids_are_well_formed_and_distinct() {
        let rng = Rng::from_seed(Rng::os_seed().unwrap());
        let sids: HashSet<String> = (0..10_000).map(|_| rng.sid("SM")).collect();
        assert_eq!(sids.len(), 10_000);
        for sid in &sids {
            assert_eq!(sid.len(), 34);
            assert!(sid[2..]
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
        }
    }

    #[test]
    fn uuid_shape() {
        let token = Rng::from_seed(Rng::os_seed().unwrap()).uuid();
        let groups: Vec<usize> = token.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&token[14..15], "4");
    }

    #[test]
    fn same_seed_same_draws() {
        let (a, b) = (Rng::from_seed(7), Rng::from_seed(7));
        let draws = |rng: &Rng| (0..100).map(|_| rng.unit()).collect::<Vec<_>>();
        let first = draws(&a);
        assert_eq!(first, draws(&b));
        assert!(first.iter().all(|u| (0.0..1.0).contains(u)));
        assert!(!a.chance(0.0) && a.chance(1.0));
    }

    #[test]
    fn shuffle_keeps_elements() {
        let rng = Rng::from_seed(Rng::os_seed().unwrap());
        let mut items: Vec<u32> = (0..100).collect();
        rng.shuffle(&mut items);
        items.sort_unstable();
        assert_eq!(items, (0..100).collect::<Vec<_>>());
    }
}
