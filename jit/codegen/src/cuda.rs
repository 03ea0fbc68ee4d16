//! The body of a `#[vectorize(target = "cuda")]` function, translated to CUDA C.
//!
//! The function is scalar: parameters and result among `i32 i64 u32 u64 f32 f64 bool`. The
//! translation covers literals, arithmetic, comparisons and logic, `as` casts, `let` (with
//! `mut`, assignment and compound assignment), `if`/`else` (as statements and as values),
//! blocks, `return`, and the math methods of floats and integers a learner uses (`abs`,
//! `min`, `max`, `sqrt`, `exp`, `ln`, `powi`, `powf`, `sin`, `cos`, `tanh`, ...). Anything
//! else is an error that names the construct and points at it.
//!
//! The output is one `__device__` function (the body) and one `extern "C" __global__`
//! kernel that applies it elementwise with a grid-stride loop. Each input comes with a step
//! (1 for an array, 0 for a scalar or a broadcast length-1 axis flattened to one element), so
//! scalars broadcast without copies. `#line` directives make NVRTC's errors name cell lines.
//! Types are tracked so that float literals get the width of their context (`1.0` is a
//! `float` next to an `f32`); C++ overloads of CUDA's math functions do the rest.

use std::collections::HashMap;
use std::fmt::Write;

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{BinOp, Expr, Lit, Pat, Stmt, UnOp};

pub use crate::vectorize::{scalar_signature, Scalar};

/// A translation problem: what is not supported, and where (a span of the function's text).
#[derive(Debug)]
pub struct Unsupported {
    pub span: Span,
    pub message: String,
}

pub(crate) fn unsupported(node: &impl Spanned, what: &str) -> Unsupported {
    Unsupported {
        span: node.span(),
        message: format!("{what} is not supported in a #[vectorize(target = \"cuda\")] function"),
    }
}

/// The CUDA C of one function.
#[derive(Debug, Clone, PartialEq)]
pub struct CudaSource {
    /// The kernel's name (`<function>_kernel`).
    pub kernel: String,
    pub params: Vec<Scalar>,
    pub output: Scalar,
    pub text: String,
}

/// Translates `item` (its first line is cell line `line`) to CUDA C.
pub fn translate(item: &syn::ItemFn, line: usize) -> Result<CudaSource, Unsupported> {
    let (params, output) = scalar_signature(item)?;
    let name = item.sig.ident.to_string();
    let mut t = Translator {
        vars: params.iter().cloned().collect(),
        names: params.iter().map(|(n, _)| (n.clone(), format!("v_{n}"))).collect(),
        lets: 0,
        in_lambda: false,
        upcoming: (Vec::new(), None),
        output,
        line_offset: line.saturating_sub(1),
        text: String::new(),
    };
    let args: Vec<String> = params.iter().map(|(n, s)| format!("{} v_{n}", s.c())).collect();
    let _ = writeln!(t.text, "__device__ {} f_{name}({}) {{", output.c(), args.join(", "));
    t.block_returning(&item.block, 1)?;
    t.text.push_str("}\n\n");
    let kernel = format!("{name}_kernel");
    let mut kernel_args = vec!["unsigned long long n".to_string()];
    for (i, (_, s)) in params.iter().enumerate() {
        kernel_args.push(format!("const {} *__restrict__ in{i}", s.c()));
        kernel_args.push(format!("unsigned long long step{i}"));
    }
    kernel_args.push(format!("{} *__restrict__ out", output.c()));
    let call: Vec<String> = (0..params.len()).map(|i| format!("in{i}[i * step{i}]")).collect();
    let _ = write!(
        t.text,
        "extern \"C\" __global__ void {kernel}({}) {{\n    \
         for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;\n         \
         i += (unsigned long long)blockDim.x * gridDim.x) {{\n        out[i] = f_{name}({});\n    }}\n}}\n",
        kernel_args.join(", "),
        call.join(", ")
    );
    Ok(CudaSource { kernel, params: params.iter().map(|(_, s)| *s).collect(), output, text: t.text })
}

struct Translator {
    vars: HashMap<String, Scalar>,
    /// The C name of each Rust variable in scope (`let` may shadow: each gets a name of its own).
    names: HashMap<String, String>,
    /// How many `let`s so far (for fresh C names).
    lets: usize,
    /// Inside a lambda (a block used as a value): `return` would leave only the lambda.
    in_lambda: bool,
    /// The statements after the one being translated, in its block, and the type the block's
    /// value is returned as (for the type of an integer `let` from its later uses).
    upcoming: (Vec<Stmt>, Option<Scalar>),
    output: Scalar,
    /// Cell line of the function's first line, minus one.
    line_offset: usize,
    text: String,
}

impl Translator {
    fn indent(&mut self, depth: usize) {
        self.text.push_str(&"    ".repeat(depth));
    }

    /// `#line` for NVRTC: its errors then name the cell's lines.
    fn line(&mut self, node: &impl Spanned) {
        let _ = writeln!(self.text, "#line {} \"cell\"", node.span().start().line + self.line_offset);
    }

    /// A block whose value is returned (the function body, or a branch in return position).
    fn block_returning(&mut self, block: &syn::Block, depth: usize) -> Result<(), Unsupported> {
        let Some((last, rest)) = block.stmts.split_last() else {
            return Err(Unsupported { span: block.span(), message: "an empty block has no value".to_string() });
        };
        for (i, stmt) in rest.iter().enumerate() {
            self.upcoming = (block.stmts[i + 1..].to_vec(), Some(self.output));
            self.stmt(stmt, depth)?;
        }
        match last {
            Stmt::Expr(expr, None) => self.returning(expr, depth),
            other => {
                self.stmt(other, depth)?;
                // A block ending in a statement: fine only if that statement returns.
                Ok(())
            }
        }
    }

    /// `expr` in return position: `if`/`else` and blocks become statements.
    fn returning(&mut self, expr: &Expr, depth: usize) -> Result<(), Unsupported> {
        match expr {
            Expr::If(e) => self.if_stmt(e, depth, true),
            Expr::Block(b) if b.label.is_none() => {
                self.indent(depth);
                self.text.push_str("{\n");
                let saved = (self.vars.clone(), self.names.clone());
                self.block_returning(&b.block, depth + 1)?;
                (self.vars, self.names) = saved;
                self.indent(depth);
                self.text.push_str("}\n");
                Ok(())
            }
            Expr::Return(r) => self.stmt(&Stmt::Expr(Expr::Return(r.clone()), Some(Default::default())), depth),
            value => {
                self.line(value);
                let v = self.expr(value, Some(self.output))?;
                self.indent(depth);
                let _ = writeln!(self.text, "return {v};");
                Ok(())
            }
        }
    }

    fn if_stmt(&mut self, e: &syn::ExprIf, depth: usize, returning: bool) -> Result<(), Unsupported> {
        self.line(&e.cond);
        let cond = self.expr(&e.cond, Some(Scalar::Bool))?;
        self.indent(depth);
        let _ = writeln!(self.text, "if ({cond}) {{");
        let saved = (self.vars.clone(), self.names.clone());
        if returning {
            self.block_returning(&e.then_branch, depth + 1)?;
        } else {
            self.block_stmts(&e.then_branch, depth + 1)?;
        }
        (self.vars, self.names) = saved.clone();
        self.indent(depth);
        match &e.else_branch {
            None if returning => return Err(Unsupported { span: e.span(), message: "an `if` used as the value needs an `else`".to_string() }),
            None => self.text.push_str("}\n"),
            Some((_, other)) => {
                self.text.push_str("} else {\n");
                match other.as_ref() {
                    Expr::If(nested) => self.if_stmt(nested, depth + 1, returning)?,
                    Expr::Block(b) if returning => self.block_returning(&b.block, depth + 1)?,
                    Expr::Block(b) => self.block_stmts(&b.block, depth + 1)?,
                    other => return Err(unsupported(other, "this `else`")),
                }
                (self.vars, self.names) = saved;
                self.indent(depth);
                self.text.push_str("}\n");
            }
        }
        Ok(())
    }

    /// A block used as a statement (its value, if any, is dropped).
    fn block_stmts(&mut self, block: &syn::Block, depth: usize) -> Result<(), Unsupported> {
        for (i, stmt) in block.stmts.iter().enumerate() {
            self.upcoming = (block.stmts[i + 1..].to_vec(), None);
            self.stmt(stmt, depth)?;
        }
        Ok(())
    }

    fn stmt(&mut self, stmt: &Stmt, depth: usize) -> Result<(), Unsupported> {
        match stmt {
            Stmt::Local(local) => {
                let (name, declared) = match &local.pat {
                    Pat::Ident(p) => (p.ident.to_string(), None),
                    Pat::Type(t) => match (t.pat.as_ref(), t.ty.as_ref()) {
                        (Pat::Ident(p), syn::Type::Path(ty)) => {
                            let scalar = ty.path.get_ident().and_then(|i| Scalar::from_rust(&i.to_string()));
                            let scalar = scalar.ok_or_else(|| unsupported(&t.ty, "this type"))?;
                            (p.ident.to_string(), Some(scalar))
                        }
                        _ => return Err(unsupported(&local.pat, "this pattern")),
                    },
                    other => return Err(unsupported(other, "this pattern")),
                };
                let Some(init) = &local.init else { return Err(unsupported(local, "a `let` without a value")) };
                if init.diverge.is_some() {
                    return Err(unsupported(local, "`let ... else`"));
                }
                self.line(local);
                // A float literal alone is an f64, as in Rust; an integer's type Rust takes from
                // later uses, which this translation does not follow: it asks for the type.
                let is_float = matches!(init.expr.as_ref(), Expr::Lit(syn::ExprLit { lit: Lit::Float(_), .. }));
                let later = || {
                    let (stmts, tail) = &self.upcoming;
                    use_type(&self.vars, &name, stmts, *tail)
                };
                let ty = match declared.or_else(|| self.type_of(&init.expr)).or_else(later) {
                    Some(ty) => ty,
                    None if is_float => Scalar::F64,
                    None => {
                        // What the value is made of is the first thing to report.
                        self.expr(&init.expr, None)?;
                        return Err(Unsupported {
                            span: local.pat.span(),
                            message: format!("the type of `{name}` is not known here: write it, e.g. `let {name}: i64 = ...`"),
                        })
                    }
                };
                let value = self.expr(&init.expr, Some(ty))?;
                self.lets += 1;
                let c_name = format!("v_{name}_{}", self.lets);
                self.indent(depth);
                let _ = writeln!(self.text, "{} {c_name} = {value};", ty.c());
                self.vars.insert(name.clone(), ty);
                self.names.insert(name, c_name);
                Ok(())
            }
            Stmt::Expr(Expr::If(e), _) => self.if_stmt(e, depth, false),
            Stmt::Expr(Expr::Block(b), _) if b.label.is_none() => {
                self.indent(depth);
                self.text.push_str("{\n");
                let saved = (self.vars.clone(), self.names.clone());
                self.block_stmts(&b.block, depth + 1)?;
                (self.vars, self.names) = saved;
                self.indent(depth);
                self.text.push_str("}\n");
                Ok(())
            }
            Stmt::Expr(Expr::Return(r), _) => {
                if self.in_lambda {
                    return Err(unsupported(r, "`return` inside a block or `if` used as a value"));
                }
                let Some(value) = &r.expr else { return Err(unsupported(r, "`return` without a value")) };
                self.line(r);
                let v = self.expr(value, Some(self.output))?;
                self.indent(depth);
                let _ = writeln!(self.text, "return {v};");
                Ok(())
            }
            Stmt::Expr(Expr::Assign(a), _) => {
                self.line(a);
                let (target, ty) = self.place(&a.left)?;
                let value = self.expr(&a.right, Some(ty))?;
                self.indent(depth);
                let _ = writeln!(self.text, "{target} = {value};");
                Ok(())
            }
            Stmt::Expr(Expr::Binary(b), _) if compound(&b.op).is_some() => {
                self.line(b);
                let (target, ty) = self.place(&b.left)?;
                let value = self.expr(&b.right, Some(ty))?;
                self.indent(depth);
                match compound(&b.op).unwrap_or("=") {
                    "%=" if ty.is_float() => {
                        let f = if ty == Scalar::F32 { "fmodf" } else { "fmod" };
                        let _ = writeln!(self.text, "{target} = {f}({target}, {value});");
                    }
                    op => {
                        let _ = writeln!(self.text, "{target} {op} {value};");
                    }
                }
                Ok(())
            }
            Stmt::Expr(e, _) => Err(unsupported(e, &format!("{} as a statement", describe(e)))),
            Stmt::Item(item) => Err(unsupported(item, "an item inside the function")),
            Stmt::Macro(m) => Err(unsupported(m, "a macro")),
        }
    }

    /// An assignable variable.
    fn place(&self, expr: &Expr) -> Result<(String, Scalar), Unsupported> {
        if let Expr::Path(p) = expr {
            if let Some(ident) = p.path.get_ident() {
                if let (Some(ty), Some(c)) = (self.vars.get(&ident.to_string()), self.names.get(&ident.to_string())) {
                    return Ok((c.clone(), *ty));
                }
            }
        }
        Err(unsupported(expr, "assigning to this"))
    }

    /// The type of an expression, when it can be told without its context.
    fn type_of(&self, expr: &Expr) -> Option<Scalar> {
        type_in(&self.vars, expr)
    }
}

/// The type a variable gets from how `stmts` use it (as Rust infers an integer's type from its
/// later uses): an operand or assignment next to a typed expression, or the block's value
/// (returned as `tail`).
fn use_type(vars: &HashMap<String, Scalar>, name: &str, stmts: &[Stmt], tail: Option<Scalar>) -> Option<Scalar> {
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
                let (name, ty) = match &local.pat {
                    Pat::Ident(p) => (p.ident.to_string(), local.init.as_ref().and_then(|i| type_in(&scope, &i.expr))),
                    Pat::Type(t) => match (t.pat.as_ref(), t.ty.as_ref()) {
                        (Pat::Ident(p), syn::Type::Path(ty)) => {
                            (p.ident.to_string(), ty.path.get_ident().and_then(|i| Scalar::from_rust(&i.to_string())))
                        }
                        _ => continue,
                    },
                    _ => continue,
                };
                if let Some(ty) = ty {
                    scope.insert(name, ty);
                }
            }
            Stmt::Expr(last, None) => return type_in(&scope, last),
            _ => {}
        }
    }
    None
}

fn type_in(vars: &HashMap<String, Scalar>, expr: &Expr) -> Option<Scalar> {
    let type_of = |e: &Expr| type_in(vars, e);
    {
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
            Expr::Cast(c) => match c.ty.as_ref() {
                syn::Type::Path(p) => p.path.get_ident().and_then(|i| Scalar::from_rust(&i.to_string())),
                _ => None,
            },
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
}

impl Translator {

    /// An expression as C, `want` the type its context expects.
    fn expr(&mut self, expr: &Expr, want: Option<Scalar>) -> Result<String, Unsupported> {
        Ok(match expr {
            Expr::Lit(l) => literal(l, want)?,
            Expr::Path(p) => {
                let Some(ident) = p.path.get_ident() else { return Err(unsupported(p, "this path")) };
                let name = ident.to_string();
                match self.names.get(&name) {
                    Some(c) => c.clone(),
                    None => return Err(Unsupported { span: ident.span(), message: format!("`{name}` is not a parameter or a `let` of this function") }),
                }
            }
            Expr::Paren(p) => format!("({})", self.expr(&p.expr, want)?),
            Expr::Group(g) => self.expr(&g.expr, want)?,
            Expr::Unary(u) => {
                let op = match u.op {
                    UnOp::Neg(_) => "-",
                    UnOp::Not(_) if want == Some(Scalar::Bool) || self.type_of(&u.expr) == Some(Scalar::Bool) => "!",
                    UnOp::Not(_) => "~",
                    _ => return Err(unsupported(u, "`*` (dereference)")),
                };
                format!("{op}({})", self.expr(&u.expr, want)?)
            }
            Expr::Binary(b) => {
                let Some(op) = operator(&b.op) else { return Err(unsupported(b, "an assignment used as a value")) };
                let operand = if is_comparison(&b.op) {
                    self.type_of(&b.left).or_else(|| self.type_of(&b.right))
                } else if matches!(b.op, BinOp::And(_) | BinOp::Or(_)) {
                    Some(Scalar::Bool)
                } else if matches!(b.op, BinOp::Shl(_) | BinOp::Shr(_)) {
                    None
                } else {
                    self.type_of(&b.left).or_else(|| self.type_of(&b.right)).or(want)
                };
                let left = self.expr(&b.left, operand.or(want))?;
                let right = self.expr(&b.right, operand)?;
                // Floats have no `%` in C; the parentheses keep Rust's precedence (C ranks `& ^ |`
                // below comparisons).
                if op == "%" && operand.or(want).is_some_and(Scalar::is_float) {
                    let f = if operand.or(want) == Some(Scalar::F32) { "fmodf" } else { "fmod" };
                    format!("{f}({left}, {right})")
                } else {
                    format!("({left} {op} {right})")
                }
            }
            Expr::Cast(c) => {
                let target = match c.ty.as_ref() {
                    syn::Type::Path(p) => p.path.get_ident().and_then(|i| Scalar::from_rust(&i.to_string())),
                    _ => None,
                };
                let Some(target) = target else { return Err(unsupported(&c.ty, "a cast to this type")) };
                let inner = self.type_of(&c.expr);
                format!("(({}) ({}))", target.c(), self.expr(&c.expr, inner)?)
            }
            Expr::MethodCall(m) => self.method(m, want)?,
            Expr::If(e) => {
                // A value: the C conditional when both branches are plain expressions, else a
                // lambda that runs the branches as statements.
                let simple = |b: &syn::Block| matches!(b.stmts.as_slice(), [Stmt::Expr(x, None)] if !matches!(x, Expr::If(_) | Expr::Block(_)));
                match &e.else_branch {
                    Some((_, other)) if simple(&e.then_branch) && matches!(other.as_ref(), Expr::Block(b) if simple(&b.block)) => {
                        let ty = self.type_of(expr).or(want);
                        let cond = self.expr(&e.cond, Some(Scalar::Bool))?;
                        let Stmt::Expr(then, None) = &e.then_branch.stmts[0] else { unreachable!() };
                        let Expr::Block(b) = other.as_ref() else { unreachable!() };
                        let Stmt::Expr(otherwise, None) = &b.block.stmts[0] else { unreachable!() };
                        format!("({cond} ? {} : {})", self.expr(then, ty)?, self.expr(otherwise, ty)?)
                    }
                    _ => self.lambda(expr, want)?,
                }
            }
            Expr::Block(b) if b.label.is_none() => self.lambda(expr, want)?,
            other => return Err(unsupported(other, &describe(other))),
        })
    }

    /// `[&]() -> T { ... }()`: a block or `if` with statements, used as a value.
    fn lambda(&mut self, expr: &Expr, want: Option<Scalar>) -> Result<String, Unsupported> {
        let ty = self.type_of(expr).or(want).ok_or_else(|| unsupported(expr, "a block whose type cannot be told"))?;
        let (saved_text, saved_output, saved_lambda) = (std::mem::take(&mut self.text), self.output, self.in_lambda);
        (self.output, self.in_lambda) = (ty, true);
        let result = self.returning(expr, 1);
        let body = std::mem::replace(&mut self.text, saved_text);
        (self.output, self.in_lambda) = (saved_output, saved_lambda);
        result?;
        Ok(format!("[&]() -> {} {{\n{body}}}()", ty.c()))
    }

    fn method(&mut self, m: &syn::ExprMethodCall, want: Option<Scalar>) -> Result<String, Unsupported> {
        let name = m.method.to_string();
        let ty = self.type_of(&m.receiver).or_else(|| m.args.iter().find_map(|a| self.type_of(a))).or(want);
        let float = ty.is_some_and(Scalar::is_float);
        let f32 = ty == Some(Scalar::F32);
        let recv = self.expr(&m.receiver, ty)?;
        let mut args = vec![recv.clone()];
        for arg in &m.args {
            let arg_ty = match name.as_str() {
                "powi" => Some(Scalar::I32),
                "pow" => Some(Scalar::U32),
                _ => ty,
            };
            args.push(self.expr(arg, arg_ty)?);
        }
        let expected = match name.as_str() {
            "powi" | "powf" | "pow" | "min" | "max" | "atan2" | "hypot" | "copysign" => 2,
            "mul_add" => 3,
            _ => 1,
        };
        if args.len() != expected {
            return Err(unsupported(m, &format!("`{name}` with {} argument(s)", args.len() - 1)));
        }
        let math = |base: &str| if f32 { format!("{base}f") } else { base.to_string() };
        let call = |f: String, args: &[String]| format!("{f}({})", args.join(", "));
        Ok(match name.as_str() {
            "sqrt" | "cbrt" | "exp" | "exp2" | "log2" | "log10" | "sin" | "cos" | "tan" | "asin" | "acos" | "atan" | "sinh"
            | "cosh" | "tanh" | "asinh" | "acosh" | "atanh" | "floor" | "ceil" | "round" | "trunc" | "atan2" | "hypot"
            | "copysign"
                if float =>
            {
                call(math(&name), &args)
            }
            "ln" if float => call(math("log"), &args),
            "exp_m1" if float => call(math("expm1"), &args),
            "ln_1p" if float => call(math("log1p"), &args),
            "powf" if float => call(math("pow"), &args),
            "powi" if float => format!("{}({}, ({}) ({}))", math("pow"), args[0], ty.unwrap_or(Scalar::F64).c(), args[1]),
            "mul_add" if float => call(math("fma"), &args),
            "abs" if float => call(math("fabs"), &args),
            "min" if float => call(math("fmin"), &args),
            "max" if float => call(math("fmax"), &args),
            "recip" if float => format!("({} / {recv})", if f32 { "1.0f" } else { "1.0" }),
            "is_nan" if float => call("isnan".into(), &args),
            "is_finite" if float => call("isfinite".into(), &args),
            "is_infinite" if float => call("isinf".into(), &args),
            "abs" if !float => match ty {
                Some(Scalar::I64) => call("llabs".into(), &args),
                _ => call("abs".into(), &args),
            },
            "min" | "max" if !float => call(name.clone(), &args),
            "pow" if !float => {
                // Integer power by repeated multiplication (the exponent is a u32 in Rust).
                let t = ty.unwrap_or(Scalar::I64).c();
                format!("[&]() -> {t} {{ {t} r = 1, b = {}; for (unsigned int e = {}; e; e >>= 1) {{ if (e & 1) r *= b; b *= b; }} return r; }}()", args[0], args[1])
            }
            _ => return Err(unsupported(&m.method, &format!("the method `{name}`{}", ty.map(|t| format!(" on {}", t.rust())).unwrap_or_default()))),
        })
    }
}

fn literal(l: &syn::ExprLit, want: Option<Scalar>) -> Result<String, Unsupported> {
    Ok(match &l.lit {
        Lit::Bool(b) => b.value.to_string(),
        Lit::Int(i) => {
            let ty = Scalar::from_rust(i.suffix()).or(want);
            let digits = i.base10_digits();
            match ty {
                Some(Scalar::F32) => format!("{digits}.0f"),
                Some(Scalar::F64) => format!("{digits}.0"),
                Some(Scalar::I64) => format!("{digits}LL"),
                Some(Scalar::U64) => format!("{digits}ULL"),
                Some(Scalar::U32) => format!("{digits}U"),
                _ => digits.to_string(),
            }
        }
        Lit::Float(f) => {
            let ty = Scalar::from_rust(f.suffix()).or(want);
            let digits = f.base10_digits();
            let digits = if digits.contains(['.', 'e', 'E']) { digits.to_string() } else { format!("{digits}.0") };
            if ty == Some(Scalar::F32) {
                format!("{digits}f")
            } else {
                digits
            }
        }
        other => return Err(unsupported(other, "this literal")),
    })
}

fn operator(op: &BinOp) -> Option<&'static str> {
    Some(match op {
        BinOp::Add(_) => "+",
        BinOp::Sub(_) => "-",
        BinOp::Mul(_) => "*",
        BinOp::Div(_) => "/",
        BinOp::Rem(_) => "%",
        BinOp::And(_) => "&&",
        BinOp::Or(_) => "||",
        BinOp::BitXor(_) => "^",
        BinOp::BitAnd(_) => "&",
        BinOp::BitOr(_) => "|",
        BinOp::Shl(_) => "<<",
        BinOp::Shr(_) => ">>",
        BinOp::Eq(_) => "==",
        BinOp::Lt(_) => "<",
        BinOp::Le(_) => "<=",
        BinOp::Ne(_) => "!=",
        BinOp::Ge(_) => ">=",
        BinOp::Gt(_) => ">",
        _ => return None,
    })
}

fn compound(op: &BinOp) -> Option<&'static str> {
    Some(match op {
        BinOp::AddAssign(_) => "+=",
        BinOp::SubAssign(_) => "-=",
        BinOp::MulAssign(_) => "*=",
        BinOp::DivAssign(_) => "/=",
        BinOp::RemAssign(_) => "%=",
        BinOp::BitXorAssign(_) => "^=",
        BinOp::BitAndAssign(_) => "&=",
        BinOp::BitOrAssign(_) => "|=",
        BinOp::ShlAssign(_) => "<<=",
        BinOp::ShrAssign(_) => ">>=",
        _ => return None,
    })
}

fn is_comparison(op: &BinOp) -> bool {
    matches!(op, BinOp::Eq(_) | BinOp::Lt(_) | BinOp::Le(_) | BinOp::Ne(_) | BinOp::Ge(_) | BinOp::Gt(_))
}

/// What the learner wrote, in words, for an error.
fn describe(expr: &Expr) -> String {
    match expr {
        Expr::ForLoop(_) => "a `for` loop".into(),
        Expr::While(_) => "a `while` loop".into(),
        Expr::Loop(_) => "a `loop`".into(),
        Expr::Call(_) => "a function call".into(),
        Expr::Macro(_) => "a macro".into(),
        Expr::Index(_) => "indexing".into(),
        Expr::Reference(_) => "a reference".into(),
        Expr::Closure(_) => "a closure".into(),
        Expr::Match(_) => "`match`".into(),
        Expr::Array(_) | Expr::Repeat(_) => "an array".into(),
        Expr::Tuple(_) => "a tuple".into(),
        Expr::Struct(_) => "a struct".into(),
        Expr::Field(_) => "a field".into(),
        Expr::Range(_) => "a range".into(),
        Expr::Try(_) => "`?`".into(),
        Expr::Break(_) | Expr::Continue(_) => "`break`/`continue`".into(),
        Expr::Assign(_) => "an assignment used as a value".into(),
        _ => "this expression".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cuda(source: &str) -> String {
        let item: syn::ItemFn = syn::parse_str(source).unwrap();
        let out = translate(&item, 10).unwrap();
        proc_macro2::extra::invalidate_current_thread_spans();
        out.text
    }

    /// The CUDA C without its `#line` directives.
    fn code(source: &str) -> String {
        cuda(source).lines().filter(|l| !l.starts_with("#line")).map(|l| format!("{l}\n")).collect()
    }

    fn error(source: &str) -> (String, usize, usize) {
        let item: syn::ItemFn = syn::parse_str(source).unwrap();
        let e = translate(&item, 1).unwrap_err();
        let at = (e.span.start().line, e.span.start().column);
        proc_macro2::extra::invalidate_current_thread_spans();
        (e.message, at.0, at.1)
    }

    #[test]
    fn the_lessons_add_ufunc() {
        assert_eq!(
            cuda("fn add_ufunc(x: i64, y: i64) -> i64 { x + y }"),
            "__device__ long long f_add_ufunc(long long v_x, long long v_y) {\n\
             #line 10 \"cell\"\n    return (v_x + v_y);\n}\n\n\
             extern \"C\" __global__ void add_ufunc_kernel(unsigned long long n, const long long *__restrict__ in0, unsigned long long step0, const long long *__restrict__ in1, unsigned long long step1, long long *__restrict__ out) {\n    \
             for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;\n         \
             i += (unsigned long long)blockDim.x * gridDim.x) {\n        out[i] = f_add_ufunc(in0[i * step0], in1[i * step1]);\n    }\n}\n"
        );
    }

    #[test]
    fn lets_ifs_casts_and_math() {
        let lines = cuda("fn f(x: f32) -> f32 {\n    let y = x;\n    y\n}");
        assert!(lines.contains("#line 11 \"cell\"\n    float v_y_1 = v_x;\n#line 12 \"cell\"\n    return v_y_1;"), "{lines}");
        let text = code(
            "fn f(x: f32, n: i32) -> f32 {\n    let mut y = x * 2.0;\n    y += 1.0;\n    let k = n as f32;\n    \
             if y > 3.0 { y = y.sqrt(); }\n    let z = if n > 0 { y.powi(n) } else { y.tanh() };\n    \
             if z.is_nan() { return 0.0; }\n    z.max(k).abs() / 2.0\n}",
        );
        for expected in [
            "    float v_y_1 = (v_x * 2.0f);\n",
            "    v_y_1 += 1.0f;\n",
            "    float v_k_2 = ((float) (v_n));\n",
            "    if ((v_y_1 > 3.0f)) {\n",
            "        v_y_1 = sqrtf(v_y_1);\n",
            "    float v_z_3 = ((v_n > 0) ? powf(v_y_1, (float) (v_n)) : tanhf(v_y_1));\n",
            "    if (isnan(v_z_3)) {\n        return 0.0f;\n",
            "    return (fabsf(fmaxf(v_z_3, v_k_2)) / 2.0f);\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn ifs_with_statements_as_values_and_in_return_position() {
        let text = code("fn g(a: i64, b: i64) -> i64 {\n    let m = if a > b { let d = a - b; d * d } else { 0 };\n    if m > 10 { m } else { -m }\n}");
        assert!(text.contains("long long v_m_2 = [&]() -> long long {\n"), "{text}");
        assert!(text.contains("long long v_d_1 = (v_a - v_b);"), "{text}");
        assert!(text.contains("return 0LL;"), "{text}");
        assert!(text.contains("    if ((v_m_2 > 10LL)) {\n"), "{text}");
        assert!(text.contains("        return -(v_m_2);\n"), "{text}");
        let ints = code("fn h(a: u32, b: bool) -> u32 { if b && a % 2 == 0 { a.pow(3) } else { !a } }");
        assert!(ints.contains("(v_b && ((v_a % 2U) == 0U))"), "{ints}");
        assert!(ints.contains("return ~(v_a);"), "{ints}");
        assert!(ints.contains("for (unsigned int e = 3U; e; e >>= 1)"), "{ints}");
    }

    /// Every construct the translation supports, through NVRTC (no GPU needed: libnvrtc from
    /// the PyPI package `nvidia-cuda-nvrtc`, which the test command installs and puts on
    /// `LD_LIBRARY_PATH`, setting `RJK_REQUIRE_NVRTC`). Without libnvrtc and without that
    /// variable the test says it was skipped.
    #[test]
    fn generated_kernels_compile_with_nvrtc() {
        // SAFETY: only looks for the library.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            assert!(std::env::var_os("RJK_REQUIRE_NVRTC").is_none(), "libnvrtc not found: put nvidia/cu13/lib of `pip install nvidia-cuda-nvrtc` on LD_LIBRARY_PATH");
            eprintln!("skipped: libnvrtc not found (pip install nvidia-cuda-nvrtc, then its nvidia/cu13/lib on LD_LIBRARY_PATH)");
            return;
        }
        let corpus = [
            "fn add_ufunc(x: i64, y: i64) -> i64 { x + y }",
            "fn f(x: f32, n: i32) -> f32 {\n    let mut y = x * 2.0;\n    y += 1.0;\n    let k = n as f32;\n    if y > 3.0 { y = y.sqrt(); }\n    let z = if n > 0 { y.powi(n) } else { y.tanh() };\n    if z.is_nan() { return 0.0; }\n    z.max(k).abs() / 2.0\n}",
            "fn g(a: i64, b: i64) -> i64 {\n    let m = if a > b { let d = a - b; d * d } else { 0 };\n    if m > 10 { m } else { -m }\n}",
            "fn h(a: u32, b: bool) -> u32 { if b && a % 2 == 0 { a.pow(3) } else { !a } }",
            "fn m(x: f64, y: f64) -> f64 { (x.exp() + y.ln()).min(x.sin() * y.cos()).max(x.atan2(y)).mul_add(2.0, x.hypot(y)) + x.powf(y) + x.abs().recip() + x.cbrt() + x.floor() + x.exp_m1() + y.ln_1p() }",
            "fn b(x: i32, y: u64) -> bool { x.abs() > 3 || (y as i32).min(x) == x.max(2) && !(x < 0) }",
            "fn c(x: u64, y: i32) -> f32 { let mut s = (x as f32) / (y as f32); s -= 1.5; s *= 2.0; { let t = s; s = t + (y.abs() as f32); } s }",
            "fn d(x: f32) -> f32 { x.sin().cos().tan().asin().acos().atan().sinh().cosh().tanh().exp2().log2().log10().ceil().round().trunc().copysign(-1.0) }",
            "fn e(x: i64, y: u64) -> u64 { ((x.abs() as u64) << 2 | y >> 1) ^ (y & 7) % 5 }",
            "fn s(x: f64) -> f64 {\n    let x = x.abs();\n    let mut acc = 0;\n    acc += 3i64;\n    let r = x % 2.0;\n    r * acc as f64\n}",
            "fn p(x: i64) -> bool { x & 1 == 0 && - -x > 0 }",
        ];
        for source in corpus {
            let item: syn::ItemFn = syn::parse_str(source).unwrap();
            let cuda = translate(&item, 1).unwrap();
            proc_macro2::extra::invalidate_current_thread_spans();
            if let Err(error) = cudarc::nvrtc::compile_ptx(cuda.text.clone()) {
                panic!("NVRTC rejected the translation of\n{source}\n{}\n{error:?}", cuda.text);
            }
        }
    }

    #[test]
    fn precedence_shadowing_float_remainder_and_integer_lets() {
        // Rust ranks `&` above `==`; C below: the parentheses keep Rust's meaning.
        assert!(code("fn is_even(x: i64) -> bool { x & 1 == 0 }").contains("return ((v_x & 1LL) == 0LL);"));
        // `let x = x.abs();` reads the parameter, then shadows it.
        let shadow = code("fn f(x: f64) -> f64 {\n    let x = x.abs();\n    let x = x * 2.0;\n    x\n}");
        assert!(shadow.contains("double v_x_1 = fabs(v_x);\n    double v_x_2 = (v_x_1 * 2.0);\n    return v_x_2;"), "{shadow}");
        assert!(code("fn r(x: f32) -> f32 { let mut y = x % 2.0; y %= 1.5; y }").contains("v_y_1 = fmodf(v_y_1, 1.5f);"));
        // An integer `let` takes its type from later uses, or from being the returned value.
        let acc = code("fn s(x: i64) -> i64 {\n    let mut acc = 0;\n    acc += x * 3;\n    acc\n}");
        assert!(acc.contains("long long v_acc_1 = 0LL;"), "{acc}");
        assert!(code("fn t(x: u32) -> u64 {\n    let k = 7;\n    k\n}").contains("unsigned long long v_k_1 = 7ULL;"));
        let (unknown, line, _) = error("fn u(x: f64) -> bool {\n    let k = 7;\n    x > 1.0\n}");
        assert!(unknown.contains("the type of `k` is not known here"), "{unknown}");
        assert_eq!(line, 2);
        let (inside, _, _) = error("fn v(x: f64) -> f64 {\n    let y = if x > 0.0 { x } else { return 0.0; };\n    y\n}");
        assert!(inside.contains("`return` inside a block or `if` used as a value"), "{inside}");
    }

    #[test]
    fn unsupported_constructs_are_named_and_located() {
        for (source, message, line) in [
            ("fn f(x: i64) -> i64 {\n    let mut s: i64 = 0;\n    for i in 0..x { s += i; }\n    s\n}", "a `for` loop", 3),
            ("fn f(x: f64) -> f64 {\n    helper(x)\n}", "a function call", 2),
            ("fn f(x: f64) -> f64 {\n    println!(\"{}\", x);\n    x\n}", "a macro", 2),
            ("fn f(x: f64) -> f64 {\n    x.sin_cos().0\n}", "a field", 2),
            ("fn f(x: f64) -> f64 {\n    x.frobnicate()\n}", "the method `frobnicate` on f64", 2),
            ("fn f(x: f64) -> f64 {\n    x + y\n}", "`y` is not a parameter", 2),
            ("fn f(x: &[f64]) -> f64 { 0.0 }", "takes and returns scalars", 1),
            ("fn f(x: f64) -> String { x }", "takes and returns scalars", 1),
        ] {
            let (got, at_line, _) = error(source);
            assert!(got.contains(message), "{source}: {got}");
            assert_eq!(at_line, line, "{source}: {got}");
        }
    }
}
