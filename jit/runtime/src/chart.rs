//! Charts in the notebook, without `:dep`: a [`Chart`] (line and scatter series, log axes, labels,
//! a legend) displays itself as SVG; [`sweep`] times functions over a list of sizes, as `%timeit`
//! does, and shows the chart, a table of the times and where the curves cross.
//!
//! The runtime describes a chart ([`Chart::spec`]); the kernel binary draws it (plotters, in the
//! user process: `rjk_chart_svg`, found with `dlsym` as [`display`] finds `rjk_display`). So no
//! session's crates include plotters: rust-analyzer reads fewer crates, and cells link fewer.

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

    /// The chart as the kernel's renderer reads it: one field per line (`title`, `x_label`,
    /// `y_label`, `log X Y`, `size W H`, then `series STYLE NAME` followed by its `point X Y`
    /// lines); texts with `\\` and newlines escaped (`\\\\`, `\\n`), numbers as Rust prints them.
    pub fn spec(&self) -> String {
        let mut spec = format!(
            "title {}\nx_label {}\ny_label {}\nlog {} {}\nsize {} {}\n",
            escape(&self.title),
            escape(&self.x_label),
            escape(&self.y_label),
            u8::from(self.log_x),
            u8::from(self.log_y),
            self.size.0,
            self.size.1
        );
        for series in &self.series {
            let style = match series.style {
                Style::Line => "line",
                Style::Scatter => "scatter",
                Style::LinePoints => "line_points",
            };
            spec.push_str(&format!("series {style} {}\n", escape(&series.name)));
            for (x, y) in &series.points {
                spec.push_str(&format!("point {x} {y}\n"));
            }
        }
        spec
    }

    /// The chart as an SVG document, drawn by the kernel; outside the kernel, an SVG that says so.
    pub fn svg(&self) -> String {
        display::chart_svg(&self.spec()).unwrap_or_else(|| {
            let text = self.summary().replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
            format!(
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\"><text x=\"10\" y=\"20\">{text} (charts are drawn by rust-jit-kernel)</text></svg>",
                self.size.0, self.size.1
            )
        })
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

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_and_summary() {
        let chart = Chart::new("growth\nof n").x_label("n").y_label("sec\\s").log_x().size(300, 200).line("serial", [(10usize, 1e-6), (100, 1.5)]).scatter("par", vec![(0.5f32, 2.0f32)]);
        assert_eq!(
            chart.spec(),
            "title growth\\nof n\nx_label n\ny_label sec\\\\s\nlog 1 0\nsize 300 200\nseries line_points serial\npoint 10 0.000001\npoint 100 1.5\nseries scatter par\npoint 0.5 2\n"
        );
        assert_eq!(chart.summary(), "Chart \"growth\nof n\": serial (2 points), par (1 points)");
        // Outside the kernel: an SVG that says where charts are drawn.
        assert!(Chart::new("a < b").svg().contains("a &lt; b"));
    }
}
