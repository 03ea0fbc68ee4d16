//! The std sources rust-analyzer reads (`RUST_SRC_PATH`) to know std's types: `core`, `alloc`,
//! `std` and what they include by path, without tests, benches and `core::arch` (16 MB of
//! intrinsics no lesson uses), and **with every function body but a `const fn`'s replaced by
//! `{ loop {} }`**. rust-analyzer needs std's signatures, not its bodies, to infer a cell's types
//! (a `const fn` may size an array type); its hover still shows std's docs. Its first analysis of
//! a session parses all of std: 13.9 MB instead of 25, 10.5 MB of which with signatures only, ~2 s
//! less before a kernel's first cell on a 2-core machine (docs/benchmarks.md).
//!
//! Built once per toolchain in the cache; `None` when `rust-src` is missing (rust-analyzer then goes
//! without std's sources).

use std::path::{Path, PathBuf};

use ra_ap_syntax::{ast, AstNode, Edition, SourceFile, TextRange};

use crate::cache::Caches;
use crate::setup::Toolchain;

/// What a stripped body becomes: a block of type `!`, which any return type accepts.
const NO_BODY: &str = "{ loop {} }";

/// Names this form of the sources in the cache (a new form, a new directory).
const FORM: &str = "signatures";

/// The directory to name in `RUST_SRC_PATH`, built if needed.
pub fn prepare(caches: &Caches, toolchain: &Toolchain) -> Option<PathBuf> {
    let source = toolchain.library_src()?;
    let target = caches.find(Path::new("analysis-src").join(format!("{}-{FORM}", toolchain.id())).join("library"), ".complete");
    if target.join(".complete").exists() {
        return Some(target);
    }
    let build = || -> std::io::Result<()> {
        let _ = std::fs::remove_dir_all(&target);
        for name in ["core", "alloc", "std", "backtrace", "portable-simd"] {
            if source.join(name).exists() {
                copy_sources(&source.join(name), &target.join(name))?;
            }
        }
        let arch = target.join("stdarch/crates/core_arch/src");
        std::fs::create_dir_all(&arch)?;
        std::fs::write(arch.join("mod.rs"), "//! core::arch is left out of the kernel's analysis sources.\n")?;
        std::fs::write(target.join(".complete"), "")
    };
    match build() {
        Ok(()) => Some(target),
        Err(error) => {
            tracing::warn!(%error, "could not prepare analysis sources; rust-analyzer reads all of std");
            None
        }
    }
}

/// Copies a source tree, leaving out `tests` and `benches` directories, with Rust files reduced to
/// their signatures.
fn copy_sources(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        if entry.file_type()?.is_dir() {
            if name != "tests" && name != "benches" {
                copy_sources(&path, &to.join(&name))?;
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path)?;
            std::fs::write(to.join(&name), signatures_only(&text).unwrap_or(text))?;
        } else {
            std::fs::copy(&path, to.join(&name))?;
        }
    }
    Ok(())
}

/// `text` with the body of every function that is not a `const fn` replaced by [`NO_BODY`] (the
/// outermost ones: a function inside a body goes with it); `None` when the file does not parse
/// cleanly (it is kept as it is). Function bodies inside `macro_rules!` are tokens, not functions:
/// they stay.
fn signatures_only(text: &str) -> Option<String> {
    let parse = SourceFile::parse(text, Edition::Edition2024);
    if !parse.errors().is_empty() {
        return None;
    }
    let mut bodies: Vec<TextRange> = Vec::new();
    // Pre-order: an outer body comes before the bodies inside it.
    for function in parse.tree().syntax().descendants().filter_map(ast::Fn::cast) {
        let Some(body) = function.body().filter(|_| function.const_token().is_none()) else { continue };
        let range = body.syntax().text_range();
        if bodies.last().is_none_or(|outer| !outer.contains_range(range)) {
            bodies.push(range);
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for range in bodies {
        out.push_str(&text[at..range.start().into()]);
        out.push_str(NO_BODY);
        at = range.end().into();
    }
    out.push_str(&text[at..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_go_signatures_docs_consts_and_macros_stay() {
        let text = "/// Docs.\npub fn f(x: u8) -> u8 {\n    fn inner() {}\n    x + 1\n}\npub const fn size() -> usize { 8 }\n\
                    impl S { pub fn g(&self) -> [u8; size()] { [0; 8] } }\ntrait T { fn d(&self) { let _ = 1; } fn r(&self); }\n\
                    macro_rules! m { () => { fn in_macro() { 1; } } }\nconst C: u8 = { 1 + 2 };\n";
        let stripped = signatures_only(text).expect("parses");
        assert_eq!(
            stripped,
            "/// Docs.\npub fn f(x: u8) -> u8 { loop {} }\npub const fn size() -> usize { 8 }\n\
             impl S { pub fn g(&self) -> [u8; size()] { loop {} } }\ntrait T { fn d(&self) { loop {} } fn r(&self); }\n\
             macro_rules! m { () => { fn in_macro() { 1; } } }\nconst C: u8 = { 1 + 2 };\n"
        );
        assert_eq!(signatures_only("fn broken( {"), None, "a file that does not parse is kept as it is");
    }
}
