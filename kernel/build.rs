//! The kernel binary exports the session thread pool's two C functions to the cells it loads
//! (see src/pool.rs). Only these names: exporting every symbol (`-rdynamic`) would let cells
//! bind to the binary's own copy of std.
fn main() {
    for name in ["rjk_pool_run", "rjk_pool_threads"] {
        println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic-symbol={name}");
    }
}
