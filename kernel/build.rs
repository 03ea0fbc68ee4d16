//! The kernel binary exports the session thread pool's two C functions (src/pool.rs) and the
//! GPU's (src/cuda.rs) to the cells it loads. Only these names: exporting every symbol
//! (`-rdynamic`) would let cells bind to the binary's own copy of std. The GPU tests and the
//! GPU benchmark (tests and benches targets) call the runtime the way cells do, so they export
//! them too.
fn main() {
    let pool = ["rjk_pool_run", "rjk_pool_threads"];
    let cuda = ["rjk_cuda_device", "rjk_cuda_error", "rjk_cuda_alloc", "rjk_cuda_free", "rjk_cuda_upload", "rjk_cuda_download", "rjk_cuda_launch"];
    for name in pool.iter().chain(&cuda) {
        println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic-symbol={name}");
    }
    for name in cuda {
        println!("cargo:rustc-link-arg-tests=-Wl,--export-dynamic-symbol={name}");
        println!("cargo:rustc-link-arg-benches=-Wl,--export-dynamic-symbol={name}");
    }
}
