//! Finds the `#[jit]` functions of a cell and writes the crate each one is compiled in.
//!
//! Pure text in, text out (no files, no rustc), so every rule here is tested on strings:
//! - [`split`] takes a cell apart: its `#[jit]` functions, its top-level `use` items, and
//!   the rest of the cell (the functions blanked out, lines kept, for evcxr);
//! - [`crate_source`] writes one function's crate, with the function on a known line and
//!   column so that rustc's errors map back to the cell;
//! - [`parallel`] rewrites the body of a `#[jit(parallel)]` function (array operators and
//!   `prange` loops onto the runtime), keeping its lines;
//! - [`vectorize`] writes a `#[vectorize]` function's export shim and cell wrapper, and
//!   [`cuda`] translates a `target = "cuda"` body to CUDA C (both over the [`scalar`] types).

use std::collections::BTreeSet;

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};

pub mod cuda;
mod error;
mod krate;
pub mod parallel;
pub mod scalar;
pub mod vectorize;

pub use error::{CodegenError, Unsupported};
pub use krate::{crate_source, crate_source_with_image, use_names, use_root, CrateSource, ALLOWED_ROOTS, RUNTIME_PRELUDE};
pub use vectorize::Target;

/// One `#[jit]` function found in a cell.
#[derive(Debug, Clone, PartialEq)]
pub struct JitFn {
    pub name: String,
    pub parallel: bool,
    /// The function as it goes into its crate: the `#[jit]` attribute blanked, the parallel
    /// rewrite applied. Same lines as in the cell.
    pub source: String,
    /// The function as written: the attribute blanked, nothing rewritten (what listings show).
    pub written: String,
    /// `#[jit(parallel)]`: what the rewrite did where (cell lines), for `%jit_report`.
    pub sites: Vec<parallel::Site>,
    /// 1-based cell line of the function's first character.
    pub line: usize,
    /// 0-based column (in characters) of the function's first character.
    pub column: usize,
    /// Every name the function refers to (first path segments), for finding the other jit
    /// functions it calls.
    pub references: BTreeSet<String>,
    /// Its signature, as written: what the export shim and the cell's wrapper repeat.
    pub signature: Signature,
    /// `#[vectorize]`: the target, and the scalar types of the parameters and the result.
    pub vectorize: Option<vectorize::Ufunc>,
}

/// A function signature taken apart as text (types as the learner wrote them).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Signature {
    pub unsafety: bool,
    /// Lifetime parameters with their brackets (`<'a>`), or empty.
    pub generics: String,
    /// Parameter types.
    pub params: Vec<String>,
    /// `-> Type`, or empty.
    pub output: String,
}

impl Signature {
    /// `fn NAME<'a>(__jit_0: T0, ...) -> R` (with `unsafe` when the function is).
    fn declaration(&self, name: &str) -> String {
        let params: Vec<String> = self.params.iter().enumerate().map(|(i, t)| format!("__jit_{i}: {t}")).collect();
        let unsafety = if self.unsafety { "unsafe " } else { "" };
        format!("{unsafety}fn {name}{}({}) {}", self.generics, params.join(", "), self.output).trim_end().to_string()
    }

    /// `NAME(__jit_0, ...)`
    fn call(&self, name: &str) -> String {
        let args: Vec<String> = (0..self.params.len()).map(|i| format!("__jit_{i}")).collect();
        format!("{name}({})", args.join(", "))
    }
}

impl JitFn {
    /// The exported symbol of the compiled function in crate `krate`.
    pub fn symbol(krate: &str) -> String {
        format!("__{krate}")
    }

    /// What the crate exports for cells: a `#[no_mangle]` function that calls this one
    /// (`device_image`: the kernel of a `target = "cuda"` function, see
    /// [`crate_source_with_image`]).
    pub fn export_shim(&self, krate: &str, device_image: Option<&cuda::DeviceImage>) -> String {
        if let Some(ufunc) = &self.vectorize {
            return ufunc.export_shim(&self.name, &Self::symbol(krate), device_image);
        }
        let call = self.signature.call(&self.name);
        let body = if self.signature.unsafety { format!("unsafe {{ {call} }}") } else { call };
        format!("#[no_mangle]\npub {} {{ {body} }}\n", self.signature.declaration(&Self::symbol(krate)))
    }

    /// The function cells call, in place of this one: a plain function with the same
    /// signature that calls the compiled code in the shared library `lib<krate>.so`. Only the
    /// signature is compiled in the cell, so rust-analyzer and `cargo check` see the types.
    pub fn cell_wrapper(&self, krate: &str) -> String {
        let symbol = Self::symbol(krate);
        if let Some(ufunc) = &self.vectorize {
            return ufunc.cell_wrapper(&self.name, krate, &symbol);
        }
        format!(
            "#[allow(dead_code)]\n{} {{ #[link(name = \"{krate}\")] unsafe extern \"C\" {{}} unsafe extern \"Rust\" {{ {}; }} unsafe {{ {} }} }}\n",
            self.signature.declaration(&self.name),
            Signature { unsafety: false, ..self.signature.clone() }.declaration(&symbol),
            self.signature.call(&symbol)
        )
    }
}

/// A cell taken apart.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SplitCell {
    pub functions: Vec<JitFn>,
    /// The cell with the jit functions replaced by blanks (newlines kept).
    pub rest: String,
    /// The cell's top-level `use` items, as written.
    pub uses: Vec<String>,
    /// The cell's other top-level functions that could be compiled on their own (no type
    /// parameters), as if they were `#[jit]`: for `%jit_asm --naive`.
    pub plain: Vec<JitFn>,
}

impl SplitCell {
    /// Whether anything is left for evcxr (comments and blanks are nothing).
    pub fn rest_is_empty(&self) -> bool {
        with_tokens(&self.rest, |tokens| tokens.is_some_and(|t| t.is_empty()))
    }
}

/// Where a piece of text starts in the cell: 1-based line, 0-based column.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Position {
    line: usize,
    column: usize,
}

/// Byte offsets of line starts, to turn proc-macro2's line/column spans into offsets.
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Lines { text, starts }
    }

    /// The byte offset of a 1-based line and 0-based character column.
    fn offset(&self, line: usize, column: usize) -> usize {
        let start = self.starts.get(line.saturating_sub(1)).copied().unwrap_or(self.text.len());
        let rest = &self.text[start..];
        rest.char_indices().nth(column).map_or(self.text.len().min(start + rest.len()), |(i, _)| start + i)
    }

    fn start_of(&self, span: Span) -> usize {
        self.offset(span.start().line, span.start().column)
    }

    fn end_of(&self, span: Span) -> usize {
        self.offset(span.end().line, span.end().column)
    }
}

/// Tokenizes `text`, forgetting the spans afterwards (proc-macro2 keeps every parsed text in
/// a per-thread map otherwise).
fn with_tokens<T>(text: &str, f: impl FnOnce(Option<TokenStream>) -> T) -> T {
    let tokens = text.parse::<TokenStream>().ok();
    let out = f(tokens);
    proc_macro2::extra::invalidate_current_thread_spans();
    out
}

/// The options `#[jit(...)]` accepts.
const OPTIONS_HELP: &str = "`#[jit]` accepts `parallel`, `nopython` and `cache` (the last two are always on), e.g. `#[jit(parallel)]`";

/// Takes a cell apart (see [`SplitCell`]). A cell that does not tokenize is returned whole,
/// for evcxr to report.
pub fn split(cell: &str) -> Result<SplitCell, CodegenError> {
    with_tokens(cell, |tokens| {
        let Some(tokens) = tokens else {
            return Ok(SplitCell { rest: cell.to_string(), ..SplitCell::default() });
        };
        let lines = Lines::new(cell);
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut found = SplitCell::default();
        let mut blank: Vec<(usize, usize)> = Vec::new();
        let mut i = 0;
        let origin = Position { line: 1, column: 0 };
        while i < trees.len() {
            if is_ident(&trees[i], "use") && (i == 0 || !is_punct(&trees[i - 1], ':')) {
                if let Some(end) = (i..trees.len()).find(|&k| is_punct(&trees[k], ';')) {
                    let start = item_start(&trees, i);
                    found.uses.push(cell[lines.start_of(trees[start].span())..lines.end_of(trees[end].span())].to_string());
                    i = end + 1;
                    continue;
                }
            }
            let Some(options) = jit_attribute(&trees, i) else {
                if let Some((function, end)) = plain_fn(cell, &lines, &trees, i) {
                    found.plain.push(function);
                    i = end;
                }
                i += 1;
                continue;
            };
            let options = options.map_err(|(span, message)| CodegenError::at(span, origin, message))?;
            let start = item_start(&trees, i);
            let body = (i + 2..trees.len())
                .find(|&k| matches!(&trees[k], TokenTree::Group(g) if g.delimiter() == Delimiter::Brace) || is_punct(&trees[k], ';'));
            let has_fn = |end: usize| (i + 2..end).any(|k| is_ident(&trees[k], "fn"));
            let end = match body {
                Some(end) if has_fn(end) && !is_punct(&trees[end], ';') => end,
                _ => {
                    return Err(CodegenError::at(trees[i].span(), origin, "`#[jit]` goes on a function with a body")
                        .help("write it just above `fn name(...) { ... }` at the top level of the cell"));
                }
            };
            let (from, to) = (lines.start_of(trees[start].span()), lines.end_of(trees[end].span()));
            let attribute = (lines.start_of(trees[i].span()), lines.end_of(trees[i + 1].span()));
            let position = Position { line: trees[start].span().start().line, column: trees[start].span().start().column };
            found.functions.push(jit_fn(&cell[from..to], attribute.0 - from..attribute.1 - from, position, options)?);
            blank.push((from, to));
            i = end + 1;
        }
        let mut rest = cell.to_string();
        // Last first: blanking may change a function's byte length (non-ASCII text), which
        // would move the ranges after it.
        for (from, to) in blank.into_iter().rev() {
            let blanked: String = cell[from..to].chars().map(|c| if c == '\n' { '\n' } else { ' ' }).collect();
            rest.replace_range(from..to, &blanked);
        }
        found.rest = rest;
        Ok(found)
    })
}

/// The plain function whose `fn` is token `i`, if it is one with a body that [`jit_fn`] accepts,
/// and the index of its body.
fn plain_fn(cell: &str, lines: &Lines<'_>, trees: &[TokenTree], i: usize) -> Option<(JitFn, usize)> {
    if !is_ident(&trees[i], "fn") || !matches!(trees.get(i + 1), Some(TokenTree::Ident(_))) {
        return None;
    }
    let end = (i + 2..trees.len()).find(|&k| matches!(&trees[k], TokenTree::Group(g) if g.delimiter() == Delimiter::Brace) || is_punct(&trees[k], ';'))?;
    if is_punct(&trees[end], ';') {
        return None;
    }
    // Back over `pub`, `pub(crate)`, `unsafe`, `const`, `extern "C"`, then the attributes.
    let mut start = i;
    while start > 0 {
        let qualifier = match &trees[start - 1] {
            TokenTree::Ident(id) => ["pub", "unsafe", "const", "extern"].iter().any(|q| id == q),
            TokenTree::Literal(_) => start >= 2 && is_ident(&trees[start - 2], "extern"),
            TokenTree::Group(g) => g.delimiter() == Delimiter::Parenthesis && start >= 2 && is_ident(&trees[start - 2], "pub"),
            TokenTree::Punct(_) => false,
        };
        if !qualifier {
            break;
        }
        start -= 1;
    }
    let start = item_start(trees, start);
    let (from, to) = (lines.start_of(trees[start].span()), lines.end_of(trees[end].span()));
    let position = Position { line: trees[start].span().start().line, column: trees[start].span().start().column };
    let function = jit_fn(&cell[from..to], 0..0, position, Kind::Jit { parallel: false }).ok()?;
    Some((function, end))
}

fn is_ident(tree: &TokenTree, name: &str) -> bool {
    matches!(tree, TokenTree::Ident(i) if i == name)
}

fn is_punct(tree: &TokenTree, c: char) -> bool {
    matches!(tree, TokenTree::Punct(p) if p.as_char() == c)
}

fn is_attribute(trees: &[TokenTree], i: usize) -> bool {
    is_punct(&trees[i], '#') && matches!(trees.get(i + 1), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Bracket)
}

/// The first token of the item whose token `i` is: back over the attributes (and doc
/// comments) right before it.
fn item_start(trees: &[TokenTree], mut i: usize) -> usize {
    while i >= 2 && is_attribute(trees, i - 2) {
        i -= 2;
    }
    i
}

/// Which attribute a function has, with its options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Jit { parallel: bool },
    Vectorize(Target),
}

/// Options of a `#[jit]` or `#[vectorize]` attribute starting at `i`: `None` when there is
/// none there.
type Options = Result<Kind, (Span, String)>;

fn jit_attribute(trees: &[TokenTree], i: usize) -> Option<Options> {
    if !is_attribute(trees, i) {
        return None;
    }
    let TokenTree::Group(group) = &trees[i + 1] else { return None };
    let inner: Vec<TokenTree> = group.stream().into_iter().collect();
    let name = match inner.first() {
        Some(t) if is_ident(t, "jit") => "jit",
        Some(t) if is_ident(t, "vectorize") => "vectorize",
        _ => return None,
    };
    let options = match &inner[1..] {
        [] => TokenStream::new(),
        [TokenTree::Group(args)] if args.delimiter() == Delimiter::Parenthesis => args.stream(),
        [other, ..] => return Some(Err((other.span(), format!("unexpected tokens after `{name}`")))),
    };
    Some(if name == "jit" { parse_options(options).map(|parallel| Kind::Jit { parallel }) } else { vectorize::parse_options(options).map(Kind::Vectorize) })
}

fn parse_options(stream: TokenStream) -> Result<bool, (Span, String)> {
    let trees: Vec<TokenTree> = stream.into_iter().collect();
    let mut parallel = false;
    for option in trees.split(|t| is_punct(t, ',')) {
        let value = match option {
            [] => continue,
            [TokenTree::Ident(name)] => (name, true),
            [TokenTree::Ident(name), eq, TokenTree::Ident(value)] if is_punct(eq, '=') && (value == "true" || value == "false") => {
                (name, value == "true")
            }
            [first, ..] => return Err((first.span(), "write options as `name` or `name = true`".to_string())),
        };
        match (value.0.to_string().as_str(), value.1) {
            ("parallel", on) => parallel = on,
            ("nopython" | "cache", true) => {}
            ("nopython", false) => {
                return Err((value.0.span(), "`nopython = false` is not supported: a #[jit] function uses only std, ndarray, rayon, the runtime and other #[jit] functions".to_string()))
            }
            ("cache", false) => return Err((value.0.span(), "`cache = false` is not supported: compiled functions are always cached by content".to_string())),
            (other, _) => return Err((value.0.span(), format!("unknown #[jit] option `{other}`: {OPTIONS_HELP}"))),
        }
    }
    Ok(parallel)
}

/// Checks one `#[jit]` item and prepares its source.
fn jit_fn(text: &str, attribute: std::ops::Range<usize>, at: Position, kind: Kind) -> Result<JitFn, CodegenError> {
    let parallel = kind == Kind::Jit { parallel: true };
    let mut source = text.to_string();
    let blanked: String = text[attribute.clone()].chars().map(|c| if c == '\n' { '\n' } else { ' ' }).collect();
    source.replace_range(attribute, &blanked);
    let item = syn::parse_str::<syn::ItemFn>(&source).map_err(|e| CodegenError::at(e.span(), at, format!("this #[jit] function does not parse: {e}")))?;
    let generic = item.sig.generics.params.iter().find(|p| !matches!(p, syn::GenericParam::Lifetime(_)));
    if let Some(param) = generic {
        return Err(CodegenError::at(syn::spanned::Spanned::span(param), at, "a #[jit] function cannot have type or const parameters")
            .help("it is compiled once, before it is called: write the concrete types, e.g. `a: &Array2<f64>`"));
    }
    if let Some(asyncness) = item.sig.asyncness {
        return Err(CodegenError::at(asyncness.span, at, "a #[jit] function cannot be `async`"));
    }
    let name = item.sig.ident.to_string();
    let signature = signature(&item.sig, &source, at)?;
    let vectorize = match kind {
        Kind::Vectorize(target) => Some(vectorize::Ufunc::new(&item, target, at.line).map_err(|e| CodegenError::at(e.span, at, e.message))?),
        Kind::Jit { .. } => None,
    };
    let mut references = BTreeSet::new();
    collect_references(&item.block, &mut references);
    let lines = Lines::new(&source);
    let (edits, mut sites) =
        if parallel { parallel::rewrite(&item, &lines).map_err(|(span, m)| CodegenError::at(span, at, m))? } else { Default::default() };
    let rewritten = apply(&source, edits);
    parallel::locate_operators(&rewritten, &mut sites);
    for site in &mut sites {
        site.line += at.line - 1;
    }
    Ok(JitFn { name, parallel, source: rewritten, written: source, sites, line: at.line, column: at.column, references, signature, vectorize })
}

fn signature(sig: &syn::Signature, source: &str, at: Position) -> Result<Signature, CodegenError> {
    let lines = Lines::new(source);
    let text = |node: &dyn syn::spanned::Spanned| {
        let span = node.span();
        source[lines.start_of(span)..lines.end_of(span)].to_string()
    };
    let mut params = Vec::new();
    for input in &sig.inputs {
        match input {
            syn::FnArg::Typed(pat) => {
                if let Some(span) = impl_trait(&pat.ty) {
                    return Err(CodegenError::at(span, at, "a #[jit] function cannot take `impl Trait`")
                        .help("it is compiled once, before it is called: write the concrete type (`&dyn Fn(f64) -> f64` for a function)"));
                }
                params.push(text(&pat.ty));
            }
            syn::FnArg::Receiver(r) => return Err(CodegenError::at(syn::spanned::Spanned::span(r), at, "a #[jit] function cannot take `self`")),
        }
    }
    let generics = if sig.generics.params.is_empty() { String::new() } else { format!("<{}>", text(&sig.generics.params)) };
    let output = match &sig.output {
        syn::ReturnType::Default => String::new(),
        syn::ReturnType::Type(_, ty) => {
            if let Some(span) = impl_trait(ty) {
                return Err(CodegenError::at(span, at, "a #[jit] function cannot return `impl Trait`")
                    .help("cells call it across a library boundary: return a concrete type (e.g. `Vec<f64>`, `Array1<f64>`)"));
            }
            format!("-> {}", text(ty))
        }
    };
    Ok(Signature { unsafety: sig.unsafety.is_some(), generics, params, output })
}

/// Where `ty` has an `impl Trait`, at any depth.
fn impl_trait(ty: &syn::Type) -> Option<Span> {
    struct Find(Option<Span>);
    impl<'ast> syn::visit::Visit<'ast> for Find {
        fn visit_type_impl_trait(&mut self, t: &'ast syn::TypeImplTrait) {
            self.0.get_or_insert(syn::spanned::Spanned::span(t));
        }
    }
    let mut find = Find(None);
    syn::visit::Visit::visit_type(&mut find, ty);
    find.0
}

fn collect_references(block: &syn::Block, out: &mut BTreeSet<String>) {
    struct Paths<'a>(&'a mut BTreeSet<String>);
    impl<'ast> syn::visit::Visit<'ast> for Paths<'_> {
        fn visit_path(&mut self, path: &'ast syn::Path) {
            if let Some(first) = path.segments.first() {
                self.0.insert(first.ident.to_string());
            }
            syn::visit::visit_path(self, path);
        }
        // Macro arguments are tokens to syn: every identifier in them may be a call.
        fn visit_macro(&mut self, mac: &'ast syn::Macro) {
            fn idents(tokens: proc_macro2::TokenStream, out: &mut BTreeSet<String>) {
                for tree in tokens {
                    match tree {
                        TokenTree::Ident(i) => {
                            out.insert(i.to_string());
                        }
                        TokenTree::Group(g) => idents(g.stream(), out),
                        _ => {}
                    }
                }
            }
            idents(mac.tokens.clone(), self.0);
            syn::visit::visit_macro(self, mac);
        }
    }
    syn::visit::Visit::visit_block(&mut Paths(out), block);
}

/// One text edit: replace `at..end` with `text`. Edits at one offset apply in `order`.
#[derive(Debug, Clone)]
pub(crate) struct Edit {
    at: usize,
    end: usize,
    order: i64,
    text: String,
}

impl Edit {
    pub(crate) fn insert(at: usize, order: i64, text: impl Into<String>) -> Self {
        Edit { at, end: at, order, text: text.into() }
    }
    pub(crate) fn replace(range: std::ops::Range<usize>, text: impl Into<String>) -> Self {
        Edit { at: range.start, end: range.end, order: 0, text: text.into() }
    }
}

/// Applies non-overlapping edits (inserts may share an offset; `order` sorts them).
fn apply(source: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|e| (e.at, e.end > e.at, e.order));
    let mut out = String::with_capacity(source.len() + edits.len() * 32);
    let mut pos = 0;
    for edit in edits {
        if edit.at < pos {
            continue;
        }
        out.push_str(&source[pos..edit.at]);
        out.push_str(&edit.text);
        pos = edit.end;
    }
    out.push_str(&source[pos..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LESSON: &str = "use std::f64::consts::PI;\nlet n = 3;\n#[jit]\nfn a_plus_tr_tanh_a(a: &Array2<f64>) -> Array2<f64> {\n    let mut trace = 0.0;\n    for i in 0..a.nrows() {\n        trace += a[[i, i]].tanh();\n    }\n    a + trace\n}\nn + 1";

    #[test]
    fn finds_the_function_and_blanks_it_in_the_rest() {
        let split = split(LESSON).unwrap();
        assert_eq!(split.functions.len(), 1);
        let f = &split.functions[0];
        assert_eq!((f.name.as_str(), f.parallel, f.line, f.column), ("a_plus_tr_tanh_a", false, 3, 0));
        assert!(f.source.starts_with("      \nfn a_plus_tr_tanh_a"), "{}", f.source);
        assert!(f.source.contains("    a + trace\n}"));
        assert_eq!(split.rest.lines().count(), LESSON.lines().count());
        assert!(split.rest.starts_with("use std::f64::consts::PI;\nlet n = 3;\n"));
        assert!(split.rest.ends_with("\nn + 1"));
        // Blanking keeps byte ranges right after a function with non-ASCII text.
        let two = super::split("#[jit] fn c(x: f64) -> f64 { x /* °F */ }\n#[jit] fn d() {}\nd()").unwrap();
        assert_eq!(two.functions.len(), 2);
        assert!(two.rest.trim() == "d()", "{:?}", two.rest);
        assert!(!split.rest.contains("fn"));
        assert!(!split.rest_is_empty());
        assert!(crate::split("// the lesson's function\n#[jit]\nfn f() {}\n").unwrap().rest_is_empty());
        assert_eq!(split.uses, vec!["use std::f64::consts::PI;".to_string()]);
        assert!(f.references.contains("a") && f.references.contains("trace"));
    }

    #[test]
    fn plain_functions_are_kept_for_listings() {
        let cell = "fn naive(a: &Array2<f64>) -> f64 {\n    a.sum()\n}\n#[jit] fn fast(x: f64) -> f64 { x }\n/// Doc.\npub(crate) unsafe fn g() {}\nfn generic<T>(x: T) -> T { x }\nlet h: fn() = g;\nimpl S { fn m(&self) {} }";
        let split = split(cell).unwrap();
        let names: Vec<(&str, usize)> = split.plain.iter().map(|f| (f.name.as_str(), f.line)).collect();
        assert_eq!(names, [("naive", 1), ("g", 5)]);
        assert!(split.plain[1].source.starts_with("/// Doc.\npub(crate) unsafe fn g()"), "{}", split.plain[1].source);
        assert_eq!(split.functions.len(), 1);
        assert!(split.rest.contains("fn naive"));
    }

    #[test]
    fn options_and_other_attributes() {
        let split = split("/// Doc.\n#[inline]\n#[jit(parallel, nopython = true)]\npub(crate) fn f(x: f64) -> f64 { x }").unwrap();
        let f = &split.functions[0];
        assert!(f.parallel);
        assert_eq!(f.line, 1);
        assert!(f.source.contains("#[inline]"));
        assert!(f.source.contains("pub(crate) fn f(x: f64)"), "{}", f.source);
        assert!(split.rest.trim().is_empty());
    }

    #[test]
    fn plain_cells_and_broken_cells_pass_through() {
        let plain = split("fn g() {}\nlet s = \"#[jit]\";").unwrap();
        assert!(plain.functions.is_empty());
        assert_eq!(plain.rest, "fn g() {}\nlet s = \"#[jit]\";");
        let broken = split("#[jit] fn f() { \"unterminated }").unwrap();
        assert!(broken.functions.is_empty());
    }

    #[test]
    fn errors_say_where_and_why() {
        let e = split("let x = 1;\n#[jit(fastmath)]\nfn f() {}").unwrap_err();
        assert_eq!((e.line, e.column), (2, 7));
        assert!(e.message.contains("unknown #[jit] option `fastmath`"));
        let e = split("#[jit]\nstruct S;").unwrap_err();
        assert!(e.message.contains("goes on a function"));
        let e = split("#[jit]\nfn f<T: Copy>(x: T) -> T { x }").unwrap_err();
        assert_eq!((e.line, e.column), (2, 6));
        assert!(e.help.unwrap().contains("concrete types"));
        let e = split("#[jit(nopython = false)]\nfn f() {}").unwrap_err();
        assert!(e.message.contains("not supported"));
    }

    fn split_cell_fn(cell: &str) -> JitFn {
        split(cell).unwrap().functions.remove(0)
    }

    #[test]
    fn signatures_repeat_in_the_shim_and_the_wrapper() {
        let f = split_cell_fn("#[jit]\nfn first<'a>(xs: &'a [f64], (i, _j): (usize, u8)) -> &'a f64 { &xs[i] }");
        assert_eq!(f.signature.generics, "<'a>");
        assert_eq!(f.signature.params, vec!["&'a [f64]".to_string(), "(usize, u8)".to_string()]);
        assert_eq!(
            f.export_shim("jit_first_1", None),
            "#[no_mangle]\npub fn __jit_first_1<'a>(__jit_0: &'a [f64], __jit_1: (usize, u8)) -> &'a f64 { first(__jit_0, __jit_1) }\n"
        );
        assert_eq!(
            f.cell_wrapper("jit_first_1"),
            "#[allow(dead_code)]\nfn first<'a>(__jit_0: &'a [f64], __jit_1: (usize, u8)) -> &'a f64 { #[link(name = \"jit_first_1\")] unsafe extern \"C\" {} unsafe extern \"Rust\" { fn __jit_first_1<'a>(__jit_0: &'a [f64], __jit_1: (usize, u8)) -> &'a f64; } unsafe { __jit_first_1(__jit_0, __jit_1) } }\n"
        );
        let unit = split_cell_fn("#[jit] unsafe fn touch() {}");
        assert!(unit.cell_wrapper("k").starts_with("#[allow(dead_code)]\nunsafe fn touch() { #[link(name = \"k\")] unsafe extern \"C\" {} unsafe extern \"Rust\" { fn __k(); } unsafe { __k() } }"));
        assert!(split("#[jit] fn f(x: impl Copy) {}").unwrap_err().message.contains("impl Trait"));
        assert!(split("#[jit] fn f(g: &impl Fn(f64) -> f64) {}").unwrap_err().message.contains("impl Trait"));
        assert!(split("#[jit] fn f() -> impl Iterator<Item = f64> { [1.0].into_iter() }").unwrap_err().message.contains("return `impl Trait`"));
        let with_macro = split_cell_fn("#[jit] fn f(x: f64) { println!(\"{}\", helper(x)); }");
        assert!(with_macro.references.contains("helper"));
        assert!(split("#[jit] async fn f() {}").unwrap_err().message.contains("async"));
    }
}
