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

use syn::spanned::Spanned;
use syn::{Expr, Lit, Stmt};

use crate::error::{unsupported, Unsupported};
pub use crate::scalar::{scalar_signature, Scalar};
use expr::{compound, describe};
use types::{binding, type_in, use_type};

mod expr;
#[cfg(test)]
mod tests;
mod types;

/// The CUDA C of one function.
#[derive(Debug, Clone, PartialEq)]
pub struct CudaSource {
    /// The kernel's name (`<function>_kernel`).
    pub kernel: String,
    pub params: Vec<Scalar>,
    pub output: Scalar,
    pub text: String,
}

/// A function's compiled kernel, as its crate embeds it (see [`crate::crate_source_with_image`]).
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceImage {
    /// The path of the CUBIN or PTX file (the crate embeds it with `include_bytes!`).
    Ready(String),
    /// Why there is none (calling the function reports it).
    Unavailable(String),
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

    /// Runs `f` in a scope of its own: the variables it declares are forgotten after it.
    fn scoped(&mut self, f: impl FnOnce(&mut Self) -> Result<(), Unsupported>) -> Result<(), Unsupported> {
        let saved = (self.vars.clone(), self.names.clone());
        let result = f(self);
        (self.vars, self.names) = saved;
        result
    }

    /// The statements of a block whose value is returned (`returning`), or dropped.
    fn body(&mut self, block: &syn::Block, depth: usize, returning: bool) -> Result<(), Unsupported> {
        if returning {
            self.block_returning(block, depth)
        } else {
            self.block_stmts(block, depth)
        }
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

    /// A block used as a statement (its value, if any, is dropped).
    fn block_stmts(&mut self, block: &syn::Block, depth: usize) -> Result<(), Unsupported> {
        for (i, stmt) in block.stmts.iter().enumerate() {
            self.upcoming = (block.stmts[i + 1..].to_vec(), None);
            self.stmt(stmt, depth)?;
        }
        Ok(())
    }

    /// `{ ... }`: a nested block, its value returned or dropped.
    fn nested_block(&mut self, block: &syn::Block, depth: usize, returning: bool) -> Result<(), Unsupported> {
        self.indent(depth);
        self.text.push_str("{\n");
        self.scoped(|t| t.body(block, depth + 1, returning))?;
        self.indent(depth);
        self.text.push_str("}\n");
        Ok(())
    }

    /// `expr` in return position: `if`/`else` and blocks become statements.
    fn returning(&mut self, expr: &Expr, depth: usize) -> Result<(), Unsupported> {
        match expr {
            Expr::If(e) => self.if_stmt(e, depth, true),
            Expr::Block(b) if b.label.is_none() => self.nested_block(&b.block, depth, true),
            Expr::Return(r) => self.return_stmt(r, depth),
            value => self.emit_return(value, value, depth),
        }
    }

    /// `return VALUE;` as written.
    fn return_stmt(&mut self, r: &syn::ExprReturn, depth: usize) -> Result<(), Unsupported> {
        if self.in_lambda {
            return Err(unsupported(r, "`return` inside a block or `if` used as a value"));
        }
        let Some(value) = &r.expr else { return Err(unsupported(r, "`return` without a value")) };
        self.emit_return(r, value, depth)
    }

    /// `return value;` in C, under the `#line` of `at`.
    fn emit_return(&mut self, at: &impl Spanned, value: &Expr, depth: usize) -> Result<(), Unsupported> {
        self.line(at);
        let v = self.expr(value, Some(self.output))?;
        self.indent(depth);
        let _ = writeln!(self.text, "return {v};");
        Ok(())
    }

    fn if_stmt(&mut self, e: &syn::ExprIf, depth: usize, returning: bool) -> Result<(), Unsupported> {
        self.line(&e.cond);
        let cond = self.expr(&e.cond, Some(Scalar::Bool))?;
        self.indent(depth);
        let _ = writeln!(self.text, "if ({cond}) {{");
        self.scoped(|t| t.body(&e.then_branch, depth + 1, returning))?;
        self.indent(depth);
        match &e.else_branch {
            None if returning => return Err(Unsupported { span: e.span(), message: "an `if` used as the value needs an `else`".to_string() }),
            None => self.text.push_str("}\n"),
            Some((_, other)) => {
                self.text.push_str("} else {\n");
                self.scoped(|t| match other.as_ref() {
                    Expr::If(nested) => t.if_stmt(nested, depth + 1, returning),
                    Expr::Block(b) => t.body(&b.block, depth + 1, returning),
                    other => Err(unsupported(other, "this `else`")),
                })?;
                self.indent(depth);
                self.text.push_str("}\n");
            }
        }
        Ok(())
    }

    fn stmt(&mut self, stmt: &Stmt, depth: usize) -> Result<(), Unsupported> {
        match stmt {
            Stmt::Local(local) => self.local(local, depth),
            Stmt::Expr(Expr::If(e), _) => self.if_stmt(e, depth, false),
            Stmt::Expr(Expr::Block(b), _) if b.label.is_none() => self.nested_block(&b.block, depth, false),
            Stmt::Expr(Expr::Return(r), _) => self.return_stmt(r, depth),
            Stmt::Expr(Expr::Assign(a), _) => self.assign(a, &a.left, "=", &a.right, depth),
            Stmt::Expr(Expr::Binary(b), _) if compound(&b.op).is_some() => {
                self.assign(b, &b.left, compound(&b.op).unwrap_or("="), &b.right, depth)
            }
            Stmt::Expr(e, _) => Err(unsupported(e, &format!("{} as a statement", describe(e)))),
            Stmt::Item(item) => Err(unsupported(item, "an item inside the function")),
            Stmt::Macro(m) => Err(unsupported(m, "a macro")),
        }
    }

    /// `let` (each gets a C name of its own: a `let` may shadow).
    fn local(&mut self, local: &syn::Local, depth: usize) -> Result<(), Unsupported> {
        let (name, declared) = binding(&local.pat)?;
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
                });
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

    /// `target op value;`: `=` or a compound assignment (`+=`, ...), under the `#line` of `at`.
    fn assign(&mut self, at: &impl Spanned, left: &Expr, op: &str, right: &Expr, depth: usize) -> Result<(), Unsupported> {
        self.line(at);
        let (target, ty) = self.place(left)?;
        let value = self.expr(right, Some(ty))?;
        self.indent(depth);
        if op == "%=" && ty.is_float() {
            let f = if ty == Scalar::F32 { "fmodf" } else { "fmod" };
            let _ = writeln!(self.text, "{target} = {f}({target}, {value});");
        } else {
            let _ = writeln!(self.text, "{target} {op} {value};");
        }
        Ok(())
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
