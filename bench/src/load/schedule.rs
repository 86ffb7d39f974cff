//! When iterations start: the arrival rate is piecewise linear (a start rate, then stages that
//! move it linearly to their target), and iteration `k` starts when the integral of the rate
//! reaches `k`, as k6's ramping-arrival-rate executor does. Open model: the times are fixed in
//! advance and never wait for responses.

use crate::load::scenario::Load;
use std::time::Duration;

/// The arrival schedule of a load.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// (start offset s, length s, rate at start, rate at end), in order.
    segments: Vec<(f64, f64, f64, f64)>,
}

impl Schedule {
    /// The schedule of `load`.
    pub fn new(load: &Load) -> Self {
        let mut segments = Vec::with_capacity(load.stages.len());
        let (mut start, mut rate) = (0.0, load.start_rate);
        for stage in &load.stages {
            let length = stage.duration.as_secs_f64();
            segments.push((start, length, rate, stage.target));
            start += length;
            rate = stage.target;
        }
        Self { segments }
    }

    /// Total length.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.segments.iter().map(|s| s.1).sum())
    }

    /// Iterations per second at offset `t` (0 past the end).
    pub fn rate_at(&self, t: Duration) -> f64 {
        let t = t.as_secs_f64();
        self.segments
            .iter()
            .find(|(start, length, _, _)| t >= *start && t < start + length)
            .map_or(0.0, |&(start, length, r0, r1)| {
                r0 + (r1 - r0) * (t - start) / length
            })
    }

    /// Iterations the schedule starts in all (the integral of the rate, rounded up).
    pub fn expected_iterations(&self) -> u64 {
        self.arrivals().count() as u64
    }

    /// The start offsets of every iteration, in order.
    pub fn arrivals(&self) -> impl Iterator<Item = Duration> + '_ {
        let mut k = 0.0_f64;
        let mut done = 0.0_f64; // integral of the rate up to the current segment's start
        let mut index = 0;
        std::iter::from_fn(move || loop {
            let &(start, length, r0, r1) = self.segments.get(index)?;
            let area = (r0 + r1) / 2.0 * length;
            let c = k - done;
            if c < area {
                // Solve r0·τ + a·τ²/2 = c for τ in [0, length], in the form that stays
                // exact when the slope a is 0 or the start rate is 0.
                let a = if length > 0.0 {
                    (r1 - r0) / length
                } else {
                    0.0
                };
                let root = (r0 * r0 + 2.0 * a * c).max(0.0).sqrt();
                let tau = if r0 + root > 0.0 {
                    2.0 * c / (r0 + root)
                } else {
                    0.0
                };
                k += 1.0;
                return Some(Duration::from_secs_f64(start + tau.min(length)));
            }
            done += area;
            index += 1;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::scenario::Stage;

    fn load(start_rate: f64, stages: &[(u64, f64)]) -> Load {
        Load {
            start_rate,
            stages: stages
                .iter()
                .map(|&(secs, target)| Stage {
                    duration: Duration::from_secs(secs),
                    target,
                })
                .collect(),
            timeout: Duration::from_secs(6),
        }
    }

    #[test]
    fn a_constant_rate_spaces_arrivals_evenly() {
        let s = Schedule::new(&load(10.0, &[(3, 10.0)]));
        let times: Vec<f64> = s.arrivals().map(|t| t.as_secs_f64()).collect();
        assert_eq!(times.len(), 30);
        for (k, t) in times.iter().enumerate() {
            assert!((t - k as f64 * 0.1).abs() < 1e-9, "arrival {k} at {t}");
        }
    }

    #[test]
    fn a_ramp_starts_as_many_iterations_as_its_area() {
        // 0 → 100 it/s over 10 s: area 500.
        let s = Schedule::new(&load(0.0, &[(10, 100.0)]));
        assert_eq!(s.expected_iterations(), 500);
        // Arrival k of a ramp from 0 at slope 10/s² is at sqrt(2k/10).
        let t: Vec<f64> = s.arrivals().map(|t| t.as_secs_f64()).collect();
        assert!((t[250] - (2.0 * 250.0 / 10.0_f64).sqrt()).abs() < 1e-9);
        assert!(t.windows(2).all(|w| w[0] <= w[1]), "in order");
        assert!(*t.last().unwrap() < 10.0);
    }

    #[test]
    fn stages_interpolate_linearly() {
        let s = Schedule::new(&load(10.0, &[(10, 60.0), (10, 60.0), (5, 0.0)]));
        assert_eq!(s.rate_at(Duration::from_secs(0)), 10.0);
        assert_eq!(s.rate_at(Duration::from_secs(5)), 35.0);
        assert_eq!(s.rate_at(Duration::from_secs(15)), 60.0);
        assert_eq!(s.rate_at(Duration::from_millis(22_500)), 30.0);
        assert_eq!(s.rate_at(Duration::from_secs(25)), 0.0);
        assert_eq!(s.duration(), Duration::from_secs(25));
        // Areas: 350 + 600 + 150.
        assert_eq!(s.expected_iterations(), 1100);
    }

    #[test]
    fn the_journal_profile_starts_its_k6_iteration_count() {
        // k6-local-big: 10→60 over 10 m, 60 for 10 m, →120 over 2 m, →60 over 3 m,
        // →80 over 10 m, →0 over 5 m.
        let s = Schedule::new(&load(
            10.0,
            &[
                (600, 60.0),
                (600, 60.0),
                (120, 120.0),
                (180, 60.0),
                (600, 80.0),
                (300, 0.0),
            ],
        ));
        let area =
            35.0 * 600.0 + 60.0 * 600.0 + 90.0 * 120.0 + 90.0 * 180.0 + 70.0 * 600.0 + 40.0 * 300.0;
        assert_eq!(s.expected_iterations() as f64, area);
    }

    #[test]
    fn a_zero_rate_stage_starts_nothing() {
        let s = Schedule::new(&load(0.0, &[(5, 0.0), (1, 10.0)]));
        let t: Vec<f64> = s.arrivals().map(|t| t.as_secs_f64()).collect();
        assert_eq!(t.len(), 5);
        assert!(t.iter().all(|&t| t >= 5.0));
    }
}
