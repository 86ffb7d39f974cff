//! The traffic mix: which flow an iteration runs (by weight) and which probabilistic steps it
//! takes, drawn from one seeded generator so that a run can be repeated exactly.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Draws flows by weight and coin flips by probability.
pub struct Mix {
    cumulative: Vec<f64>,
    rng: StdRng,
}

impl Mix {
    /// A mix over `weights` (all positive), seeded.
    pub fn new(weights: &[f64], seed: u64) -> Self {
        let total: f64 = weights.iter().sum();
        let mut running = 0.0;
        let cumulative = weights
            .iter()
            .map(|w| {
                running += w / total;
                running
            })
            .collect();
        Self {
            cumulative,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The index of the next flow.
    pub fn pick(&mut self) -> usize {
        let x: f64 = self.rng.gen();
        self.cumulative
            .iter()
            .position(|&c| x < c)
            .unwrap_or(self.cumulative.len() - 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p >= 1.0 || self.rng.gen::<f64>() < p
    }

    /// A number in 0..1_000_000, for `{rand}` in parameters.
    pub fn number(&mut self) -> u32 {
        self.rng.gen_range(0..1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_converge_to_the_weights() {
        let mut mix = Mix::new(&[60.0, 30.0, 10.0], 7);
        let mut counts = [0u32; 3];
        let n = 100_000;
        for _ in 0..n {
            counts[mix.pick()] += 1;
        }
        for (count, share) in counts.iter().zip([0.6, 0.3, 0.1]) {
            let seen = f64::from(*count) / f64::from(n);
            assert!((seen - share).abs() < 0.01, "{counts:?}");
        }
    }

    #[test]
    fn chances_converge_to_their_probability() {
        let mut mix = Mix::new(&[1.0], 1);
        let hits = (0..60_000).filter(|_| mix.chance(1.0 / 30.0)).count();
        assert!((2_000 - hits as i64).abs() < 150, "{hits}");
        assert!((0..100).all(|_| mix.chance(1.0)));
        assert!(!(0..100).any(|_| mix.chance(0.0)));
    }

    #[test]
    fn the_same_seed_draws_the_same_run() {
        let mut a = Mix::new(&[1.0, 2.0], 42);
        let mut b = Mix::new(&[1.0, 2.0], 42);
        let draws = |m: &mut Mix| (0..50).map(|_| (m.pick(), m.number())).collect::<Vec<_>>();
        assert_eq!(draws(&mut a), draws(&mut b));
    }
}
