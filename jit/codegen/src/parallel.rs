//! The rewrite of a `#[jit(parallel)]` function's body, as text edits that keep its lines.
//!
//! - `l + r`, `l - r`, `l * r`, `l / r` become `::jit::__par_op!(__jit_add, l, r)` and so on:
//!   the runtime picks the parallel elementwise version when an operand is an array and
//!   plain Rust otherwise (the types are not known here).
//! - `for PAT in prange(R) BODY` becomes a call to `::jit::par::prange_reduce` (or
//!   `prange_for` when nothing accumulates): each part of the range runs `for PAT in part
//!   BODY` with its own copy of every reduction variable (an outer variable updated with
//!   `+=`, `-=` or `*=`), and the parts' results are combined in range order.
//!
//! Not rewritten: types, array lengths, patterns, macros, nested items, and the range
//! expression of a `prange` loop.

use std::collections::BTreeMap;

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::{BinOp, Expr};

use crate::{Edit, Lines};

/// What the rewrite did at one place of the function, for `%jit_report`.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// 1-based line in the function's source (the jit layer adds the function's cell line).
    pub line: usize,
    /// The code as written, on one line (whitespace runs collapsed, long code cut).
    pub code: String,
    pub kind: SiteKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SiteKind {
    /// `l op r` became `::jit::__par_op!(...)`: parallel elementwise when an operand is an array.
    /// `method_at`: the 1-based line and character column, in the rewritten source, of the
    /// method name rustc reports when it resolves to the array version (see `jit::ops`).
    Operator { op: char, method_at: Option<(usize, usize)> },
    /// A `prange` loop on the pool, with its reduction variables and how each combines.
    Prange { reductions: Vec<(String, char)> },
    /// A `prange` loop inside another one's body: runs serially in each part.
    NestedPrange,
    /// A `for` or `while` loop outside `prange` bodies: serial.
    SerialLoop,
    /// `x op= y` outside `prange` bodies: not rewritten (in place, serial).
    InPlace { op: String },
}

/// The edits for the body of `item` and what they do, or the first problem found.
pub(crate) fn rewrite(item: &syn::ItemFn, lines: &Lines<'_>) -> Result<(Vec<Edit>, Vec<Site>), (Span, String)> {
    let mut rewrite = Rewrite { lines, edits: Vec::new(), depth: 0, in_prange: false, error: None, sites: Vec::new() };
    rewrite.visit_block(&item.block);
    match rewrite.error {
        Some(error) => Err(error),
        None => {
            // Operators in the order their inserted macro calls appear in the rewritten text.
            rewrite.sites.sort_by_key(|(order, _)| *order);
            Ok((rewrite.edits, rewrite.sites.into_iter().map(|(_, site)| site).collect()))
        }
    }
}

/// Fills in where each operator's method name is in `rewritten`, the function's source after the
/// edits (their inserted macro calls appear in the order of `sites`); left out if the source has
/// other such calls of its own.
pub(crate) fn locate_operators(rewritten: &str, sites: &mut [Site]) {
    const CALL: &str = "::jit::__par_op!(";
    let found: Vec<usize> = rewritten.match_indices(CALL).map(|(at, _)| at + CALL.len()).collect();
    let mut operators: Vec<&mut Option<(usize, usize)>> = sites
        .iter_mut()
        .filter_map(|s| match &mut s.kind {
            SiteKind::Operator { method_at, .. } => Some(method_at),
            _ => None,
        })
        .collect();
    if found.len() != operators.len() {
        return;
    }
    for (at, slot) in found.into_iter().zip(operators.iter_mut()) {
        let before = &rewritten[..at];
        let line = before.matches('\n').count() + 1;
        let column = before[before.rfind('\n').map_or(0, |i| i + 1)..].chars().count() + 1;
        **slot = Some((line, column));
    }
}

/// `code` on one line, at most 60 characters.
fn one_line(code: &str) -> String {
    let flat = code.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(57) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
}

struct Rewrite<'a> {
    lines: &'a Lines<'a>,
    edits: Vec<Edit>,
    /// Nesting of rewritten operators (orders the inserts that share an offset).
    depth: i64,
    /// Inside a `prange` body: a nested `prange` runs serially.
    in_prange: bool,
    error: Option<(Span, String)>,
    /// What was done where, keyed by where the site starts (operators: their inserted text's
    /// order).
    sites: Vec<((usize, i64), Site)>,
}

impl Rewrite<'_> {
    fn range(&self, node: &impl Spanned) -> std::ops::Range<usize> {
        let span = node.span();
        self.lines.start_of(span)..self.lines.end_of(span)
    }

    fn site(&mut self, node: &impl Spanned, code: &impl Spanned, order: i64, kind: SiteKind) {
        let range = self.range(code);
        let site = Site { line: node.span().start().line, code: one_line(&self.lines.text[range]), kind };
        self.sites.push(((self.range(node).start, order), site));
    }

    fn fail(&mut self, span: Span, message: impl Into<String>) {
        self.error.get_or_insert((span, message.into()));
    }

    fn prange_loop(&mut self, e: &syn::ExprForLoop, range: &Expr) {
        if let Some(label) = &e.label {
            return self.fail(label.span(), "a `prange` loop cannot have a label");
        }
        let mut body = Body::default();
        body.bind(&e.pat);
        body.visit_block(&e.body);
        if let Some((span, message)) = body.error {
            return self.fail(span, message);
        }
        let mut kinds: BTreeMap<String, &'static str> = BTreeMap::new();
        for (name, kind, span) in &body.updates {
            if body.bound.contains(name) {
                continue;
            }
            match kinds.insert(name.clone(), kind) {
                Some(previous) if previous != *kind => {
                    return self.fail(*span, format!("`{name}` is a prange reduction updated with both `+=`/`-=` and `*=`"));
                }
                _ => {}
            }
        }
        let range_text = &self.lines.text[self.range(range)];
        let call = match &e.expr.as_ref() {
            Expr::Call(call) => self.range(call),
            other => self.range(*other),
        };
        let (start, end) = (self.range(e).start, self.range(e).end);
        if kinds.is_empty() {
            self.edits.push(Edit::insert(start, 0, format!("{{ ::jit::par::prange_for({range_text}, |__jit_range| {{ ")));
            self.edits.push(Edit::insert(end, i64::MAX, " }); }"));
        } else {
            let identity = |kind: &str, name: &str| {
                let f = if kind == "*" { "one_like" } else { "zero_like" };
                format!("::jit::par::Reduce::{f}(&{name})")
            };
            let names: Vec<&String> = kinds.keys().collect();
            let identities: String = kinds.iter().map(|(n, k)| format!("{}, ", identity(k, n))).collect();
            let locals: String = kinds.iter().map(|(n, k)| format!("let mut {n} = {}; ", identity(k, n))).collect();
            let values: String = names.iter().map(|n| format!("{n}, ")).collect();
            let combined: String =
                kinds.values().enumerate().map(|(i, k)| format!("__jit_a.{i} {} __jit_b.{i}, ", if *k == "*" { "*" } else { "+" })).collect();
            let absorb: String = kinds
                .iter()
                .enumerate()
                .map(|(i, (n, k))| format!("{n} = {n} {} __jit_r.{i}; ", if *k == "*" { "*" } else { "+" }))
                .collect();
            self.edits.push(Edit::insert(
                start,
                0,
                format!("{{ let __jit_r = ::jit::par::prange_reduce({range_text}, ({identities}), |__jit_range| {{ {locals}"),
            ));
            self.edits.push(Edit::insert(
                end,
                i64::MAX,
                format!(" ({values}) }}, |__jit_a, __jit_b| ({combined})); {absorb}}}"),
            ));
        }
        self.edits.push(Edit::replace(call, "__jit_range"));
        let reductions = kinds.iter().map(|(name, kind)| (name.clone(), kind.chars().next().unwrap_or('+'))).collect();
        self.site_of_head(e, &e.body, SiteKind::Prange { reductions });
        self.in_prange = true;
        self.visit_block(&e.body);
        self.in_prange = false;
    }
}

impl Rewrite<'_> {
    /// A site for a loop, shown as its head (`for i in prange(0..n)`).
    fn site_of_head(&mut self, e: &impl Spanned, body: &syn::Block, kind: SiteKind) {
        let start = self.range(e).start;
        let head_end = self.range(body).start;
        let site = Site { line: e.span().start().line, code: one_line(&self.lines.text[start..head_end]), kind };
        self.sites.push(((start, 0), site));
    }
}

/// The `prange(R)` call of a loop head, if it is one.
fn prange_argument(head: &Expr) -> Option<&Expr> {
    let Expr::Call(call) = head else { return None };
    let Expr::Path(path) = call.func.as_ref() else { return None };
    let last = path.path.segments.last()?;
    (last.ident == "prange" && call.args.len() == 1).then(|| &call.args[0])
}

impl<'ast> Visit<'ast> for Rewrite<'_> {
    fn visit_expr_binary(&mut self, e: &'ast syn::ExprBinary) {
        let method = match e.op {
            BinOp::Add(_) => "__jit_add",
            BinOp::Sub(_) => "__jit_sub",
            BinOp::Mul(_) => "__jit_mul",
            BinOp::Div(_) => "__jit_div",
            BinOp::AddAssign(_) | BinOp::SubAssign(_) | BinOp::MulAssign(_) | BinOp::DivAssign(_) if !self.in_prange => {
                let op = self.lines.text[self.range(&e.op)].to_string();
                self.site(e, e, 0, SiteKind::InPlace { op });
                return visit::visit_expr_binary(self, e);
            }
            _ => return visit::visit_expr_binary(self, e),
        };
        let op = self.lines.text[self.range(&e.op)].chars().next().unwrap_or('+');
        self.site(&*e.left, e, self.depth, SiteKind::Operator { op, method_at: None });
        let (left, right) = (self.range(&e.left), self.range(&e.right));
        // Prefixes at one offset: outer first; closing parentheses: inner first.
        self.edits.push(Edit::insert(left.start, self.depth, format!("::jit::__par_op!({method}, ")));
        self.edits.push(Edit::replace(self.range(&e.op), ","));
        self.edits.push(Edit::insert(right.end, -1_000_000 - self.depth, ")"));
        self.depth += 1;
        self.visit_expr(&e.left);
        self.visit_expr(&e.right);
        self.depth -= 1;
    }

    fn visit_expr_for_loop(&mut self, e: &'ast syn::ExprForLoop) {
        match prange_argument(&e.expr) {
            Some(range) if !self.in_prange => self.prange_loop(e, range),
            Some(_) => {
                self.site_of_head(e, &e.body, SiteKind::NestedPrange);
                visit::visit_expr_for_loop(self, e)
            }
            None => {
                if !self.in_prange {
                    self.site_of_head(e, &e.body, SiteKind::SerialLoop);
                }
                visit::visit_expr_for_loop(self, e)
            }
        }
    }

    fn visit_expr_while(&mut self, e: &'ast syn::ExprWhile) {
        if !self.in_prange {
            self.site_of_head(e, &e.body, SiteKind::SerialLoop);
        }
        visit::visit_expr_while(self, e)
    }

    fn visit_expr_repeat(&mut self, e: &'ast syn::ExprRepeat) {
        self.visit_expr(&e.expr);
    }

    // Left as written: types, patterns, macros, nested items, generic arguments, attributes.
    fn visit_type(&mut self, _: &'ast syn::Type) {}
    fn visit_pat(&mut self, _: &'ast syn::Pat) {}
    fn visit_macro(&mut self, _: &'ast syn::Macro) {}
    fn visit_item(&mut self, _: &'ast syn::Item) {}
    fn visit_generic_argument(&mut self, _: &'ast syn::GenericArgument) {}
    fn visit_attribute(&mut self, _: &'ast syn::Attribute) {}
    fn visit_expr_const(&mut self, _: &'ast syn::ExprConst) {}
}

/// What a `prange` body binds and updates.
#[derive(Default)]
struct Body {
    bound: std::collections::BTreeSet<String>,
    updates: Vec<(String, &'static str, Span)>,
    /// Loops and closures around the current node, inside the body.
    nesting: usize,
    error: Option<(Span, String)>,
}

impl Body {
    fn bind(&mut self, pat: &syn::Pat) {
        struct Names<'a>(&'a mut std::collections::BTreeSet<String>);
        impl<'ast> Visit<'ast> for Names<'_> {
            fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
                self.0.insert(p.ident.to_string());
                visit::visit_pat_ident(self, p);
            }
        }
        Names(&mut self.bound).visit_pat(pat);
    }
}

impl<'ast> Visit<'ast> for Body {
    // Every name the body binds (`let`, closure parameters, `if let`, `match` arms, loops) is
    // its own, not a reduction variable.
    fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
        self.bound.insert(p.ident.to_string());
        visit::visit_pat_ident(self, p);
    }

    fn visit_expr_binary(&mut self, e: &'ast syn::ExprBinary) {
        let kind = match e.op {
            BinOp::AddAssign(_) | BinOp::SubAssign(_) => Some("+"),
            BinOp::MulAssign(_) => Some("*"),
            _ => None,
        };
        if let (Some(kind), Expr::Path(path)) = (kind, e.left.as_ref()) {
            if let Some(name) = path.path.get_ident() {
                self.updates.push((name.to_string(), kind, e.span()));
            }
        }
        visit::visit_expr_binary(self, e);
    }

    fn visit_expr_return(&mut self, e: &'ast syn::ExprReturn) {
        self.forbid(self.nesting < 1000, e, "a `prange` loop body cannot `return`");
        visit::visit_expr_return(self, e);
    }

    fn visit_expr_break(&mut self, e: &'ast syn::ExprBreak) {
        self.forbid(self.nesting == 0 || e.label.is_some(), e, "a `prange` loop cannot `break`: its iterations run in parallel");
        visit::visit_expr_break(self, e);
    }

    fn visit_expr_try(&mut self, e: &'ast syn::ExprTry) {
        self.forbid(self.nesting < 1000, e, "`?` cannot leave a `prange` loop body");
        visit::visit_expr_try(self, e);
    }

    fn visit_expr_closure(&mut self, e: &'ast syn::ExprClosure) {
        // `return` and `?` inside a closure leave the closure only.
        self.nesting += 1000;
        visit::visit_expr_closure(self, e);
        self.nesting -= 1000;
    }

    fn visit_expr_for_loop(&mut self, e: &'ast syn::ExprForLoop) {
        self.bind(&e.pat);
        self.nested(|b| visit::visit_expr_for_loop(b, e));
    }

    fn visit_expr_while(&mut self, e: &'ast syn::ExprWhile) {
        self.nested(|b| visit::visit_expr_while(b, e));
    }

    fn visit_expr_loop(&mut self, e: &'ast syn::ExprLoop) {
        self.nested(|b| visit::visit_expr_loop(b, e));
    }

    fn visit_item(&mut self, _: &'ast syn::Item) {}
}

impl Body {
    /// Records `message` at `node` when `forbidden` (the first such problem is the error).
    fn forbid(&mut self, forbidden: bool, node: &impl Spanned, message: &str) {
        if forbidden {
            self.error.get_or_insert((node.span(), message.to_string()));
        }
    }

    fn nested(&mut self, f: impl FnOnce(&mut Self)) {
        self.nesting += 1;
        f(self);
        self.nesting -= 1;
    }
}

#[cfg(test)]
mod tests {
    use crate::split;

    fn rewritten(body: &str) -> String {
        let cell = format!("#[jit(parallel)]\nfn f(a: &Array2<f64>) -> f64 {{\n{body}\n}}");
        let split = split(&cell).unwrap();
        let source = split.functions[0].source.clone();
        assert_eq!(source.lines().count(), cell.lines().count(), "lines are kept:\n{source}");
        source
    }

    #[test]
    fn operators_nest_in_order() {
        let s = rewritten("let b = a * 2.0 + a / (a - 1.0);");
        assert!(
            s.contains(
                "let b = ::jit::__par_op!(__jit_add, ::jit::__par_op!(__jit_mul, a , 2.0) , ::jit::__par_op!(__jit_div, a , (::jit::__par_op!(__jit_sub, a , 1.0))));"
            ),
            "{s}"
        );
    }

    #[test]
    fn types_lengths_macros_and_prange_ranges_stay() {
        let s = rewritten("let x: [f64; 2 + 1] = [0.0; 1 + 2];\nprintln!(\"{}\", 1 + 2);\nfor i in prange(0..n - 1) { g(i); }");
        assert!(s.contains("[f64; 2 + 1]"), "{s}");
        assert!(s.contains("[0.0; 1 + 2]"), "{s}");
        assert!(s.contains("println!(\"{}\", 1 + 2)"), "{s}");
        assert!(s.contains("::jit::par::prange_for(0..n - 1, |__jit_range| { for i in __jit_range { g(i); } }); }"), "{s}");
    }

    #[test]
    fn prange_reductions() {
        let s = rewritten("let mut t = 0.0; let mut p = 1;\nfor i in prange(0..a.nrows()) {\n  let x = a[[i, i]];\n  t += x.tanh();\n  p *= 2;\n  t -= 1.0;\n}\nt");
        assert!(s.contains("let __jit_r = ::jit::par::prange_reduce(0..a.nrows(), (::jit::par::Reduce::one_like(&p), ::jit::par::Reduce::zero_like(&t), ), |__jit_range| { let mut p = ::jit::par::Reduce::one_like(&p); let mut t = ::jit::par::Reduce::zero_like(&t); for i in __jit_range {"), "{s}");
        assert!(s.contains("} (p, t, ) }, |__jit_a, __jit_b| (__jit_a.0 * __jit_b.0, __jit_a.1 + __jit_b.1, )); p = p * __jit_r.0; t = t + __jit_r.1; }"), "{s}");
        // `x` is the body's own variable, not a reduction.
        assert!(!s.contains("(&x)"));
        let closures = rewritten("let mut t = 0.0;\nfor i in prange(0..3) {\n  t += a.row(i).iter().fold(0.0, |mut acc, x| { acc += x; acc });\n}\nt");
        assert!(closures.contains("(t, )") && !closures.contains("(&acc)"), "{closures}");
    }

    #[test]
    fn prange_bodies_that_cannot_run_in_parallel() {
        for (body, message) in [
            ("for i in prange(0..3) { break; }", "cannot `break`"),
            ("for i in prange(0..3) { return 1.0; }", "cannot `return`"),
            ("'outer: for i in prange(0..3) { }", "label"),
            ("let mut t = 0; for i in prange(0..3) { t += 1; t *= 2; }", "both"),
        ] {
            let cell = format!("#[jit(parallel)]\nfn f() -> f64 {{\n{body}\n0.0 }}");
            let e = split(&cell).unwrap_err();
            assert!(e.message.contains(message), "{body}: {}", e.message);
            assert_eq!(e.line, 3);
        }
        // Inner loops may break; closures may return.
        let ok = "#[jit(parallel)]\nfn f() { for i in prange(0..3) { for j in 0..i { break; } let g = || { return 1; }; } }";
        assert!(split(ok).is_ok());
    }

    #[test]
    fn sites_say_what_was_rewritten_where() {
        use super::SiteKind::*;
        let cell = "let n = 1;\n#[jit(parallel)]\nfn f(a: &Array2<f64>) -> Array2<f64> {\n    let mut trace = 0.0;\n    for i in prange(0..a.nrows()) {\n        trace += a[[i, i]].tanh() * 2.0;\n        for k in prange(0..2) {}\n    }\n    let mut b = a * 2.0;\n    b += 1.0;\n    for j in 0..3 { for k in prange(0..2) {} }\n    b + trace\n}";
        let f = &split(cell).unwrap().functions[0];
        let seen: Vec<(usize, &str, &super::SiteKind)> = f.sites.iter().map(|s| (s.line, s.code.as_str(), &s.kind)).collect();
        let at = |line: usize, needle: &str| {
            let text = f.source.lines().nth(line - 1).unwrap();
            Some((line, text[..text.find(needle).unwrap()].chars().count() + needle.len() + 1 - "__jit_".len()))
        };
        assert_eq!(
            seen,
            vec![
                (5, "for i in prange(0..a.nrows())", &Prange { reductions: vec![("trace".into(), '+')] }),
                (6, "a[[i, i]].tanh() * 2.0", &Operator { op: '*', method_at: at(5, "__par_op!(__jit_") }),
                (7, "for k in prange(0..2)", &NestedPrange),
                (9, "a * 2.0", &Operator { op: '*', method_at: at(8, "let mut b = ::jit::__par_op!(__jit_") }),
                (10, "b += 1.0", &InPlace { op: "+=".into() }),
                (11, "for j in 0..3", &SerialLoop),
                (11, "for k in prange(0..2)", &Prange { reductions: vec![] }),
                (12, "b + trace", &Operator { op: '+', method_at: at(11, "__par_op!(__jit_") }),
            ]
        );
        assert!(f.written.contains("let mut b = a * 2.0;") && !f.written.contains("__par_op"));
    }

    #[test]
    fn serial_functions_are_not_rewritten() {
        let split = split("#[jit]\nfn f(a: f64) -> f64 { for i in prange(0..3) {} a + 1.0 }").unwrap();
        assert!(split.functions[0].source.contains("prange(0..3) {} a + 1.0"));
    }
}
