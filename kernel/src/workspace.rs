//! Workspace slots: the build directory each running kernel has to itself
//! (`<cache>/sessions/<n>`, mode 0700, locked while the kernel runs), and the seed a new slot
//! starts from, so that no kernel builds the session's dependencies that `install` built.
//!
//! A slot is kept between runs (cargo's incremental state and built dependencies are reused);
//! a slot no kernel holds is removed when a kernel takes another one, so a learner's cache
//! holds one slot per kernel running at once. A seed is a built session crate without its
//! incremental state and cell libraries: the learner's own (`<cache>/seed`, made by
//! `install --user`), copied into a new slot; or the shared cache's, whose compiled libraries
//! a new slot links instead of copying (a few MB per learner instead of a hundred; cargo finds
//! them fresh: same paths, flags and toolchain).

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::cache::{self, Caches};
use crate::interrupt::INTERRUPT_FILE_VAR;

/// A build directory reserved for this kernel process.
pub struct Workspace {
    pub dir: PathBuf,
    /// The session crate's directory (evcxr's `tmpdir`).
    pub build: PathBuf,
    /// Where cells find jit libraries: the own cache's, then the shared cache's.
    pub lib_dirs: Vec<PathBuf>,
    /// The learner's own `CARGO_HOME`, used once the one they have is found read-only
    /// ([`crate::evcxr_backend::Registry`]).
    pub cargo_home: PathBuf,
    _lock: File,
}

impl Workspace {
    /// Where cargo puts the session crate's dependencies (the runtime's `libjit-<hash>.so` among them)
    /// for target `host`.
    pub fn deps(&self, host: &str) -> PathBuf {
        self.build.join("target").join(host).join("debug/deps")
    }
}

/// The profile of the session's dependencies: optimised, without debug assertions or overflow
/// checks, as a release build. `#[jit]` libraries link the session's build of the runtime
/// (one copy per process), so ndarray's generic code they instantiate is the release build's.
/// The cell crate stays at opt-level 0 with its checks (`evcxr.toml`).
const DEPENDENCY_PROFILE: &str = "[profile.dev.package.\"*\"]\nopt-level = 3\ndebug-assertions = false\noverflow-checks = false\n";

/// Takes the first free slot, configures evcxr for it and fills it from a seed if it is new.
/// Call before any thread starts (it sets environment variables).
pub fn reserve(caches: &Caches) -> std::io::Result<Workspace> {
    let sessions = caches.own.join("sessions");
    // Cargo reads this file above every slot's build directory; a `.cargo/config.toml` in one
    // slot (nearer, so it wins) may change it for that slot.
    cache::private_dirs(&sessions.join(".cargo"))?;
    std::fs::write(sessions.join(".cargo/config.toml"), DEPENDENCY_PROFILE)?;
    for slot in 0.. {
        let Some(lock) = try_lock(&sessions.join(format!("{slot}.lock")))? else { continue };
        remove_idle_slots(&sessions, slot);
        let dir = sessions.join(slot.to_string());
        let build = dir.join("build");
        cache::private_dirs(&build)?;
        crate::evcxr_backend::configure(&dir.join("config"), &build)?;
        seed_build(caches, &build);
        std::env::set_var(INTERRUPT_FILE_VAR, dir.join("interrupt"));
        let mut lib_dirs = vec![caches.own.join(crate::jit::compiler::LIB_DIR)];
        lib_dirs.extend(caches.shared.as_ref().map(|shared| shared.join(crate::jit::compiler::LIB_DIR)));
        let cargo_home = caches.own.join("cargo-home");
        return Ok(Workspace { dir, build, lib_dirs, cargo_home, _lock: lock });
    }
    unreachable!()
}

/// The lock of a slot, if no other kernel holds it.
fn try_lock(path: &Path) -> std::io::Result<Option<File>> {
    let lock = File::create(path)?;
    // SAFETY: flock on a descriptor we own.
    let taken = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX | libc::LOCK_NB) } != 0;
    Ok((!taken).then_some(lock))
}

/// Removes every slot but `keep` that no kernel holds (holding its lock meanwhile; lock files
/// stay, so a kernel starting now never takes a slot being removed).
fn remove_idle_slots(sessions: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(sessions) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(slot) = name.strip_suffix(".lock").and_then(|n| n.parse::<usize>().ok()) else { continue };
        let dir = sessions.join(slot.to_string());
        if slot == keep || !dir.exists() {
            continue;
        }
        if let Ok(Some(_lock)) = try_lock(&entry.path()) {
            tracing::info!(slot, "removing an idle workspace slot");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// Where a cache keeps its seed.
fn seed_dir(cache: &Path) -> PathBuf {
    cache.join("seed")
}

/// Saves the session crate built in `build` as the cache's seed (replacing the old one).
pub fn save_seed(cache: &Path, build: &Path) -> std::io::Result<()> {
    let _ = std::fs::remove_dir_all(seed_dir(cache));
    cache::publish(&seed_dir(cache), |staging| copy_tree(build, staging, false), |e| e)
}

/// In a build directory: what filled its `target/` (`linked <seed>`, `copied`).
const SEED_MARK: &str = ".rjk-seed";

/// Fills a new build directory from the shared cache's seed (linked) or the own one (copied);
/// else cargo builds it. A directory linked from a shared seed that is no longer the one in use
/// (the admin installed again, or the shared cache is not used now) is emptied first: cargo must
/// not find links to libraries that changed or that it may no longer trust, and it cannot write
/// through them.
fn seed_build(caches: &Caches, build: &Path) {
    let shared = caches.shared.as_ref().map(|s| seed_dir(s)).filter(|seed| seed.join("target").exists());
    let linked = shared.as_ref().map(|seed| format!("linked {}", seed_identity(seed)));
    let mark = build.join(SEED_MARK);
    if build.join("target").exists() {
        let previous = std::fs::read_to_string(&mark).unwrap_or_default();
        if !previous.starts_with("linked ") || Some(&previous) == linked.as_ref() {
            return;
        }
        tracing::info!(%previous, "the slot was linked to another shared seed; it starts again");
        let _ = std::fs::remove_dir_all(build.join("target"));
    }
    let (seed, link) = match shared {
        Some(seed) => (seed, true),
        None => (seed_dir(&caches.own), false),
    };
    if !seed.join("target").exists() {
        let _ = std::fs::remove_file(&mark);
        return;
    }
    let filled = copy_tree(&seed, build, link).and_then(|()| std::fs::write(&mark, linked.unwrap_or_else(|| "copied".into())));
    if let Err(error) = filled {
        tracing::warn!(%error, seed = %seed.display(), "could not use the seed build; cargo builds from scratch");
        let _ = std::fs::remove_dir_all(build.join("target"));
        let _ = std::fs::remove_file(&mark);
    }
}

/// Names one seed as made by one install: its path, and the identity of its directory (a new
/// install makes a new one).
fn seed_identity(seed: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(seed).ok();
    let (ino, mtime, nsec) = meta.map_or((0, 0, 0), |m| (m.ino(), m.mtime(), m.mtime_nsec()));
    format!("{} {ino} {mtime}.{nsec:09}", seed.display())
}

/// Copies the tree `from` into `to`, keeping modification times (cargo's freshness checks
/// compare them) and leaving out what belongs to one session: incremental state, the
/// cells' libraries and the kept cells ([`crate::evcxr_backend::KEPT_CELLS_DIR`]). With `link`, compiled libraries (`deps/*.rlib`, `.rmeta`, `.so`) become
/// symbolic links to the originals instead of copies.
fn copy_tree(from: &Path, to: &Path, link: bool) -> std::io::Result<()> {
    cache::private_dirs(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (path, name) = (entry.path(), entry.file_name());
        let name_text = name.to_string_lossy();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if name_text != "incremental" && name_text != crate::evcxr_backend::KEPT_CELLS_DIR {
                copy_tree(&path, &to.join(&name), link)?;
            }
            continue;
        }
        if name_text.starts_with("libcode_") || kind.is_symlink() {
            continue;
        }
        let library = ["rlib", "rmeta", "so"].iter().any(|ext| path.extension().is_some_and(|e| e == *ext));
        if link && library && from.file_name().is_some_and(|d| d == "deps") {
            std::os::unix::fs::symlink(&path, to.join(&name))?;
        } else {
            std::fs::copy(&path, to.join(&name))?;
            let modified = entry.metadata()?.modified()?;
            File::options().write(true).open(to.join(&name))?.set_modified(modified)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rjk-workspace-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn seed_at(dir: &Path) {
        let deps = dir.join("target/x86_64-unknown-linux-gnu/debug/deps");
        std::fs::create_dir_all(&deps).unwrap();
        std::fs::create_dir_all(dir.join("target/x86_64-unknown-linux-gnu/debug/incremental/ctx-1")).unwrap();
        std::fs::write(deps.join("libndarray-1.rlib"), "rlib").unwrap();
        std::fs::write(deps.join("ndarray-1.d"), "dep-info").unwrap();
        std::fs::write(deps.join("../libcode_3.so"), "cell").unwrap();
        std::fs::create_dir_all(deps.join("..").join(crate::evcxr_backend::KEPT_CELLS_DIR).join("0123")).unwrap();
        std::fs::write(dir.join("Cargo.lock"), "lock").unwrap();
    }

    #[test]
    fn a_shared_seed_is_linked_and_an_own_one_copied() {
        let dir = scratch("seed");
        seed_at(&dir.join("from"));
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        File::options().write(true).open(dir.join("from/Cargo.lock")).unwrap().set_modified(old).unwrap();
        copy_tree(&dir.join("from"), &dir.join("linked"), true).unwrap();
        copy_tree(&dir.join("from"), &dir.join("copied"), false).unwrap();
        let deps = "target/x86_64-unknown-linux-gnu/debug/deps";
        let kind = |p: PathBuf| std::fs::symlink_metadata(p).unwrap().file_type();
        assert!(kind(dir.join("linked").join(deps).join("libndarray-1.rlib")).is_symlink());
        assert!(kind(dir.join("linked").join(deps).join("ndarray-1.d")).is_file());
        assert!(kind(dir.join("copied").join(deps).join("libndarray-1.rlib")).is_file());
        for copy in ["linked", "copied"] {
            let debug = dir.join(copy).join("target/x86_64-unknown-linux-gnu/debug");
            assert!(!debug.join("incremental").exists() && !debug.join("libcode_3.so").exists());
            assert!(!debug.join(crate::evcxr_backend::KEPT_CELLS_DIR).exists(), "a session's kept cells");
            assert_eq!(std::fs::metadata(dir.join(copy).join("Cargo.lock")).unwrap().modified().unwrap(), old);
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_slot_linked_to_an_old_shared_seed_starts_again() {
        let dir = scratch("relink");
        let shared = dir.join("shared");
        seed_at(&seed_dir(&shared));
        let caches = Caches { own: dir.join("own"), shared: Some(shared.clone()) };
        let build = dir.join("build");
        let rlib = build.join("target/x86_64-unknown-linux-gnu/debug/deps/libndarray-1.rlib");
        seed_build(&caches, &build);
        assert!(std::fs::symlink_metadata(&rlib).unwrap().file_type().is_symlink());
        let first = std::fs::read_to_string(build.join(SEED_MARK)).unwrap();
        // Left alone while it is the seed in use, cargo's own builds in it kept.
        std::fs::write(build.join("target/kept"), "").unwrap();
        seed_build(&caches, &build);
        assert!(build.join("target/kept").exists());
        // The admin installs again: a new seed.
        std::fs::remove_dir_all(seed_dir(&shared)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        seed_at(&seed_dir(&shared));
        seed_build(&caches, &build);
        assert!(!build.join("target/kept").exists(), "emptied");
        assert!(std::fs::symlink_metadata(&rlib).unwrap().file_type().is_symlink());
        assert_ne!(std::fs::read_to_string(build.join(SEED_MARK)).unwrap(), first);
        // The shared cache is not used any more: no links into it stay.
        seed_build(&Caches::own_only(&dir.join("own")), &build);
        assert!(!build.join("target").exists() && !build.join(SEED_MARK).exists());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn idle_slots_are_removed_and_held_ones_kept() {
        let sessions = scratch("slots");
        for slot in 0..3 {
            std::fs::create_dir_all(sessions.join(slot.to_string())).unwrap();
        }
        let _held = try_lock(&sessions.join("1.lock")).unwrap().unwrap();
        File::create(sessions.join("2.lock")).unwrap();
        remove_idle_slots(&sessions, 0);
        assert!(sessions.join("0").exists() && sessions.join("1").exists() && !sessions.join("2").exists());
        assert!(sessions.join("2.lock").exists());
        let _ = std::fs::remove_dir_all(sessions);
    }
}
