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

/// The edits for the body of `item`, or the first problem found.
pub(crate) fn rewrite(item: &syn::ItemFn, lines: &Lines<'_>) -> Result<Vec<Edit>, (Span, String)> {
    let mut rewrite = Rewrite { lines, edits: Vec::new(), depth: 0, in_prange: false, error: None };
    rewrite.visit_block(&item.block);
    match rewrite.error {
        Some(error) => Err(error),
        None => Ok(rewrite.edits),
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
}

impl Rewrite<'_> {
    fn range(&self, node: &impl Spanned) -> std::ops::Range<usize> {
        let span = node.span();
        self.lines.start_of(span)..self.lines.end_of(span)
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
        self.in_prange = true;
        self.visit_block(&e.body);
        self.in_prange = false;
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
            _ => return visit::visit_expr_binary(self, e),
        };
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
            _ => visit::visit_expr_for_loop(self, e),
        }
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
    fn serial_functions_are_not_rewritten() {
        let split = split("#[jit]\nfn f(a: f64) -> f64 { for i in prange(0..3) {} a + 1.0 }").unwrap();
        assert!(split.functions[0].source.contains("prange(0..3) {} a + 1.0"));
    }
}
