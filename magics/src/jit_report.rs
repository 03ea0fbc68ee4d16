//! `%jit_report NAME`: what the jit did with a function (Numba's `parallel_diagnostics`).

use crate::{Call, Context, Found, Kind, Magic, MagicError, MimeBundle, Value};

pub struct JitReportMagic;

/// What the kernel knows of one compiled jit function.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JitReport {
    pub name: String,
    /// `#[jit]`, `#[jit(parallel)]`, `#[vectorize(...)]`.
    pub what: String,
    pub parallel: bool,
    /// The pool's size for the next cell (`RAYON_NUM_THREADS`, else the cores).
    pub threads: usize,
    /// `#[jit(parallel)]`: the rewrite, place by place, in cell line order.
    pub sites: Vec<ReportSite>,
    /// rustc's flags.
    pub flags: Vec<String>,
    pub rustc: String,
    /// The library, and its source beside it.
    pub library: String,
    /// Seconds rustc took, when the kernel compiled it (now or when it was cached).
    pub compile_seconds: Option<f64>,
    /// Whether this session compiled it, or took it from the cache.
    pub from_cache: bool,
    /// The function as compiled (after the rewrite).
    pub rewritten: String,
}

/// One place of a `#[jit(parallel)]` function.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSite {
    /// Cell line.
    pub line: usize,
    pub code: String,
    pub parallel: bool,
    /// What it became, or why it stayed serial.
    pub what: String,
}

impl Magic for JitReportMagic {
    fn name(&self) -> &'static str {
        "jit_report"
    }
    fn kind(&self) -> Kind {
        Kind::Line
    }
    fn help(&self) -> &'static str {
        "Show what the jit did with a function (like Numba's parallel_diagnostics).

Usage:
  %jit_report NAME             for #[jit(parallel)]: what went parallel, and
                               what stayed serial and why (level 2)
  %jit_report -l 1 NAME        only what went parallel
  %jit_report -l 3 NAME        also the function as compiled (after the rewrite)

For every jit function it also says how it was compiled: rustc's flags, where
the library is cached, and how long the compile took."
    }

    fn run(&self, call: &Call, ctx: &mut dyn Context) -> Result<Option<Value>, MagicError> {
        let (level, name) = parse_args(&call.args)?;
        match ctx.jit_report(name)? {
            Found::Plain => Ok(Some(Value::text(format!(
                "`{name}` is a plain function: it is compiled with its cell at opt-level 0 and nothing is rewritten.\n\
                 Put `#[jit]` (or `#[jit(parallel)]`) above it and run the cell again to compile it optimised."
            )))),
            Found::Jit(report) => {
                let text = render(&report, level);
                let html = format!("<pre>{}</pre>", text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"));
                Ok(Some(Value::Show(MimeBundle::from([("text/plain".into(), text), ("text/html".into(), html)]))))
            }
        }
    }
}

fn parse_args(args: &str) -> Result<(u8, &str), MagicError> {
    let mut level = 2;
    let mut name = None;
    let mut words = args.split_whitespace();
    while let Some(word) = words.next() {
        let value = match word {
            "-l" | "--level" => words.next(),
            w if w.starts_with("--level=") => w.strip_prefix("--level="),
            w if w.starts_with("-l") && w.len() > 2 => w.strip_prefix("-l"),
            w if w.starts_with('-') => return Err(MagicError::usage(format!("%jit_report: unknown option {w} (see %jit_report?)"))),
            w => {
                if name.replace(w).is_some() {
                    return Err(MagicError::usage("%jit_report: one function name, e.g. `%jit_report a_plus_tr_tanh_a_par`"));
                }
                continue;
            }
        };
        level = value.and_then(|v| v.parse::<u8>().ok()).filter(|l| (1..=4).contains(l)).ok_or_else(|| MagicError::usage("%jit_report: -l takes a level from 1 to 4"))?;
    }
    let name = name.ok_or_else(|| MagicError::usage("%jit_report: which function? e.g. `%jit_report a_plus_tr_tanh_a_par`"))?;
    Ok((level, name))
}

/// The report as text, at `level` (see the help).
pub fn render(report: &JitReport, level: u8) -> String {
    let mut out = format!("{} ({})\n", report.name, report.what);
    if report.parallel {
        let threads = if report.threads == 1 { "1 thread".to_string() } else { format!("{} threads", report.threads) };
        out.push_str(&format!("\nParallel (on the session pool: {threads}, RAYON_NUM_THREADS):\n"));
        let parallel: Vec<&ReportSite> = report.sites.iter().filter(|s| s.parallel).collect();
        if parallel.is_empty() {
            out.push_str("  nothing: no array operator and no `prange` loop\n");
        }
        for site in parallel {
            out.push_str(&format!("  line {}: `{}`\n      {}\n", site.line, site.code, site.what));
        }
        if level >= 2 {
            out.push_str("\nSerial:\n");
            let serial: Vec<&ReportSite> = report.sites.iter().filter(|s| !s.parallel).collect();
            if serial.is_empty() {
                out.push_str("  nothing else was rewritten\n");
            }
            for site in serial {
                out.push_str(&format!("  line {}: `{}`\n      {}\n", site.line, site.code, site.what));
            }
            out.push_str(
                "\nCost: every parallel operation wakes the pool's threads, hands each a part and waits for the last one \
                 (microseconds); on small arrays that costs more than the work, and the serial #[jit] version is faster. \
                 Time both with %timeit to find where parallel starts to pay.\n",
            );
        }
        if level >= 3 {
            out.push_str(&format!("\nThe function as compiled (after the rewrite):\n{}\n", report.rewritten.trim_matches('\n')));
        }
    }
    let compiled = match (report.compile_seconds, report.from_cache) {
        (Some(s), false) => format!("compiled in this session in {s:.2} s"),
        (Some(s), true) => format!("from the cache (compiled in {s:.2} s)"),
        (None, _) => "from the cache".to_string(),
    };
    out.push_str(&format!("\nCompiled: {compiled}\n  rustc: {}\n  flags: {}\n  library: {}\n", report.rustc, report.flags.join(" "), report.library));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{call, FakeSession};

    fn report() -> JitReport {
        JitReport {
            name: "f".into(),
            what: "#[jit(parallel)]".into(),
            parallel: true,
            threads: 2,
            sites: vec![
                ReportSite { line: 4, code: "for i in prange(0..n)".into(), parallel: true, what: "a parallel loop; reduction: `t` (+=)".into() },
                ReportSite { line: 7, code: "x * 2.0".into(), parallel: false, what: "numbers, not arrays: plain arithmetic".into() },
            ],
            flags: vec!["-Copt-level=3".into()],
            rustc: "rustc 1.95.0".into(),
            library: "/c/libjit_f.so".into(),
            compile_seconds: Some(1.5),
            from_cache: false,
            rewritten: "fn f() {}".into(),
        }
    }

    #[test]
    fn levels() {
        let two = render(&report(), 2);
        assert!(two.contains("Parallel (on the session pool: 2 threads") && two.contains("line 4: `for i in prange(0..n)`"), "{two}");
        assert!(two.contains("Serial:\n  line 7: `x * 2.0`\n      numbers, not arrays"), "{two}");
        assert!(two.contains("compiled in this session in 1.50 s") && two.contains("flags: -Copt-level=3"));
        let one = render(&report(), 1);
        assert!(!one.contains("Serial:") && one.contains("line 4"));
        assert!(render(&report(), 3).contains("after the rewrite):\nfn f() {}"));
        let serial = JitReport { parallel: false, what: "#[jit]".into(), from_cache: true, ..report() };
        let text = render(&serial, 2);
        assert!(!text.contains("Parallel") && text.contains("from the cache (compiled in 1.50 s)"), "{text}");
    }

    #[test]
    fn arguments() {
        assert_eq!(parse_args("f").unwrap(), (2, "f"));
        assert_eq!(parse_args("-l 1 f").unwrap(), (1, "f"));
        assert_eq!(parse_args("-l3 f").unwrap(), (3, "f"));
        assert_eq!(parse_args("--level=4 f").unwrap(), (4, "f"));
        assert!(parse_args("").unwrap_err().evalue.contains("which function"));
        assert!(parse_args("-l 9 f").is_err());
        assert!(parse_args("f g").is_err());
        assert!(parse_args("-x f").is_err());
    }

    #[test]
    fn plain_functions_get_a_hint() {
        let mut ctx = FakeSession { plain: vec!["naive".into()], ..Default::default() };
        let Some(Value::Show(b)) = JitReportMagic.run(&call("jit_report", "naive", None), &mut ctx).unwrap() else { panic!() };
        assert!(b["text/plain"].contains("`naive` is a plain function"));
        let e = JitReportMagic.run(&call("jit_report", "nope", None), &mut ctx).unwrap_err();
        assert_eq!(e.ename, "NameError");
    }
}
