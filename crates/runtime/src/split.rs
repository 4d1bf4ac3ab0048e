//! The train/validation split rule, shared with the trainer
//! (`split_indices` in `trainer/train.py`) so that the worker, a test or an
//! auditor can recompute the split a job used from `split.json` alone.
//!
//! Each example index `i` of `n` gets the key
//! `SHA-256("veritrain.split.v1\0" || seed_le64 || i_le64)`; the `n_val`
//! indices with the smallest keys (ties broken by index) are the
//! validation split, the rest the training split. `n_val = n - floor(n * (1 -
//! fraction))` in IEEE double arithmetic, as Keras computes
//! `validation_split`. The split depends only on `(n, fraction, seed)`:
//! never on the epoch, and it is decided before any shuffling.

use sha2::{Digest, Sha256};

/// Name of the rule, recorded in `metrics.json` and `split.json`.
pub const SPLIT_ALGORITHM: &str = "sha256-rank-v1";
const DOMAIN: &[u8] = b"veritrain.split.v1\0";

/// `(train, validation)` indices, each ascending.
pub fn split_indices(n: u64, validation_fraction: f64, seed: u64) -> (Vec<u64>, Vec<u64>) {
    let n_val = validation_count(n, validation_fraction);
    let mut keyed: Vec<([u8; 32], u64)> = (0..n)
        .map(|i| {
            let mut h = Sha256::new();
            h.update(DOMAIN);
            h.update(seed.to_le_bytes());
            h.update(i.to_le_bytes());
            (h.finalize().into(), i)
        })
        .collect();
    keyed.sort_unstable();
    let cut = usize::try_from(n_val)
        .unwrap_or(usize::MAX)
        .min(keyed.len());
    let (val, train) = keyed.split_at(cut);
    let mut val: Vec<u64> = val.iter().map(|k| k.1).collect();
    let mut train: Vec<u64> = train.iter().map(|k| k.1).collect();
    val.sort_unstable();
    train.sort_unstable();
    (train, val)
}

/// Number of validation examples for `n` examples.
pub fn validation_count(n: u64, validation_fraction: f64) -> u64 {
    // Same float expression as the trainer: floor(n * (1.0 - f)).
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "n * (1 - f) lies in [0, n] for f in [0, 1); n below 2^53 in practice"
    )]
    let n_train = ((n as f64) * (1.0 - validation_fraction)).floor() as u64;
    n.saturating_sub(n_train.min(n))
}

/// SHA-256 over the indices as unsigned 64-bit little-endian, in order: the
/// `*_indices_sha256` fields of `metrics.json`.
pub fn indices_digest(indices: &[u64]) -> String {
    let mut h = Sha256::new();
    for i in indices {
        h.update(i.to_le_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn counts_follow_keras() {
        assert_eq!(validation_count(300, 0.2), 60);
        assert_eq!(validation_count(10, 0.0), 0);
        assert_eq!(validation_count(10, 0.25), 3);
        assert_eq!(validation_count(1, 0.5), 1);
        assert_eq!(validation_count(0, 0.2), 0);
    }

    #[test]
    fn known_answer_matches_the_python_trainer() {
        // The trainer's split_indices(300, 0.2, 7) digests, from a run of
        // trainer/train.py (its metrics.json). Recomputing them here proves
        // both implement the same rule.
        let (train, val) = split_indices(300, 0.2, 7);
        assert_eq!(
            indices_digest(&train),
            "ffeaa623b0099b970b3cb8347b0e0278aab6ac1dd0cb9feda8edb09ec604a728"
        );
        assert_eq!(
            indices_digest(&val),
            "3b4ec1f9abd0270a752a7c16ac0800ed9f6f170e7d69b5111ebf413864c6fcb9"
        );
    }

    proptest! {
        #[test]
        fn partition_is_disjoint_complete_and_seeded(n in 0u64..400, f in 0.0f64..0.95, seed: u64) {
            let (train, val) = split_indices(n, f, seed);
            prop_assert_eq!(train.len() as u64 + val.len() as u64, n);
            prop_assert_eq!(val.len() as u64, validation_count(n, f));
            let mut all: Vec<u64> = train.iter().chain(&val).copied().collect();
            all.sort_unstable();
            prop_assert_eq!(all, (0..n).collect::<Vec<_>>());
            prop_assert_eq!(split_indices(n, f, seed), (train, val));
        }
    }

    #[test]
    fn different_seeds_give_different_splits() {
        assert_ne!(split_indices(100, 0.2, 1).1, split_indices(100, 0.2, 2).1);
    }
}
