use super::*;

fn words(line: &str) -> Vec<OsString> {
    line.split_whitespace().map(OsString::from).collect()
}

#[test]
fn rust_analyzers_questions_are_answered_and_builds_are_not() {
    for question in [
        "locate-project --workspace --manifest-path /s/build/Cargo.toml",
        "-Z unstable-options config get --format toml --show-origin",
        "--version",
        "metadata --format-version 1 --no-deps --manifest-path /s/build/Cargo.toml --filter-platform x86_64-unknown-linux-gnu",
        "rustc -Z unstable-options --print target-spec-json --target x86_64-unknown-linux-gnu -- -Z unstable-options",
        "rustc -Z unstable-options --print cfg --target x86_64-unknown-linux-gnu -- -O",
        "metadata --format-version 1 --manifest-path /s/build/Cargo.toml -Zlockfile-path -Zunstable-options",
    ] {
        assert!(is_question(&words(question)), "{question}");
    }
    for build in ["build --message-format=json", "check", "rustc -- --print cfg", "rustc --release", "run", "clean", "config set x", ""] {
        assert!(!is_question(&words(build)), "{build}");
    }
}

#[test]
fn path_dependencies_are_found_in_tables_and_inline_tables() {
    let text = "[lib]\npath = \"src/lib.rs\"\n[dependencies.jit]\npath = \"/cache/runtime/82b4\"\n\
                [dependencies]\nfoo = { version = \"1\", path=\"../foo\" }\nbar = { xpath = \"no\" }\n# classpath = \"no\"\n";
    assert_eq!(path_values(text), vec!["src/lib.rs", "/cache/runtime/82b4", "../foo"]);
}

/// A crate directory with a path dependency, and a fake real cargo that counts its runs.
struct Fixture {
    root: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let root = std::env::temp_dir().join(format!("rjk-cargo-answers-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("build")).unwrap();
        std::fs::create_dir_all(root.join("dep")).unwrap();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(root.join("build/Cargo.toml"), "[package]\nname = \"ctx\"\n[dependencies]\ndep = { path = \"../dep\" }\n").unwrap();
        std::fs::write(root.join("dep/Cargo.toml"), "[package]\nname = \"dep\"\n").unwrap();
        let cargo = root.join("bin/cargo");
        let script = format!("#!/bin/sh\necho run >> {runs}\necho \"answer to $*\"\necho note >&2\n[ \"$1\" = fail ] && exit 3\nexit 0\n", runs = root.join("runs").display());
        std::fs::write(&cargo, script).unwrap();
        std::fs::set_permissions(&cargo, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        Fixture { root }
    }

    fn runs(&self) -> usize {
        std::fs::read_to_string(self.root.join("runs")).unwrap_or_default().lines().count()
    }

    fn ask(&self, line: &str) -> (Answer, i32) {
        answer(self.root.join("bin/cargo").as_os_str(), &words(line), &self.root.join("build"), &self.root.join("answers"))
    }

    fn key(&self, line: &str, env: &[(&str, &str)]) -> u64 {
        let env: Vec<(OsString, OsString)> = env.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect();
        key(&words(line), &self.root.join("build"), &env, &self.root.join("bin/cargo"))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[test]
fn an_answer_is_given_again_while_what_cargo_read_holds() {
    let fixture = Fixture::new("again");
    let (first, status) = fixture.ask("metadata --format-version 1");
    assert_eq!((status, fixture.runs()), (0, 1));
    assert_eq!(first.stdout, b"answer to metadata --format-version 1\n");
    assert_eq!(first.stderr, b"note\n");
    let (again, status) = fixture.ask("metadata --format-version 1");
    assert_eq!((status, fixture.runs()), (0, 1), "answered without cargo");
    assert_eq!(again, first, "the same stdout and stderr");
    std::fs::write(fixture.root.join("dep/Cargo.toml"), "[package]\nname = \"dep\"\nversion = \"2.0.0\"\n").unwrap();
    fixture.ask("metadata --format-version 1");
    assert_eq!(fixture.runs(), 2, "a path dependency's manifest changed: cargo asked again");
    fixture.ask("metadata --format-version 1 --no-deps");
    assert_eq!(fixture.runs(), 3, "another question");
}

#[test]
fn a_failed_answer_is_not_kept() {
    let fixture = Fixture::new("failed");
    assert_eq!(fixture.ask("fail").1, 3);
    assert_eq!(fixture.ask("fail").1, 3);
    assert_eq!(fixture.runs(), 2);
}

#[test]
fn the_key_follows_what_cargo_reads_and_nothing_else() {
    let fixture = Fixture::new("key");
    let question = "metadata --format-version 1";
    let base = fixture.key(question, &[("CARGO_HOME", "/nowhere"), ("PATH", "/bin")]);
    assert_eq!(fixture.key(question, &[("CARGO_HOME", "/nowhere"), ("PATH", "/bin"), ("JPY_PARENT_PID", "4242")]), base, "a variable cargo does not read");
    assert_ne!(fixture.key(question, &[("CARGO_HOME", "/nowhere"), ("PATH", "/bin"), ("CARGO_NET_OFFLINE", "true")]), base, "one it reads");
    assert_ne!(fixture.key(question, &[("CARGO_HOME", "/nowhere"), ("PATH", "/usr/bin")]), base, "PATH");
    // rust-analyzer's copy of the lock file: a new temporary path each time, the same bytes.
    let (one, two) = (fixture.root.join("lock-1"), fixture.root.join("lock-2"));
    std::fs::write(&one, "version = 4\n").unwrap();
    std::fs::write(&two, "version = 4\n").unwrap();
    let with = |lock: &Path| fixture.key(question, &[("CARGO_HOME", "/nowhere"), ("PATH", "/bin"), ("CARGO_RESOLVER_LOCKFILE_PATH", lock.to_str().unwrap())]);
    assert_eq!(with(&one), with(&two), "the lock file's copy, by its bytes");
    std::fs::write(&two, "version = 4\n[[package]]\nname = \"rand\"\n").unwrap();
    assert_ne!(with(&one), with(&two));
    std::fs::write(fixture.root.join("build/Cargo.lock"), "version = 4\n").unwrap();
    assert_ne!(fixture.key(question, &[("CARGO_HOME", "/nowhere"), ("PATH", "/bin")]), base, "the lock file");
}
