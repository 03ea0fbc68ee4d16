//! The kernel binary exports the C functions named in `src/exports_list.rs` (the GPU, input,
//! the cells' stdout and thread) to the cells it loads. Only these names: exporting every symbol
//! (`-rdynamic`) would let cells bind to the binary's own copy of std. The GPU tests and the
//! GPU benchmark (tests and benches targets) call the runtime the way cells do, so they export
//! them too.
//!
//! The binary is linked as a position-dependent executable (`-no-pie`): it is started once per
//! cell as the cargo front, and a PIE of this size starts with ~72,000 relative relocations
//! written into its 1.1 MB read-only-after-relocation segment (~280 page faults, ~1.3 ms of each
//! start on a 2-core VM; 1.7 against 3.0 ms measured). The kernel runs its users' code anyway, so
//! the binary's address randomisation protects nothing here.
macro_rules! exports {
    ($($group:ident: $($name:ident),+;)+) => {
        const EXPORTS: &[&str] = &[$($(stringify!($name)),+),+];
    };
}

include!("src/exports_list.rs");

fn main() {
    println!("cargo:rerun-if-changed=src/exports_list.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    for name in EXPORTS {
        for target in ["bins", "tests", "benches"] {
            println!("cargo:rustc-link-arg-{target}=-Wl,--export-dynamic-symbol={name}");
        }
    }
}
