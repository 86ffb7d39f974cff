//! How a plugin call fails: the kinds the metrics count ([`FailureKind`]), the failure
//! itself with a message for the log ([`CallFailure`]), and how a wasmtime error and what the
//! sandbox observed become one ([`classify`]).

use super::host_wait::within_wall_limit;
use super::sandbox::Sandbox;
use std::time::Duration;
use wasmtime::Trap;

/// How a call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The plugin trapped (panic, unreachable, host import failure).
    Trap,
    /// It ran past its deadline.
    Timeout,
    /// It asked for more memory than its cap.
    Memory,
    /// Its answer broke the contract.
    Invalid,
    /// Every call slot of its binding stayed taken for as long as a call may last: the
    /// call was not made (overload, not a fault of the plugin's).
    Busy,
}

impl FailureKind {
    /// Every kind, for series created at zero.
    pub const ALL: [FailureKind; 5] = [
        FailureKind::Trap,
        FailureKind::Timeout,
        FailureKind::Memory,
        FailureKind::Invalid,
        FailureKind::Busy,
    ];

    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Trap => "trap",
            FailureKind::Timeout => "timeout",
            FailureKind::Memory => "memory",
            FailureKind::Invalid => "invalid",
            FailureKind::Busy => "busy",
        }
    }
}

/// A failed call: its kind and a message for logs (never for API callers).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} ({message})", kind.as_str())]
pub struct CallFailure {
    /// What went wrong.
    pub kind: FailureKind,
    /// Detail for the log.
    pub message: String,
}

impl CallFailure {
    /// An answer that broke the contract.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Invalid,
            message: message.into(),
        }
    }
}

/// Maps a wasmtime error to a failure kind, using what the sandbox observed.
pub(crate) fn classify(error: wasmtime::Error, sandbox: &Sandbox) -> CallFailure {
    let kind = if sandbox.memory.refused {
        FailureKind::Memory
    } else if let Some(trap) = error.downcast_ref::<Trap>() {
        if *trap == Trap::Interrupt {
            FailureKind::Timeout
        } else {
            FailureKind::Trap
        }
    } else if sandbox.host_error.is_some() {
        FailureKind::Trap
    } else {
        // Lifting errors (invalid UTF-8, bad discriminants, out-of-bounds pointers) and
        // other non-trap errors mean the answer broke the contract.
        FailureKind::Invalid
    };
    // What the operator reads: the plugin's own panic message when it reported one, the
    // host import's failure, else the root cause (a trap's description), never the wasm
    // backtrace of mangled frame names that wasmtime wraps around it.
    let message = match (kind, &sandbox.panic, &sandbox.host_error) {
        (FailureKind::Trap, Some(panic), _) => format!("plugin {panic}"),
        (_, _, Some(host_error)) => format!("{}: {host_error}", error.root_cause()),
        _ => error.root_cause().to_string(),
    };
    CallFailure { kind, message }
}

/// Runs `call`, stopping it as a timeout failure once it has waited in a host call (a WASI
/// sleep or poll, a counter on Redis) for `limit`; its instance is dropped with it.
pub(crate) async fn limit_host_waits<T>(
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, CallFailure>>,
) -> Result<T, CallFailure> {
    within_wall_limit(limit, call).await.unwrap_or_else(|| {
        Err(CallFailure {
            kind: FailureKind::Timeout,
            message: format!(
                "waited in a host call (sleep, poll or counter) past {} ms",
                limit.as_millis()
            ),
        })
    })
}
