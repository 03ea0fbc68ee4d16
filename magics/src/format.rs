//! IPython's time formatting (`IPython.core.magics.execution._format_time`) and the line
//! `%timeit` prints. No dependencies: this file is also compiled into the user process.

/// Python's `"%.*g" % (precision, value)`.
pub fn format_g(value: f64, precision: usize) -> String {
    let precision = precision.max(1);
    if value == 0.0 {
        return "0".to_string();
    }
    if !value.is_finite() {
        return if value.is_nan() { "nan".into() } else if value > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // The exponent after rounding to `precision` significant digits.
    let sci = format!("{:.*e}", precision - 1, value);
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if exponent < -4 || exponent >= precision as i32 {
        let mantissa = strip_zeros(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    } else {
        let decimals = (precision as i32 - 1 - exponent).max(0) as usize;
        strip_zeros(&format!("{value:.decimals$}")).to_string()
    }
}

fn strip_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// IPython's `_format_time`: `12.1 µs`, `443 ms`, `1min 3s`.
pub fn format_time(seconds: f64, precision: usize) -> String {
    if seconds >= 60.0 {
        let mut parts = Vec::new();
        let mut leftover = seconds;
        for (suffix, length) in [("d", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0)] {
            let value = (leftover / length).trunc();
            if value > 0.0 {
                leftover %= length;
                parts.push(format!("{value}{suffix}"));
            }
            if leftover < 1.0 {
                break;
            }
        }
        return parts.join(" ");
    }
    const UNITS: [&str; 4] = ["s", "ms", "\u{b5}s", "ns"];
    const SCALING: [f64; 4] = [1.0, 1e3, 1e6, 1e9];
    let order = if seconds > 0.0 {
        // -int(floor(log10(t)) // 3), with Python's flooring division.
        let exponent = seconds.log10().floor() as i64;
        (-exponent.div_euclid(3)).clamp(0, 3) as usize
    } else {
        3
    };
    format!("{} {}", format_g(seconds * SCALING[order], precision), UNITS[order])
}

/// `%timeit -a`'s second line: `1 allocation (78.1 KiB) per loop`, from the allocations and
/// bytes counted over `loops` loops.
pub fn allocations_line(count: u64, bytes: u64, loops: u64) -> String {
    let loops = loops.max(1) as f64;
    let (per, bytes) = (count as f64 / loops, bytes as f64 / loops);
    let number = if per.fract() == 0.0 { format!("{per}") } else { format_g(per, 3) };
    let noun = if per == 1.0 { "allocation" } else { "allocations" };
    if count == 0 {
        return "0 allocations per loop".to_string();
    }
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut size = bytes;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    format!("{number} {noun} ({} {}) per loop", format_g(size, 3), UNITS[unit])
}

/// `1,000,000` (Python's `{:,}`).
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Mean and population standard deviation of per-loop times (IPython's `average`, `stdev`).
pub fn mean_stdev(per_loop: &[f64]) -> (f64, f64) {
    let n = per_loop.len().max(1) as f64;
    let mean = per_loop.iter().sum::<f64>() / n;
    let var = per_loop.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The line `%timeit` prints, from the total time of each run.
pub fn timeit_line(all_runs: &[f64], loops: u64, precision: usize) -> String {
    let per_loop: Vec<f64> = all_runs.iter().map(|t| t / loops as f64).collect();
    let (mean, stdev) = mean_stdev(&per_loop);
    let runs = all_runs.len();
    format!(
        "{} \u{b1} {} per loop (mean \u{b1} std. dev. of {runs} run{}, {} loop{} each)",
        format_time(mean, precision),
        format_time(stdev, precision),
        if runs == 1 { "" } else { "s" },
        thousands(loops),
        if loops == 1 { "" } else { "s" },
    )
}

/// IPython's warning when the slowest run took more than 4 times the fastest.
pub fn timeit_warning(all_runs: &[f64], loops: u64) -> Option<String> {
    let best = all_runs.iter().cloned().fold(f64::INFINITY, f64::min) / loops as f64;
    let worst = all_runs.iter().cloned().fold(0.0, f64::max) / loops as f64;
    (worst > 4.0 * best && best > 0.0 && worst > 1e-6).then(|| {
        format!(
            "The slowest run took {:.2} times longer than the fastest. This could mean that an intermediate result is being cached.",
            worst / best
        )
    })
}

/// `%time`'s two lines.
pub fn time_lines(user: f64, sys: f64, wall: f64) -> String {
    format!(
        "CPU times: user {}, sys: {}, total: {}\nWall time: {}",
        format_time(user, 3),
        format_time(sys, 3),
        format_time(user + sys, 3),
        format_time(wall, 3)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_lines() {
        assert_eq!(allocations_line(100, 8_000_000, 100), "1 allocation (78.1 KiB) per loop");
        assert_eq!(allocations_line(0, 0, 1000), "0 allocations per loop");
        assert_eq!(allocations_line(300, 8_000_000 * 100, 100), "3 allocations (7.63 MiB) per loop");
        assert_eq!(allocations_line(1, 16, 2), "0.5 allocations (8 B) per loop");
    }

    #[test]
    fn g_format_matches_python() {
        // Expected values are Python's "%.*g" % (p, v).
        let cases: &[(f64, usize, &str)] = &[
            (12.1234, 3, "12.1"),
            (443.0, 3, "443"),
            (1.0, 3, "1"),
            (999.6, 3, "1e+03"),
            (999.4, 3, "999"),
            (0.01, 3, "0.01"),
            (0.000123456, 3, "0.000123"),
            (0.0000123456, 3, "1.23e-05"),
            (26.4, 3, "26.4"),
            (1.5, 1, "2"),
            (2.5, 1, "2"),
            (123456.0, 3, "1.23e+05"),
            (100.0, 3, "100"),
            (12.1234, 5, "12.123"),
            (0.5, 3, "0.5"),
        ];
        for (v, p, want) in cases {
            assert_eq!(format_g(*v, *p), *want, "{v} p={p}");
        }
    }

    #[test]
    fn time_units_and_boundaries_as_ipython() {
        // Expected values from IPython's _format_time rules.
        let cases: &[(f64, usize, &str)] = &[
            (12.1e-6, 3, "12.1 µs"),
            (443e-6, 3, "443 µs"),
            (26.4e-9, 3, "26.4 ns"),
            (2.11e-6, 3, "2.11 µs"),
            (1e-9, 3, "1 ns"),
            (999e-9, 3, "999 ns"),
            (1e-6, 3, "1 µs"),
            (999.7e-9, 3, "1e+03 ns"),
            (1e-3, 3, "1 ms"),
            (0.2, 3, "200 ms"),
            (1.0, 3, "1 s"),
            (59.9, 3, "59.9 s"),
            (60.0, 3, "1min"),
            (63.5, 3, "1min 3s"),
            (3725.0, 3, "1h 2min 5s"),
            (90061.0, 3, "1d 1h 1min 1s"),
            (0.0, 3, "0 ns"),
            (1e-11, 3, "0.01 ns"),
            (1.23456e-6, 5, "1.2346 µs"),
            (1.23456e-6, 1, "1 µs"),
        ];
        for (v, p, want) in cases {
            assert_eq!(format_time(*v, *p), *want, "{v} p={p}");
        }
    }

    #[test]
    fn timeit_lines_as_ipython() {
        assert_eq!(
            timeit_line(&[1.21, 1.212, 1.208, 1.25, 1.19, 1.2, 1.21], 100_000, 3),
            "12.1 µs ± 173 ns per loop (mean ± std. dev. of 7 runs, 100,000 loops each)"
        );
        assert_eq!(timeit_line(&[2.0], 1, 3), "2 s ± 0 ns per loop (mean ± std. dev. of 1 run, 1 loop each)");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(100), "100");
        assert_eq!(thousands(10_000_000), "10,000,000");
    }

    #[test]
    fn slow_run_warning() {
        assert!(timeit_warning(&[1.0, 1.0, 5.0], 1).unwrap().starts_with("The slowest run took 5.00 times longer"));
        assert_eq!(timeit_warning(&[1.0, 1.1], 1), None);
        // Sub-microsecond: no warning.
        assert_eq!(timeit_warning(&[1e-7, 9e-7], 1), None);
    }

    #[test]
    fn time_magic_lines() {
        assert_eq!(
            time_lines(0.5, 0.25, 1.0),
            "CPU times: user 500 ms, sys: 250 ms, total: 750 ms\nWall time: 1 s"
        );
    }
}
