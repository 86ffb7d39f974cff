//! The rules the host holds every answer to (written in the contract's doc comments too).
//! The gateway checks plugins' answers with these functions, and the SDK's native harness
//! ([`crate::testing`]) with the same ones, so a plugin that passes its native tests cannot
//! break them at runtime.

use crate::{Decision, Fault};

/// Longest deny reason or fault message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Longest deny code, in bytes.
pub const MAX_CODE_BYTES: usize = 64;
/// Largest filtered response, in bytes of JSON.
pub const MAX_FILTERED_RESPONSE_BYTES: usize = 8 << 20;
/// Longest delay a fault may ask for.
pub const MAX_FAULT_DELAY_MS: u32 = 60_000;
/// Most log lines one call may write; later ones are dropped.
pub const MAX_LOG_LINES_PER_CALL: u32 = 32;
/// Longest logged message, in bytes (longer ones are cut).
pub const MAX_LOG_MESSAGE_BYTES: usize = 1024;

/// What ends a deny reason or fault message that [`cut_message`] shortened.
pub const CUT_MARKER: &str = " [cut]";

/// `message` cut to [`MAX_MESSAGE_BYTES`] at a character boundary, ending with
/// [`CUT_MARKER`] when it was longer; as is otherwise.
pub fn cut_message(mut message: String) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let mut end = MAX_MESSAGE_BYTES - CUT_MARKER.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    message.push_str(CUT_MARKER);
    message
}

/// True when `message` is as long as [`cut_message`] leaves a message it shortened, and
/// ends with its marker.
pub fn was_cut(message: &str) -> bool {
    message.ends_with(CUT_MARKER) && message.len() + 4 > MAX_MESSAGE_BYTES
}

/// True for a valid deny code: 1–64 characters of `[a-z0-9_]`.
pub fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_CODE_BYTES
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Checks a denial's code and reason.
pub fn check_denial(code: &str, reason: &str) -> Result<(), String> {
    if !valid_code(code) {
        return Err(format!(
            "deny code {code:?} is not 1-64 characters of [a-z0-9_]"
        ));
    }
    if reason.len() > MAX_MESSAGE_BYTES {
        return Err(format!(
            "deny reason of {} bytes is over {MAX_MESSAGE_BYTES}",
            reason.len()
        ));
    }
    Ok(())
}

/// Checks a policy's decision.
pub fn check_decision(decision: &Decision) -> Result<(), String> {
    match decision {
        Decision::Allow | Decision::AllowAndFilter => Ok(()),
        Decision::Deny { code, reason } => check_denial(code, reason),
    }
}

/// Checks a fault: delay at most a minute, status 400–599, message at most 1024 bytes.
pub fn check_fault(fault: &Fault) -> Result<(), String> {
    let (ms, error) = match fault {
        Fault::None | Fault::Timeout => return Ok(()),
        Fault::Delay { ms } => (*ms, None),
        Fault::Error { status, message } => (0, Some((*status, message))),
        Fault::DelayThenError {
            ms,
            status,
            message,
        } => (*ms, Some((*status, message))),
    };
    if ms > MAX_FAULT_DELAY_MS {
        return Err(format!("fault delay {ms} ms is over {MAX_FAULT_DELAY_MS}"));
    }
    if let Some((status, message)) = error {
        if !(400..=599).contains(&status) {
            return Err(format!("fault status {status} is outside 400-599"));
        }
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(format!(
                "fault message of {} bytes is over {MAX_MESSAGE_BYTES}",
                message.len()
            ));
        }
    }
    Ok(())
}

/// Checks the size of a filtered response (the host also checks that it is JSON).
pub fn check_filtered_size(filtered: &str) -> Result<(), String> {
    if filtered.len() > MAX_FILTERED_RESPONSE_BYTES {
        return Err(format!(
            "filtered response of {} bytes is over {MAX_FILTERED_RESPONSE_BYTES}",
            filtered.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_native_side_refuses_what_the_host_refuses() {
        assert!(valid_code("quota_exceeded_2"));
        for bad in ["", "Not A Code", "dash-code", &"x".repeat(65)] {
            assert!(!valid_code(bad), "{bad:?}");
        }
        assert!(std::panic::catch_unwind(|| Decision::deny("Bad Code", "r")).is_err());
        assert!(check_denial("ok", &"x".repeat(1025)).is_err());
        assert!(check_fault(&Fault::Delay { ms: 60_001 }).is_err());
        assert!(check_fault(&Fault::Error {
            status: 302,
            message: String::new()
        })
        .is_err());
        assert!(check_fault(&Fault::Timeout).is_ok());
    }

    #[test]
    fn a_long_reason_is_cut_not_refused() {
        for filler in ["x", "é", "日本", "🦀"] {
            let long = filler.repeat(2_000);
            let Decision::Deny { reason, .. } = Decision::deny("intent_mismatch", long.clone())
            else {
                unreachable!()
            };
            assert!(
                reason.len() <= MAX_MESSAGE_BYTES,
                "{filler}: {}",
                reason.len()
            );
            assert!(was_cut(&reason), "{filler}");
            assert!(long.starts_with(reason.strip_suffix(CUT_MARKER).unwrap()));
            assert!(check_denial("intent_mismatch", &reason).is_ok());
        }
        let short = "x".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(cut_message(short.clone()), short);
        assert!(!was_cut(&short));
    }
}
