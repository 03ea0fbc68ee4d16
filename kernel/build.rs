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
//!
//! The rustc zygote (`zygote/zygote.rs`, a library preloaded into rustc) is compiled here with
//! cargo's rustc, as a `cdylib` of its own, and embedded in the binary
//! (`evcxr_backend::rustc_zygote`); where that fails, the binary embeds an empty file and every
//! cell starts its rustc as before.
macro_rules! exports {
    ($($group:ident: $($name:ident),+;)+) => {
        const EXPORTS: &[&str] = &[$($(stringify!($name)),+),+];
    };
}

include!("src/exports_list.rs");

fn main() {
    println!("cargo:rerun-if-changed=src/exports_list.rs");
    build_zygote();
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    for name in EXPORTS {
        for target in ["bins", "tests", "benches"] {
            println!("cargo:rustc-link-arg-{target}=-Wl,--export-dynamic-symbol={name}");
        }
    }
}

fn build_zygote() {
    println!("cargo:rerun-if-changed=zygote/zygote.rs");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("librjk_zygote.so");
    let _ = std::fs::remove_file(&out);
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = std::env::var("TARGET").unwrap_or_default();
    let built = linux.then(|| {
        std::process::Command::new(rustc)
            .args(["--edition=2024", "--crate-type=cdylib", "--crate-name=rjk_zygote", "-Copt-level=2", "-Cpanic=abort", "-Cstrip=symbols", "--target", &target, "-o"])
            .arg(&out)
            .arg("zygote/zygote.rs")
            .output()
    });
    if !matches!(&built, Some(Ok(output)) if output.status.success()) {
        let why = match built {
            Some(Ok(output)) => String::from_utf8_lossy(&output.stderr).lines().next().unwrap_or_default().to_string(),
            Some(Err(error)) => error.to_string(),
            None => "not Linux".to_string(),
        };
        println!("cargo:warning=the rustc zygote was not built ({why}): cells start rustc as before");
        std::fs::write(&out, b"").expect("OUT_DIR is writable");
    }
}
