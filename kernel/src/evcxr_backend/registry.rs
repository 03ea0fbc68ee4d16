//! A cargo registry the learner cannot write to: an admin's `CARGO_HOME`, shared read-only by a
//! class (see `docs/deploy.md`). Crates it holds are used from there; the first cell whose build
//! needs a download (a `:dep` nobody prepared) switches this session, and later ones of this
//! learner, to a `CARGO_HOME` in the learner's own cache, and runs again. Cargo then fetches the
//! index entries and crates the session needs into it; what is built stays fresh (cargo's
//! fingerprints of registry crates do not name where their sources are).

use std::path::{Path, PathBuf};

pub struct Registry {
    own: PathBuf,
    switched: bool,
}

impl Registry {
    /// `own`: the learner's `CARGO_HOME` if they need one (see [`Registry::use_own_if_made`]).
    pub fn new(own: &Path) -> Self {
        Registry { own: own.to_path_buf(), switched: std::env::var_os("CARGO_HOME").is_some_and(|home| Path::new(&home) == own) }
    }

    /// At start (before any thread): a learner who switched once keeps their own registry.
    pub fn use_own_if_made(own: &Path) {
        if own.join("registry").exists() {
            std::env::set_var("CARGO_HOME", own);
        }
    }

    /// Whether a failed cell's error is cargo failing to write to the registry.
    pub fn cannot_write(&self, error: &str) -> bool {
        !self.switched
            && error.contains("Permission denied")
            && ["registry/cache", "registry/index", "registry/src", ".package-cache", ".global-cache"].iter().any(|part| error.contains(part))
    }

    /// Switches to the learner's own registry; returns what to tell them.
    pub fn switch(&mut self) -> std::io::Result<String> {
        crate::cache::private_dirs(&self.own)?;
        let shared = std::env::var("CARGO_HOME").unwrap_or_default();
        std::env::set_var("CARGO_HOME", &self.own);
        self.switched = true;
        Ok(format!(
            "note: the cargo registry {shared} is read-only here; this session downloads crates into your own cache ({}) and builds them there\n",
            self.own.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_registry_it_cannot_write_switches() {
        let registry = Registry { own: PathBuf::from("/home/l/.cache/rust-jit-kernel/cargo-home"), switched: false };
        let denied = "failed to open `/opt/cargo/registry/cache/index.crates.io-1949cf8c6b5b557f/bytesize-1.3.3.crate`\n\nCaused by:\n  Permission denied (os error 13)";
        assert!(registry.cannot_write(denied));
        assert!(!registry.cannot_write("error[E0425]: cannot find value `x` in this scope"));
        assert!(!registry.cannot_write("failed to open `/home/l/data.csv`: Permission denied"));
        let switched = Registry { switched: true, ..registry };
        assert!(!switched.cannot_write(denied), "once only");
    }
}
