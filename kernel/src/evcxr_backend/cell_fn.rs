//! The cell's function under one name from cell to cell.
//!
//! evcxr writes each cell as a function `run_user_code_N` (`#[unsafe(no_mangle)]`, N counting
//! builds) and tells the user process that name. A new name in every cell is a new path for the
//! function and for the closures in it (evcxr's `catch_unwind`, the variable store's calls), so
//! rustc's incremental compile instantiates and generates code again for every generic function
//! that takes part (std's panic machinery, the store's `take_variable::<T>` for each variable...),
//! though they did not change: ~13 ms of a trivial cell's rustc, ~22 ms with an array variable
//! held, on 2 cores (docs/benchmarks.md); and with N in the source, a cell run again unchanged is
//! another rustc call, never a kept cell (`cell_cache`). **The session crate's source is rewritten
//! before rustc reads it**: the same function, on the same lines (compile errors keep evcxr's line
//! numbers), named and exported as [`CELL_SYMBOL`], which the user process looks up in each cell's
//! library (`user_process::load`; the name evcxr sends is the fallback, for a library built
//! without the rewrite).

use crate::user_process::CELL_SYMBOL;

const ATTRIBUTE: &str = "#[unsafe(no_mangle)]\npub extern \"C\" fn run_user_code_";

/// `source` with evcxr's cell function renamed (see the module's docs); `None` when it has none.
pub fn renamed(source: &str) -> Option<String> {
    let at = source.find(ATTRIBUTE)?;
    let digits = &source[at + ATTRIBUTE.len()..];
    let n = digits.find(|c: char| !c.is_ascii_digit())?;
    if n == 0 || !digits[n..].starts_with('(') {
        return None;
    }
    let rest = &digits[n..];
    Some(format!("{}#[unsafe(no_mangle)]\npub extern \"C\" fn {CELL_SYMBOL}{rest}", &source[..at]))
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
    fn the_function_gets_one_name_and_symbol_and_keeps_its_lines() {
        let source = "use x;\n#[unsafe(no_mangle)]\npub extern \"C\" fn run_user_code_12(\nmut s: *mut u8) -> *mut u8 {\ns\n}\n";
        let renamed = renamed(source).expect("evcxr's function");
        assert_eq!(renamed, "use x;\n#[unsafe(no_mangle)]\npub extern \"C\" fn __rjk_cell_code(\nmut s: *mut u8) -> *mut u8 {\ns\n}\n");
        assert_eq!(renamed.lines().count(), source.lines().count());
        assert_eq!(super::renamed(&renamed), None, "renamed once");
        assert_eq!(super::renamed("fn run_user_code_3() {}"), None);
        assert_eq!(super::renamed("#[unsafe(no_mangle)]\npub extern \"C\" fn run_user_code_x("), None);
    }
}
