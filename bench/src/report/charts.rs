//! The report's charts, drawn by plotters into self-contained SVG text: lines over time, an
//! optional shaded window (the chaos window), a legend above the lines (headroom is kept for
//! it, so it never hides a peak), and optionally a logarithmic value axis (latencies, where
//! sub-millisecond percentiles would sit on zero). Nothing is fetched when the page opens.

use plotters::prelude::*;

/// One line of a chart.
pub struct Line {
    /// Legend text.
    pub name: String,
    /// (time s, value) points.
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub color: RGBColor,
}

/// A chart to draw.
pub struct Chart<'a> {
    /// Title above the chart.
    pub title: &'a str,
    /// Y axis description.
    pub y_label: &'a str,
    /// Length of the time axis, s.
    pub x_max: f64,
    /// Lines.
    pub lines: Vec<Line>,
    /// A window to shade (from, until), s.
    pub shade: Option<(f64, f64)>,
    /// Draw values on a logarithmic axis (values at or below [`LOG_FLOOR`] sit on it).
    pub log_y: bool,
}

/// The lowest value a logarithmic chart shows.
pub const LOG_FLOOR: f64 = 0.01;

/// Share of a chart's height kept free above the highest value, for the legend.
const LEGEND_HEADROOM: f64 = 0.45;

/// Colours in a fixed order, so that the same series keeps its colour across charts.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

impl Chart<'_> {
    /// The chart as an SVG document.
    pub fn to_svg(&self) -> anyhow::Result<String> {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (960, 320)).into_drawing_area();
            root.fill(&WHITE).map_err(plot_error)?;
            // Values as drawn: log10 of the value on a logarithmic chart.
            let log_y = self.log_y;
            let at = move |v: f64| if log_y { v.max(LOG_FLOOR).log10() } else { v };
            let highest = self
                .lines
                .iter()
                .flat_map(|l| l.points.iter().map(|p| at(p.1)))
                .filter(|v| v.is_finite())
                .fold(f64::MIN, f64::max);
            // An all-zero chart still gets readable ticks (0 to 1).
            let (y_min, highest) = if log_y {
                (at(LOG_FLOOR), highest.max(at(LOG_FLOOR) + 1.0))
            } else {
                (0.0, if highest > 0.0 { highest } else { 1.0 })
            };
            let y_max = y_min + (highest - y_min) / (1.0 - LEGEND_HEADROOM);
            let x_max = self.x_max.max(1e-3);
            let mut chart = ChartBuilder::on(&root)
                .caption(self.title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(64)
                .build_cartesian_2d(0.0..x_max, y_min..y_max)
                .map_err(plot_error)?;
            chart
                .configure_mesh()
                .x_desc("time since start (s)")
                .y_desc(self.y_label)
                .y_label_formatter(&|v| {
                    if log_y {
                        format!("{}", significant(10f64.powf(*v)))
                    } else {
                        format!("{}", significant(*v))
                    }
                })
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(plot_error)?;
            if let Some((from, until)) = self.shade {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(from, y_min), (until, y_max)],
                        RGBColor(214, 39, 40).mix(0.12).filled(),
                    )))
                    .map_err(plot_error)?
                    .label("chaos on")
                    .legend(|(x, y)| {
                        Rectangle::new(
                            [(x, y - 5), (x + 18, y + 5)],
                            RGBColor(214, 39, 40).mix(0.25).filled(),
                        )
                    });
            }
            for line in &self.lines {
                let color = line.color;
                chart
                    .draw_series(LineSeries::new(
                        line.points.iter().map(|&(x, y)| (x, at(y))),
                        color.stroke_width(2),
                    ))
                    .map_err(plot_error)?
                    .label(line.name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .draw()
                .map_err(plot_error)?;
            root.present().map_err(plot_error)?;
        }
        Ok(svg)
    }
}

/// `v` rounded to two significant digits (tick labels: 0.032, 1.5, 250).
fn significant(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return 0.0;
    }
    let scale = 10f64.powi(1 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

fn plot_error<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_self_contained_svg_with_lines_legend_and_shade() {
        let chart = Chart {
            title: "Throughput",
            y_label: "req/s",
            x_max: 10.0,
            lines: vec![Line {
                name: "all".into(),
                points: (0..10).map(|i| (f64::from(i), f64::from(i * 3))).collect(),
                color: PALETTE[0],
            }],
            shade: Some((2.0, 5.0)),
            log_y: false,
        };
        let svg = chart.to_svg().unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(
            svg.contains("Throughput") && svg.contains("chaos on") && svg.contains("<polyline")
        );
        assert!(!svg.contains("href"), "nothing linked from outside");
    }

    #[test]
    fn a_log_chart_shows_sub_millisecond_values_and_an_all_zero_chart_has_ticks() {
        let latency = Chart {
            title: "Latency",
            y_label: "ms",
            x_max: 10.0,
            lines: vec![Line {
                name: "p50".into(),
                points: (0..10)
                    .map(|i| (f64::from(i), 0.2 + f64::from(i) * 0.01))
                    .collect(),
                color: PALETTE[0],
            }],
            shade: None,
            log_y: true,
        };
        let svg = latency.to_svg().unwrap();
        assert!(
            svg.contains("\n0.1\n") && svg.contains("\n1\n"),
            "decades labelled: {svg}"
        );
        let zeros = Chart {
            lines: vec![Line {
                name: "none".into(),
                points: vec![(0.0, 0.0), (10.0, 0.0)],
                color: PALETTE[1],
            }],
            log_y: false,
            ..latency
        };
        assert!(
            zeros.to_svg().unwrap().contains("\n1\n"),
            "an all-zero chart runs 0 to 1"
        );
    }

    #[test]
    fn tick_labels_keep_two_significant_digits() {
        assert_eq!(significant(0.031622), 0.032);
        assert_eq!(significant(251.3), 250.0);
        assert_eq!(significant(1.0), 1.0);
        assert_eq!(significant(0.0), 0.0);
    }
}
