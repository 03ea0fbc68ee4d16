//! The shared cache: what `install --sys-prefix` / `--prefix` builds once for every learner of a
//! server (`<prefix>/share/rust-jit-kernel`), and whether a learner's kernel may read it.
//!
//! It has the layout of a learner's own cache ([`crate::cache`]): the session crate built with
//! its dependencies (`seed/`), the runtime's sources and release build, the prepared notebooks'
//! jit functions (`jit/lib`), std's trimmed sources; and a [`Manifest`] that says what built
//! it. A kernel reads it and never writes it; it is used only when
//! - it is trusted: the directory, every directory above it and everything in it belong to root
//!   or to this user and nobody else can write them (a learner who could write there could plant
//!   a library that runs as every other learner), and
//! - it is current: the same kernel version and toolchain ([`Shared::open`]). Built for another
//!   CPU, only its jit builds go unused (their cache keys name the CPU).
//!
//! Otherwise the kernel works from the learner's own cache and says why, once.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cache;
use crate::setup::Toolchain;

/// The kernelspec's `env` names the shared cache in this variable.
pub const SHARED_VAR: &str = "RUST_JIT_KERNEL_SHARED";
const MANIFEST: &str = "manifest.json";

/// What built a shared cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The kernel's version (the runtime's sources and the session prelude come with it).
    pub kernel: String,
    /// [`Toolchain::id`].
    pub toolchain: String,
    /// [`cache::cpu_id`] of the machine that built it.
    pub cpu: String,
    /// The notebooks `install --prepare` ran.
    pub prepared: Vec<String>,
}

impl Manifest {
    pub fn for_this(toolchain: &Toolchain, prepared: Vec<String>) -> Self {
        Manifest { kernel: env!("CARGO_PKG_VERSION").to_string(), toolchain: toolchain.id(), cpu: cache::cpu_id(), prepared }
    }
}

/// The shared cache this kernel reads, and what it has to say about it (once, on the first cell).
#[derive(Debug, Default)]
pub struct Opened {
    pub root: Option<PathBuf>,
    pub notice: Option<String>,
}

/// Opens the shared cache named by [`SHARED_VAR`], if any.
pub fn open(toolchain: &Toolchain) -> Opened {
    match std::env::var_os(SHARED_VAR) {
        Some(dir) if !dir.is_empty() => open_at(Path::new(&dir), toolchain),
        _ => Opened::default(),
    }
}

/// Opens the shared cache at `dir` (see the module docs for when it is used).
pub fn open_at(dir: &Path, toolchain: &Toolchain) -> Opened {
    let unused = |why: String| Opened {
        root: None,
        notice: Some(format!("note: the shared cache {} is not used: {why}; this kernel builds in your own cache instead (first cells are slower)", dir.display())),
    };
    let manifest = match std::fs::read_to_string(dir.join(MANIFEST)) {
        Ok(text) => match serde_json::from_str::<Manifest>(&text) {
            Ok(manifest) => manifest,
            Err(e) => return unused(format!("its {MANIFEST} is not valid ({e})")),
        },
        Err(e) => return unused(format!("cannot read its {MANIFEST} ({e}); run `rust-jit-kernel install --sys-prefix` again")),
    };
    if let Err(why) = trusted(dir) {
        return unused(why);
    }
    let here = Manifest::for_this(toolchain, manifest.prepared.clone());
    if manifest.kernel != here.kernel || manifest.toolchain != here.toolchain {
        return unused(format!(
            "it was built by rust-jit-kernel {} with rustc {}, and this is rust-jit-kernel {} with rustc {}",
            manifest.kernel, manifest.toolchain, here.kernel, here.toolchain
        ));
    }
    let notice = (manifest.cpu != here.cpu).then(|| {
        format!(
            "note: the shared cache {} was built on another CPU; #[jit] functions are compiled for this one in your own cache",
            dir.display()
        )
    });
    Opened { root: Some(dir.to_path_buf()), notice }
}

/// Whether nobody but root and this user can change what is at `dir`: the directories above it
/// (a sticky one, like `/tmp`, is fine: others cannot rename what is not theirs) and everything
/// in it. A symbolic link inside is refused (it could lead anywhere).
pub fn trusted(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    let owner_ok = |uid: u32| uid == 0 || uid == me;
    let dir = dir.canonicalize().map_err(|e| format!("{}: {e}", dir.display()))?;
    for above in dir.ancestors().skip(1) {
        let meta = std::fs::metadata(above).map_err(|e| format!("{}: {e}", above.display()))?;
        let sticky = meta.mode() & 0o1000 != 0;
        if !owner_ok(meta.uid()) || (meta.mode() & 0o022 != 0 && !sticky) {
            return Err(format!("{} can be changed by other users", above.display()));
        }
    }
    let mut stack = vec![dir];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.file_type().is_symlink() {
            return Err(format!("{} is a symbolic link", path.display()));
        }
        if !owner_ok(meta.uid()) || meta.mode() & 0o022 != 0 {
            return Err(format!("{} can be changed by other users", path.display()));
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(|e| format!("{}: {e}", path.display()))? {
                stack.push(entry.map_err(|e| e.to_string())?.path());
            }
        }
    }
    Ok(())
}

/// Turns a cache that `install` just built at `dir` into a shared one: drops what only its
/// builder used (workspace slots, locks, the answers to rust-analyzer's questions, which name its
/// slot), writes the manifest, and makes everything readable by all and writable by its owner only.
pub fn seal(dir: &Path, manifest: &Manifest) -> std::io::Result<()> {
    let _ = std::fs::remove_dir_all(dir.join("sessions"));
    let _ = std::fs::remove_dir_all(dir.join(crate::evcxr_backend::cargo_front::ANSWERS));
    std::fs::write(dir.join(MANIFEST), serde_json::to_string_pretty(manifest)? + "\n")?;
    open_up(dir)
}

/// `chmod -R u+rwX,go=rX`.
fn open_up(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Err(std::io::Error::other(format!("{}: a symbolic link in the shared cache", path.display())));
    }
    let executable = meta.is_dir() || meta.permissions().mode() & 0o100 != 0;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(if executable { 0o755 } else { 0o644 }))?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            open_up(&entry?.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn toolchain() -> Toolchain {
        Toolchain { sysroot: PathBuf::from("/nowhere"), version: "1.95.0".into(), host: "x86_64-unknown-linux-gnu".into(), commit: "0123456789abcdef".into() }
    }

    fn built(name: &str, manifest: &Manifest) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rjk-shared-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        cache::private_dirs(&dir.join("jit/lib")).unwrap();
        std::fs::write(dir.join("jit/lib/libjit_f.so"), "").unwrap();
        cache::private_dirs(&dir.join("sessions/0")).unwrap();
        cache::private_dirs(&dir.join(crate::evcxr_backend::cargo_front::ANSWERS)).unwrap();
        seal(&dir, manifest).unwrap();
        dir
    }

    #[test]
    fn a_sealed_cache_is_read_only_to_others_and_opens() {
        let dir = built("sealed", &Manifest::for_this(&toolchain(), vec!["lesson.ipynb".into()]));
        assert!(!dir.join("sessions").exists());
        assert!(!dir.join(crate::evcxr_backend::cargo_front::ANSWERS).exists());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("jit/lib")), 0o755);
        assert_eq!(mode(&dir.join("jit/lib/libjit_f.so")), 0o644);
        let opened = open_at(&dir, &toolchain());
        assert_eq!(opened.root.as_deref(), Some(dir.as_path()));
        assert_eq!(opened.notice, None);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn another_toolchain_or_kernel_means_the_own_cache_and_says_why() {
        let mut manifest = Manifest::for_this(&toolchain(), vec![]);
        manifest.toolchain = "1.80.0-abcdef012".into();
        let dir = built("stale", &manifest);
        let opened = open_at(&dir, &toolchain());
        assert_eq!(opened.root, None);
        let notice = opened.notice.unwrap();
        assert!(notice.contains("rustc 1.80.0-abcdef012") && notice.contains("rustc 1.95.0-012345678"), "{notice}");
        assert!(notice.contains("your own cache"), "{notice}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn another_cpu_keeps_the_cache_and_says_so() {
        let mut manifest = Manifest::for_this(&toolchain(), vec![]);
        manifest.cpu = "00000000".into();
        let dir = built("cpu", &manifest);
        let opened = open_at(&dir, &toolchain());
        assert!(opened.root.is_some());
        assert!(opened.notice.unwrap().contains("another CPU"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_cache_others_can_write_is_not_used() {
        let dir = built("writable", &Manifest::for_this(&toolchain(), vec![]));
        std::fs::set_permissions(dir.join("jit/lib"), std::fs::Permissions::from_mode(0o777)).unwrap();
        let opened = open_at(&dir, &toolchain());
        assert_eq!(opened.root, None);
        assert!(opened.notice.unwrap().contains("jit/lib can be changed by other users"));
        std::fs::set_permissions(dir.join("jit/lib"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("/tmp", dir.join("jit/lib/planted")).unwrap();
        assert!(trusted(&dir).unwrap_err().contains("planted is a symbolic link"));
        // No manifest: not an install's shared cache.
        let opened = open_at(&dir.join("jit"), &toolchain());
        assert!(opened.root.is_none() && opened.notice.unwrap().contains("manifest.json"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
