//! The report folder of a load run: `bench/reports/<scenario>-<timestamp>/` with
//! `summary.json`, `summary.md`, `report.html` and the three raw `/metrics` pages.

pub mod charts;
pub mod html;
pub mod markdown;
pub mod summary;

use anyhow::Context;
use std::path::{Path, PathBuf};
use summary::Summary;

/// Writes the report into a new folder under `reports_dir`; returns the folder.
pub fn write(
    reports_dir: &Path,
    summary: &Summary,
    metrics_pages: &[String; 3],
) -> anyhow::Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let mut dir = reports_dir.join(format!("{}-{stamp}", summary.run.scenario));
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = reports_dir.join(format!("{}-{stamp}-{n}", summary.run.scenario));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let md = markdown::render(summary);
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(summary)?,
    )?;
    std::fs::write(dir.join("summary.md"), &md)?;
    std::fs::write(dir.join("report.html"), html::render(summary, &md)?)?;
    for (name, page) in ["before", "during", "after"].iter().zip(metrics_pages) {
        if !page.is_empty() {
            std::fs::write(dir.join(format!("metrics-{name}.prom")), page)?;
        }
    }
    Ok(dir)
}
