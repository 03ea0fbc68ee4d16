//! The kernel's cache directory, and the one way anything is put into it.
//!
//! Every cache entry (a jit library, a CUDA image, the runtime's sources, the seed build) is
//! made under a temporary name beside its final one (named with this process's id, so two
//! kernels never write the same temporary) and renamed into place when complete. A reader
//! therefore sees a whole entry or none; an entry named by a hash of its content is never
//! stale and never overwritten while in use.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// The kernel's cache directory (`$RUST_JIT_KERNEL_CACHE`, else `~/.cache/rust-jit-kernel`).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RUST_JIT_KERNEL_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("rust-jit-kernel")
}

/// Makes `dir` (the learner's own cache) if needed and keeps it private: mode 0700, owned by
/// this user. The kernel loads libraries and runs build outputs from its cache, so a cache that
/// another user can write to would let them plant code that runs as this one: such a directory is
/// refused, with what to do.
pub fn ensure_private(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    private_dirs(dir)?;
    let meta = std::fs::metadata(dir)?;
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    if meta.uid() != me {
        return Err(std::io::Error::other(format!(
            "the cache directory {} belongs to another user (uid {}); set RUST_JIT_KERNEL_CACHE to a directory of your own",
            dir.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// `mkdir -p -m 0700`: every directory made on the way is this user's alone.
pub fn private_dirs(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Where cache entries are found: the learner's own cache, which the kernel writes, and the
/// shared cache an admin installed ([`crate::shared`]), which it only reads.
#[derive(Debug, Clone)]
pub struct Caches {
    pub own: PathBuf,
    pub shared: Option<PathBuf>,
}

impl Caches {
    pub fn own_only(own: &Path) -> Self {
        Caches { own: own.to_path_buf(), shared: None }
    }

    /// The entry `name` (a path inside a cache): the shared cache's when it has one that is
    /// complete (`marker`, a path inside the entry, exists), else the own cache's, where it is
    /// made if it is not there yet.
    pub fn find(&self, name: impl AsRef<Path>, marker: impl AsRef<Path>) -> PathBuf {
        self.pick(name.as_ref(), |entry| entry.join(marker.as_ref()).exists())
    }

    /// A file `name`, shared first (see [`Caches::find`]).
    pub fn find_file(&self, name: impl AsRef<Path>) -> PathBuf {
        self.pick(name.as_ref(), Path::exists)
    }

    fn pick(&self, name: &Path, complete: impl Fn(&Path) -> bool) -> PathBuf {
        match &self.shared {
            Some(shared) if complete(&shared.join(name)) => shared.join(name),
            _ => self.own.join(name),
        }
    }
}

/// This CPU (model and feature flags), for cache keys: code built with `-Ctarget-cpu=native`
/// may not run on another CPU sharing the cache (a home directory on a cluster, a shared cache).
pub fn cpu_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| info.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_string();
        format!("{:08x}", key(&(field("model name"), field("flags"))) as u32)
    })
    .clone()
}

/// A 64-bit content key of `value`, as cache entries are named (`{:016x}`).
pub fn key(value: &impl Hash) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// Makes `path` (a file or a directory) with `make`, which writes it at the temporary path it
/// is given; then renames it into place. If another process published `path` first, its copy
/// is kept (same name, same content) and ours removed. `io` turns a file-system error into
/// `make`'s error type.
pub fn publish<E>(path: &Path, make: impl FnOnce(&Path) -> Result<(), E>, io: impl Fn(std::io::Error) -> E) -> Result<(), E> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(&io)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let staging = parent.join(format!(".{name}.{}.tmp", std::process::id()));
    remove(&staging);
    if let Err(error) = make(&staging) {
        remove(&staging);
        return Err(error);
    }
    match std::fs::rename(&staging, path) {
        Ok(()) => Ok(()),
        // A directory published by another kernel meanwhile (renaming onto a non-empty one fails).
        Err(_) if path.exists() => {
            remove(&staging);
            Ok(())
        }
        Err(error) => {
            remove(&staging);
            Err(io(error))
        }
    }
}

fn remove(path: &Path) {
    if path.is_dir() {
        let _ = std::fs::remove_dir_all(path);
    } else {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rjk-cache-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_published_file_appears_whole_and_failures_leave_nothing() {
        let dir = scratch("file");
        let path = dir.join("entry.bin");
        publish(&path, |tmp| std::fs::write(tmp, b"content"), |e| e).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"content");
        let failed = publish(&dir.join("other.bin"), |tmp| {
            std::fs::write(tmp, b"half")?;
            Err(std::io::Error::other("compile failed"))
        }, |e| e);
        assert!(failed.is_err());
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("entry.bin")], "no temporary is left behind");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_directory_published_twice_keeps_the_first() {
        let dir = scratch("dir");
        let path = dir.join("tree");
        let make = |text: &'static str| move |tmp: &Path| {
            std::fs::create_dir_all(tmp)?;
            std::fs::write(tmp.join("f"), text)
        };
        publish(&path, make("first"), |e| e).unwrap();
        publish(&path, make("second"), |e| e).unwrap();
        assert_eq!(std::fs::read_to_string(path.join("f")).unwrap(), "first");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_cache_is_made_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("private").join("cache");
        ensure_private(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        // An existing cache that others can read or write is closed again.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        ensure_private(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        let _ = std::fs::remove_dir_all(dir.parent().unwrap());
    }

    #[test]
    fn entries_are_found_in_the_shared_cache_first() {
        let dir = scratch("layers");
        let caches = Caches { own: dir.join("own"), shared: Some(dir.join("shared")) };
        assert_eq!(caches.find("runtime/1", "Cargo.toml"), dir.join("own/runtime/1"));
        std::fs::create_dir_all(dir.join("shared/runtime/1")).unwrap();
        // Not complete: still the own one.
        assert_eq!(caches.find("runtime/1", "Cargo.toml"), dir.join("own/runtime/1"));
        std::fs::write(dir.join("shared/runtime/1/Cargo.toml"), "").unwrap();
        assert_eq!(caches.find("runtime/1", "Cargo.toml"), dir.join("shared/runtime/1"));
        assert_eq!(caches.find_file("runtime/1/Cargo.toml"), dir.join("shared/runtime/1/Cargo.toml"));
        assert_eq!(Caches::own_only(&dir).find_file("x"), dir.join("x"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn keys_are_stable_within_a_build() {
        assert_eq!(key(&("a", 1)), key(&("a", 1)));
        assert_ne!(key(&("a", 1)), key(&("a", 2)));
    }
}
