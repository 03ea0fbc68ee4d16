//! Compile errors rendered the way rustc renders them, against the cell as typed.

use crate::backend::CellError;

const RED: &str = "\x1b[1;31m";
const BLUE: &str = "\x1b[1;34m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// The first line of an error's traceback: its name in red, then `rest`.
pub fn headline(ename: &str, rest: &str) -> String {
    format!("{RED}{ename}{RESET}{rest}")
}

/// An error whose traceback is its one line, `ename: evalue`, the name in red.
pub fn error(ename: &str, evalue: impl Into<String>) -> CellError {
    let evalue = evalue.into();
    CellError { ename: ename.to_string(), traceback: vec![headline(ename, &format!(": {evalue}"))], evalue }
}

/// A span in the cell: 1-based lines, 1-based columns (end exclusive).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellSpan {
    pub start_line: usize,
    pub start_column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

/// One diagnostic, independent of evcxr's types.
#[derive(Debug, Clone, Default)]
pub struct Diagnostic {
    pub level: String,
    pub code: Option<String>,
    pub message: String,
    /// Labelled spans; the first one is the primary span.
    pub labels: Vec<(Option<CellSpan>, String)>,
    pub help: Vec<String>,
}

/// Builds the cell error for a failed compile: `ename` CompilationError, `evalue` the first
/// error and its cell line, the traceback rustc-style with the cell's own lines.
pub fn compile_error(diagnostics: &[Diagnostic], cell: &str) -> CellError {
    let lines: Vec<&str> = cell.lines().collect();
    let errors: Vec<&Diagnostic> = {
        let errors: Vec<&Diagnostic> = diagnostics.iter().filter(|d| d.level == "error").collect();
        if errors.is_empty() { diagnostics.iter().collect() } else { errors }
    };
    let mut traceback = Vec::new();
    for d in &errors {
        traceback.extend(render(d, &lines));
    }
    let evalue = match errors.first() {
        Some(d) => {
            let line = d.labels.iter().find_map(|(s, _)| *s).map(|s| format!(" (cell line {})", s.start_line));
            format!("{}{}", summary(d), line.unwrap_or_default())
        }
        None => "compilation failed".to_string(),
    };
    CellError { ename: "CompilationError".to_string(), evalue, traceback }
}

fn summary(d: &Diagnostic) -> String {
    match &d.code {
        Some(code) => format!("{}[{code}]: {}", d.level, d.message),
        None => format!("{}: {}", d.level, d.message),
    }
}

fn render(d: &Diagnostic, lines: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let head = summary(d);
    let (level, rest) = head.split_once(": ").unwrap_or((&head, ""));
    out.push(format!("{RED}{level}{RESET}{BOLD}: {rest}{RESET}"));
    let spans: Vec<(CellSpan, &str)> = d.labels.iter().filter_map(|(s, l)| s.map(|s| (s, l.as_str()))).collect();
    let width = spans.iter().map(|(s, _)| s.end_line.to_string().len()).max().unwrap_or(1);
    let pad = " ".repeat(width);
    if let Some((first, _)) = spans.first() {
        let len = lines.get(first.start_line.wrapping_sub(1)).map_or(0, |t| t.chars().count());
        // Code a magic generated around the learner's (e.g. `%timeit`) has columns of its own.
        let at = if first.start_column <= len + 1 { format!(":{}", first.start_column) } else { String::new() };
        out.push(format!("{pad}{BLUE}-->{RESET} cell:{}{at}", first.start_line));
        out.push(format!("{pad} {BLUE}|{RESET}"));
    }
    // Each source line once, with the carets of every label on it (primary first).
    let mut marks: Vec<(usize, usize, usize, &str)> = Vec::new();
    for (span, label) in &spans {
        for line_no in span.start_line..=span.end_line {
            let text = lines.get(line_no.wrapping_sub(1)).copied().unwrap_or("");
            let len = text.chars().count();
            let mut from = if line_no == span.start_line { span.start_column.saturating_sub(1) } else { 0 };
            let mut to = if line_no == span.end_line { span.end_column.saturating_sub(1) } else { len };
            if from >= len {
                // Columns from generated code: mark the whole line instead.
                from = text.chars().take_while(|c| c.is_whitespace()).count();
                to = len;
            }
            marks.push((line_no, from, to, if line_no == span.end_line { label } else { "" }));
        }
    }
    let mut line_nos: Vec<usize> = marks.iter().map(|m| m.0).collect();
    line_nos.sort_unstable();
    line_nos.dedup();
    for line_no in line_nos {
        let text = lines.get(line_no.wrapping_sub(1)).copied().unwrap_or("");
        out.push(format!("{BLUE}{line_no:>width$} |{RESET} {text}"));
        for &(_, from, to, label) in marks.iter().filter(|m| m.0 == line_no) {
            let carets = "^".repeat(to.saturating_sub(from).max(1));
            let label = if label.is_empty() { String::new() } else { format!(" {label}") };
            out.push(format!("{pad} {BLUE}|{RESET} {}{RED}{carets}{label}{RESET}", " ".repeat(from)));
        }
    }
    for (span, label) in &d.labels {
        if span.is_none() && !label.is_empty() {
            out.push(format!("{pad} {BLUE}={RESET} {BOLD}note{RESET}: {label}"));
        }
    }
    for help in &d.help {
        out.push(format!("{pad} {BLUE}={RESET} {BOLD}help{RESET}: {help}"));
    }
    out.push(String::new());
    out
}

/// `text` without its ANSI colour codes (what a terminal shows).
#[cfg(test)]
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_beyond_the_line_mark_the_whole_line() {
        let d = Diagnostic {
            level: "error".into(),
            message: "cannot find function `g`".into(),
            labels: vec![(Some(CellSpan { start_line: 1, start_column: 615, end_line: 1, end_column: 616 }), "not found".into())],
            ..Default::default()
        };
        let text: Vec<String> = compile_error(&[d], "%timeit g(1)").traceback.iter().map(|l| strip_ansi(l)).collect();
        assert_eq!(text[1], " --> cell:1");
        assert_eq!(text[4], "  | ^^^^^^^^^^^^ not found");
    }

    #[test]
    fn renders_like_rustc_against_cell_lines() {
        let cell = "let a = 1;\nlet b: i32 = \"two\";";
        let d = Diagnostic {
            level: "error".into(),
            code: Some("E0308".into()),
            message: "mismatched types".into(),
            labels: vec![
                (Some(CellSpan { start_line: 2, start_column: 14, end_line: 2, end_column: 19 }), "expected `i32`, found `&str`".into()),
                (Some(CellSpan { start_line: 2, start_column: 8, end_line: 2, end_column: 11 }), "expected due to this".into()),
            ],
            help: vec![],
        };
        let warning = Diagnostic { level: "warning".into(), message: "unused".into(), ..Default::default() };
        let e = compile_error(&[warning, d], cell);
        assert_eq!(e.ename, "CompilationError");
        assert_eq!(e.evalue, "error[E0308]: mismatched types (cell line 2)");
        let text: Vec<String> = e.traceback.iter().map(|l| strip_ansi(l)).collect();
        assert_eq!(
            text,
            vec![
                "error[E0308]: mismatched types",
                " --> cell:2:14",
                "  |",
                "2 | let b: i32 = \"two\";",
                "  |              ^^^^^ expected `i32`, found `&str`",
                "  |        ^^^ expected due to this",
                "",
            ]
        );
    }
}
