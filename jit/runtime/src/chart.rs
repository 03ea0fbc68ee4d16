//! Charts in the notebook, without `:dep`: a [`Chart`] (line and scatter series, log axes, labels,
//! a legend) displays itself as SVG, drawn by plotters inside the runtime; [`sweep`] times functions
//! over a list of sizes, as `%timeit` does, and shows the chart, a table of the times and where the
//! curves cross.

use plotters::prelude::*;

use crate::display;

/// A number a chart can place.
pub trait Coord: Copy {
    fn coord(self) -> f64;
}

macro_rules! coord {
    ($($t:ty),*) => {$(impl Coord for $t { fn coord(self) -> f64 { self as f64 } })*};
}
coord!(f64, f32, usize, isize, u8, u16, u32, u64, i8, i16, i32, i64);

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Line,
    Scatter,
    /// A line with a marker at each point.
    LinePoints,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub style: Style,
}

/// A chart that shows itself as SVG when it is a cell's value.
///
/// ```ignore
/// Chart::new("growth").x_label("n").y_label("seconds").log_x().log_y().line("serial", points)
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub size: (u32, u32),
    pub series: Vec<Series>,
}

const COLORS: [RGBColor; 6] = [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44), RGBColor(148, 103, 189), RGBColor(255, 127, 14), RGBColor(23, 190, 207)];

impl Chart {
    pub fn new(title: impl Into<String>) -> Chart {
        Chart { title: title.into(), x_label: String::new(), y_label: String::new(), log_x: false, log_y: false, size: (720, 420), series: Vec::new() }
    }
    pub fn title(mut self, title: impl Into<String>) -> Chart {
        self.title = title.into();
        self
    }
    pub fn x_label(mut self, label: impl Into<String>) -> Chart {
        self.x_label = label.into();
        self
    }
    pub fn y_label(mut self, label: impl Into<String>) -> Chart {
        self.y_label = label.into();
        self
    }
    /// A logarithmic x axis (points at x <= 0 are left out).
    pub fn log_x(mut self) -> Chart {
        self.log_x = true;
        self
    }
    /// A logarithmic y axis (points at y <= 0 are left out).
    pub fn log_y(mut self) -> Chart {
        self.log_y = true;
        self
    }
    /// Width and height in pixels (default 720 x 420).
    pub fn size(mut self, width: u32, height: u32) -> Chart {
        self.size = (width.max(100), height.max(100));
        self
    }
    fn with(mut self, name: impl Into<String>, points: impl IntoIterator<Item = (impl Coord, impl Coord)>, style: Style) -> Chart {
        let points = points.into_iter().map(|(x, y)| (x.coord(), y.coord())).collect();
        self.series.push(Series { name: name.into(), points, style });
        self
    }
    /// A series drawn as a line with a marker at each point.
    pub fn line(self, name: impl Into<String>, points: impl IntoIterator<Item = (impl Coord, impl Coord)>) -> Chart {
        self.with(name, points, Style::LinePoints)
    }
    /// A series drawn as a line only.
    pub fn line_only(self, name: impl Into<String>, points: impl IntoIterator<Item = (impl Coord, impl Coord)>) -> Chart {
        self.with(name, points, Style::Line)
    }
    /// A series drawn as points only.
    pub fn scatter(self, name: impl Into<String>, points: impl IntoIterator<Item = (impl Coord, impl Coord)>) -> Chart {
        self.with(name, points, Style::Scatter)
    }

    /// The points a log axis can show.
    fn shown(&self, s: &Series) -> Vec<(f64, f64)> {
        s.points.iter().copied().filter(|&(x, y)| x.is_finite() && y.is_finite() && (!self.log_x || x > 0.0) && (!self.log_y || y > 0.0)).collect()
    }

    /// The range of axis values, padded (by a factor on a log axis).
    fn range(values: impl Iterator<Item = f64>, log: bool) -> std::ops::Range<f64> {
        let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
        if !low.is_finite() {
            return if log { 1.0..10.0 } else { 0.0..1.0 };
        }
        if log {
            (low / 1.3)..(high * 1.3)
        } else {
            let pad = if high > low { (high - low) * 0.05 } else { low.abs().max(1.0) * 0.5 };
            (low - pad)..(high + pad)
        }
    }

    /// The chart as an SVG document.
    pub fn svg(&self) -> String {
        let mut svg = String::new();
        let shown: Vec<Vec<(f64, f64)>> = self.series.iter().map(|s| self.shown(s)).collect();
        let xs = Self::range(shown.iter().flatten().map(|p| p.0), self.log_x);
        let ys = Self::range(shown.iter().flatten().map(|p| p.1), self.log_y);
        {
            let root = SVGBackend::with_string(&mut svg, self.size).into_drawing_area();
            let _ = root.fill(&WHITE);
            let mut builder = ChartBuilder::on(&root);
            builder.caption(&self.title, ("sans-serif", 20)).margin(15).x_label_area_size(45).y_label_area_size(75);
            // One body for the four axis kinds (plotters types them differently).
            macro_rules! draw {
                ($x:expr, $y:expr) => {{
                    if let Ok(mut chart) = builder.build_cartesian_2d($x, $y) {
                        let _ = chart
                            .configure_mesh()
                            .x_desc(self.x_label.as_str())
                            .y_desc(self.y_label.as_str())
                            .x_label_formatter(&|v| tick(*v))
                            .y_label_formatter(&|v| tick(*v))
                            .draw();
                        for (k, (series, points)) in self.series.iter().zip(&shown).enumerate() {
                            let color = COLORS[k % COLORS.len()];
                            let style = color.stroke_width(2);
                            let drawn = match series.style {
                                Style::Scatter => chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled()))),
                                _ => chart.draw_series(LineSeries::new(points.iter().copied(), style)),
                            };
                            if let Ok(drawn) = drawn {
                                drawn.label(series.name.as_str()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                            }
                            if series.style == Style::LinePoints {
                                let _ = chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())));
                            }
                        }
                        if self.series.iter().any(|s| !s.name.is_empty()) {
                            let _ = chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).background_style(WHITE).border_style(BLACK).draw();
                        }
                    }
                }};
            }
            match (self.log_x, self.log_y) {
                (false, false) => draw!(xs, ys),
                (true, false) => draw!(xs.log_scale(), ys),
                (false, true) => draw!(xs, ys.log_scale()),
                (true, true) => draw!(xs.log_scale(), ys.log_scale()),
            }
            let _ = root.present();
        }
        svg
    }

    /// A line of text for the chart (its text/plain form).
    pub fn summary(&self) -> String {
        let series: Vec<String> = self.series.iter().map(|s| format!("{} ({} points)", s.name, s.points.len())).collect();
        format!("Chart \"{}\": {}", self.title, if series.is_empty() { "no series".to_string() } else { series.join(", ") })
    }

    /// Shows the chart now, as a `display_data` (in the middle of a cell).
    pub fn show(&self) {
        display::show("image/svg+xml", &self.svg());
    }

    /// How a chart shows as a cell's value: SVG, with its summary as text.
    pub fn evcxr_display(&self) {
        display::result_part(&[("image/svg+xml", &self.svg()), ("text/plain", &self.summary())]);
    }
}

/// An axis tick: `25`, `1500`, `0.5`, `1e-6`.
fn tick(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-2..1e5).contains(&a) {
        format!("{v:.0e}")
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}").trim_end_matches('0').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_with_series_labels_and_log_axes() {
        let chart = Chart::new("growth").x_label("n").y_label("seconds").log_x().log_y().line("serial", [(10usize, 1e-6), (100, 1e-4)]).scatter("parallel", vec![(10.0, 2e-6), (100.0, 5e-5), (0.0, 1.0)]);
        let svg = chart.svg();
        assert!(svg.starts_with("<svg") && svg.contains("growth") && svg.contains("serial") && svg.contains("parallel"), "{svg}");
        assert!(svg.contains("\nn\n</text>") && svg.contains("\nseconds\n</text>"), "axis labels: {svg}");
        assert_eq!(chart.summary(), "Chart \"growth\": serial (2 points), parallel (3 points)");
        // Empty and linear charts draw too.
        assert!(Chart::new("empty").svg().starts_with("<svg"));
        assert!(Chart::new("flat").line_only("c", [(1, 5), (2, 5)]).svg().contains("flat"));
    }

    #[test]
    fn ticks() {
        assert_eq!((tick(25.0), tick(1500.0), tick(0.5), tick(1e-6), tick(0.0)), ("25".into(), "1500".into(), "0.5".into(), "1e-6".into(), "0".into()));
    }
}
