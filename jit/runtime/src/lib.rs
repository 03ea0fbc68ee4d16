//! The runtime of rust-jit-kernel: what every session and every `#[jit]` crate links.
//!
//! - [`prelude`]: in scope in every cell (ndarray's prelude, [`prange`], [`num_threads`]);
//! - [`par`]: parallel array expressions and `prange` reductions, on the session's one
//!   thread pool;
//! - [`ops`]: the operators of `#[jit(parallel)]` functions (arrays in parallel, everything
//!   else as plain Rust);
//! - [`ufunc`]: `#[vectorize]` on the CPU; [`cuda`]: on the GPU (device arrays, launches
//!   through the kernel's CUDA context);
//! - [`chart`]: charts that show themselves as SVG (drawn by the kernel); [`sweep`]: functions timed
//!   over sizes, charted; [`display`]: rich output through the kernel.
//!
//! **One copy per user process.** The crate is a Rust `dylib`: every cell (evcxr links each
//! as a shared object of its own) and every `#[jit]` library links the same `libjit.so`, so
//! its statics and rayon's exist once, and the session's thread pool ([`session_pool`]) is
//! the one pool of plain cells and jit code alike.

pub use ndarray;
pub use rayon;

pub mod chart;
pub mod cuda;
pub mod display;
pub mod input;
pub mod ops;
pub mod par;
mod pool;
pub mod sweep;
pub mod ufunc;

pub use pool::session as session_pool;

/// What every cell and every `#[jit]` function has in scope.
pub mod prelude {
    pub use crate::chart::Chart;
    pub use crate::cuda::{self, to_device, DeviceArray};
    pub use crate::sweep::sweep;
    pub use crate::{num_threads, prange};
    pub use ndarray::prelude::*;
}

/// Numba's `prange`: a range whose iterations may run in parallel.
///
/// In a `#[jit(parallel)]` function, `for i in prange(0..n) { total += ...; }` runs on the
/// session's thread pool, each thread summing its own part (`+=`/`-=` add up, `*=`
/// multiplies). Anywhere else it is the range itself, so the same loop runs serially. As in
/// Numba, `prange(n)` is `prange(0..n)`.
pub fn prange<R: par::PrangeArg>(range: R) -> R::Range {
    range.into_range()
}

/// The number of threads parallel code runs on: in a cell (which runs on the session pool),
/// the pool's size, `RAYON_NUM_THREADS` as it was when the cell started (so `%env
/// RAYON_NUM_THREADS=4` applies to the next cell); elsewhere, as it is now; else the number
/// of cores.
pub fn num_threads() -> usize {
    pool::threads()
}
