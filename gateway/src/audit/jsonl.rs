//! The audit log as JSON lines, for log pipelines (Vector, Fluent Bit, Promtail…) to tail
//! (`AUDIT_SINK=jsonl|both`): one line per row, appended to `AUDIT_JSONL_PATH` and rotated
//! by size (`AUDIT_JSONL_MAX_BYTES`; the file is renamed `….1`, the older ones shift, and
//! `AUDIT_JSONL_FILES` of them are kept). Each batch of the audit writer is one write and
//! one flush, so a batch is never split across two files and nothing written is lost when a
//! file rotates or the process stops.
//!
//! Format, version 1 (`"v": 1`; fields are only ever added within a version):
//!
//! - a proxied call: `{"v":1,"type":"request","at":"<RFC 3339, ms>","id","correlation_id",
//!   "agent_id"|null,"tool","action","status","success","error_code"|null,
//!   "response_time_ms","cached","policy_decision"|null,"chaos_fault"|null,
//!   "sample_rate"}` (`sample_rate`: 1 unless the row was sampled);
//! - a policy denial or failure, or a redirect hop's decision: `{"v":1,"type":"policy",
//!   "at","id","policy"|null,"agent_id","tool","action","decision","reason"|null,
//!   "correlation_id"|null}`.

use crate::clock::iso_ms;
use crate::store::policies::PolicyLogRow;
use crate::store::request_logs::RequestLogRow;
use file_rotate::compression::Compression;
use file_rotate::suffix::AppendCount;
use file_rotate::{ContentLimit, FileRotate};
use parking_lot::Mutex;
use serde::Serialize;
use std::io::Write;
use std::path::Path;

/// The format's version, in every line.
pub const FORMAT_VERSION: u32 = 1;

/// The rotating file. Writes are blocking: call them off the async workers.
pub struct JsonlSink {
    file: Mutex<FileRotate<AppendCount>>,
}

impl JsonlSink {
    /// Opens (or creates, with its folder) `path` for appending; it rotates once it passes
    /// `max_bytes`, keeping `files` rotated files.
    pub fn open(path: &Path, max_bytes: u64, files: usize) -> std::io::Result<Self> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)?;
        }
        // Fails early on a path that cannot be written (FileRotate would only say so later).
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let file = FileRotate::new(
            path,
            AppendCount::new(files.max(1)),
            ContentLimit::BytesSurpassed(usize::try_from(max_bytes).unwrap_or(usize::MAX)),
            Compression::None,
            None,
        );
        Ok(Self {
            file: Mutex::new(file),
        })
    }

    /// Appends `lines` (whole lines, as [`lines`] makes them) in one write, then flushes.
    pub fn append(&self, lines: &[u8]) -> std::io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut file = self.file.lock();
        file.write_all(lines)?;
        file.flush()
    }
}

/// The lines of one batch: its request rows, then its policy rows.
pub fn lines(requests: &[RequestLogRow], policies: &[PolicyLogRow]) -> Vec<u8> {
    let mut out = Vec::with_capacity((requests.len() + policies.len()) * 320);
    for row in requests {
        write_line(&mut out, &RequestLine::from(row));
    }
    for row in policies {
        write_line(&mut out, &PolicyLine::from(row));
    }
    out
}

fn write_line(out: &mut Vec<u8>, line: &impl Serialize) {
    // Serialising these plain structs cannot fail.
    if serde_json::to_writer(&mut *out, line).is_ok() {
        out.push(b'\n');
    }
}

#[derive(Serialize)]
struct RequestLine<'a> {
    v: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    at: String,
    id: &'a str,
    correlation_id: &'a str,
    agent_id: Option<&'a str>,
    tool: &'a str,
    action: &'a str,
    status: i64,
    success: bool,
    error_code: Option<&'a str>,
    response_time_ms: f64,
    cached: bool,
    policy_decision: Option<&'a str>,
    chaos_fault: Option<&'a str>,
    sample_rate: f64,
}

impl<'a> From<&'a RequestLogRow> for RequestLine<'a> {
    fn from(r: &'a RequestLogRow) -> Self {
        Self {
            v: FORMAT_VERSION,
            kind: "request",
            at: iso_ms(r.created_at),
            id: &r.id,
            correlation_id: &r.correlation_id,
            agent_id: r.agent_id.as_deref(),
            tool: &r.tool,
            action: &r.action,
            status: r.status_code,
            success: r.success == 1,
            error_code: r.error_code.as_deref(),
            response_time_ms: r.response_time_ms,
            cached: r.cached == 1,
            policy_decision: r.policy_decision.as_deref(),
            chaos_fault: r.chaos_fault.as_deref(),
            sample_rate: r.sample_rate.unwrap_or(1.0),
        }
    }
}

#[derive(Serialize)]
struct PolicyLine<'a> {
    v: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    at: String,
    id: &'a str,
    policy: Option<&'a str>,
    agent_id: &'a str,
    tool: &'a str,
    action: &'a str,
    decision: &'a str,
    reason: Option<&'a str>,
    correlation_id: Option<String>,
}

impl<'a> From<&'a PolicyLogRow> for PolicyLine<'a> {
    fn from(r: &'a PolicyLogRow) -> Self {
        let correlation_id = r
            .request_data
            .as_deref()
            .and_then(|data| serde_json::from_str::<serde_json::Value>(data).ok())
            .and_then(|data| data["correlation_id"].as_str().map(str::to_string));
        Self {
            v: FORMAT_VERSION,
            kind: "policy",
            at: iso_ms(r.created_at),
            id: &r.id,
            policy: r.policy_id.as_deref(),
            agent_id: &r.agent_id,
            tool: &r.tool,
            action: &r.action,
            decision: &r.decision,
            reason: r.reason.as_deref(),
            correlation_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_rotates_whole_and_keeps_every_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let sink = JsonlSink::open(&path, 1_000, 50).unwrap();
        let rows: Vec<RequestLogRow> = (0..30)
            .map(|n| crate::audit::sample_row(&format!("r{n}")))
            .collect();
        for chunk in rows.chunks(7) {
            sink.append(&lines(chunk, &[])).unwrap();
        }
        let mut ids = Vec::new();
        let mut files = 0;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            files += 1;
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for line in text.lines() {
                let line: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(line["v"], 1);
                assert_eq!(line["type"], "request");
                ids.push(line["id"].as_str().unwrap().to_string());
            }
        }
        assert!(files > 1, "the file rotated");
        ids.sort_by_key(|id| id[1..].parse::<u32>().unwrap());
        let expected: Vec<String> = (0..30).map(|n| format!("r{n}")).collect();
        assert_eq!(ids, expected, "every line, once");
    }
}
