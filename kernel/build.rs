//! The kernel binary exports the C functions named in `src/exports_list.rs` (the GPU, input,
//! the cells' stdout and thread) to the cells it loads. Only these names: exporting every symbol
//! (`-rdynamic`) would let cells bind to the binary's own copy of std. The GPU tests and the
//! GPU benchmark (tests and benches targets) call the runtime the way cells do, so they export
//! them too.
macro_rules! exports {
    ($($group:ident: $($name:ident),+;)+) => {
        const EXPORTS: &[&str] = &[$($(stringify!($name)),+),+];
    };
}

include!("src/exports_list.rs");

fn main() {
    println!("cargo:rerun-if-changed=src/exports_list.rs");
    for name in EXPORTS {
        for target in ["bins", "tests", "benches"] {
            println!("cargo:rustc-link-arg-{target}=-Wl,--export-dynamic-symbol={name}");
        }
    }
}
