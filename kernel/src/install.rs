//! `rust-jit-kernel install` / `uninstall`: the `rust-jit` kernelspec.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use jupyter_protocol::JupyterKernelspec;

pub const KERNEL_NAME: &str = "rust-jit";
const TEMPLATE: &str = include_str!("../../kernelspec/kernel.json");
const BINARY_PLACEHOLDER: &str = "@RUST_JIT_KERNEL@";
const LOGOS: [(&str, &[u8]); 2] = [
    ("logo-32x32.png", include_bytes!("../../kernelspec/logo-32x32.png")),
    ("logo-64x64.png", include_bytes!("../../kernelspec/logo-64x64.png")),
];

/// Where a kernelspec goes, as `jupyter kernelspec install` names them.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    User,
    SysPrefix,
    Prefix(PathBuf),
}

impl Location {
    /// The `kernels/` directory for this location.
    pub fn kernels_dir(&self) -> anyhow::Result<PathBuf> {
        let share = match self {
            Location::User => return Ok(user_data_dir()?.join("kernels")),
            Location::SysPrefix => sys_prefix()?.join("share/jupyter"),
            Location::Prefix(prefix) => prefix.join("share/jupyter"),
        };
        Ok(share.join("kernels"))
    }
}

fn user_data_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("JUPYTER_DATA_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
        return Ok(PathBuf::from(dir).join("jupyter"));
    }
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home).join(".local/share/jupyter"))
}

/// The active Python environment: `$VIRTUAL_ENV`, else `sys.prefix` of `python3`.
fn sys_prefix() -> anyhow::Result<PathBuf> {
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        return Ok(PathBuf::from(venv));
    }
    let output = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.prefix)"])
        .output()
        .context("--sys-prefix needs python3 on PATH")?;
    Ok(PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
}

/// The kernelspec for a kernel binary at `binary`.
pub fn kernelspec(binary: &Path) -> anyhow::Result<JupyterKernelspec> {
    let mut spec: JupyterKernelspec = serde_json::from_str(TEMPLATE).context("kernelspec/kernel.json")?;
    for arg in &mut spec.argv {
        if arg == BINARY_PLACEHOLDER {
            *arg = binary.display().to_string();
        }
    }
    Ok(spec)
}

/// Writes `kernel.json` and the logos; returns the kernelspec directory.
pub fn install(location: &Location, binary: &Path) -> anyhow::Result<PathBuf> {
    let binary = binary.canonicalize().with_context(|| format!("kernel binary {}", binary.display()))?;
    let dir = location.kernels_dir()?.join(KERNEL_NAME);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut spec = serde_json::to_value(kernelspec(&binary)?)?;
    // Jupyter rejects `null` for optional fields (`env`, `metadata`): leave them out.
    if let Some(fields) = spec.as_object_mut() {
        fields.retain(|_, value| !value.is_null());
    }
    std::fs::write(dir.join("kernel.json"), serde_json::to_string_pretty(&spec)? + "\n")?;
    for (name, bytes) in LOGOS {
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(dir)
}

pub fn uninstall(location: &Location) -> anyhow::Result<PathBuf> {
    let dir = location.kernels_dir()?.join(KERNEL_NAME);
    if !dir.join("kernel.json").exists() {
        bail!("no {KERNEL_NAME} kernelspec in {}", dir.display());
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_and_uninstall_under_a_prefix() {
        let prefix = std::env::temp_dir().join(format!("rjk-install-{}", std::process::id()));
        let location = Location::Prefix(prefix.clone());
        let binary = std::env::current_exe().unwrap();
        let dir = install(&location, &binary).unwrap();
        assert_eq!(dir, prefix.join("share/jupyter/kernels/rust-jit"));
        let spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("kernel.json")).unwrap()).unwrap();
        assert_eq!(spec["display_name"], "Rust (JIT)");
        assert_eq!(spec["interrupt_mode"], "message");
        assert_eq!(spec["language"], "rust");
        assert!(spec.as_object().unwrap().values().all(|v| !v.is_null()), "{spec}");
        let argv = spec["argv"].as_array().unwrap();
        assert_eq!(argv[0].as_str().unwrap(), binary.canonicalize().unwrap().to_str().unwrap());
        assert_eq!(argv[1..], [serde_json::json!("--connection-file"), serde_json::json!("{connection_file}")]);
        assert!(dir.join("logo-32x32.png").exists() && dir.join("logo-64x64.png").exists());
        uninstall(&location).unwrap();
        assert!(!dir.exists());
        assert!(uninstall(&location).is_err());
        std::fs::remove_dir_all(prefix).unwrap();
    }
}
