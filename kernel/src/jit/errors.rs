//! rustc's and codegen's errors for a jit function, against the lines of the cell, and the
//! nopython error (a name from a plain cell).

use jit_codegen::{CodegenError, CrateSource, JitFn};
use serde_json::Value;

use crate::backend::CellError;
use crate::diagnostics::{self, CellSpan, Diagnostic};

/// rustc's JSON errors (`stderr`) for crate `krate`, built from `function` of `cell`, against
/// the cell's lines. An unresolved name for which `plain` is true (defined in the session
/// outside jit functions) becomes the nopython `JitError`.
pub fn rustc_error(stderr: &str, krate: &str, function: &JitFn, source: &CrateSource, cell: &str, plain: &dyn Fn(&str) -> bool) -> CellError {
    let diagnostics: Vec<Diagnostic> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["level"] == "error" && !v["message"].as_str().is_some_and(|m| m.starts_with("aborting due to")))
        .map(|v| diagnostic(&v, krate, function, source))
        .collect();
    if let Some(name) = diagnostics.iter().find_map(|d| unresolved_name(d).filter(|n| plain(n))) {
        let evalue = format!(
            "`{name}` is defined in a plain cell, and #[jit] function `{}` cannot use it: a #[jit] function \
             may use only std, ndarray, rayon, the jit runtime and other #[jit] functions. \
             Mark `{name}` with #[jit] too, or pass it to `{}` as an argument.",
            function.name, function.name
        );
        let mut error = diagnostics::compile_error(&diagnostics, cell);
        error.traceback.insert(0, diagnostics::headline("JitError", &format!(": {evalue}")));
        return CellError { ename: "JitError".to_string(), evalue, traceback: error.traceback };
    }
    if diagnostics.is_empty() {
        return CellError::new("JitError", format!("rustc failed to compile `{}`: {}", function.name, stderr.trim()));
    }
    diagnostics::compile_error(&diagnostics, cell)
}

/// Error codes rustc gives a name it cannot find.
const UNRESOLVED: [&str; 7] = ["E0425", "E0412", "E0433", "E0422", "E0423", "E0531", "E0405"];

fn unresolved_name(d: &Diagnostic) -> Option<String> {
    if !d.code.as_deref().is_some_and(|c| UNRESOLVED.contains(&c)) {
        return None;
    }
    let start = d.message.find('`')? + 1;
    let len = d.message[start..].find('`')?;
    Some(d.message[start..start + len].to_string())
}

/// One rustc JSON diagnostic, its spans moved to the cell's lines.
fn diagnostic(v: &Value, krate: &str, function: &JitFn, source: &CrateSource) -> Diagnostic {
    let labels = v["spans"]
        .as_array()
        .into_iter()
        .flatten()
        // The crate's own file only: spans in std's or ndarray's sources are not cell lines.
        .filter(|s| s["file_name"].as_str().is_some_and(|f| f.contains(krate)))
        .map(|s| {
            let line = |key: &str| s[key].as_u64().map(|n| n as usize);
            let span = (|| {
                Some(CellSpan {
                    start_line: source.cell_line(function, line("line_start")?)?,
                    start_column: line("column_start")?,
                    end_line: source.cell_line(function, line("line_end")?)?,
                    end_column: line("column_end")?,
                })
            })();
            (span, s["label"].as_str().unwrap_or_default().to_string(), s["is_primary"].as_bool().unwrap_or(false))
        })
        .collect::<Vec<_>>();
    let mut labels: Vec<(Option<CellSpan>, String, bool)> = labels;
    labels.sort_by_key(|(_, _, primary)| !primary);
    let help = v["children"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let message = c["message"].as_str()?;
            let suggestion = c["spans"][0]["suggested_replacement"].as_str();
            Some(match suggestion {
                Some(s) if !s.is_empty() => format!("{}: `{}`", message, s.trim()),
                _ => message.to_string(),
            })
        })
        .filter(|m| !m.contains("__jit_") && !m.contains("jit::"))
        .collect();
    let message = v["message"].as_str().unwrap_or_default().to_string();
    Diagnostic {
        level: "error".to_string(),
        code: v["code"]["code"].as_str().map(str::to_string),
        message: readable(&message),
        labels: labels.into_iter().map(|(s, l, _)| (s, readable(&l))).collect(),
        help,
    }
}

/// Names of the parallel rewrite, as the learner wrote them.
fn readable(text: &str) -> String {
    text.replace("::jit::ops::Bin<", "(")
        .replace("jit::ops::Bin<", "(")
        .replace("__jit_add", "`+`")
        .replace("__jit_sub", "`-`")
        .replace("__jit_mul", "`*`")
        .replace("__jit_div", "`/`")
}

/// A codegen problem (bad option, generic function, ...) as the cell's error.
pub fn codegen_error(e: &CodegenError, cell: &str) -> CellError {
    let span = CellSpan { start_line: e.line, start_column: e.column, end_line: e.line, end_column: e.column + 1 };
    let d = Diagnostic {
        level: "error".to_string(),
        code: None,
        message: e.message.clone(),
        labels: vec![(Some(span), String::new())],
        help: e.help.iter().cloned().collect(),
    };
    let mut error = diagnostics::compile_error(&[d], cell);
    error.ename = "JitError".to_string();
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustc_diagnostics_map_to_cell_lines() {
        let cell = "let x = 1;\n#[jit]\nfn f() -> f64 {\n    helper(2)\n}";
        let split = jit_codegen::split(cell).unwrap();
        let function = &split.functions[0];
        let source = jit_codegen::crate_source(function, "jit_f_0", &[], &[]);
        let line = source.first_line + 2;
        let json = format!(
            r#"{{"$message_type":"diagnostic","message":"cannot find function `helper` in this scope","code":{{"code":"E0425"}},"level":"error","spans":[{{"file_name":"x.rs","line_start":{line},"line_end":{line},"column_start":5,"column_end":11,"is_primary":true,"label":"not found in this scope"}}],"children":[]}}"#
        );
        let plain = rustc_error(&json, "x", function, &source, cell, &|_| false);
        assert_eq!(plain.ename, "CompilationError");
        assert!(plain.evalue.contains("(cell line 4)"), "{}", plain.evalue);
        let nopython = rustc_error(&json, "x", function, &source, cell, &|n| n == "helper");
        assert_eq!(nopython.ename, "JitError");
        assert!(nopython.evalue.contains("`helper` is defined in a plain cell"), "{}", nopython.evalue);
        assert!(nopython.traceback.iter().any(|l| l.contains("helper(2)")));
    }
}
