// The C functions the kernel binary exports to the cells and jit libraries it loads: the one
// list. `build.rs` reads it to export them from the binary; `exports.rs` to keep them in it.
// The runtime (`jit/runtime/src/cuda.rs`, `input.rs`, `display.rs`) finds them by these names with
// `dlsym`; the session's panic hook block calls `cells`; `bench/snapshot_bench.py`'s cells
// call `bench`; `%timeit -a`'s harness (`magics/src/timeit.rs`) calls `timeit`; `interposed` replaces the C library's
// function for everything the process loads (`user_process::stdin`, `user_process::allocations`).
exports! {
    cuda: rjk_cuda_device, rjk_cuda_error, rjk_cuda_alloc, rjk_cuda_free, rjk_cuda_upload, rjk_cuda_download, rjk_cuda_launch;
    input: rjk_input;
    display: rjk_display, rjk_chart_svg;
    bench: rjk_snapshot_cost_ns;
    cells: rjk_set_stdout_flush, rjk_cell_thread;
    timeit: rjk_alloc_start, rjk_alloc_stop;
    interposed: read, malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign;
}
