//! rust-jit-kernel: a Jupyter kernel for Rust. See ARCHITECTURE.md for the path of a cell.

pub mod backend;
pub mod cell;
pub mod cuda;
pub mod diagnostics;
pub mod dispatch;
pub mod evcxr_backend;
pub mod history;
pub mod host_stderr;
pub mod install;
pub mod jit;
pub mod output;
pub mod pool;
pub mod transport;
pub mod wire;
