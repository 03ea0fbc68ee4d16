//! rust-jit-kernel: a Jupyter kernel for Rust. See ARCHITECTURE.md for the path of a cell.

pub mod allocator;
pub mod analysis_src;
pub mod backend;
pub mod build_env;
pub mod cache;
pub mod cell;
pub mod cuda;
pub mod crash;
pub mod diagnostics;
pub mod dispatch;
pub mod evcxr_backend;
pub mod exports;
pub mod history;
pub mod host_stderr;
pub mod input;
pub mod install;
pub mod interrupt;
pub mod jit;
pub mod output;
pub mod prepare;
pub mod setup;
pub mod shared;
#[cfg(test)]
mod testing;
pub mod transport;
pub mod unavailable;
pub mod user_process;
pub mod wire;
pub mod workspace;
