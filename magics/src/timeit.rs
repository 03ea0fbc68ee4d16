//! `%timeit` and `%%timeit`: IPython's timing, with the loop compiled into the user's code.
//!
//! The statement runs inside a generated Rust block in the session (same opt-level as the
//! learner's cells, variables in scope); the kernel only picks the options, reads back the run
//! times and formats them. The loop count grows through powers of ten until one run takes at
//! least 0.2 s; then `repeat` runs are timed. Each run is measured in chunks, and between chunks
//! (outside the timed spans) the harness looks for the kernel's interrupt flag, so an interrupt
//! stops it within a chunk (about 50 ms) and keeps every variable.

use crate::format::{allocations_line, timeit_line, timeit_warning};
use crate::{Call, Context, Kind, Magic, MagicError, MimeBundle, Value};

pub struct Timeit;

/// Options of one `%timeit`.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub number: u64,
    pub repeat: usize,
    /// `-n {expr}` / `-r {expr}`: a Rust expression of the session for the loops / runs.
    pub number_expr: Option<String>,
    pub repeat_expr: Option<String>,
    pub precision: usize,
    pub quiet: bool,
    pub output: bool,
    /// `-a`: also count heap allocations per loop.
    pub allocations: bool,
    pub save_to: Option<String>,
    pub statement: String,
}

/// Parses `[-n N] [-r R] [-p P] [-q] [-o] [-a] [-v V] [-t] [-c] statement` (getopt style: `-n10`,
/// `-n 10`, `-qo`).
pub fn parse_options(args: &str) -> Result<Options, MagicError> {
    let mut options = Options {
        number: 0,
        repeat: 7,
        number_expr: None,
        repeat_expr: None,
        precision: 3,
        quiet: false,
        output: false,
        allocations: false,
        save_to: None,
        statement: String::new(),
    };
    let mut rest = args.trim_start();
    // Option groups come first; the first word that is not one starts the statement.
    while let Some(word) = rest.strip_prefix('-') {
        let end = word.find(char::is_whitespace).unwrap_or(word.len());
        let group = &word[..end];
        if !group.starts_with(|c: char| "nrpqovtca".contains(c)) {
            break;
        }
        let mut after = &word[end..];
        for (i, flag) in group.char_indices() {
            match flag {
                'q' => options.quiet = true,
                'o' => options.output = true,
                'a' => options.allocations = true,
                't' | 'c' => {} // wall clock either way, as IPython on Unix
                'n' | 'r' | 'p' | 'v' => {
                    let mut value = &group[i + 1..];
                    if value.is_empty() {
                        let next = after.trim_start();
                        let next_end = next.find(char::is_whitespace).unwrap_or(next.len());
                        value = &next[..next_end];
                        after = &next[next_end..];
                    }
                    if value.starts_with('{') && matches!(flag, 'n' | 'r') {
                        // `{expr}`, spaces and all: up to its matching brace.
                        // `value` is a slice of `rest`: where it starts there.
                        let start = value.as_ptr() as usize - rest.as_ptr() as usize;
                        let from = &rest[start..];
                        let close = matching_brace(from).ok_or_else(|| MagicError::usage(format!("option -{flag}: a `{{` without its `}}`")))?;
                        let expr = from[1..close].trim().to_string();
                        if expr.is_empty() {
                            return Err(MagicError::usage(format!("option -{flag} requires argument")));
                        }
                        if flag == 'n' { options.number_expr = Some(expr) } else { options.repeat_expr = Some(expr) }
                        after = &from[close + 1..];
                        break;
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

/// Where the `}` that closes the `{` at the start of `text` is.
fn matching_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
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
  %timeit [-n<N> -r<R> -q -p<P> -a [-o|-v <V>]] statement
or in cell mode:
  %%timeit [-n<N> -r<R> -q -p<P> -a [-o|-v <V>]] setup_code
  code
  code...

The statement runs compiled like your other cells, with your variables in
scope. In cell mode the first line is setup code (run before each timed run,
not timed) and the body is timed.

Options:
  -n<N>  loops per run; by default 1, 10, 100, ... until a run takes 0.2 s
         (`-n {expr}`: the value of a Rust expression, e.g. `-n {loops / 10}`)
  -r<R>  number of runs (default 7; `-r {expr}` too)
  -p<P>  significant digits in the result (default 3)
  -q     quiet: print nothing
  -a     also count heap allocations: one more run of the same loops,
         counted, after the timed ones (the timed runs are not slowed), shown
         under the time as `1 allocation (78.1 KiB) per loop`
  -o     return a TimeitResult (the cell's result); keep it with
         `let t = %timeit -o f(&a)` and read t.best(), t.worst(),
         t.average(), t.stdev(), t.all_runs, t.loops, t.repeat, and with
         -a t.allocations(), t.allocated_bytes() (per loop)
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
        let keep = call.assign_to.clone().or(options.save_to.clone());
        // A new variable is timed and defined in one compile; one that exists is replaced only
        // once the timing has finished, by a cell of its own (an interrupt keeps the old value).
        let defined_by_harness = keep.as_ref().is_some_and(|name| !ctx.variables().contains(name));
        let value = match &keep {
            Some(name) if defined_by_harness => {
                let part = ctx.result_part(RUNS_MIME, "format!(\"{:?}\", __rjk_r)");
                ctx.run_rust(&keep_code(name, &code, &options, &part))?.and_then(|b| b.get(RUNS_MIME).cloned())
            }
            _ => ctx.run_rust(&code)?.and_then(|b| b.get("text/plain").cloned()),
        }
        .unwrap_or_default();
        let Runs { loops, all_runs, allocations } =
            parse_runs(&value).ok_or_else(|| MagicError::new("TimeitError", format!("unexpected harness result: {value}")))?;
        let allocations_text = match (options.allocations, allocations) {
            (false, _) => None,
            (true, Some((count, bytes, counted))) => Some(allocations_line(count, bytes, counted)),
            (true, None) => Some("allocations: not counted (the process running the cells does not count them)".to_string()),
        };
        let line = timeit_line(&all_runs, loops, options.precision);

        let mut shown = Vec::new();
        if !options.quiet {
            if let Some(warning) = timeit_warning(&all_runs, loops) {
                shown.push(Value::text(warning));
            }
            match &allocations_text {
                Some(second) => shown.push(Value::text(format!("{line}\n{second}"))),
                None => shown.push(Value::text(line.clone())),
            }
        }
        if let Some(name) = keep.as_ref().filter(|_| !defined_by_harness) {
            let result = result_value(&all_runs, loops, options.precision, allocations.filter(|_| options.allocations));
            ctx.run_rust(&format!("{}\nlet {name} = {result};", result_type()))?;
        }
        // A kept result is the session's variable; `-o` alone shows it.
        if options.output && keep.is_none() {
            let repr = match &allocations_text {
                Some(second) => format!("<TimeitResult : {line}; {second}>"),
                None => format!("<TimeitResult : {line}>"),
            };
            shown.push(Value::Result(MimeBundle::from([("text/plain".to_string(), repr)])));
        }
        Ok(Some(Value::Many(shown)))
    }
}

/// With `-a`, before the closure that times a run: the allocation counter's two functions,
/// found in the process (`None` when it has none), and whether this run counts.
const COUNTER: &str = "let __rjk_alloc: ::std::option::Option<(extern \"C\" fn(), unsafe extern \"C\" fn(*mut u64, *mut u64))> = { \
    unsafe extern \"C\" { fn dlsym(h: *mut ::std::ffi::c_void, s: *const ::std::ffi::c_char) -> *mut ::std::ffi::c_void; } \
    let (s, e) = unsafe { (dlsym(::std::ptr::null_mut(), c\"rjk_alloc_start\".as_ptr()), dlsym(::std::ptr::null_mut(), c\"rjk_alloc_stop\".as_ptr())) }; \
    if s.is_null() || e.is_null() { None } else { Some(unsafe { (::std::mem::transmute(s), ::std::mem::transmute(e)) }) } }; \
    let __rjk_counting = ::std::cell::Cell::new(false); let __rjk_counted = ::std::cell::Cell::new((0u64, 0u64, 0u64)); ";

/// With `-a`, around each timed chunk of the counted run.
const COUNT_ON: &str = "if __rjk_counting.get() { if let Some((s, _)) = __rjk_alloc { s(); } } ";
const COUNT_OFF: &str = "if __rjk_counting.get() { if let Some((_, e)) = __rjk_alloc { let (mut c, mut b) = (0u64, 0u64); unsafe { e(&mut c, &mut b) }; \
    let (c0, b0, n0) = __rjk_counted.get(); __rjk_counted.set((c0 + c, b0 + b, n0 + __rjk_n)); } } ";

/// The Rust block that times `statement` and evaluates to `(loops, run_seconds)` (with `-a`,
/// `(loops, run_seconds, Some((allocations, bytes, loops counted)))`, or `None` there when the
/// process counts none). The harness without `-a` is exactly as it was before `-a` existed.
///
/// It is laid out so that the statement's lines are the cell's: the setup and the statement
/// of a line magic sit on the magic's own line; a cell magic's body follows on the next lines.
/// The statement sits directly in the timed loop (no closure call).
pub fn harness(setup: &str, statement: &str, options: &Options, line: usize, cell_mode: bool) -> String {
    let counter = if options.allocations { COUNTER } else { "" };
    let number = options.number_expr.as_ref().map_or(options.number.to_string(), |e| format!("({e}) as u64"));
    let repeat = options.repeat_expr.as_ref().map_or(options.repeat.to_string(), |e| format!("({e}) as usize"));
    let head = format!(
        "{{ let __rjk_number: u64 = {number}; let __rjk_repeat: usize = {repeat}; \
         let __rjk_flag = ::std::env::var_os({flag:?}).map(::std::path::PathBuf::from); \
         let __rjk_stop = || __rjk_flag.as_ref().is_some_and(|f| f.exists()); {counter}\
         let mut __rjk_time = |__rjk_loops: u64| -> ::std::option::Option<f64> {{ ",
        flag = crate::INTERRUPT_FILE_VAR,
    );
    // Runs `__rjk_loops` loops in chunks of about 50 ms; only the chunks are timed, and the
    // interrupt flag is looked at between them.
    let mut loop_head = "let mut __rjk_done: u64 = 0; let mut __rjk_chunk: u64 = 1; let mut __rjk_total = 0.0f64; \
        while __rjk_done < __rjk_loops { \
            if __rjk_stop() { return None; } \
            let __rjk_n = __rjk_chunk.min(__rjk_loops - __rjk_done); \
            let __rjk_t0 = ::std::time::Instant::now(); \
            let mut __rjk_i: u64 = 0; \
            while __rjk_i < __rjk_n { let __rjk_v = { "
        .to_string();
    // The value's address goes into an empty asm block: the optimiser must produce it, and
    // unlike `black_box` at opt-level 0 this is no function call (harness cost ~1 ns per loop).
    let mut loop_tail = "}; unsafe { ::std::arch::asm!(\"/* {0} */\", in(reg) &__rjk_v, options(nostack, preserves_flags, readonly)); } __rjk_i += 1; } \
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
        (__rjk_loops, __rjk_runs) }"
        .to_string();
    if options.allocations {
        const T0: &str = "let __rjk_t0 = ::std::time::Instant::now(); ";
        const DT: &str = "let __rjk_dt = __rjk_t0.elapsed().as_secs_f64(); ";
        loop_head = loop_head.replace(T0, &format!("{COUNT_ON}{T0}"));
        loop_tail = loop_tail.replace(DT, &format!("{DT}{COUNT_OFF}")).replace(
            "(__rjk_loops, __rjk_runs) }",
            // One more run of the same loops, counted (the timed runs are not).
            "__rjk_counting.set(true); let _ = __rjk_time(__rjk_loops); \
             let __rjk_c = __rjk_counted.get(); (__rjk_loops, __rjk_runs, __rjk_alloc.and(Some(__rjk_c)).filter(|c| c.2 > 0)) }",
        );
    }
    let padding = "\n".repeat(line.saturating_sub(1));
    let setup = if setup.trim().is_empty() { String::new() } else { format!("{setup} ") };
    let before_statement = if cell_mode { "\n" } else { "" };
    format!("{padding}{head}{setup}{loop_head}{before_statement}{statement}\n{loop_tail}")
}

/// What the harness measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Runs {
    pub loops: u64,
    pub all_runs: Vec<f64>,
    /// `-a`: allocations and bytes over that many loops.
    pub allocations: Option<(u64, u64, u64)>,
}

/// Reads the harness's value, Debug-printed as `(loops, [t1, t2, ...])`, with `-a`
/// `(loops, [...], Some((count, bytes, loops)))` or `(loops, [...], None)`.
pub fn parse_runs(text: &str) -> Option<Runs> {
    let inner = text.trim().strip_prefix('(')?.strip_suffix(')')?;
    let (loops, rest) = inner.split_once(',')?;
    let rest = rest.trim().strip_prefix('[')?;
    let (runs, after) = rest.split_once(']')?;
    let all_runs: Option<Vec<f64>> =
        runs.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse().ok()).collect();
    let after = after.trim().trim_start_matches(',').trim();
    let allocations = match after.strip_prefix("Some((").and_then(|a| a.strip_suffix("))")) {
        Some(tuple) => {
            let numbers: Vec<u64> = tuple.split(',').map(|n| n.trim().parse().ok()).collect::<Option<_>>()?;
            match numbers[..] {
                [count, bytes, counted] => Some((count, bytes, counted)),
                _ => return None,
            }
        }
        None if after.is_empty() || after == "None" => None,
        None => return None,
    };
    Some(Runs { loops: loops.trim().parse().ok()?, all_runs: all_runs?, allocations })
}

/// A `TimeitResult` value as Rust source.
fn result_value(all_runs: &[f64], loops: u64, precision: usize, allocations: Option<(u64, u64, u64)>) -> String {
    let runs: Vec<String> = all_runs.iter().map(|t| format!("{t:?}")).collect();
    let allocations = match allocations {
        Some((count, bytes, counted)) => format!("Some(({count}, {bytes}, {counted}))"),
        None => "None".to_string(),
    };
    format!(
        "TimeitResult {{ loops: {loops}, repeat: {}, all_runs: vec![{}], precision: {precision}, counted: {allocations} }}",
        all_runs.len(),
        runs.join(", ")
    )
}

/// The MIME type the runs of a kept `%timeit` come back under (the cell's value is the `let`).
const RUNS_MIME: &str = "application/x-rjk-timeit-runs";

/// `let NAME = %timeit ...` and `-v NAME` for a new NAME: the harness and the variable in one
/// compile (a second cell would cost a compile of its own). The harness's value comes back under [`RUNS_MIME`]
/// (`part`, the backend's statement for it, Debug-prints `__rjk_r`) and becomes the
/// `TimeitResult` NAME. An interrupted harness defines nothing: it unwinds without a panic
/// message, so the session drops the cell's new variable, and the kernel reports the interrupt.
fn keep_code(name: &str, harness: &str, options: &Options, part: &str) -> String {
    // The harness's padding keeps the statement on its cell line: `let` goes on that line.
    let block = harness.trim_start_matches('\n');
    let padding = &harness[..harness.len() - block.len()];
    let counted = if options.allocations { "__rjk_r.2" } else { "None" };
    format!(
        "{padding}let {name} = {{ let __rjk_r = {block}; \
         if ::std::env::var_os({flag:?}).is_some_and(|f| ::std::path::Path::new(&f).exists()) {{ \
             ::std::panic::resume_unwind(::std::boxed::Box::new(())); }} \
         {part} \
         TimeitResult {{ loops: __rjk_r.0, repeat: __rjk_r.1.len(), all_runs: __rjk_r.1, precision: {precision}, counted: {counted} }} }};\n{}",
        result_type(),
        flag = crate::INTERRUPT_FILE_VAR,
        precision = options.precision,
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
    /// `-a`: heap allocations and bytes counted, over that many loops.
    pub counted: Option<(u64, u64, u64)>,
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
    /// `-a`: heap allocations per loop.
    pub fn allocations(&self) -> Option<f64> {{ self.counted.map(|(c, _, n)| c as f64 / n.max(1) as f64) }}
    /// `-a`: bytes allocated per loop.
    pub fn allocated_bytes(&self) -> Option<f64> {{ self.counted.map(|(_, b, n)| b as f64 / n.max(1) as f64) }}
}}
impl ::std::fmt::Display for TimeitResult {{
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {{
        f.write_str(&__rjk_timeit_format::timeit_line(&self.all_runs, self.loops, self.precision))?;
        match self.counted {{
            Some((c, b, n)) => write!(f, "\n{{}}", __rjk_timeit_format::allocations_line(c, b, n)),
            None => Ok(()),
        }}
    }}
}}
impl ::std::fmt::Debug for TimeitResult {{
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {{
        write!(f, "<TimeitResult : {{}}>", self.to_string().replace('\n', "; "))
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
    fn loop_counts_from_rust_expressions() {
        let o = opts("-o -n {loops / 40} -r{runs} f(&a)");
        assert_eq!((o.number_expr.as_deref(), o.repeat_expr.as_deref(), o.output), (Some("loops / 40"), Some("runs"), true));
        assert_eq!(o.statement, "f(&a)");
        let code = harness("", &o.statement, &o, 1, false);
        assert!(code.contains("let __rjk_number: u64 = (loops / 40) as u64; let __rjk_repeat: usize = (runs) as usize;"), "{code}");
        assert_eq!(opts("-n {v[{0}]} x").number_expr.as_deref(), Some("v[{0}]"));
        assert!(parse_options("-n {loops f()").unwrap_err().evalue.contains("without its"));
        assert!(parse_options("-n {} f()").is_err());
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
        let mut ctx = FakeSession { answer: Some(answer.clone()), ..Default::default() };
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
        // Kept: one compile, which times and defines the variable; the runs come back beside it.
        ctx.answer = Some(MimeBundle::from([(RUNS_MIME.to_string(), "(100, [0.25, 0.25, 1.25])".to_string())]));
        let mut keep = call("timeit", "-q -p 4 f()", None);
        keep.assign_to = Some("t".into());
        let ran_before = ctx.ran.len();
        let Some(Value::Many(shown)) = Timeit.run(&keep, &mut ctx).unwrap() else { panic!() };
        assert!(shown.is_empty());
        assert_eq!(ctx.ran.len(), ran_before + 1);
        let last = ctx.ran.last().unwrap();
        assert!(last.contains("pub struct TimeitResult"), "{last}");
        assert!(last.starts_with("let t = { let __rjk_r = { let __rjk_number: u64 = 0;"), "{last}");
        assert!(last.contains(r#"report("application/x-rjk-timeit-runs", format!("{:?}", __rjk_r));"#), "{last}");
        assert!(last.contains("resume_unwind") && last.contains(crate::INTERRUPT_FILE_VAR), "{last}");
        assert!(last.contains("all_runs: __rjk_r.1, precision: 4, counted: None }"), "{last}");
        // A variable that exists is replaced by a cell of its own, after the timing.
        ctx.answer = Some(answer.clone());
        ctx.variables = vec!["t".into()];
        let ran_before = ctx.ran.len();
        Timeit.run(&keep, &mut ctx).unwrap();
        assert_eq!(ctx.ran.len(), ran_before + 2);
        assert!(ctx.ran.last().unwrap().ends_with("let t = TimeitResult { loops: 100, repeat: 3, all_runs: vec![0.25, 0.25, 1.25], precision: 4, counted: None };"));
        // Shown, not kept: no variable.
        ctx.answer = Some(answer);
        let Some(Value::Many(shown)) = Timeit.run(&call("timeit", "-q -o f()", None), &mut ctx).unwrap() else { panic!() };
        assert!(matches!(&shown[..], [Value::Result(_)]));
        assert!(!ctx.ran.last().unwrap().contains("TimeitResult"));
    }

    #[test]
    fn kept_result_stays_on_the_cell_line_and_counts_with_a() {
        let options = opts("-a f()");
        let code = keep_code("t", &harness("", "f()", &options, 3, false), &options, "part();");
        let lines: Vec<&str> = code.lines().collect();
        assert_eq!(lines[..2], ["", ""]);
        assert!(lines[2].starts_with("let t = { let __rjk_r = {") && lines[2].ends_with("let __rjk_v = { f()"));
        assert!(code.contains("counted: __rjk_r.2 }"));
    }

    #[test]
    fn reads_the_harness_value() {
        let runs = |loops, all_runs: Vec<f64>, allocations| Some(Runs { loops, all_runs, allocations });
        assert_eq!(parse_runs("(100, [0.25, 0.2500001])"), runs(100, vec![0.25, 0.2500001], None));
        assert_eq!(parse_runs("(1, [])"), runs(1, vec![], None));
        assert_eq!(parse_runs("(10, [0.5], Some((10, 800, 10)))"), runs(10, vec![0.5], Some((10, 800, 10))));
        assert_eq!(parse_runs("(10, [0.5], None)"), runs(10, vec![0.5], None));
        assert_eq!(parse_runs("nonsense"), None);
        assert_eq!(parse_runs("(10, [0.5], Some((1, 2)))"), None);
    }

    #[test]
    fn allocations_are_counted_only_with_a() {
        let plain = harness("", "f(&a)", &opts("f(&a)"), 1, false);
        assert!(!plain.contains("rjk_alloc") && !plain.contains("__rjk_counting"), "{plain}");
        let counted = harness("", "f(&a)", &opts("-a f(&a)"), 1, false);
        assert!(counted.contains("c\"rjk_alloc_start\"") && counted.contains("c\"rjk_alloc_stop\""));
        // Around the timed chunks of one more run only: the timed runs are as without -a.
        assert_eq!(counted.matches("__rjk_counting.get()").count(), 2);
        assert!(counted.contains("__rjk_counting.set(true); let _ = __rjk_time(__rjk_loops);"));
        use crate::testing::{call, FakeSession};
        let answer = MimeBundle::from([("text/plain".to_string(), "(100, [0.25], Some((100, 8000000, 100)))".to_string())]);
        let mut ctx = FakeSession { answer: Some(answer.clone()), ..Default::default() };
        let Some(Value::Many(shown)) = Timeit.run(&call("timeit", "-a -o f()", None), &mut ctx).unwrap() else { panic!() };
        assert_eq!(shown[0], Value::text("2.5 ms ± 0 ns per loop (mean ± std. dev. of 1 run, 100 loops each)\n1 allocation (78.1 KiB) per loop"));
        let Value::Result(repr) = &shown[1] else { panic!() };
        assert!(repr["text/plain"].ends_with("; 1 allocation (78.1 KiB) per loop>"), "{repr:?}");
    }
}
