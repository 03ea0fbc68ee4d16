//! The crate one `#[jit]` function is compiled in: the runtime's prelude, the session's `use`
//! items it may need, the function on a known line and column (so that rustc's errors map back
//! to the cell), the jit functions it calls, and its export shim.

use std::collections::BTreeSet;

use crate::cuda::DeviceImage;
use crate::JitFn;

/// The first path segment of a `use` item (`std` for `use std::f64::consts::PI;`).
pub fn use_root(item: &str) -> Option<String> {
    let start = item.find("use")? + 3;
    let root: String =
        item[start..].trim_start().trim_start_matches("::").chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!root.is_empty()).then_some(root)
}

/// The names a `use` item brings into scope (`*` plus the path for a glob).
pub fn use_names(item: &str) -> BTreeSet<String> {
    fn walk(tree: &syn::UseTree, prefix: String, out: &mut BTreeSet<String>) {
        match tree {
            syn::UseTree::Path(p) => walk(&p.tree, format!("{prefix}{}::", p.ident), out),
            syn::UseTree::Name(n) => {
                out.insert(n.ident.to_string());
            }
            syn::UseTree::Rename(r) => {
                out.insert(r.rename.to_string());
            }
            syn::UseTree::Glob(_) => {
                out.insert(format!("{prefix}*"));
            }
            syn::UseTree::Group(g) => g.items.iter().for_each(|t| walk(t, prefix.clone(), out)),
        }
    }
    let mut out = BTreeSet::new();
    if let Ok(item) = syn::parse_str::<syn::ItemUse>(item) {
        walk(&item.tree, String::new(), &mut out);
    }
    proc_macro2::extra::invalidate_current_thread_spans();
    out
}

/// The crates a `#[jit]` function may use, besides other jit functions (the nopython rule).
pub const ALLOWED_ROOTS: [&str; 6] = ["std", "core", "alloc", "ndarray", "rayon", "jit"];

/// The runtime's prelude, as cells have it: one item a line, each allowed to go unused.
pub const RUNTIME_PRELUDE: &str = "#[allow(unused_imports)]\nuse jit::prelude::*;\n#[allow(unused_imports)]\nuse jit::{ndarray, rayon};\n";

/// One function's crate.
#[derive(Debug, Clone, PartialEq)]
pub struct CrateSource {
    pub text: String,
    /// The crate line (1-based) of the function's first line; columns are the cell's.
    pub first_line: usize,
}

impl CrateSource {
    /// The cell line of a crate line, if it is one of the function's.
    pub fn cell_line(&self, function: &JitFn, crate_line: usize) -> Option<usize> {
        let count = function.source.lines().count().max(1);
        (crate_line >= self.first_line && crate_line < self.first_line + count).then(|| crate_line - self.first_line + function.line)
    }
}

/// Writes the crate `function` is compiled in as `krate`. `deps` are the other jit functions
/// it calls (directly or not): their sources go in the same crate, after it, so calls between
/// jit functions inline. `uses` are the session's `use` items it may need. A
/// `target = "cuda"` function's kernel is not embedded: see [`crate_source_with_image`].
pub fn crate_source(function: &JitFn, krate: &str, deps: &[&JitFn], uses: &[String]) -> CrateSource {
    crate_source_with_image(function, krate, deps, uses, None)
}

/// [`crate_source`], embedding `device_image`, the compiled kernel of a `target = "cuda"`
/// function (`None`: calling it reports that the kernel was not compiled).
pub fn crate_source_with_image(function: &JitFn, krate: &str, deps: &[&JitFn], uses: &[String], device_image: Option<&DeviceImage>) -> CrateSource {
    // The prelude's items on one line: the crate allows unused imports as a whole.
    let prelude: Vec<&str> = RUNTIME_PRELUDE.lines().filter(|line| !line.starts_with("#[")).collect();
    let mut text = format!("#![allow(unused_imports, dead_code)]\n{}\n", prelude.join(" "));
    for item in uses.iter().filter(|u| use_root(u).is_some_and(|r| ALLOWED_ROOTS.contains(&r.as_str()))) {
        text.push_str(item);
        text.push('\n');
    }
    let first_line = text.lines().count() + 1;
    text.push_str(&" ".repeat(function.column));
    text.push_str(&function.source);
    text.push('\n');
    for dep in deps {
        text.push_str(&dep.source);
        text.push('\n');
    }
    text.push_str(&function.export_shim(krate, device_image));
    CrateSource { text, first_line }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split;

    #[test]
    fn crate_source_keeps_lines_and_columns() {
        let cell = "let y = 2;\n  #[jit] fn f(x: f64) -> f64 { g(x) + PI }";
        let split = split(cell).unwrap();
        let f = &split.functions[0];
        assert_eq!((f.line, f.column), (2, 2));
        let uses = vec!["use std::f64::consts::PI;".to_string(), "use my_crate::Thing;".to_string()];
        let g = crate::split("#[jit] fn g(x: f64) -> f64 { x }").unwrap().functions.remove(0);
        let source = crate_source(f, "jit_f_00", &[&g], &uses);
        // The runtime's prelude on the crate's second line: the crate is as it always was.
        assert!(source.text.starts_with("#![allow(unused_imports, dead_code)]\nuse jit::prelude::*; use jit::{ndarray, rayon};\n"), "{}", source.text);
        let line = source.text.lines().nth(source.first_line - 1).unwrap();
        assert_eq!(line.find("fn f"), Some(cell.lines().nth(1).unwrap().find("fn f").unwrap()));
        assert!(source.text.contains("fn g(x: f64) -> f64 { x }"));
        assert!(source.text.contains("#[no_mangle]\npub fn __jit_f_00(__jit_0: f64) -> f64 { f(__jit_0) }"), "{}", source.text);
        assert!(source.text.contains("use std::f64::consts::PI;"));
        assert!(!source.text.contains("my_crate"));
        assert_eq!(source.cell_line(f, source.first_line), Some(2));
        assert_eq!(source.cell_line(f, 1), None);
    }

    #[test]
    fn use_roots() {
        assert_eq!(use_root("use std::f64::consts::PI;").as_deref(), Some("std"));
        assert_eq!(use_root("pub use ::ndarray::Array2;").as_deref(), Some("ndarray"));
        assert_eq!(use_root("use {x, y};"), None);
    }
}
