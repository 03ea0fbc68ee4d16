//! [`sweep`]: the lesson's question, "from which size on is the parallel version faster?", in one
//! expression. It times each function at each size the way `%timeit` does (loops grow until a run takes
//! long enough, then several runs, the mean per loop; loops grow 1, 2, 5, 10, ... as Python's
//! `timeit.Timer.autorange` does, so a run is at most 2.5x its time), stops when the kernel's
//! interrupt flag appears, and as a cell's value shows the chart, a table of the times, and the
//! crossover.

use std::time::Instant;

use crate::chart::Chart;
use crate::display;

/// The environment variable naming the kernel's interrupt flag file (`magics::INTERRUPT_FILE_VAR`;
/// a kernel test checks that they agree).
pub const INTERRUPT_FILE_VAR: &str = "RJK_INTERRUPT_FILE";

/// Times of one function at one size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Mean and standard deviation of the seconds per call over the runs.
    pub mean: f64,
    pub stdev: f64,
    pub loops: u64,
    pub runs: usize,
}

/// Functions timed over sizes (see the module docs).
pub struct Sweep<T> {
    sizes: Vec<usize>,
    input: Box<dyn Fn(usize) -> T>,
    title: String,
    runs: usize,
    run_seconds: f64,
    /// Per function, its name and a timing per size (`None`: not measured, interrupted).
    results: Vec<(String, Vec<Option<Timing>>)>,
    interrupted: bool,
}

/// Times functions at each of `sizes` on the input `input(n)` makes (made once per size and function,
/// not timed): `sweep(&[100, 1000], |n| Array2::<f64>::zeros((n, n))).time("f", |a| f(a))`. Runs are
/// 50 ms and there are 5 of them (`%timeit`: 200 ms, 7; `.run_seconds(0.2).runs(7)` for those).
pub fn sweep<T>(sizes: &[usize], input: impl Fn(usize) -> T + 'static) -> Sweep<T> {
    Sweep { sizes: sizes.to_vec(), input: Box::new(input), title: String::new(), runs: 5, run_seconds: 0.05, results: Vec::new(), interrupted: false }
}

fn interrupted() -> bool {
    std::env::var_os(INTERRUPT_FILE_VAR).is_some_and(|f| std::path::Path::new(&f).exists())
}

/// `f` timed as `%timeit` does; `None` when interrupted.
fn time_one(f: &dyn Fn(), runs: usize, run_seconds: f64) -> Option<Timing> {
    let run = |loops: u64| -> Option<f64> {
        if interrupted() {
            return None;
        }
        let start = Instant::now();
        for _ in 0..loops {
            f();
        }
        Some(start.elapsed().as_secs_f64())
    };
    // Python's `timeit` autorange (1, 2, 5, 10, 20, 50, ...): a run overshoots its time by at most
    // 2.5x (%timeit's powers of ten, by up to 10x).
    let mut loops = 1u64;
    let mut step = 0;
    while run(loops)? < run_seconds && loops < 1_000_000_000 {
        loops = [2, 5, 10][step % 3] * 10u64.pow((step / 3) as u32);
        step += 1;
    }
    let per_loop: Vec<f64> = (0..runs.max(1)).map(|_| run(loops).map(|t| t / loops as f64)).collect::<Option<_>>()?;
    let mean = per_loop.iter().sum::<f64>() / per_loop.len() as f64;
    let stdev = (per_loop.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / per_loop.len() as f64).sqrt();
    Some(Timing { mean, stdev, loops, runs: per_loop.len() })
}

impl<T> Sweep<T> {
    /// Times `f` at every size now (after an interrupt, nothing more is timed).
    pub fn time<R>(mut self, name: impl Into<String>, f: impl Fn(&T) -> R) -> Self {
        let mut timings = Vec::with_capacity(self.sizes.len());
        for &n in &self.sizes {
            let timing = if self.interrupted {
                None
            } else {
                let input = (self.input)(n);
                let timing = time_one(&|| drop(std::hint::black_box(f(std::hint::black_box(&input)))), self.runs, self.run_seconds);
                self.interrupted |= timing.is_none();
                timing
            };
            timings.push(timing);
        }
        self.results.push((name.into(), timings));
        self
    }

    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// Runs per measurement (default 5; `%timeit`'s is 7). For functions timed after this call.
    pub fn runs(mut self, runs: usize) -> Self {
        self.runs = runs.max(1);
        self
    }

    /// How long a run takes at least (default 0.05 s; `%timeit`'s is 0.2 s). For functions timed after.
    pub fn run_seconds(mut self, seconds: f64) -> Self {
        self.run_seconds = seconds.max(0.0);
        self
    }

    /// The mean seconds per call of function `name`, a value per size.
    pub fn times(&self, name: &str) -> Option<Vec<Option<f64>>> {
        self.results.iter().find(|(n, _)| n == name).map(|(_, t)| t.iter().map(|t| t.map(|t| t.mean)).collect())
    }

    /// The smallest size from which the last function timed is faster than the first at every size
    /// measured (`None`: at no size, or fewer than two functions).
    pub fn crossover(&self) -> Option<usize> {
        let (first, last) = (&self.results.first()?.1, &self.results[1..].last()?.1);
        let faster: Vec<Option<bool>> = first.iter().zip(last).map(|(a, b)| Some(b.as_ref()?.mean < a.as_ref()?.mean)).collect();
        let mut from = None;
        for (i, f) in faster.iter().enumerate().rev() {
            match f {
                Some(true) => from = Some(self.sizes[i]),
                Some(false) => break,
                None => {}
            }
        }
        from
    }

    /// The chart: seconds per call against n, both axes logarithmic.
    pub fn chart(&self) -> Chart {
        let mut chart = Chart::new(self.title.clone()).x_label("n").y_label("seconds per call").log_x().log_y();
        for (name, timings) in &self.results {
            chart = chart.line(name.clone(), self.sizes.iter().zip(timings).filter_map(|(&n, t)| Some((n, t.as_ref()?.mean))));
        }
        chart
    }

    fn crossover_line(&self) -> String {
        let (Some((first, _)), Some((last, _))) = (self.results.first(), self.results.get(1..).and_then(|r| r.last())) else {
            return String::new();
        };
        let mut line = match self.crossover() {
            Some(n) => format!("{last} is faster than {first} from n = {n} on"),
            None => format!("{last} was not faster than {first} at any size measured"),
        };
        if self.interrupted {
            line.push_str(" (interrupted: not every size was measured)");
        }
        line
    }

    fn table(&self, html: bool) -> String {
        let cell = |t: &Option<Timing>| t.map_or("-".to_string(), |t| format_time(t.mean));
        let names: Vec<&str> = self.results.iter().map(|(n, _)| n.as_str()).collect();
        let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let mut out = String::new();
        if html {
            out.push_str("<table><tr><th>n</th>");
            names.iter().for_each(|n| out.push_str(&format!("<th>{}</th>", escape(n))));
            out.push_str("</tr>");
            for (i, n) in self.sizes.iter().enumerate() {
                out.push_str(&format!("<tr><td>{n}</td>"));
                self.results.iter().for_each(|(_, t)| out.push_str(&format!("<td>{}</td>", cell(&t[i]))));
                out.push_str("</tr>");
            }
            out.push_str(&format!("</table><p>{}</p>", escape(&self.crossover_line())));
        } else {
            out.push_str(&format!("{:>6}", "n"));
            names.iter().for_each(|n| out.push_str(&format!("  {n:>18}")));
            for (i, n) in self.sizes.iter().enumerate() {
                out.push_str(&format!("\n{n:>6}"));
                self.results.iter().for_each(|(_, t)| out.push_str(&format!("  {:>18}", cell(&t[i]))));
            }
            out.push_str(&format!("\n{}", self.crossover_line()));
        }
        out
    }

    /// As a cell's value: the chart (a `display_data`), then the table and the crossover.
    pub fn evcxr_display(&self) {
        self.chart().show();
        display::result_part(&[("text/html", &self.table(true)), ("text/plain", &self.table(false))]);
    }
}

/// Seconds as `%timeit` writes them: `2.71 µs`, `443 ms`.
pub fn format_time(seconds: f64) -> String {
    let (value, unit) = match seconds {
        s if s >= 1.0 => (s, "s"),
        s if s >= 1e-3 => (s * 1e3, "ms"),
        s if s >= 1e-6 => (s * 1e6, "\u{b5}s"),
        s => (s * 1e9, "ns"),
    };
    let decimals = if value >= 100.0 { 0 } else if value >= 10.0 { 1 } else { 2 };
    format!("{value:.decimals$} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_every_function_at_every_size_and_finds_the_crossover() {
        let sweep = sweep(&[1, 10, 100], |n| vec![1u64; n * 100])
            .run_seconds(0.001)
            .runs(2)
            .time("sum", |v| v.iter().sum::<u64>())
            .time("constant", |v| v.len())
            .title("t");
        let sums = sweep.times("sum").unwrap();
        assert!(sums.iter().all(|t| t.is_some_and(|t| t > 0.0)), "{sums:?}");
        assert_eq!(sweep.crossover(), Some(1), "len() is faster than a sum at every size");
        let text = sweep.table(false);
        assert!(text.contains("constant is faster than sum from n = 1 on"), "{text}");
        assert!(sweep.table(true).starts_with("<table><tr><th>n</th><th>sum</th><th>constant</th></tr>"));
        assert_eq!(sweep.chart().series.len(), 2);
        let none = super::sweep(&[1, 2], |n| n).run_seconds(0.0).runs(1).time("a", |n| *n).time("b", |n| {
            std::thread::sleep(std::time::Duration::from_micros(200));
            *n
        });
        assert_eq!(none.crossover(), None);
        assert!(none.table(false).contains("b was not faster than a at any size measured"));
    }

    #[test]
    fn time_format() {
        assert_eq!((format_time(2.714e-6), format_time(0.443), format_time(12.0), format_time(5e-9)), ("2.71 µs".into(), "443 ms".into(), "12.0 s".into(), "5.00 ns".into()));
    }
}
