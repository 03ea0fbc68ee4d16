//! The C functions the kernel binary exports to the cells it loads (the GPU, input, the cells'
//! stdout and thread, `read`), named once in `exports_list.rs`.

#[allow(unused_imports)]
use crate::cuda::driver::*;
#[allow(unused_imports)]
use crate::user_process::*;
#[allow(unused_imports)]
use crate::user_process::allocations::*;
#[allow(unused_imports)]
use crate::user_process::chart::*;
#[allow(unused_imports)]
use crate::user_process::display::*;
#[allow(unused_imports)]
use crate::user_process::snapshot::*;
#[allow(unused_imports)]
use crate::user_process::stdin::*;

macro_rules! exports {
    ($($group:ident: $($name:ident),+;)+) => {
        /// Every exported name, by group.
        pub const EXPORTS: &[(&str, &[&str])] = &[$((stringify!($group), &[$(stringify!($name)),+])),+];

        /// Keeps the exported functions in the binary (the linker drops what nothing
        /// references). `evcxr::runtime_hook` does not return in the user process, so this runs
        /// in the kernel process only; the functions are then in the binary both roles run.
        #[inline(never)]
        pub fn keep() {
            std::hint::black_box([$($($name as *const () as usize),+),+]);
        }
    };
}

include!("exports_list.rs");

#[cfg(test)]
mod tests {
    use super::*;

    /// The runtime looks each exported function up by the same name; the cells call theirs.
    #[test]
    fn the_runtime_looks_up_every_exported_name() {
        let runtime = [
            include_str!("../../jit/runtime/src/cuda.rs"),
            include_str!("../../jit/runtime/src/input.rs"),
            include_str!("../../jit/runtime/src/display.rs"),
        ]
        .concat();
        let cells = include_str!("evcxr_backend/prelude.rs");
        let bench = include_str!("../../bench/snapshot_bench.py");
        let timeit = include_str!("../../magics/src/timeit.rs");
        let mut for_runtime = 0;
        for (group, names) in EXPORTS {
            for name in *names {
                match *group {
                    "interposed" => {}
                    // Inside a string literal there: `c\"name\"`.
                    "timeit" => assert!(timeit.contains(&format!("c\\\"{name}\\\"")), "%timeit's harness never looks up {name}"),
                    "bench" => assert!(bench.contains(&format!("\"{name}\"")), "the benchmark never looks up {name}"),
                    "cells" => assert!(cells.contains(&format!("c\"{name}\"")), "the cells never look up {name}"),
                    _ => {
                        assert!(runtime.contains(&format!("c\"{name}\"")), "the runtime never looks up {name}");
                        for_runtime += 1;
                    }
                }
            }
        }
        assert_eq!(runtime.matches("c\"rjk_").count(), for_runtime, "the runtime looks up a name the kernel does not export");
    }
}
