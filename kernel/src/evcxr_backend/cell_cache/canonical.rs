//! The session crate's source as the kept cells key it: the same code in another order gives the
//! same key. evcxr writes the session's items, and the variables its user function checks, takes
//! and puts back, in the order of its hash maps, whose seeds differ from one process to the next:
//! the same cells after a restart come in another order, and an order-sensitive key would never
//! find them. Rust's items mean the same in any order (but `macro_rules!`, which count from where
//! they are written: a source with one is keyed as it is), and so do evcxr's variable statements.

use ra_ap_syntax::{AstNode, Edition, SourceFile, SyntaxKind};

/// How evcxr's lines about one variable begin: its check, its take (`let NAME = ...`), its put.
const CHECK: &str = "vars_ok &= evcxr_variable_store.check_variable::<";
const TAKE: &str = "evcxr_variable_store.take_variable::<";
const PUT: &str = "evcxr_variable_store.put_variable::<";

/// The source's top-level items (with their attributes and comments), each with its runs of
/// evcxr's variable lines sorted, sorted; the source itself, as one piece, when it does not parse
/// or defines a `macro_rules!`.
pub fn pieces(source: &str) -> Vec<String> {
    let parse = SourceFile::parse(source, Edition::Edition2021);
    if !parse.errors().is_empty() || source.contains("macro_rules!") {
        return vec![source.to_string()];
    }
    let mut pieces: Vec<String> = parse
        .tree()
        .syntax()
        .children_with_tokens()
        .filter(|element| element.kind() != SyntaxKind::WHITESPACE)
        .map(|element| variable_runs_sorted(&element.to_string()))
        .collect();
    pieces.sort();
    pieces
}

/// `text` with each run of consecutive variable lines (see [`is_variable_line`]) sorted.
fn variable_runs_sorted(text: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    for line in text.split('\n') {
        if is_variable_line(line) {
            run.push(line);
            continue;
        }
        run.sort();
        out.append(&mut run);
        out.push(line);
    }
    run.sort();
    out.append(&mut run);
    out.join("\n")
}

/// A line evcxr writes for one variable: `vars_ok &= evcxr_variable_store.check_variable::<T>(...);`,
/// `let NAME = evcxr_variable_store.take_variable::<T>(...);`, `evcxr_variable_store.put_variable::<T>(...);`.
fn is_variable_line(line: &str) -> bool {
    let take = || {
        let (name, value) = line.strip_prefix("let ")?.split_once(" = ")?;
        Some(name.chars().all(|c| c.is_alphanumeric() || c == '_') && value.starts_with(TAKE))
    };
    line.ends_with(");") && (line.starts_with(CHECK) || line.starts_with(PUT) || take() == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CELL: &str = "#![allow(unused_imports)]\nuse jit::rayon;\nfn square(n: usize) -> usize { n * n }\nuse jit::ndarray;\n\
        pub extern \"C\" fn run_user_code_3(s: *mut u8) {\n\
        vars_ok &= evcxr_variable_store.check_variable::<usize>(stringify!(n));\n\
        vars_ok &= evcxr_variable_store.check_variable::<f64>(stringify!(x));\n\
        let n = evcxr_variable_store.take_variable::<usize>(stringify!(n));\n\
        let x = evcxr_variable_store.take_variable::<f64>(stringify!(x));\n\
        let a = 1;\nlet b = a + 1;\n\
        evcxr_variable_store.put_variable::<usize>(stringify!(n), n);\n\
        evcxr_variable_store.put_variable::<f64>(stringify!(x), x);\n}\n";

    fn swapped(text: &str, a: &str, b: &str) -> String {
        text.replace(a, "\u{0}").replace(b, a).replace('\u{0}', b)
    }

    #[test]
    fn evcxrs_orders_are_one_key() {
        let items = swapped(CELL, "use jit::rayon;", "use jit::ndarray;");
        let checks = swapped(&items, "check_variable::<usize>(stringify!(n))", "check_variable::<f64>(stringify!(x))");
        let takes = swapped(&checks, "let n = evcxr_variable_store.take_variable::<usize>(stringify!(n));", "let x = evcxr_variable_store.take_variable::<f64>(stringify!(x));");
        let puts = swapped(&takes, "put_variable::<usize>(stringify!(n), n)", "put_variable::<f64>(stringify!(x), x)");
        for other in [&items, &checks, &takes, &puts] {
            assert_ne!(other, CELL);
            assert_eq!(pieces(other), pieces(CELL), "{other}");
        }
    }

    #[test]
    fn the_learners_own_order_is_kept() {
        assert_ne!(pieces(&swapped(CELL, "let a = 1;", "let b = a + 1;")), pieces(CELL), "statements of a cell");
        let body = CELL.replace("{ n * n }", "{\nlet m = n;\nlet k = m * n;\nk }");
        assert_ne!(pieces(&swapped(&body, "let m = n;", "let k = m * n;")), pieces(&body), "an item's own lines");
        assert_ne!(pieces(&CELL.replace("{ n * n }", "{ n + n }")), pieces(CELL));
        let macros = format!("macro_rules! two {{ () => {{ 2 }} }}\n{CELL}");
        assert_eq!(pieces(&macros), [macros.clone()], "macro_rules! count from where they are written");
        assert_eq!(pieces("fn broken( {"), ["fn broken( {"]);
    }
}
