//! What `%jit_asm`, `%jit_llvm` and `%jit_report` read of a compiled function: the files rustc
//! wrote beside its library ([`super::compiler::sidecar`]) and its [`BuildRecord`], put in the
//! magics' terms, and the parallel rewrite told in words.

use std::path::Path;

use jit_codegen::parallel::SiteKind;
use jit_codegen::JitFn;
use magics::{CompiledCode, JitReport, ReportSite};

use super::compiler::{sidecar, BuildRecord, Compiled};
use crate::backend::CellError;

/// How `function` is compiled, in words.
pub fn attribute(function: &JitFn) -> String {
    match (&function.vectorize, function.parallel) {
        (Some(_), _) => "#[vectorize]".to_string(),
        (None, true) => "#[jit(parallel)]".to_string(),
        (None, false) => "#[jit]".to_string(),
    }
}

/// The listing input of `function`, compiled at `library` (`naive`: the opt-level-0 listing).
pub fn code(function: &JitFn, krate: &str, library: &Path, naive: bool) -> Result<CompiledCode, CellError> {
    let missing = |what: &str| {
        CellError::new(
            "JitError",
            format!("the {what} of `{}` is not in the cache ({}); run its cell again to compile it", function.name, sidecar(library, "").display()),
        )
    };
    let read = |extension: &str, what: &str| std::fs::read_to_string(sidecar(library, extension)).map_err(|_| missing(what));
    let record = BuildRecord::read(library).ok_or_else(|| missing("build record"))?;
    let roots = if naive {
        vec![format!("{krate}::{}", function.name)]
    } else {
        vec![JitFn::symbol(krate), format!("{krate}::{}", function.name)]
    };
    Ok(CompiledCode {
        name: function.name.clone(),
        what: if naive { "as plain cells compile it: opt-level 0".to_string() } else { attribute(function) },
        asm: read("s", "assembly")?,
        llvm_ir: read("ll", "LLVM IR")?,
        roots,
        source: read("rs", "source")?,
        source_name: record.source_name,
        first_line: record.first_line,
        cell_line: function.line,
        written: function.written.clone(),
    })
}

/// `%jit_report`'s view of `function`, compiled as `compiled`; `threads`: the pool's size now.
pub fn report(function: &JitFn, compiled: &Compiled, threads: usize) -> JitReport {
    let record = BuildRecord::read(&compiled.library);
    let elementwise = |at: (usize, usize)| {
        record.as_ref().is_some_and(|r| {
            // `at` is in the function's source; the crate has it from `first_line`, its first line
            // indented to the cell's column.
            let line = r.first_line + at.0 - 1;
            let column = if at.0 == 1 { at.1 + function.column } else { at.1 };
            r.elementwise.contains(&(line, column))
        })
    };
    let sites = function
        .sites
        .iter()
        .map(|site| {
            let (parallel, what) = match &site.kind {
                SiteKind::Operator { op, method_at: Some(at) } if elementwise(*at) => {
                    (true, format!("parallel elementwise `{op}` (an operand is an array): each thread computes its block of rows"))
                }
                SiteKind::Operator { .. } if record.is_none() => (false, "rewritten; which version it took is not recorded".to_string()),
                SiteKind::Operator { .. } => (false, "numbers, not arrays: plain arithmetic".to_string()),
                SiteKind::Prange { reductions } if reductions.is_empty() => {
                    (true, "a parallel loop: the range is cut into one part per thread".to_string())
                }
                SiteKind::Prange { reductions } => {
                    let names: Vec<String> = reductions.iter().map(|(name, op)| format!("`{name}` ({}=)", if *op == '*' { '*' } else { '+' })).collect();
                    (true, format!("a parallel loop with a reduction over {}: each thread keeps its own copy, the parts are combined in range order", names.join(", ")))
                }
                SiteKind::NestedPrange => (false, "a `prange` inside another one's body runs serially in each part (only the outermost is parallel)".to_string()),
                SiteKind::SerialLoop => (false, "a plain loop: serial (write `prange(...)` for a loop whose iterations may run in parallel)".to_string()),
                SiteKind::InPlace { op } => (false, format!("`{op}` works in place and is not rewritten: serial")),
            };
            ReportSite { line: site.line, code: site.code.clone(), parallel, what }
        })
        .collect();
    JitReport {
        name: function.name.clone(),
        what: attribute(function),
        parallel: function.parallel,
        threads,
        sites,
        flags: record.as_ref().map(|r| r.flags.clone()).unwrap_or_default(),
        rustc: record.as_ref().map(|r| r.rustc.clone()).unwrap_or_default(),
        library: compiled.library.display().to_string(),
        compile_seconds: compiled.seconds.or(record.as_ref().map(|r| r.seconds)),
        from_cache: compiled.seconds.is_none(),
        rewritten: function.source.clone(),
    }
}

/// The pool's size for the next cell: `RAYON_NUM_THREADS` as `%env` last set it, else the cores.
pub fn threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
