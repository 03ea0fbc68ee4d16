//! The cell's function under one Rust name from cell to cell.
//!
//! evcxr writes each cell as a function `run_user_code_N` (`#[unsafe(no_mangle)]`, N counting
//! builds), which its runtime finds by that symbol. A new name in every cell is a new path for
//! the function and for the closures in it (evcxr's `catch_unwind`, the variable store's calls),
//! so rustc's incremental compile instantiates and generates code again for every generic
//! function that takes part (std's panic machinery, the store's `take_variable::<T>` for each
//! variable...), though they did not change: ~13 ms of a trivial cell's rustc, ~22 ms with an
//! array variable held, on 2 cores (docs/benchmarks.md). **The session crate's source is
//! rewritten before rustc reads it**: the same function, named [`NAME`], exported as
//! `run_user_code_N` by `#[unsafe(export_name = ...)]`, on the same lines (compile errors keep
//! evcxr's line numbers).

/// The one Rust name of the cell's function.
pub const NAME: &str = "__rjk_cell_code";

const ATTRIBUTE: &str = "#[unsafe(no_mangle)]\npub extern \"C\" fn run_user_code_";

/// `source` with evcxr's cell function renamed (see the module's docs); `None` when it has none.
pub fn renamed(source: &str) -> Option<String> {
    let at = source.find(ATTRIBUTE)?;
    let digits = &source[at + ATTRIBUTE.len()..];
    let n = digits.find(|c: char| !c.is_ascii_digit())?;
    if n == 0 || !digits[n..].starts_with('(') {
        return None;
    }
    let symbol = format!("run_user_code_{}", &digits[..n]);
    let rest = &digits[n..];
    Some(format!("{}#[unsafe(export_name = \"{symbol}\")]\npub extern \"C\" fn {NAME}{rest}", &source[..at]))
}

/// Rewrites the crate's source file among rustc's arguments (`--crate-name ctx ... src/lib.rs`) in
/// place, when evcxr's cell function is in it.
pub fn rename_in(args: &[std::ffi::OsString]) {
    let Some(file) = args.iter().filter_map(|a| a.to_str()).find(|a| a.ends_with(".rs") && !a.starts_with('-')) else { return };
    let Ok(source) = std::fs::read_to_string(file) else { return };
    if let Some(renamed) = renamed(&source) {
        let _ = std::fs::write(file, renamed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_function_gets_one_name_and_keeps_its_symbol_and_lines() {
        let source = "use x;\n#[unsafe(no_mangle)]\npub extern \"C\" fn run_user_code_12(\nmut s: *mut u8) -> *mut u8 {\ns\n}\n";
        let renamed = renamed(source).expect("evcxr's function");
        assert_eq!(renamed, "use x;\n#[unsafe(export_name = \"run_user_code_12\")]\npub extern \"C\" fn __rjk_cell_code(\nmut s: *mut u8) -> *mut u8 {\ns\n}\n");
        assert_eq!(renamed.lines().count(), source.lines().count());
        assert_eq!(super::renamed(&renamed), None, "renamed once");
        assert_eq!(super::renamed("fn run_user_code_3() {}"), None);
        assert_eq!(super::renamed("#[unsafe(no_mangle)]\npub extern \"C\" fn run_user_code_x("), None);
    }
}
