//! The std sources rust-analyzer reads (`RUST_SRC_PATH`) to know std's types: `core`, `alloc`,
//! `std` and what they include by path, without tests, benches, `core::arch` and modules unstable
//! as a whole ([`LEFT_OUT`]), and **with every function body but a `const fn`'s replaced by
//! `{ loop {} }`**, those that std's `macro_rules!` write out included, and **without the docs and
//! stability attributes in macros' transcribers** (every expansion copies them). rust-analyzer needs
//! std's signatures, not its bodies, to infer a cell's types (a `const fn` may size an array type);
//! its hover still shows the docs of std's items, except those its macros write (the integer types'
//! methods). Its first analysis of a session parses all of std and expands its macros: 13.9 MB
//! instead of 25, 10.5 MB of which with signatures only, ~2 s less before a kernel's first cell on a
//! 2-core machine; the macros' bodies, ~0.9 s more; their docs and attributes, ~0.5 s more
//! (docs/benchmarks.md).
//!
//! Built once per toolchain in the cache; `None` when `rust-src` is missing (rust-analyzer then goes
//! without std's sources).

use std::path::{Path, PathBuf};

use ra_ap_syntax::{ast, AstNode, Edition, SourceFile, SyntaxElement, SyntaxKind, SyntaxNode, TextRange};

use crate::cache::Caches;
use crate::setup::Toolchain;

/// What a stripped body becomes: a block of type `!`, which any return type accepts.
const NO_BODY: &str = "{ loop {} }";

/// Names this form of the sources in the cache (a new form, a new directory).
const FORM: &str = "signatures-10";

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
        for (file, text) in LEFT_OUT.iter().filter(|(file, _)| source.join(file).exists()) {
            let file = target.join(file);
            std::fs::create_dir_all(file.parent().unwrap_or(&target))?;
            std::fs::write(file, format!("//! Left out of the kernel's analysis sources.\n{text}"))?;
        }
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

/// Files written in place of std's, each the least its includer needs: `core::arch` (16 MB of
/// intrinsics no lesson uses), and modules that are unstable as a whole, which no cell on a stable
/// toolchain can name and whose macros rust-analyzer would otherwise expand at every start
/// (`core::simd` and its `std` part, `core::intrinsics::simd`, the `f16` and `f128` types'
/// methods): ~0.16 s less before the first cell on a 2-core machine (docs/benchmarks.md).
const LEFT_OUT: &[(&str, &str)] = &[
    ("stdarch/crates/core_arch/src/mod.rs", ""),
    ("portable-simd/crates/core_simd/src/mod.rs", "pub mod simd {}\n"), // `core::simd` re-exports `core_simd::simd::*`
    ("portable-simd/crates/std_float/src/lib.rs", "pub trait StdFloat {}\n"), // `std::simd` re-exports it
    ("core/src/intrinsics/simd.rs", ""),
    ("core/src/num/f16.rs", ""),
    ("core/src/num/f128.rs", ""),
    ("std/src/f16.rs", ""),
    ("std/src/f128.rs", ""),
];

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
/// outermost ones: a function inside a body goes with it), also where a `macro_rules!` writes one
/// out ([`macro_bodies`]), whose docs and attributes rust-analyzer does not read go too
/// ([`macro_docs`]); `None` when the file does not parse cleanly (it is kept as it is).
fn signatures_only(text: &str) -> Option<String> {
    let parse = SourceFile::parse(text, Edition::Edition2024);
    if !parse.errors().is_empty() {
        return None;
    }
    let mut found: Vec<(TextRange, &str)> = Vec::new();
    for node in parse.tree().syntax().descendants() {
        if let Some(function) = ast::Fn::cast(node.clone()) {
            found.extend(function.body().filter(|_| function.const_token().is_none()).map(|body| (body.syntax().text_range(), NO_BODY)));
        } else if let Some(rules) = ast::MacroRules::cast(node) {
            if let Some(tree) = rules.token_tree() {
                found.extend(macro_bodies(tree.syntax()).into_iter().map(|range| (range, NO_BODY)));
                found.extend(macro_docs(tree.syntax()).into_iter().map(|range| (range, "")));
            }
        }
    }
    // Outermost first: a body inside a replaced one goes with it.
    found.sort_by_key(|(range, _)| (range.start(), std::cmp::Reverse(range.end())));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (range, with) in found {
        if usize::from(range.start()) < at {
            continue; // inside one replaced already
        }
        out.push_str(&text[at..range.start().into()]);
        out.push_str(with);
        at = range.end().into();
    }
    out.push_str(&text[at..]);
    Some(out)
}

/// What a `macro_rules!`'s transcribers write that rust-analyzer does not read and every expansion
/// copies: docs (`///`, `//!` and block doc comments; `#[doc = ...]` attributes, `concat!` ones
/// included) and [`INERT`] attributes (`#[stable(...)]`, `#[inline]`, ...). `core::num`'s macros
/// write each integer type's methods with their docs and attributes, half of those files' text.
/// Left alone: matchers (patterns), `#[doc(hidden)]` and `#[doc(alias = ...)]`, a repetition that
/// would be left empty (`$(#[doc = $d])*` would not expand), what a transcriber hands to another
/// macro (`m!(...)`: its patterns may match the attributes), and a `macro_rules!` a transcriber
/// writes. Hover over a method that a std macro writes shows its signature without docs.
fn macro_docs(rules: &SyntaxNode) -> Vec<TextRange> {
    let mut docs = Vec::new();
    transcribers(rules).for_each(|transcriber| transcriber_docs(&transcriber, &mut docs));
    docs
}

/// A `macro_rules!`'s transcribers: every second token tree of `{ (matcher) => {transcriber}; ... }`.
fn transcribers(rules: &SyntaxNode) -> impl Iterator<Item = SyntaxNode> {
    rules.children().filter(|child| child.kind() == SyntaxKind::TOKEN_TREE).skip(1).step_by(2)
}

fn transcriber_docs(tree: &SyntaxNode, docs: &mut Vec<TextRange>) {
    let mut seen: Vec<SyntaxElement> = Vec::new(); // the parts so far that are not trivia
    for part in tree.children_with_tokens() {
        match &part {
            SyntaxElement::Token(token) if token.kind() == SyntaxKind::COMMENT => {
                if is_doc_comment(token.text()) {
                    docs.push(token.text_range());
                }
                continue;
            }
            SyntaxElement::Token(token) if token.kind().is_trivia() => continue,
            SyntaxElement::Token(_) => {}
            SyntaxElement::Node(node) => {
                let back = |n: usize| seen.len().checked_sub(n).map_or("", |i| text(&seen[i]));
                if back(1) == "#" && is_dropped_attr(node) {
                    docs.push(TextRange::new(seen[seen.len() - 1].text_range().start(), node.text_range().end()));
                } else if !(back(1) == "$" && only_docs(node)) && back(1) != "!" && back(3) != "macro_rules" {
                    transcriber_docs(node, docs);
                }
            }
        }
        seen.push(part);
    }
}

/// Whether a token tree (`(...)`) holds docs and dropped attributes and nothing else.
fn only_docs(tree: &SyntaxNode) -> bool {
    let parts: Vec<SyntaxElement> = tree.children_with_tokens().filter(|part| !part.kind().is_trivia() || is_doc(part)).collect();
    let inner = parts.get(1..parts.len().saturating_sub(1)).unwrap_or_default(); // inside the delimiters
    let mut rest = inner.iter();
    while let Some(part) = rest.next() {
        let attr = text(part) == "#" && rest.next().and_then(|tree| tree.as_node()).is_some_and(is_dropped_attr);
        if !is_doc(part) && !attr {
            return false;
        }
    }
    true
}

fn is_doc(part: &SyntaxElement) -> bool {
    part.as_token().is_some_and(|t| t.kind() == SyntaxKind::COMMENT && is_doc_comment(t.text()))
}

/// `///` and `//!` (not `////`), `/** */` and `/*! */` (not `/***`).
fn is_doc_comment(comment: &str) -> bool {
    (comment.starts_with("///") && !comment.starts_with("////"))
        || comment.starts_with("//!")
        || (comment.starts_with("/**") && !comment.starts_with("/***") && comment != "/**/")
        || comment.starts_with("/*!")
}

/// `[doc = ...]` or `[NAME...]` with NAME in [`INERT`]: the tree after an attribute's `#`.
fn is_dropped_attr(tree: &SyntaxNode) -> bool {
    let mut tokens = tree.children_with_tokens().filter(|part| !part.kind().is_trivia());
    if !tokens.next().is_some_and(|t| text(&t) == "[") {
        return false;
    }
    let name = tokens.next();
    let name = name.as_ref().map_or("", text);
    INERT.contains(&name) || (name == "doc" && tokens.next().is_some_and(|t| text(&t) == "="))
}

/// Attributes rust-analyzer does not read for types (stability, code generation, lints).
const INERT: &[&str] = &["stable", "rustc_const_stable", "rustc_const_unstable", "inline", "must_use", "track_caller", "rustc_diagnostic_item", "rustc_inherit_overflow_checks", "rustc_allow_const_fn_unstable"];

/// The function bodies a `macro_rules!` (its token tree: `{ (matcher) => {transcriber}; ... }`)
/// writes out: in its transcribers, a `{...}` after `fn NAME` (or `fn $name`) and its signature,
/// unless the `fn` is a `const fn`. Most of what rust-analyzer expands at a session's start is
/// std's macros, and a body is most of what they write. Matchers are left alone (a literal `{` there
/// is matched against the macro's input), and so are `macro_rules!` written by a macro.
fn macro_bodies(rules: &SyntaxNode) -> Vec<TextRange> {
    let mut bodies = Vec::new();
    transcribers(rules).for_each(|transcriber| transcriber_bodies(&transcriber, &mut bodies));
    bodies
}

fn transcriber_bodies(tree: &SyntaxNode, bodies: &mut Vec<TextRange>) {
    let parts: Vec<SyntaxElement> = tree.children_with_tokens().filter(|part| !part.kind().is_trivia()).collect();
    let opens = |part: &SyntaxElement, delimiter: &str| part.as_node().and_then(|n| n.first_token()).is_some_and(|t| t.text() == delimiter);
    let mut skip_until = 0;
    for (i, part) in parts.iter().enumerate() {
        if let Some(node) = part.as_node() {
            // A macro written by the macro: its matchers are patterns.
            let defines_macro = i >= 3 && text(&parts[i - 3]) == "macro_rules";
            if i >= skip_until && !defines_macro {
                transcriber_bodies(node, bodies);
            }
            continue;
        }
        let named = parts.get(i + 1).and_then(|p| p.as_token()).is_some_and(|t| t.kind() == SyntaxKind::IDENT || t.text() == "$");
        if text(part) != "fn" || !named {
            continue;
        }
        // `const fn`, `const unsafe fn`, `const unsafe extern "C" fn`: kept.
        let qualifier = parts[..i].iter().rev().map(text).find(|t| !matches!(*t, "unsafe" | "extern" | "async") && !t.starts_with('"'));
        if qualifier == Some("const") {
            continue;
        }
        for (j, next) in parts.iter().enumerate().skip(i + 2) {
            if opens(next, "{") {
                bodies.push(next.text_range());
                skip_until = j + 1;
                break;
            }
            if next.as_token().is_some_and(|t| STOP.contains(&t.text())) {
                break;
            }
        }
    }
}

/// A token's text; "" for a token tree.
fn text(part: &SyntaxElement) -> &str {
    part.as_token().map_or("", |t| t.text())
}

/// Where a function's signature cannot go on: its end without a body, or the next item.
const STOP: &[&str] = &[";", "#", "fn", "impl", "struct", "enum", "trait", "mod", "pub", "static", "type", "use", "let", "const", "macro_rules"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_go_signatures_docs_and_consts_stay() {
        let text = "/// Docs.\npub fn f(x: u8) -> u8 {\n    fn inner() {}\n    x + 1\n}\npub const fn size() -> usize { 8 }\n\
                    impl S { pub fn g(&self) -> [u8; size()] { [0; 8] } }\ntrait T { fn d(&self) { let _ = 1; } fn r(&self); }\n\
                    macro_rules! m { () => { fn in_macro() { 1; } } }\nconst C: u8 = { 1 + 2 };\n";
        let stripped = signatures_only(text).expect("parses");
        assert_eq!(
            stripped,
            "/// Docs.\npub fn f(x: u8) -> u8 { loop {} }\npub const fn size() -> usize { 8 }\n\
             impl S { pub fn g(&self) -> [u8; size()] { loop {} } }\ntrait T { fn d(&self) { loop {} } fn r(&self); }\n\
             macro_rules! m { () => { fn in_macro() { loop {} } } }\nconst C: u8 = { 1 + 2 };\n"
        );
        assert_eq!(signatures_only("fn broken( {"), None, "a file that does not parse is kept as it is");
    }

    #[test]
    fn macros_lose_the_bodies_they_write_not_their_patterns() {
        let text = "macro_rules! ops {\n    ($t:ty, fn $name:ident() { $($body:tt)* }) => {\n        impl Add for $t { fn add(self, o: $t) -> $t where $t: Copy { self + o } }\n        pub const fn c() -> usize { 1 }\n        pub const unsafe fn cu() -> usize { 2 }\n        const unsafe extern \"C\" fn ce() -> usize { 3 }\n        unsafe extern \"C\" fn ue() -> usize { 4 }\n        fn $name(x: fn(u8) -> u8) -> [u8; 2] { x(1); [0; 2] }\n        fn declared(&self);\n        fn from_block() -> u8 $body\n        impl Other { fn kept_apart() {} }\n        type F = fn(u8);\n        impl Z { }\n        macro_rules! inner { (fn a() { x }) => { fn b() { y } } }\n        $( fn $rep() { $rep } )*\n    };\n}\n";
        let want = "macro_rules! ops {\n    ($t:ty, fn $name:ident() { $($body:tt)* }) => {\n        impl Add for $t { fn add(self, o: $t) -> $t where $t: Copy { loop {} } }\n        pub const fn c() -> usize { 1 }\n        pub const unsafe fn cu() -> usize { 2 }\n        const unsafe extern \"C\" fn ce() -> usize { 3 }\n        unsafe extern \"C\" fn ue() -> usize { loop {} }\n        fn $name(x: fn(u8) -> u8) -> [u8; 2] { loop {} }\n        fn declared(&self);\n        fn from_block() -> u8 $body\n        impl Other { fn kept_apart() { loop {} } }\n        type F = fn(u8);\n        impl Z { }\n        macro_rules! inner { (fn a() { x }) => { fn b() { y } } }\n        $( fn $rep() { loop {} } )*\n    };\n}\n";
        assert_eq!(signatures_only(text).expect("parses"), want);
    }

    #[test]
    fn macros_lose_their_docs_items_keep_theirs() {
        let text = "/// Item docs.\n#[doc = \"stay\"]\npub struct S;\nmacro_rules! m {\n    ($(#[$a:meta])* /// in a pattern\n $t:ty) => {\n        /// Gone.\n        //// not a doc\n        /** gone */\n        #[doc = concat!(\"gone \", stringify!($t))]\n        #[doc(hidden)]\n        #[doc(alias = \"kept\")]\n        #![doc = \"inner, kept\"]\n        $(#[doc = $d])* $(/// kept\n)* $(#[doc = $e] fn $f() {})*\n        #[stable(feature = \"x\", since = \"1.0\")] #[inline] #[cfg(unix)]\n        other! { #[stable(feature = \"x\")] /// kept\n }\n        macro_rules! inner { () => { /// kept\n } }\n        impl $t { #[doc = \"gone\"] pub const fn c() -> u8 { 1 } }\n    };\n}\n";
        let want = "/// Item docs.\n#[doc = \"stay\"]\npub struct S;\nmacro_rules! m {\n    ($(#[$a:meta])* /// in a pattern\n $t:ty) => {\n        \n        //// not a doc\n        \n        \n        #[doc(hidden)]\n        #[doc(alias = \"kept\")]\n        #![doc = \"inner, kept\"]\n        $(#[doc = $d])* $(/// kept\n)* $( fn $f() { loop {} })*\n          #[cfg(unix)]\n        other! { #[stable(feature = \"x\")] /// kept\n }\n        macro_rules! inner { () => { /// kept\n } }\n        impl $t {  pub const fn c() -> u8 { 1 } }\n    };\n}\n";
        assert_eq!(signatures_only(text).expect("parses"), want);
    }
}
