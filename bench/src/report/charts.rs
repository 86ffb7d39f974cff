//! The report's charts, drawn by plotters into self-contained SVG text: lines over time, an
//! optional shaded window (the chaos window), a legend. Nothing is fetched when the page opens.

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
}

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
            let y_max = self
                .lines
                .iter()
                .flat_map(|l| l.points.iter().map(|p| p.1))
                .filter(|v| v.is_finite())
                .fold(0.0_f64, f64::max)
                .max(1e-9)
                * 1.1;
            let x_max = self.x_max.max(1e-3);
            let mut chart = ChartBuilder::on(&root)
                .caption(self.title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(64)
                .build_cartesian_2d(0.0..x_max, 0.0..y_max)
                .map_err(plot_error)?;
            chart
                .configure_mesh()
                .x_desc("time since start (s)")
                .y_desc(self.y_label)
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(plot_error)?;
            if let Some((from, until)) = self.shade {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(from, 0.0), (until, y_max)],
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
                        line.points.iter().copied(),
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
        };
        let svg = chart.to_svg().unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(
            svg.contains("Throughput") && svg.contains("chaos on") && svg.contains("<polyline")
        );
        assert!(!svg.contains("href"), "nothing linked from outside");
    }
}
