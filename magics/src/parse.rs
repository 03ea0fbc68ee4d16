//! Splitting a cell into Rust code and magics.
//!
//! - `%%name args` on the first line makes the whole cell one cell magic (the other lines
//!   are its body).
//! - Otherwise a line that starts with `%` where the Rust before it is complete is a line
//!   magic (`%timeit f(&a)`); `let t = %timeit -o f(&a)` assigns the magic's value. Every
//!   other line is Rust; consecutive Rust lines form one segment.

use crate::lex::{check, Completeness};
use crate::Call;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Rust code, padded with blank lines so that its line numbers are the cell's.
    Rust(String),
    Magic(Call),
}

pub fn split(cell: &str) -> Vec<Segment> {
    let lines: Vec<&str> = cell.lines().collect();
    if let Some((index, first)) = lines.iter().enumerate().find(|(_, l)| !l.trim().is_empty()) {
        if let Some(rest) = first.trim_start().strip_prefix("%%") {
            let (name, args) = name_and_args(rest);
            let body = lines[index + 1..].join("\n");
            return vec![Segment::Magic(Call { name, args, body: Some(body), line: index + 1, assign_to: None })];
        }
    }
    let mut segments = Vec::new();
    let mut rust: Vec<&str> = Vec::new();
    let mut rust_start = 0;
    for (index, line) in lines.iter().enumerate() {
        // A `%` line inside an unfinished Rust expression is Rust (the `%` operator).
        let at_statement_start = !matches!(check(&rust.join("\n")), Completeness::Incomplete { .. });
        if at_statement_start {
            if let Some(call) = line_magic(line, index + 1) {
                flush(&mut segments, &mut rust, rust_start);
                segments.push(Segment::Magic(call));
                continue;
            }
        }
        if rust.is_empty() {
            rust_start = index;
        }
        rust.push(line);
    }
    flush(&mut segments, &mut rust, rust_start);
    segments
}

fn flush(segments: &mut Vec<Segment>, rust: &mut Vec<&str>, start: usize) {
    if rust.iter().any(|l| !l.trim().is_empty()) {
        segments.push(Segment::Rust(format!("{}{}", "\n".repeat(start), rust.join("\n"))));
    }
    rust.clear();
}

/// `%name args` or `let NAME = %name args` on one line.
fn line_magic(line: &str, number: usize) -> Option<Call> {
    let trimmed = line.trim();
    if let Some(rest) = trimmed.strip_prefix('%') {
        if rest.starts_with('%') || rest.is_empty() {
            return None;
        }
        let (name, args) = name_and_args(rest);
        return Some(Call { name, args, body: None, line: number, assign_to: None });
    }
    let rest = trimmed.strip_prefix("let ")?.trim_start();
    let rest = rest.strip_prefix("mut ").unwrap_or(rest).trim_start();
    let ident_len = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
    let (ident, rest) = rest.split_at(ident_len);
    let rest = rest.trim_start().strip_prefix('=')?.trim_start().strip_prefix('%')?;
    if ident.is_empty() || rest.starts_with('%') {
        return None;
    }
    let (name, args) = name_and_args(rest.trim_end().trim_end_matches(';'));
    Some(Call { name, args, body: None, line: number, assign_to: Some(ident.to_string()) })
}

fn name_and_args(text: &str) -> (String, String) {
    let text = text.trim();
    match text.find(char::is_whitespace) {
        Some(i) => (text[..i].to_string(), text[i..].trim().to_string()),
        None => (text.to_string(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn magic(name: &str, args: &str, line: usize) -> Segment {
        Segment::Magic(Call { name: name.into(), args: args.into(), body: None, line, assign_to: None })
    }

    #[test]
    fn plain_rust_is_one_segment() {
        assert_eq!(split("let a = 1;\na + 1"), vec![Segment::Rust("let a = 1;\na + 1".into())]);
    }

    #[test]
    fn the_lessons_mixed_cell() {
        let cell = "let a = make(100);\nf(&a);\n%timeit f(&a)";
        assert_eq!(split(cell), vec![Segment::Rust("let a = make(100);\nf(&a);".into()), magic("timeit", "f(&a)", 3)]);
    }

    #[test]
    fn rust_after_a_magic_keeps_its_cell_line_numbers() {
        let cell = "%env A=1\nlet x = 1;\n\nx";
        assert_eq!(split(cell), vec![magic("env", "A=1", 1), Segment::Rust("\nlet x = 1;\n\nx".into())]);
    }

    #[test]
    fn percent_inside_an_expression_is_rust() {
        let cell = "let r = (10\n% 3);\nr";
        assert_eq!(split(cell), vec![Segment::Rust(cell.into())]);
    }

    #[test]
    fn cell_magic_takes_the_whole_cell() {
        let cell = "\n%%timeit -n 10 let v = setup();\nwork(&v);\nmore(&v);";
        assert_eq!(
            split(cell),
            vec![Segment::Magic(Call {
                name: "timeit".into(),
                args: "-n 10 let v = setup();".into(),
                body: Some("work(&v);\nmore(&v);".into()),
                line: 2,
                assign_to: None,
            })]
        );
    }

    #[test]
    fn assignment_form_and_help_form() {
        assert_eq!(
            split("let t = %timeit -o f(&a);"),
            vec![Segment::Magic(Call {
                name: "timeit".into(),
                args: "-o f(&a)".into(),
                body: None,
                line: 1,
                assign_to: Some("t".into()),
            })]
        );
        assert_eq!(split("%timeit?"), vec![magic("timeit?", "", 1)]);
        assert_eq!(split("  %lsmagic  "), vec![magic("lsmagic", "", 1)]);
    }
}
