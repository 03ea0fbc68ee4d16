//! `%jit_llvm NAME`: the optimised LLVM IR of a `#[jit]` function.

use crate::listing;
use crate::{Call, Context, Kind, Magic, MagicError, Value};

pub struct JitLlvm;

impl Magic for JitLlvm {
    fn name(&self) -> &'static str {
        "jit_llvm"
    }
    fn kind(&self) -> Kind {
        Kind::Line
    }
    fn help(&self) -> &'static str {
        "Show the LLVM IR of a #[jit] function (like Numba's inspect_llvm).

Usage:
  %jit_llvm NAME           the optimised IR of the #[jit] function NAME
  %jit_llvm --naive NAME   NAME compiled as plain cells are (opt-level 0)

The IR is what rustc handed to LLVM's code generator for the cached library,
after optimisation: the function and the functions of its library it calls,
names demangled, the cell's lines above the instructions they became.
Instructions on vector types (<4 x double>) are highlighted."
    }

    fn run(&self, call: &Call, ctx: &mut dyn Context) -> Result<Option<Value>, MagicError> {
        crate::jit_asm::show(self.name(), call, ctx, listing::llvm)
    }
}
