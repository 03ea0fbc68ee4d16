//! The GPU, through cudarc (loaded at run time: the kernel builds and runs on machines with no
//! CUDA at all). **Only this module knows cudarc** (besides the GPU benchmark).
//!
//! Two halves, one per process the binary plays:
//! - [`nvrtc`], **in the kernel process**, when a cell defines a `#[vectorize(target =
//!   "cuda")]` function: compiles its CUDA C (from `jit_codegen::cuda`) with NVRTC, for the GPU
//!   that is there, and caches the image by content;
//! - [`driver`], **in the user process**, which runs the cells: one CUDA context, one stream and
//!   the modules loaded so far, behind the exported C functions `rjk_cuda_*` that the runtime
//!   (`jit/runtime/src/cuda.rs`, the ABI's other side) finds with `dlsym`.
//!
//! cudarc panics when libcuda or libnvrtc is missing: both are looked for first. cudarc's
//! search covers CUDA 13 and CUDA 12 library names (`libnvrtc.so.13`, `libnvrtc.so.12`, ...).

pub mod driver;
pub mod nvrtc;

/// What to do without a GPU (the runtime ends its messages the same way).
const USE_CPU: &str = "use target = \"cpu\" or \"parallel\"";

#[cfg(test)]
mod tests {
    #[test]
    fn cuda_12_libraries_are_looked_for_too() {
        let names = cudarc::get_lib_name_candidates("nvrtc");
        for name in ["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"] {
            assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
        }
        assert!(cudarc::get_lib_name_candidates("cuda").iter().any(|n| n == "libcuda.so.1"));
    }
}
