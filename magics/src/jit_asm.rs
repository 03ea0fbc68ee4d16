//! `%jit_asm NAME`: the machine code of a `#[jit]` function, as compiled.

use crate::listing::{self, CompiledCode};
use crate::{Call, Context, Found, Kind, Magic, MagicError, MimeBundle, Value};

pub struct JitAsm;

impl Magic for JitAsm {
    fn name(&self) -> &'static str {
        "jit_asm"
    }
    fn kind(&self) -> Kind {
        Kind::Line
    }
    fn help(&self) -> &'static str {
        "Show the machine code of a #[jit] function (like Numba's inspect_asm).

Usage:
  %jit_asm NAME           the optimised code of the #[jit] function NAME
  %jit_asm --naive NAME   the code of NAME compiled as plain cells are
                          (opt-level 0), to compare with

The code is the library the kernel compiled and cached (rustc's assembly,
Intel syntax): the function, the functions of its library it calls, with the
cell's lines above the instructions they became. Vector (SIMD) instructions
are highlighted; the first line counts them, e.g.
  a_plus_tr_tanh_a (#[jit]): 312 instructions, 41 of them vector (AVX2, 4 x f64)"
    }

    fn run(&self, call: &Call, ctx: &mut dyn Context) -> Result<Option<Value>, MagicError> {
        show(self.name(), call, ctx, listing::asm)
    }
}

/// `%jit_asm` and `%jit_llvm`: `[--naive] NAME`, then the listing `make` gives, or the hint for
/// a plain function.
pub(crate) fn show(
    magic: &str,
    call: &Call,
    ctx: &mut dyn Context,
    make: fn(&CompiledCode) -> Result<listing::Listing, String>,
) -> Result<Option<Value>, MagicError> {
    let mut naive = false;
    let mut name = None;
    for word in call.args.split_whitespace() {
        match word {
            "--naive" | "-n" => naive = true,
            w if w.starts_with('-') => return Err(MagicError::usage(format!("%{magic}: unknown option {w} (see %{magic}?)"))),
            w if name.is_none() => name = Some(w),
            _ => return Err(MagicError::usage(format!("%{magic}: one function name, e.g. `%{magic} a_plus_tr_tanh_a`"))),
        }
    }
    let Some(name) = name else { return Err(MagicError::usage(format!("%{magic}: which function? e.g. `%{magic} a_plus_tr_tanh_a`"))) };
    match ctx.compiled_code(name, naive)? {
        Found::Plain => Ok(Some(Value::text(format!(
            "`{name}` is a plain function: it is compiled with its cell at opt-level 0, so there is no optimised code to show.\n\
             `%{magic} --naive {name}` shows its opt-level-0 code; put `#[jit]` above it for the optimised version, then compare."
        )))),
        Found::Jit(code) => {
            let listing = make(&code).map_err(|e| MagicError::new("JitError", e))?;
            Ok(Some(Value::Show(MimeBundle::from([("text/plain".into(), listing.text()), ("text/html".into(), listing.html())]))))
        }
    }
}
