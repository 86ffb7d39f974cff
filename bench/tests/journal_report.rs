//! `bench load journal` at a tiny scale against a gateway the bench starts itself: the report
//! folder holds every file, the page is self-contained, and the bench's counts equal the
//! gateway's counters. Needs `make plugins` (which `make test` runs first).

use bench::load::{self, Args};
use serde_json::Value;
use std::path::Path;

fn args(reports: &Path) -> Args {
    Args {
        scenario: "journal".into(),
        // 40 minutes → 4.8 s, about 280 iterations.
        time_scale: 0.002,
        rate_scale: 1.0,
        target: None,
        admin_key: None,
        plugins_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies-wasm"),
        reports_dir: reports.to_path_buf(),
        seed: 7,
        max_in_flight: 2000,
        bucket: None,
        quiet: true,
    }
}

#[test]
fn a_tiny_journal_run_writes_its_report_and_agrees_with_the_gateway() {
    let reports = tempfile::tempdir().unwrap();
    let (summary, dir) = load::run(&args(reports.path())).unwrap();

    assert!(dir.starts_with(reports.path()));
    let name = dir.file_name().unwrap().to_string_lossy();
    assert!(name.starts_with("journal-"), "{name}");
    for file in [
        "summary.json",
        "summary.md",
        "report.html",
        "metrics-before.prom",
        "metrics-during.prom",
        "metrics-after.prom",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }

    // Every scheduled iteration ran, every request got an answer, and the gateway counted
    // exactly what the bench received, status by status.
    assert_eq!(summary.iterations_started, summary.iterations_scheduled);
    assert!(
        summary.iterations_scheduled > 200,
        "{}",
        summary.iterations_scheduled
    );
    assert!(summary.cross_check.agrees, "{:#?}", summary.cross_check);
    assert_eq!(
        summary.gateway_delta["gateway_requests_total"] as u64,
        summary.requests
    );
    assert_eq!(
        summary.gateway_delta["gateway_token_validations_total"] as u64,
        summary.requests
    );
    assert!(summary.verdicts.all_accounted && summary.verdicts.no_5xx);
    assert_eq!(summary.verdicts.failed_checks, 0, "{:#?}", summary.steps);

    // The denial probes were refused and the cache probes after the first were hits.
    let step = |name: &str| summary.steps.iter().find(|s| s.name == name).unwrap();
    let denials = step("denial_probe");
    assert_eq!(
        denials.statuses.get(&403).copied().unwrap_or(0),
        denials.requests
    );
    let probes = step("scraper_cache_probe");
    if probes.requests > 1 {
        assert!(probes.cache_hits >= probes.requests - 1, "{probes:?}");
    }

    // The files say the same as the summary returned.
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["requests"], summary.requests);
    assert_eq!(json["cross_check"]["agrees"], true);
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(md.contains("every request accounted for: yes"), "{md}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 5, "five charts");
    assert!(
        !html.contains("<script") && !html.contains("href="),
        "the page fetches nothing"
    );
    assert!(html.contains("<table>"), "the tables are rendered");
}

#[test]
fn a_target_outside_loopback_is_refused_before_any_request() {
    let reports = tempfile::tempdir().unwrap();
    let mut a = args(reports.path());
    a.target = Some("http://10.1.2.3:3000".into());
    a.admin_key = Some("key".into());
    let err = load::run(&a).unwrap_err().to_string();
    assert!(err.contains("loopback"), "{err}");
    assert_eq!(
        std::fs::read_dir(reports.path()).unwrap().count(),
        0,
        "no report written"
    );
}
