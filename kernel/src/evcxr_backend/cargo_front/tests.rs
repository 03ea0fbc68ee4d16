use super::*;

fn call() -> serde_json::Value {
    serde_json::json!({
        "rustc": "/tc/bin/rustc",
        "args": ["--crate-name", "ctx", "src/lib.rs", "--out-dir", "/slot/build/target/deps", "--extern", "jit=/slot/deps/libjit-1.rlib", "-C", "incremental=/x"],
        "env": { "CARGO_PKG_NAME": "ctx", "RUSTFLAGS": "-Cprefer-dynamic" },
    })
}

#[test]
fn a_plan_is_read_back_as_the_wrapper_wrote_it() {
    let plan = Plan::from_json(&call()).expect("a plan");
    assert_eq!(plan.rustc, OsString::from("/tc/bin/rustc"));
    assert_eq!(plan.args.len(), 9);
    assert_eq!(plan.env, vec![("CARGO_PKG_NAME".to_string(), "ctx".to_string()), ("RUSTFLAGS".to_string(), "-Cprefer-dynamic".to_string())]);
    assert_eq!(plan.externs().collect::<Vec<_>>(), vec![PathBuf::from("/slot/deps/libjit-1.rlib")]);
    assert_eq!(crate::evcxr_backend::cell_cache::output(&plan.args), Some(PathBuf::from("/slot/build/target/deps/libctx.so")));
    assert_eq!(Plan::from_json(&serde_json::json!({ "rustc": "x" })), None, "an incomplete record is no plan");
}

fn slot(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rjk-cargo-front-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("target")).unwrap();
    std::fs::write(dir.join("Cargo.toml"), "[package]\nname = \"ctx\"\n").unwrap();
    dir
}

#[test]
fn the_key_changes_with_the_manifest_the_lock_file_the_configuration_and_the_arguments() {
    let dir = slot("key");
    let args = [OsString::from("build"), OsString::from("--message-format=json")];
    let env = || vec![(OsString::from("RUSTFLAGS"), OsString::from("-Cprefer-dynamic")), (OsString::from("CARGO_HOME"), dir.join("no-home").into_os_string())];
    let key = |args: &[OsString], dir: &Path| key(args, dir, env());
    let first = key(&args, &dir);
    assert_eq!(key(&args, &dir), first, "the same inputs, the same key");
    std::fs::write(dir.join("Cargo.toml"), "[package]\nname = \"ctx\"\n[dependencies]\nrand = \"0.9\"\n").unwrap();
    let with_dep = key(&args, &dir);
    assert_ne!(with_dep, first, "a :dep");
    std::fs::write(dir.join("Cargo.lock"), "version = 4\n").unwrap();
    let with_lock = key(&args, &dir);
    assert_ne!(with_lock, with_dep, "the lock file");
    std::fs::create_dir_all(dir.join(".cargo")).unwrap();
    std::fs::write(dir.join(".cargo/config.toml"), "[net]\noffline = true\n").unwrap();
    assert_ne!(key(&args, &dir), with_lock, "a configuration file");
    assert_ne!(key(&args[..1], &dir), key(&args, &dir), "the arguments");
    let mut flags = env();
    flags[0].1 = OsString::from("-Cprefer-dynamic -L native=jit-lib-0");
    assert_ne!(super::key(&args, &dir, flags), key(&args, &dir), "the environment (a :build_env)");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_plan_is_taken_only_under_its_key_and_with_its_externs_there() {
    let dir = slot("load");
    let rlib = dir.join("libjit-1.rlib");
    let mut recorded = call();
    recorded["args"][6] = serde_json::Value::String(format!("jit={}", rlib.display()));
    std::fs::write(dir.join(PLAN), serde_json::json!({ "key": format!("{:016x}", 7u64), "call": recorded }).to_string()).unwrap();
    assert_eq!(Plan::load(&dir, 7), None, "its extern is missing");
    std::fs::write(&rlib, b"").unwrap();
    assert!(Plan::load(&dir, 7).is_some());
    assert_eq!(Plan::load(&dir, 8), None, "another key");
    std::fs::write(dir.join(PLAN), b"not json").unwrap();
    assert_eq!(Plan::load(&dir, 7), None, "a broken plan is no plan");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn what_cargo_only_passes_on_is_not_in_the_key() {
    let dir = slot("passed");
    let args = [OsString::from("build")];
    let env = |pid: &str, preload: Option<&str>| {
        let mut env = vec![(OsString::from("RUSTFLAGS"), OsString::from("-Cprefer-dynamic")), (OsString::from("JPY_PARENT_PID"), OsString::from(pid))];
        env.extend(preload.map(|p| (OsString::from("LD_PRELOAD"), OsString::from(p))));
        env
    };
    let first = key(&args, &dir, env("100", Some("/usr/lib/mold/mold-wrapper.so")));
    assert_eq!(key(&args, &dir, env("200", None)), first, "another Jupyter server; a build without `mold -run`");
    let mut flags = env("100", None);
    flags.push((OsString::from("SOME_BUILD_SCRIPT_VAR"), OsString::from("1")));
    assert_ne!(key(&args, &dir, flags), first, "any other variable (a build script may read it)");
    let _ = std::fs::remove_dir_all(&dir);
}
