//! The types of a CUDA function's variables and expressions, as far as the translation
//! follows Rust's inference: a literal's suffix, a variable's type, a cast, an operand next to a
//! typed one, and an integer `let` typed by its later uses.

use std::collections::HashMap;

use syn::{BinOp, Expr, Lit, Pat, Stmt};

use crate::error::{unsupported, Unsupported};
use crate::scalar::Scalar;

/// The type a variable gets from how `stmts` use it (as Rust infers an integer's type from its
/// later uses): an operand or assignment next to a typed expression, or the block's value
/// (returned as `tail`).
pub(super) fn use_type(vars: &HashMap<String, Scalar>, name: &str, stmts: &[Stmt], tail: Option<Scalar>) -> Option<Scalar> {
    struct Uses<'a> {
        vars: &'a HashMap<String, Scalar>,
        name: &'a str,
        found: Option<Scalar>,
    }
    impl Uses<'_> {
        fn is_var(&self, e: &Expr) -> bool {
            matches!(e, Expr::Path(p) if p.path.is_ident(self.name))
        }
    }
    impl<'ast> syn::visit::Visit<'ast> for Uses<'_> {
        fn visit_expr_binary(&mut self, b: &'ast syn::ExprBinary) {
            if self.found.is_none() && !matches!(b.op, BinOp::Shl(_) | BinOp::Shr(_) | BinOp::ShlAssign(_) | BinOp::ShrAssign(_)) {
                if self.is_var(&b.left) {
                    self.found = type_in(self.vars, &b.right);
                } else if self.is_var(&b.right) {
                    self.found = type_in(self.vars, &b.left);
                }
            }
            syn::visit::visit_expr_binary(self, b);
        }
        fn visit_expr_assign(&mut self, a: &'ast syn::ExprAssign) {
            if self.found.is_none() && self.is_var(&a.left) {
                self.found = type_in(self.vars, &a.right);
            }
            syn::visit::visit_expr_assign(self, a);
        }
    }
    let mut uses = Uses { vars, name, found: None };
    for stmt in stmts {
        syn::visit::Visit::visit_stmt(&mut uses, stmt);
    }
    let returned = || match stmts.last() {
        Some(Stmt::Expr(e, None)) if uses.is_var(e) => tail,
        _ => None,
    };
    uses.found.or_else(returned)
}

/// The type of a block's value: its `let`s are in scope for its last expression.
fn block_type(vars: &HashMap<String, Scalar>, block: &syn::Block) -> Option<Scalar> {
    let mut scope = vars.clone();
    for stmt in &block.stmts {
        match stmt {
            Stmt::Local(local) => {
                let Ok((name, declared)) = binding(&local.pat) else { continue };
                if let Some(ty) = declared.or_else(|| local.init.as_ref().and_then(|i| type_in(&scope, &i.expr))) {
                    scope.insert(name, ty);
                }
            }
            Stmt::Expr(last, None) => return type_in(&scope, last),
            _ => {}
        }
    }
    None
}

/// The type of an expression among variables of known types, when it can be told without its
/// context.
pub(super) fn type_in(vars: &HashMap<String, Scalar>, expr: &Expr) -> Option<Scalar> {
    let type_of = |e: &Expr| type_in(vars, e);
    match expr {
        Expr::Lit(l) => match &l.lit {
            Lit::Int(i) => Scalar::from_rust(i.suffix()),
            Lit::Float(f) => Scalar::from_rust(f.suffix()),
            Lit::Bool(_) => Some(Scalar::Bool),
            _ => None,
        },
        Expr::Path(p) => p.path.get_ident().and_then(|i| vars.get(&i.to_string()).copied()),
        Expr::Paren(p) => type_of(&p.expr),
        Expr::Group(g) => type_of(&g.expr),
        Expr::Cast(c) => Scalar::of_type(&c.ty),
        Expr::Unary(u) => type_of(&u.expr),
        Expr::Binary(b) if is_comparison(&b.op) || matches!(b.op, BinOp::And(_) | BinOp::Or(_)) => Some(Scalar::Bool),
        Expr::Binary(b) if matches!(b.op, BinOp::Shl(_) | BinOp::Shr(_)) => type_of(&b.left),
        Expr::Binary(b) => type_of(&b.left).or_else(|| type_of(&b.right)),
        Expr::MethodCall(m) => match m.method.to_string().as_str() {
            "is_nan" | "is_finite" | "is_infinite" | "is_sign_negative" | "is_sign_positive" => Some(Scalar::Bool),
            _ => type_of(&m.receiver).or_else(|| m.args.iter().find_map(type_of)),
        },
        Expr::If(e) => block_type(vars, &e.then_branch).or_else(|| e.else_branch.as_ref().and_then(|(_, x)| type_of(x))),
        Expr::Block(b) => block_type(vars, &b.block),
        _ => None,
    }
}

/// The variable a `let` binds and the type it declares: the pattern is `x` (no type) or
/// `x: T` with `T` a scalar.
pub(super) fn binding(pat: &Pat) -> Result<(String, Option<Scalar>), Unsupported> {
    match pat {
        Pat::Ident(p) => Ok((p.ident.to_string(), None)),
        Pat::Type(t) => match (t.pat.as_ref(), t.ty.as_ref()) {
            (Pat::Ident(p), ty @ syn::Type::Path(_)) => {
                let scalar = Scalar::of_type(ty).ok_or_else(|| unsupported(&t.ty, "this type"))?;
                Ok((p.ident.to_string(), Some(scalar)))
            }
            _ => Err(unsupported(pat, "this pattern")),
        },
        other => Err(unsupported(other, "this pattern")),
    }
}

pub(super) fn is_comparison(op: &BinOp) -> bool {
    matches!(op, BinOp::Eq(_) | BinOp::Lt(_) | BinOp::Le(_) | BinOp::Ne(_) | BinOp::Ge(_) | BinOp::Gt(_))
}
