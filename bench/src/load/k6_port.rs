//! Keeps `bench/k6/journal.js` in step with `bench/scenarios/journal.toml`: the k6 file is
//! written by hand for users who have k6 (it cannot be installed on this project's machines),
//! and this test reads back its start rate, stages, weights and probabilities.

mod tests {
    use crate::load::scenario::Scenario;
    use std::path::Path;
    use std::time::Duration;

    fn number_after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
        let rest = &text[text.find(key)? + key.len()..];
        let rest = rest.trim_start_matches([' ', ':', '=', '\'']);
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))?;
        Some(&rest[..end])
    }

    #[test]
    fn the_k6_port_has_the_scenario_profile_and_mix() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let k6 = std::fs::read_to_string(root.join("k6/journal.js")).unwrap();
        let scenario = Scenario::load(&root.join("scenarios/journal.toml")).unwrap();

        let start: f64 = number_after(&k6, "startRate").unwrap().parse().unwrap();
        assert_eq!(start, scenario.load.start_rate);

        let stages: Vec<(Duration, f64)> = k6
            .lines()
            .filter(|l| l.contains("duration:") && l.contains("target:"))
            .map(|l| {
                let d = humantime::parse_duration(number_after(l, "duration").unwrap()).unwrap();
                (d, number_after(l, "target").unwrap().parse().unwrap())
            })
            .collect();
        let expected: Vec<(Duration, f64)> = scenario
            .load
            .stages
            .iter()
            .map(|s| (s.duration, s.target))
            .collect();
        assert_eq!(stages, expected);

        let weights = &k6[k6.find("const WEIGHTS").unwrap()..];
        for flow in &scenario.flows {
            let w: f64 = number_after(weights, &flow.name).unwrap().parse().unwrap();
            assert_eq!(w, flow.weight, "weight of {}", flow.name);
        }
        let p = |key| number_after(&k6, key).unwrap().parse::<f64>().unwrap();
        let step = |name: &str| {
            scenario
                .steps()
                .find(|s| s.name == name)
                .unwrap()
                .probability
        };
        assert_eq!(p("const CACHE_PROBE"), step("scraper_cache_probe"));
        assert_eq!(p("const DENIAL_PROBE"), step("denial_probe"));
    }
}
