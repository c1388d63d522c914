//! Randomness for SIDs, idempotency tokens and shuffles.
//!
//! Seeded once from the OS, then SplitMix64 over an atomic counter: lock-free, infallible at
//! request time, and every output is distinct (the mix is a bijection of a counter that never
//! repeats), so SIDs cannot collide within an instance.

use std::sync::atomic::{AtomicU64, Ordering};

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

pub(crate) struct Rng {
    state: AtomicU64,
}

impl Rng {
    pub(crate) fn from_os() -> anyhow::Result<Rng> {
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
        Ok(Rng {
            state: AtomicU64::new(u64::from_le_bytes(seed)),
        })
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
        let rng = Rng::from_os().unwrap();
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
        let token = Rng::from_os().unwrap().uuid();
        let groups: Vec<usize> = token.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&token[14..15], "4");
    }

    #[test]
    fn shuffle_keeps_elements() {
        let rng = Rng::from_os().unwrap();
        let mut items: Vec<u32> = (0..100).collect();
        rng.shuffle(&mut items);
        items.sort_unstable();
        assert_eq!(items, (0..100).collect::<Vec<_>>());
    }
}
