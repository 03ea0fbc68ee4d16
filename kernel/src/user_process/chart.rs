//! The runtime's charts, drawn (`jit::chart::Chart::svg` asks `rjk_chart_svg`): the chart's spec
//! (`Chart::spec`: one field per line) read back, and drawn as SVG by plotters. In the binary, not
//! in the runtime, so that plotters is none of the session's crates.

use std::ffi::c_void;

use plotters::prelude::*;

/// How a series is drawn (the runtime's `chart::Style`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Line,
    Scatter,
    LinePoints,
}

#[derive(Debug, Clone, PartialEq)]
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    style: Style,
}

/// A chart as its spec describes it.
#[derive(Debug, Clone, PartialEq)]
struct Spec {
    title: String,
    x_label: String,
    y_label: String,
    log_x: bool,
    log_y: bool,
    size: (u32, u32),
    series: Vec<Series>,
}

const COLORS: [RGBColor; 6] = [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44), RGBColor(148, 103, 189), RGBColor(255, 127, 14), RGBColor(23, 190, 207)];

/// Draws the chart `spec` describes and hands its SVG to `sink` (with `out`), once.
///
/// # Safety
/// `spec` is valid for `len` bytes; `sink` may be called with `out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rjk_chart_svg(spec: *const u8, len: usize, sink: unsafe extern "C" fn(*mut c_void, *const u8, usize), out: *mut c_void) {
    // SAFETY: the caller's contract.
    let spec = String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(spec, len) });
    let svg = Spec::read(&spec).svg();
    // SAFETY: the caller's contract.
    unsafe { sink(out, svg.as_ptr(), svg.len()) };
}

/// A text of the spec as the runtime wrote it: a backslash escaped as two, a newline as `\n`.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

impl Spec {
    /// Reads a spec; a line it does not know is left out (a newer runtime's field).
    fn read(spec: &str) -> Spec {
        let mut chart = Spec { title: String::new(), x_label: String::new(), y_label: String::new(), log_x: false, log_y: false, size: (720, 420), series: Vec::new() };
        for line in spec.lines() {
            let (field, rest) = line.split_once(' ').unwrap_or((line, ""));
            let numbers = || -> Vec<f64> { rest.split(' ').filter_map(|n| n.parse().ok()).collect() };
            match field {
                "title" => chart.title = unescape(rest),
                "x_label" => chart.x_label = unescape(rest),
                "y_label" => chart.y_label = unescape(rest),
                "log" => (chart.log_x, chart.log_y) = (rest.starts_with('1'), rest.ends_with('1')),
                "size" => {
                    if let [w, h] = numbers()[..] {
                        chart.size = ((w as u32).clamp(100, 8000), (h as u32).clamp(100, 8000));
                    }
                }
                "series" => {
                    let (style, name) = rest.split_once(' ').unwrap_or((rest, ""));
                    let style = match style {
                        "scatter" => Style::Scatter,
                        "line" => Style::Line,
                        _ => Style::LinePoints,
                    };
                    chart.series.push(Series { name: unescape(name), points: Vec::new(), style });
                }
                "point" => {
                    if let (Some(series), [x, y]) = (chart.series.last_mut(), &numbers()[..]) {
                        series.points.push((*x, *y));
                    }
                }
                _ => {}
            }
        }
        chart
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
    fn svg(&self) -> String {
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
    use jit::chart::Chart;

    #[test]
    fn the_runtimes_spec_reads_back_as_written() {
        let chart = Chart::new("growth\nof n \\ m").x_label("n").y_label("seconds").log_x().log_y().size(300, 200).line("serial", [(10usize, 1e-6), (100, 1e-4)]).scatter("", vec![(f64::INFINITY, 2.0)]).line_only("c", [(1, 5)]);
        let spec = Spec::read(&chart.spec());
        assert_eq!((spec.title.as_str(), spec.x_label.as_str(), spec.y_label.as_str(), spec.log_x, spec.log_y, spec.size), (chart.title.as_str(), "n", "seconds", true, true, (300, 200)));
        let series: Vec<(String, Vec<(f64, f64)>, String)> = spec.series.iter().map(|s| (s.name.clone(), s.points.clone(), format!("{:?}", s.style))).collect();
        let expected: Vec<(String, Vec<(f64, f64)>, String)> = chart.series.iter().map(|s| (s.name.clone(), s.points.clone(), format!("{:?}", s.style))).collect();
        assert_eq!(series, expected, "the two Style enums and the points agree");
    }

    #[test]
    fn svg_with_series_labels_and_log_axes() {
        let chart = Chart::new("growth").x_label("n").y_label("seconds").log_x().log_y().line("serial", [(10usize, 1e-6), (100, 1e-4)]).scatter("parallel", vec![(10.0, 2e-6), (100.0, 5e-5), (0.0, 1.0)]);
        let svg = Spec::read(&chart.spec()).svg();
        assert!(svg.starts_with("<svg") && svg.contains("growth") && svg.contains("serial") && svg.contains("parallel"), "{svg}");
        assert!(svg.contains("\nn\n</text>") && svg.contains("\nseconds\n</text>"), "axis labels: {svg}");
        // Empty and linear charts draw too; a spec with lines it does not know still draws.
        assert!(Spec::read(&Chart::new("empty").spec()).svg().starts_with("<svg"));
        assert!(Spec::read(&Chart::new("flat").line_only("c", [(1, 5), (2, 5)]).spec()).svg().contains("flat"));
        let future = Spec::read("title t\nfrom_the_future 1\nsize x y\npoint 1 2\n");
        assert_eq!((future.title.as_str(), future.size, future.series.len()), ("t", (720, 420), 0));
        assert!(future.svg().starts_with("<svg"));
    }

    #[test]
    fn ticks() {
        assert_eq!((tick(25.0), tick(1500.0), tick(0.5), tick(1e-6), tick(0.0)), ("25".into(), "1500".into(), "0.5".into(), "1e-6".into(), "0".into()));
    }
}
