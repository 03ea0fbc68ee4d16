//! Expressions in CUDA C: literals, operators, casts, math methods, and `if`s and blocks used
//! as values.

use syn::{BinOp, Expr, Lit, Stmt, UnOp};

use super::types::is_comparison;
use super::Translator;
use crate::error::{unsupported, Unsupported};
use crate::scalar::Scalar;

impl Translator {
    /// An expression as C, `want` the type its context expects.
    pub(super) fn expr(&mut self, expr: &Expr, want: Option<Scalar>) -> Result<String, Unsupported> {
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
                let Some(target) = Scalar::of_type(&c.ty) else { return Err(unsupported(&c.ty, "a cast to this type")) };
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

pub(super) fn compound(op: &BinOp) -> Option<&'static str> {
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

/// What the learner wrote, in words, for an error.
pub(super) fn describe(expr: &Expr) -> String {
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
