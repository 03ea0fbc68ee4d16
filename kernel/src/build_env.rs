//! The kernel's own build environment: variables the kernel sets for cargo, rustc and
//! rust-analyzer's cargo calls (the cargo front's toolchain, the cells' flags, the rustc wrapper)
//! and that the cells must not inherit.
//!
//! Each is set with the value it replaced saved beside it (`RJK_WAS_<NAME>`: `=value`, or empty
//! when it was unset). The user process puts every one back as the kernel found it
//! ([`restore_for_cells`]), and a learner's `%env` of one of them is for the cells
//! ([`set_for_cells`]): the kernel's builds keep what they need.

use std::ffi::{OsStr, OsString};

const WAS: &str = "RJK_WAS_";

fn was_var(name: &str) -> String {
    format!("{WAS}{name}")
}

/// Sets `name` for the kernel's builds, keeping the value the kernel was started with for the
/// cells. Call before any thread starts.
pub fn set_for_builds(name: &str, value: impl AsRef<OsStr>) {
    let was = was_var(name);
    if std::env::var_os(&was).is_none() {
        let mut saved = OsString::new();
        if let Some(value) = std::env::var_os(name) {
            saved.push("=");
            saved.push(value);
        }
        std::env::set_var(&was, saved);
    }
    std::env::set_var(name, value);
}

/// A learner's value of `name` for the cells (the user process, and a restarted one), when
/// `name` is one the kernel sets for its builds (which keep theirs); false otherwise.
pub fn set_for_cells(name: &str, value: &str) -> bool {
    let was = was_var(name);
    if std::env::var_os(&was).is_none() {
        return false;
    }
    std::env::set_var(was, format!("={value}"));
    true
}

/// In the user process (single-threaded still): every variable the kernel set for its builds as
/// the kernel found it (or as a learner's `%env` set it since), and no trace of the saved values.
pub fn restore_for_cells() {
    let saved: Vec<(String, OsString)> = std::env::vars_os()
        .filter_map(|(var, value)| Some((var.to_str()?.strip_prefix(WAS)?.to_string(), value)))
        .collect();
    use std::os::unix::ffi::OsStrExt;
    for (name, value) in saved {
        std::env::remove_var(was_var(&name));
        match value.as_bytes().strip_prefix(b"=") {
            Some(value) => std::env::set_var(&name, OsStr::from_bytes(value)),
            None => std::env::remove_var(&name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cells_get_back_what_the_kernel_found_or_what_a_learner_set() {
        // Names no other test uses (the environment is the process's).
        std::env::set_var("RJK_TEST_BUILD_ENV_SET", "learner");
        std::env::remove_var("RJK_TEST_BUILD_ENV_UNSET");
        set_for_builds("RJK_TEST_BUILD_ENV_SET", "kernel");
        set_for_builds("RJK_TEST_BUILD_ENV_SET", "kernel again");
        set_for_builds("RJK_TEST_BUILD_ENV_UNSET", "kernel");
        set_for_builds("RJK_TEST_BUILD_ENV_LATER", "kernel");
        assert_eq!(std::env::var("RJK_TEST_BUILD_ENV_SET").as_deref(), Ok("kernel again"));
        assert!(set_for_cells("RJK_TEST_BUILD_ENV_LATER", "from %env"));
        assert!(!set_for_cells("RJK_TEST_BUILD_ENV_NEVER", "x"));
        assert_eq!(std::env::var("RJK_TEST_BUILD_ENV_LATER").as_deref(), Ok("kernel"), "the builds keep theirs");

        restore_for_cells();
        assert_eq!(std::env::var("RJK_TEST_BUILD_ENV_SET").as_deref(), Ok("learner"), "the first value is the one kept");
        assert_eq!(std::env::var_os("RJK_TEST_BUILD_ENV_UNSET"), None);
        assert_eq!(std::env::var("RJK_TEST_BUILD_ENV_LATER").as_deref(), Ok("from %env"));
        assert!(std::env::vars().all(|(name, _)| !name.starts_with(WAS)));
    }
}
