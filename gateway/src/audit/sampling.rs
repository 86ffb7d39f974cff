//! Sampling of the audit log's high-volume, low-value part: allowed, successful calls may be
//! kept at a rate (`AUDIT_SAMPLE_ALLOWED`), each kept row recording that rate so counts can
//! be scaled back; every other call (refused, failed, denied by a policy, hit by a chaos
//! fault, or an action that changes something: a `write` permission in the catalog, such as
//! `gmail_send.send`) is always kept.

/// What sampling decides for one call's row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Keep {
    /// Kept, standing for itself alone (`sample_rate` left empty).
    Always,
    /// Kept, standing for about `1 / rate` such calls.
    Sampled(f64),
    /// Not written.
    Skipped,
}

/// The call as sampling sees it.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// The status answered was 2xx.
    pub success: bool,
    /// A policy denied it or failed (`deny`, `error`).
    pub policy_refused: bool,
    /// A chaos fault was injected.
    pub chaos_fault: bool,
    /// The action changes something outside (its catalog permission is `write`).
    pub writes: bool,
}

/// Decides the row of `call` at `rate` (in (0, 1]); `draw` gives a number uniform in
/// [0, 1), asked for only when the row is sampled (not at the default rate of 1, nor for a
/// row always kept).
pub fn decide(rate: f64, call: Call, draw: impl FnOnce() -> f64) -> Keep {
    let low_value = call.success && !call.policy_refused && !call.chaos_fault && !call.writes;
    if !low_value || rate >= 1.0 {
        Keep::Always
    } else if draw() < rate {
        Keep::Sampled(rate)
    } else {
        Keep::Skipped
    }
}

/// Parses `AUDIT_SAMPLE_ALLOWED`: a share above 0 and at most 1.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if rate > 0.0 && rate <= 1.0 {
        Ok(rate)
    } else {
        Err(format!(
            "{rate} is not in (0, 1]: 1 keeps every call, 0.1 one in ten"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOWED: Call = Call {
        success: true,
        policy_refused: false,
        chaos_fault: false,
        writes: false,
    };

    #[test]
    fn only_allowed_successes_are_sampled() {
        assert_eq!(decide(0.1, ALLOWED, || 0.05), Keep::Sampled(0.1));
        assert_eq!(decide(0.1, ALLOWED, || 0.5), Keep::Skipped);
        assert_eq!(decide(1.0, ALLOWED, || 0.99), Keep::Always);
        let kept_always = [
            Call {
                success: false,
                ..ALLOWED
            },
            Call {
                policy_refused: true,
                ..ALLOWED
            },
            Call {
                writes: true,
                ..ALLOWED
            },
            Call {
                chaos_fault: true,
                ..ALLOWED
            },
        ];
        for call in kept_always {
            assert_eq!(decide(0.01, call, || 0.99), Keep::Always, "{call:?}");
        }
    }

    #[test]
    fn the_rate_is_a_share_above_zero() {
        assert_eq!(parse_rate("0.25"), Ok(0.25));
        assert_eq!(parse_rate("1"), Ok(1.0));
        for bad in ["0", "-0.5", "1.5", "NaN", "half"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
