//! `%timeit` and `%%timeit`: IPython's timing, with the loop compiled into the user's code.
//!
//! The statement runs inside a generated Rust block in the session (same opt-level as the
//! learner's cells, variables in scope); the kernel only picks the options, reads back the run
//! times and formats them. The loop count grows through powers of ten until one run takes at
//! least 0.2 s; then `repeat` runs are timed. Each run is measured in chunks, and between chunks
//! (outside the timed spans) the harness looks for the kernel's interrupt flag, so an interrupt
//! stops it within a chunk (about 50 ms) and keeps every variable.

use crate::format::{timeit_line, timeit_warning};
use crate::{Call, Context, Kind, Magic, MagicError, MimeBundle, Value};

pub struct Timeit;

/// Options of one `%timeit`.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub number: u64,
    pub repeat: usize,
    pub precision: usize,
    pub quiet: bool,
    pub output: bool,
    pub save_to: Option<String>,
    pub statement: String,
}

/// Parses `[-n N] [-r R] [-p P] [-q] [-o] [-v V] [-t] [-c] statement` (getopt style: `-n10`,
/// `-n 10`, `-qo`).
pub fn parse_options(args: &str) -> Result<Options, MagicError> {
    let mut options =
        Options { number: 0, repeat: 7, precision: 3, quiet: false, output: false, save_to: None, statement: String::new() };
    let mut rest = args.trim_start();
    // Option groups come first; the first word that is not one starts the statement.
    while let Some(word) = rest.strip_prefix('-') {
        let end = word.find(char::is_whitespace).unwrap_or(word.len());
        let group = &word[..end];
        if !group.starts_with(|c: char| "nrpqovtc".contains(c)) {
            break;
        }
        let mut after = &word[end..];
        for (i, flag) in group.char_indices() {
            match flag {
                'q' => options.quiet = true,
                'o' => options.output = true,
                't' | 'c' => {} // wall clock either way, as IPython on Unix
                'n' | 'r' | 'p' | 'v' => {
                    let mut value = &group[i + 1..];
                    if value.is_empty() {
                        let next = after.trim_start();
                        let next_end = next.find(char::is_whitespace).unwrap_or(next.len());
                        value = &next[..next_end];
                        after = &next[next_end..];
                    }
                    set_value(&mut options, flag, value)?;
                    break;
                }
                other => return Err(MagicError::usage(format!("option -{other} not recognized"))),
            }
        }
        rest = after.trim_start();
    }
    options.statement = rest.to_string();
    Ok(options)
}

fn set_value(options: &mut Options, flag: char, value: &str) -> Result<(), MagicError> {
    if value.is_empty() {
        return Err(MagicError::usage(format!("option -{flag} requires argument")));
    }
    let number = |what: &str| -> Result<u64, MagicError> {
        value.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            MagicError::usage(format!("invalid {what} for -{flag}: '{value}' (a positive whole number)"))
        })
    };
    match flag {
        'n' => options.number = number("loop count")?,
        'r' => options.repeat = number("repeat count")? as usize,
        'p' => options.precision = number("precision")? as usize,
        _ => {
            if !value.chars().all(|c| c.is_alphanumeric() || c == '_') || value.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(MagicError::usage(format!("-v needs a variable name, not '{value}'")));
            }
            options.save_to = Some(value.to_string());
        }
    }
    Ok(())
}

impl Magic for Timeit {
    fn name(&self) -> &'static str {
        "timeit"
    }
    fn kind(&self) -> Kind {
        Kind::LineAndCell
    }
    fn assignable(&self) -> bool {
        true
    }
    fn help(&self) -> &'static str {
        "Time execution of a Rust statement or expression.

Usage, in line mode:
  %timeit [-n<N> -r<R> -q -p<P> [-o|-v <V>]] statement
or in cell mode:
  %%timeit [-n<N> -r<R> -q -p<P> [-o|-v <V>]] setup_code
  code
  code...

The statement runs compiled like your other cells, with your variables in
scope. In cell mode the first line is setup code (run before each timed run,
not timed) and the body is timed.

Options:
  -n<N>  loops per run; by default 1, 10, 100, ... until a run takes 0.2 s
  -r<R>  number of runs (default 7)
  -p<P>  significant digits in the result (default 3)
  -q     quiet: print nothing
  -o     return a TimeitResult (the cell's result); keep it with
         `let t = %timeit -o f(&a)` and read t.best(), t.worst(),
         t.average(), t.stdev(), t.all_runs, t.loops, t.repeat
  -v <V> like -o, but store the TimeitResult in the variable V

Example:
  %timeit a_plus_tr_tanh_a(&a)
  12.1 µs ± 26.4 ns per loop (mean ± std. dev. of 7 runs, 100,000 loops each)"
    }

    fn run(&self, call: &Call, ctx: &mut dyn Context) -> Result<Option<Value>, MagicError> {
        let options = parse_options(&call.args)?;
        let (setup, statement) = match &call.body {
            Some(body) => (options.statement.clone(), body.clone()),
            None => (String::new(), options.statement.clone()),
        };
        if statement.trim().is_empty() {
            return Ok(None);
        }
        crate::require_complete("%timeit", &setup)?;
        crate::require_complete("%timeit", &statement)?;
        let code = harness(&setup, &statement, &options, call.line, call.body.is_some());
        let value = ctx.run_rust(&code)?.and_then(|b| b.get("text/plain").cloned()).unwrap_or_default();
        let (loops, all_runs) = parse_runs(&value)
            .ok_or_else(|| MagicError::new("TimeitError", format!("unexpected harness result: {value}")))?;

        let mut shown = Vec::new();
        if !options.quiet {
            if let Some(warning) = timeit_warning(&all_runs, loops) {
                shown.push(Value::text(warning));
            }
            shown.push(Value::text(timeit_line(&all_runs, loops, options.precision)));
        }
        let keep = call.assign_to.clone().or(options.save_to.clone());
        if options.output || keep.is_some() {
            let result = result_value(&all_runs, loops, options.precision);
            if let Some(name) = keep {
                ctx.run_rust(&format!("{}\nlet {name} = {result};", result_type()))?;
            } else {
                let repr = format!("<TimeitResult : {}>", timeit_line(&all_runs, loops, options.precision));
                shown.push(Value::Result(MimeBundle::from([("text/plain".to_string(), repr)])));
            }
        }
        Ok(Some(Value::Many(shown)))
    }
}

/// The Rust block that times `statement` and evaluates to `(loops, run_seconds)`.
///
/// It is laid out so that the statement's lines are the cell's: the setup and the statement
/// of a line magic sit on the magic's own line; a cell magic's body follows on the next lines.
/// The statement sits directly in the timed loop (no closure call).
pub fn harness(setup: &str, statement: &str, options: &Options, line: usize, cell_mode: bool) -> String {
    let head = format!(
        "{{ let __rjk_number: u64 = {number}; let __rjk_repeat: usize = {repeat}; \
         let __rjk_flag = ::std::env::var_os({flag:?}).map(::std::path::PathBuf::from); \
         let __rjk_stop = || __rjk_flag.as_ref().is_some_and(|f| f.exists()); \
         let mut __rjk_time = |__rjk_loops: u64| -> ::std::option::Option<f64> {{ ",
        number = options.number,
        repeat = options.repeat,
        flag = crate::INTERRUPT_FILE_VAR,
    );
    // Runs `__rjk_loops` loops in chunks of about 50 ms; only the chunks are timed, and the
    // interrupt flag is looked at between them.
    let loop_head = "let mut __rjk_done: u64 = 0; let mut __rjk_chunk: u64 = 1; let mut __rjk_total = 0.0f64; \
        while __rjk_done < __rjk_loops { \
            if __rjk_stop() { return None; } \
            let __rjk_n = __rjk_chunk.min(__rjk_loops - __rjk_done); \
            let __rjk_t0 = ::std::time::Instant::now(); \
            let mut __rjk_i: u64 = 0; \
            while __rjk_i < __rjk_n { let __rjk_v = { ";
    // The value's address goes into an empty asm block: the optimiser must produce it, and
    // unlike `black_box` at opt-level 0 this is no function call (harness cost ~1 ns per loop).
    let loop_tail = "}; unsafe { ::std::arch::asm!(\"/* {0} */\", in(reg) &__rjk_v, options(nostack, preserves_flags, readonly)); } __rjk_i += 1; } \
            let __rjk_dt = __rjk_t0.elapsed().as_secs_f64(); \
            __rjk_total += __rjk_dt; __rjk_done += __rjk_n; \
            if __rjk_dt < 0.05 { __rjk_chunk = __rjk_chunk.saturating_mul(2); } \
        } \
        Some(__rjk_total) }; \
        let mut __rjk_loops = __rjk_number; \
        if __rjk_loops == 0 { \
            let mut __rjk_k = 1u64; \
            loop { match __rjk_time(__rjk_k) { None => break, Some(t) if t >= 0.2 || __rjk_k >= 1_000_000_000 => break, _ => __rjk_k *= 10 } } \
            __rjk_loops = __rjk_k; \
        } \
        let mut __rjk_runs: ::std::vec::Vec<f64> = ::std::vec::Vec::new(); \
        for _ in 0..__rjk_repeat { match __rjk_time(__rjk_loops) { Some(t) => __rjk_runs.push(t), None => break } } \
        (__rjk_loops, __rjk_runs) }";
    let padding = "\n".repeat(line.saturating_sub(1));
    let setup = if setup.trim().is_empty() { String::new() } else { format!("{setup} ") };
    let before_statement = if cell_mode { "\n" } else { "" };
    format!("{padding}{head}{setup}{loop_head}{before_statement}{statement}\n{loop_tail}")
}

/// Reads the harness's value, Debug-printed as `(loops, [t1, t2, ...])`.
pub fn parse_runs(text: &str) -> Option<(u64, Vec<f64>)> {
    let inner = text.trim().strip_prefix('(')?.strip_suffix(')')?;
    let (loops, runs) = inner.split_once(',')?;
    let runs = runs.trim().strip_prefix('[')?.strip_suffix(']')?;
    let runs: Option<Vec<f64>> =
        runs.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse().ok()).collect();
    Some((loops.trim().parse().ok()?, runs?))
}

/// A `TimeitResult` value as Rust source.
fn result_value(all_runs: &[f64], loops: u64, precision: usize) -> String {
    let runs: Vec<String> = all_runs.iter().map(|t| format!("{t:?}")).collect();
    format!(
        "TimeitResult {{ loops: {loops}, repeat: {}, all_runs: vec![{}], precision: {precision} }}",
        all_runs.len(),
        runs.join(", ")
    )
}

/// The `TimeitResult` type, defined in the session the first time it is needed (evcxr keeps
/// an item defined again with the same text as it is).
fn result_type() -> String {
    format!(
        r#"
/// What `%timeit -o` gives: IPython's TimeitResult.
#[derive(Clone, PartialEq)]
pub struct TimeitResult {{
    /// Loops per run.
    pub loops: u64,
    /// Number of runs.
    pub repeat: usize,
    /// Total seconds of each run.
    pub all_runs: Vec<f64>,
    pub precision: usize,
}}
#[allow(dead_code)]
impl TimeitResult {{
    /// Seconds per loop of each run.
    pub fn timings(&self) -> Vec<f64> {{ self.all_runs.iter().map(|t| t / self.loops as f64).collect() }}
    /// Fastest run, seconds per loop.
    pub fn best(&self) -> f64 {{ self.timings().into_iter().fold(f64::INFINITY, f64::min) }}
    /// Slowest run, seconds per loop.
    pub fn worst(&self) -> f64 {{ self.timings().into_iter().fold(0.0, f64::max) }}
    /// Mean seconds per loop.
    pub fn average(&self) -> f64 {{ __rjk_timeit_format::mean_stdev(&self.timings()).0 }}
    /// Standard deviation of the seconds per loop.
    pub fn stdev(&self) -> f64 {{ __rjk_timeit_format::mean_stdev(&self.timings()).1 }}
}}
impl ::std::fmt::Display for TimeitResult {{
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {{
        f.write_str(&__rjk_timeit_format::timeit_line(&self.all_runs, self.loops, self.precision))
    }}
}}
impl ::std::fmt::Debug for TimeitResult {{
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {{
        write!(f, "<TimeitResult : {{}}>", self)
    }}
}}
#[allow(dead_code)]
mod __rjk_timeit_format {{
{}
}}
"#,
        include_str!("format.rs")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(args: &str) -> Options {
        parse_options(args).unwrap()
    }

    #[test]
    fn options_like_getopt() {
        let o = opts("f(&a)");
        assert_eq!((o.number, o.repeat, o.precision, o.quiet, o.output), (0, 7, 3, false, false));
        assert_eq!(o.statement, "f(&a)");
        let o = opts("-n10 -r 3 -qo -p5 f(&a, -1)");
        assert_eq!((o.number, o.repeat, o.precision, o.quiet, o.output), (10, 3, 5, true, true));
        assert_eq!(o.statement, "f(&a, -1)");
        assert_eq!(opts("-n 100 x").number, 100);
        assert_eq!(opts("-v t x").save_to.as_deref(), Some("t"));
        assert_eq!(opts("-x").statement, "-x");
        assert_eq!(parse_options("-qx f()").unwrap_err().evalue, "option -x not recognized");
        assert_eq!(opts("-1 + 2").statement, "-1 + 2");
    }

    #[test]
    fn bad_options_are_usage_errors() {
        assert_eq!(parse_options("-n").unwrap_err().ename, "UsageError");
        assert!(parse_options("-n abc f()").unwrap_err().evalue.contains("-n"));
        assert!(parse_options("-r 0 f()").is_err());
        assert!(parse_options("-v a-b f()").is_err());
    }

    #[test]
    fn harness_keeps_the_statement_on_the_cell_line() {
        let code = harness("", "f(&a)", &opts("f(&a)"), 3, false);
        let lines: Vec<&str> = code.lines().collect();
        assert_eq!(lines[..2], ["", ""]);
        assert!(lines[2].contains("let __rjk_number: u64 = 0;"));
        assert!(lines[2].ends_with("let __rjk_v = { f(&a)"));
        let cell = harness("let v = 1;", "work(&v);\nmore(&v);", &opts("-n 5 let v = 1;"), 1, true);
        let lines: Vec<&str> = cell.lines().collect();
        assert!(lines[0].contains("let v = 1;") && lines[0].contains("= 5;"));
        assert_eq!(lines[1..3], ["work(&v);", "more(&v);"]);
        assert!(lines[3].starts_with("}; unsafe"));
    }

    #[test]
    fn run_shows_the_line_and_keeps_the_result() {
        use crate::testing::{call, FakeSession};
        let answer = MimeBundle::from([("text/plain".to_string(), "(100, [0.25, 0.25, 1.25])".to_string())]);
        let mut ctx = FakeSession { answer: Some(answer), ..Default::default() };
        let Some(Value::Many(shown)) = Timeit.run(&call("timeit", "-o f()", None), &mut ctx).unwrap() else { panic!() };
        let line = "5.83 ms ± 4.71 ms per loop (mean ± std. dev. of 3 runs, 100 loops each)";
        assert_eq!(
            shown,
            vec![
                Value::text("The slowest run took 5.00 times longer than the fastest. This could mean that an intermediate result is being cached."),
                Value::text(line),
                Value::Result(MimeBundle::from([("text/plain".to_string(), format!("<TimeitResult : {line}>"))])),
            ]
        );
        let mut keep = call("timeit", "-q f()", None);
        keep.assign_to = Some("t".into());
        let Some(Value::Many(shown)) = Timeit.run(&keep, &mut ctx).unwrap() else { panic!() };
        assert!(shown.is_empty());
        let last = ctx.ran.last().unwrap();
        assert!(last.contains("pub struct TimeitResult") && last.ends_with("let t = TimeitResult { loops: 100, repeat: 3, all_runs: vec![0.25, 0.25, 1.25], precision: 3 };"));
    }

    #[test]
    fn reads_the_harness_value() {
        assert_eq!(parse_runs("(100, [0.25, 0.2500001])"), Some((100, vec![0.25, 0.2500001])));
        assert_eq!(parse_runs("(1, [])"), Some((1, vec![])));
        assert_eq!(parse_runs("nonsense"), None);
    }
}
