//! Seeded randomness for ids, trace ids, shuffles and fault draws.
//!
//! SplitMix64 over an atomic counter: lock-free, and every output of one generator is distinct
//! (the mix is a bijection of a counter that never repeats), so ids cannot collide in an instance.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

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
        let counter = self
            .state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        mix(counter)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub(crate) fn chance(&self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in `0..=max`.
    pub(crate) fn up_to(&self, max: u64) -> u64 {
        self.next_u64() % max.saturating_add(1).max(1)
    }

    /// Fisher–Yates shuffle.
    pub(crate) fn shuffle<T>(&self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }

    /// A message id shaped like Meta's: `wamid.` + base64 of an opaque binary record.
    pub(crate) fn wamid(&self) -> String {
        let mut raw = Vec::with_capacity(27);
        raw.extend_from_slice(&[0x1c, 0x18, 0x0b]);
        for _ in 0..3 {
            raw.extend_from_slice(&self.next_u64().to_be_bytes());
        }
        format!(
            "wamid.{}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// A Graph object id: 15 decimal digits, never starting with 0.
    pub(crate) fn graph_id(&self) -> String {
        (100_000_000_000_000 + self.next_u64() % 900_000_000_000_000).to_string()
    }
}

/// The SplitMix64 finaliser.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::Rng;
    use std::collections::HashSet;

    #[test]
    fn ids_are_well_formed_and_distinct() {
        let rng = Rng::from_seed(3);
        let wamids: HashSet<String> = (0..5_000).map(|_| rng.wamid()).collect();
        assert_eq!(wamids.len(), 5_000);
        assert!(wamids.iter().all(|id| id.starts_with("wamid.HBgL")));
        let id = rng.graph_id();
        assert_eq!(id.len(), 15);
        assert!(id.bytes().all(|b| b.is_ascii_digit()));
    }

    #[test]
    fn same_seed_same_draws() {
        let (a, b) = (Rng::from_seed(9), Rng::from_seed(9));
        let draws = |rng: &Rng| (0..50).map(|_| rng.unit()).collect::<Vec<_>>();
        let first = draws(&a);
        assert_eq!(first, draws(&b));
        assert!(first.iter().all(|u| (0.0..1.0).contains(u)));
        assert!(!a.chance(0.0) && a.chance(1.0));
    }

    #[test]
    fn shuffle_keeps_elements() {
        let rng = Rng::from_seed(1);
        let mut items: Vec<u32> = (0..64).collect();
        rng.shuffle(&mut items);
        items.sort_unstable();
        assert_eq!(items, (0..64).collect::<Vec<_>>());
    }
}
