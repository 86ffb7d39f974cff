//! Runs wrk (the HTTP load generator the targets name) and reads its report: the
//! request rate, p50 and p99, non-2xx answers, and this process's CPU time per request.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One wrk run's figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct WrkResult {
    /// Completed requests per second.
    pub requests_per_sec: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Answers outside 2xx and 3xx.
    pub non_2xx: u64,
    /// Requests wrk completed.
    pub requests: u64,
    /// This process's CPU time during the run, per completed request, in µs.
    pub cpu_us_per_request: f64,
}

/// The shape of a wrk run: threads, connections, duration.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// wrk threads.
    pub threads: u32,
    /// Open connections.
    pub connections: u32,
    /// Length of the run.
    pub seconds: u32,
}

/// Fails with a clear message when wrk is not installed.
pub fn ensure_installed() -> anyhow::Result<()> {
    if Command::new("wrk").arg("--version").output().is_err() {
        bail!("wrk is not installed (Debian: apt-get install wrk)");
    }
    Ok(())
}

/// The start of every wrk script here: a POST of JSON.
const POST_JSON: &str =
    "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n";

/// Writes a wrk script (into `dir`) that POSTs `body` as JSON; returns its path.
pub fn post_script(dir: &Path, body: &str) -> anyhow::Result<PathBuf> {
    let script = dir.join("post.lua");
    std::fs::write(&script, format!("{POST_JSON}wrk.body = [[{body}]]\n"))?;
    Ok(script)
}

/// Writes a wrk script (into `dir`) that POSTs `body` as JSON with `marker` (a text inside
/// the body, such as a search query) made new on every request: each request appends
/// `run`, its wrk thread and its own count to it, so no two requests of a benchmark (nor of
/// its successive runs) send the same query. Returns its path.
pub fn fresh_post_script(
    dir: &Path,
    body: &str,
    marker: &str,
    run: u32,
) -> anyhow::Result<PathBuf> {
    let (head, tail) = body
        .split_once(marker)
        .context("the marker is not in the body")?;
    let head = format!("{head}{marker}");
    let script = dir.join(format!("fresh-{run}.lua"));
    std::fs::write(
        &script,
        format!(
            "{POST_JSON}local threads = 0\n\
             function setup(thread) threads = threads + 1; thread:set(\"tid\", threads) end\n\
             local n = 0\n\
             function request()\n  n = n + 1\n  \
             return wrk.format(nil, nil, nil, [[{head}]] .. \" r{run}t\" .. tid .. \"n\" .. n .. [[{tail}]])\nend\n"
        ),
    )?;
    Ok(script)
}

impl Load {
    /// Runs wrk with `script` against `url` and reads its report.
    pub fn run(&self, script: &Path, url: &str) -> anyhow::Result<WrkResult> {
        let cpu_before = process_cpu_time();
        let output = Command::new("wrk")
            .arg(format!("-t{}", self.threads))
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{}s", self.seconds))
            .arg("--latency")
            .arg("-s")
            .arg(script)
            .arg(url)
            .output()
            .context("running wrk")?;
        let cpu = process_cpu_time().saturating_sub(cpu_before);
        let text = String::from_utf8_lossy(&output.stdout);
        let mut result =
            parse_wrk(&text).with_context(|| format!("unexpected wrk output:\n{text}"))?;
        result.cpu_us_per_request = cpu.as_secs_f64() * 1e6 / result.requests.max(1) as f64;
        Ok(result)
    }
}

/// CPU time (user + system) this process has used so far.
fn process_cpu_time() -> std::time::Duration {
    // SAFETY: an all-zero `rusage` is a valid value, and `getrusage` only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`; RUSAGE_SELF cannot fail.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let time = |t: libc::timeval| {
        std::time::Duration::new(t.tv_sec.max(0) as u64, (t.tv_usec.max(0) as u32) * 1000)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// A wrk latency figure (`812.00us`, `1.25ms`, `2.10s`) in ms.
fn parse_latency(text: &str) -> Option<f64> {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

fn parse_wrk(text: &str) -> Option<WrkResult> {
    let mut r = WrkResult::default();
    for line in text.lines().map(str::trim) {
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some("Requests/sec:"), Some(v)) => r.requests_per_sec = v.parse().ok()?,
            (Some("50%"), Some(v)) => r.p50_ms = parse_latency(v)?,
            (Some("99%"), Some(v)) => r.p99_ms = parse_latency(v)?,
            (Some(n), Some("requests")) => r.requests = n.parse().ok()?,
            (Some("Non-2xx"), _) => {
                r.non_2xx = line.rsplit(' ').next()?.parse().ok()?;
            }
            _ => {}
        }
    }
    (r.requests_per_sec > 0.0).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_output() {
        let text = "Running 1s test @ http://x\n  Latency Distribution\n     50%  812.00us\n     75%    1.00ms\n     90%    1.50ms\n     99%    2.10ms\n  1000 requests in 1.00s, 1.00MB read\n  Non-2xx or 3xx responses: 3\nRequests/sec:  31234.56\n";
        let r = parse_wrk(text).unwrap();
        assert_eq!(r.requests_per_sec, 31234.56);
        assert!((r.p50_ms - 0.812).abs() < 1e-9);
        assert_eq!(r.p99_ms, 2.1);
        assert_eq!(r.non_2xx, 3);
        assert_eq!(r.requests, 1000);
    }
}
