//! The gateway's `/metrics` page (Prometheus text format) as data: snapshots, the change of a
//! family between two snapshots, and percentiles estimated from the change of a histogram's
//! buckets. Only the sample lines are read; `# HELP` and `# TYPE` lines are skipped.

use anyhow::{bail, Context};
use std::collections::BTreeMap;

/// One series: metric name and labels.
pub type SeriesKey = (String, BTreeMap<String, String>);

/// Every sample of one `/metrics` page.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Value of each series.
    pub samples: BTreeMap<SeriesKey, f64>,
}

impl Snapshot {
    /// Parses a page of the text format.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut samples = BTreeMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) =
                parse_line(line).with_context(|| format!("metrics line {}: {line}", number + 1))?;
            samples.insert(key, value);
        }
        Ok(Self { samples })
    }

    /// The series of metric `name` whose labels include every pair of `filter`.
    pub fn series<'a>(
        &'a self,
        name: &'a str,
        filter: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = (&'a BTreeMap<String, String>, f64)> + 'a {
        self.samples
            .iter()
            .filter(move |((n, labels), _)| {
                n == name
                    && filter
                        .iter()
                        .all(|(k, v)| labels.get(*k).is_some_and(|x| x == v))
            })
            .map(|((_, labels), v)| (labels, *v))
    }

    /// The sum of the series of `name` matching `filter`.
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.series(name, filter).map(|(_, v)| v).sum()
    }
}

/// `after − before` for every series of `name` (series missing before count from 0).
pub fn delta(
    before: &Snapshot,
    after: &Snapshot,
    name: &str,
) -> BTreeMap<BTreeMap<String, String>, f64> {
    after
        .series(name, &[])
        .map(|(labels, v)| {
            let old = before
                .samples
                .get(&(name.to_string(), labels.clone()))
                .copied()
                .unwrap_or(0.0);
            (labels.clone(), v - old)
        })
        .collect()
}

/// `after − before` of the sum of every series of `name`.
pub fn family_delta(before: &Snapshot, after: &Snapshot, name: &str) -> f64 {
    after.sum(name, &[]) - before.sum(name, &[])
}

/// The `q` quantile (0–1) of the observations a histogram (`<name>_bucket`, summed over every
/// other label) received between the snapshots: the upper bound of the first bucket holding
/// it, as Prometheus' `histogram_quantile` without interpolation. None when nothing was
/// observed.
pub fn histogram_quantile(before: &Snapshot, after: &Snapshot, name: &str, q: f64) -> Option<f64> {
    let bucket = format!("{name}_bucket");
    let mut by_bound: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for (labels, v) in delta(before, after, &bucket) {
        let bound: f64 = match labels.get("le").map(String::as_str) {
            Some("+Inf") => f64::INFINITY,
            Some(le) => le.parse().ok()?,
            None => continue,
        };
        by_bound.entry(bound.to_bits()).or_insert((bound, 0.0)).1 += v;
    }
    let mut buckets: Vec<(f64, f64)> = by_bound.into_values().collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    buckets
        .iter()
        .find(|(_, count)| *count >= rank)
        .map(|(bound, _)| *bound)
}

fn parse_line(line: &str) -> anyhow::Result<(SeriesKey, f64)> {
    let (series, value) = match line.find('{') {
        Some(open) => {
            let close = line.rfind('}').context("unclosed label set")?;
            let labels = parse_labels(&line[open + 1..close])?;
            ((line[..open].to_string(), labels), &line[close + 1..])
        }
        None => {
            let (name, rest) = line.split_once(' ').context("no value")?;
            ((name.to_string(), BTreeMap::new()), rest)
        }
    };
    // A timestamp may follow the value.
    let value = value.split_whitespace().next().context("no value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().context("value is not a number")?,
    };
    Ok((series, value))
}

fn parse_labels(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(labels);
        }
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if chars.next() != Some('"') {
            bail!("label {name:?} has no quoted value");
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => bail!("label {name:?}: escape at the end"),
                },
                Some('"') => break,
                Some(c) => value.push(c),
                None => bail!("label {name:?}: unclosed value"),
            }
        }
        labels.insert(name.trim().to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = r#"# HELP gateway_requests_total Proxy requests by tool, action and status code.
# TYPE gateway_requests_total counter
gateway_requests_total{action="search",code="200",tool="serpapi"} 10
gateway_requests_total{action="send",code="403",tool="gmail_send"} 2
gateway_request_duration_ms_bucket{action="search",tool="serpapi",le="1"} 5
gateway_request_duration_ms_bucket{action="search",tool="serpapi",le="2"} 9
gateway_request_duration_ms_bucket{action="search",tool="serpapi",le="+Inf"} 10
gateway_uptime_seconds 12.5
"#;

    const AFTER: &str = r#"gateway_requests_total{action="search",code="200",tool="serpapi"} 110
gateway_requests_total{action="send",code="403",tool="gmail_send"} 2
gateway_requests_total{action="chat",code="200",tool="openai"} 7
gateway_request_duration_ms_bucket{action="search",tool="serpapi",le="1"} 55
gateway_request_duration_ms_bucket{action="search",tool="serpapi",le="2"} 99
gateway_request_duration_ms_bucket{action="search",tool="serpapi",le="+Inf"} 110
gateway_plugin_reloads_total{outcome="ok",reason="a \"quoted\", escaped\\ label"} 1 1700000000000
"#;

    #[test]
    fn parses_samples_with_labels_escapes_and_timestamps() {
        let s = Snapshot::parse(AFTER).unwrap();
        assert_eq!(s.sum("gateway_requests_total", &[("code", "200")]), 117.0);
        let reason = s
            .series("gateway_plugin_reloads_total", &[])
            .next()
            .unwrap()
            .0["reason"]
            .clone();
        assert_eq!(reason, r#"a "quoted", escaped\ label"#);
        let before = Snapshot::parse(BEFORE).unwrap();
        assert_eq!(before.sum("gateway_uptime_seconds", &[]), 12.5);
    }

    #[test]
    fn delta_counts_new_series_from_zero() {
        let (b, a) = (
            Snapshot::parse(BEFORE).unwrap(),
            Snapshot::parse(AFTER).unwrap(),
        );
        let d = delta(&b, &a, "gateway_requests_total");
        let get = |tool: &str| {
            d.iter()
                .find(|(l, _)| l["tool"] == tool)
                .map(|(_, v)| *v)
                .unwrap()
        };
        assert_eq!(get("serpapi"), 100.0);
        assert_eq!(get("gmail_send"), 0.0);
        assert_eq!(get("openai"), 7.0);
        assert_eq!(family_delta(&b, &a, "gateway_requests_total"), 107.0);
    }

    #[test]
    fn quantiles_come_from_the_change_of_the_buckets() {
        let (b, a) = (
            Snapshot::parse(BEFORE).unwrap(),
            Snapshot::parse(AFTER).unwrap(),
        );
        // 100 new observations: 50 ≤ 1 ms, 40 in (1, 2], 10 above.
        let q = |q| histogram_quantile(&b, &a, "gateway_request_duration_ms", q);
        assert_eq!(q(0.5), Some(1.0));
        assert_eq!(q(0.9), Some(2.0));
        assert_eq!(q(0.99), Some(f64::INFINITY));
        assert_eq!(
            histogram_quantile(&a, &a, "gateway_request_duration_ms", 0.5),
            None
        );
    }

    #[test]
    fn a_malformed_line_is_an_error_that_names_it() {
        let err = Snapshot::parse("ok 1\nbroken{a=\"x\" 3\n").unwrap_err();
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
        assert!(Snapshot::parse("name{a=\"x\"} notanumber").is_err());
    }
}
