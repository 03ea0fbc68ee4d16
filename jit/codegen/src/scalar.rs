//! The scalar types a `#[vectorize]` function takes and returns, in Rust and in CUDA C.

use syn::spanned::Spanned;
use syn::Pat;

use crate::error::{unsupported, Unsupported};

/// A scalar type a vectorized function may take or return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    I32,
    I64,
    U32,
    U64,
    F32,
    F64,
    Bool,
}

impl Scalar {
    pub fn from_rust(name: &str) -> Option<Scalar> {
        Some(match name {
            "i32" => Scalar::I32,
            "i64" => Scalar::I64,
            "u32" => Scalar::U32,
            "u64" => Scalar::U64,
            "f32" => Scalar::F32,
            "f64" => Scalar::F64,
            "bool" => Scalar::Bool,
            _ => return None,
        })
    }

    /// The scalar a written type names (`f64`), if it names one.
    pub fn of_type(ty: &syn::Type) -> Option<Scalar> {
        match ty {
            syn::Type::Path(p) => p.path.get_ident().and_then(|i| Scalar::from_rust(&i.to_string())),
            _ => None,
        }
    }

    pub fn rust(self) -> &'static str {
        match self {
            Scalar::I32 => "i32",
            Scalar::I64 => "i64",
            Scalar::U32 => "u32",
            Scalar::U64 => "u64",
            Scalar::F32 => "f32",
            Scalar::F64 => "f64",
            Scalar::Bool => "bool",
        }
    }

    /// The CUDA C type.
    pub fn c(self) -> &'static str {
        match self {
            Scalar::I32 => "int",
            Scalar::I64 => "long long",
            Scalar::U32 => "unsigned int",
            Scalar::U64 => "unsigned long long",
            Scalar::F32 => "float",
            Scalar::F64 => "double",
            Scalar::Bool => "bool",
        }
    }

    pub(crate) fn is_float(self) -> bool {
        matches!(self, Scalar::F32 | Scalar::F64)
    }
}

/// The scalar signature of `item` (named parameters and the result), or what is wrong with it.
pub fn scalar_signature(item: &syn::ItemFn) -> Result<(Vec<(String, Scalar)>, Scalar), Unsupported> {
    let scalar = |ty: &syn::Type| {
        Scalar::of_type(ty).ok_or_else(|| Unsupported {
            span: ty.span(),
            message: "a #[vectorize] function takes and returns scalars: i32, i64, u32, u64, f32, f64 or bool".to_string(),
        })
    };
    let mut params = Vec::new();
    for input in &item.sig.inputs {
        let syn::FnArg::Typed(arg) = input else { return Err(unsupported(input, "`self`")) };
        let Pat::Ident(name) = arg.pat.as_ref() else { return Err(unsupported(&arg.pat, "a pattern parameter")) };
        params.push((name.ident.to_string(), scalar(&arg.ty)?));
    }
    let output = match &item.sig.output {
        syn::ReturnType::Type(_, ty) => scalar(ty)?,
        syn::ReturnType::Default => {
            return Err(Unsupported { span: item.sig.ident.span(), message: "a #[vectorize] function returns a value".to_string() })
        }
    };
    Ok((params, output))
}
