//! `rust-jit-kernel install` / `uninstall`: the `rust-jit` kernelspec.

use std::collections::HashMap;
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
        match self.prefix()? {
            None => Ok(user_data_dir()?.join("kernels")),
            Some(prefix) => Ok(prefix.join("share/jupyter/kernels")),
        }
    }

    /// The prefix of a shared install (`None`: the user's own).
    fn prefix(&self) -> anyhow::Result<Option<PathBuf>> {
        Ok(match self {
            Location::User => None,
            Location::SysPrefix => Some(sys_prefix()?),
            Location::Prefix(prefix) => Some(prefix.clone()),
        })
    }

    /// Where a shared install keeps the kernel binary and the shared cache
    /// (`<prefix>/share/rust-jit-kernel`); `None` for the user's own install.
    pub fn shared_dir(&self) -> anyhow::Result<Option<PathBuf>> {
        Ok(self.prefix()?.map(|prefix| prefix.join("share/rust-jit-kernel")))
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

/// Writes `kernel.json` (with `env`, the variables every kernel started from it gets) and the
/// logos; returns the kernelspec directory.
pub fn install(location: &Location, binary: &Path, env: HashMap<String, String>) -> anyhow::Result<PathBuf> {
    let binary = binary.canonicalize().with_context(|| format!("kernel binary {}", binary.display()))?;
    let dir = location.kernels_dir()?.join(KERNEL_NAME);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut spec = kernelspec(&binary)?;
    if !env.is_empty() {
        spec.env = Some(env);
    }
    let mut spec = serde_json::to_value(spec)?;
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

/// The `env` of a shared install's kernelspec: where the shared cache is, and what finds the
/// toolchain for learners who have none of their own (its `bin` first on `PATH`, jupyter_client
/// putting the server's `PATH` after it; `RUSTUP_HOME` and `CARGO_HOME` when `install` had them).
pub fn shared_env(shared: Option<&Path>, toolchain_bin: &Path) -> HashMap<String, String> {
    let mut env = HashMap::new();
    if let Some(shared) = shared {
        env.insert(crate::shared::SHARED_VAR.to_string(), shared.display().to_string());
    }
    env.insert("PATH".to_string(), format!("{}:${{PATH}}", toolchain_bin.display()));
    for name in ["RUSTUP_HOME", "CARGO_HOME"] {
        if let Some(value) = std::env::var_os(name) {
            env.insert(name.to_string(), value.to_string_lossy().into_owned());
        }
    }
    env
}

/// Empties `dir` for a new shared cache: refuses a directory that is not one (no manifest) and
/// is not empty, so a wrong `--prefix` never deletes anything else.
pub fn clear_shared(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let empty = std::fs::read_dir(dir)?.next().is_none();
    if !empty && !dir.join("manifest.json").exists() && !dir.join("bin").join(KERNEL_BINARY).exists() {
        bail!("{} exists and is not a rust-jit-kernel shared install; remove it or choose another prefix", dir.display());
    }
    std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove the old shared install {}", dir.display()))
}

/// The binary's name in a shared install (`<shared>/bin/`).
pub const KERNEL_BINARY: &str = "rust-jit-kernel";

/// Copies the kernel binary into the shared install, where every learner can run it.
pub fn copy_binary(shared: &Path, binary: &Path) -> anyhow::Result<PathBuf> {
    let target = shared.join("bin").join(KERNEL_BINARY);
    std::fs::create_dir_all(target.parent().expect("a file in bin"))?;
    if binary.canonicalize().ok() != target.canonicalize().ok() {
        crate::cache::publish(&target, |staging| std::fs::copy(binary, staging).map(|_| ()), |e| e)
            .with_context(|| format!("cannot copy {} into {}", binary.display(), shared.display()))?;
    }
    Ok(target)
}

/// Removes the kernelspec, and for a shared install its binary and shared cache.
pub fn uninstall(location: &Location) -> anyhow::Result<PathBuf> {
    let dir = location.kernels_dir()?.join(KERNEL_NAME);
    if !dir.join("kernel.json").exists() {
        bail!("no {KERNEL_NAME} kernelspec in {}", dir.display());
    }
    std::fs::remove_dir_all(&dir)?;
    if let Some(shared) = location.shared_dir()? {
        clear_shared(&shared)?;
    }
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
        let dir = install(&location, &binary, shared_env(Some(Path::new("/srv/shared")), Path::new("/opt/rust/bin"))).unwrap();
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
        assert_eq!(spec["env"]["RUST_JIT_KERNEL_SHARED"], "/srv/shared");
        assert_eq!(spec["env"]["PATH"], "/opt/rust/bin:${PATH}");
        assert_eq!(location.shared_dir().unwrap(), Some(prefix.join("share/rust-jit-kernel")));
        assert_eq!(Location::User.shared_dir().unwrap(), None);
        uninstall(&location).unwrap();
        assert!(!dir.exists());
        assert!(uninstall(&location).is_err());
        std::fs::remove_dir_all(prefix).unwrap();
    }

    #[test]
    fn only_a_shared_install_is_cleared() {
        let dir = std::env::temp_dir().join(format!("rjk-clear-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("other")).unwrap();
        let error = clear_shared(&dir).unwrap_err().to_string();
        assert!(error.contains("is not a rust-jit-kernel shared install"), "{error}");
        std::fs::write(dir.join("manifest.json"), "{}").unwrap();
        clear_shared(&dir).unwrap();
        assert!(!dir.exists());
        clear_shared(&dir).unwrap();
    }
}
