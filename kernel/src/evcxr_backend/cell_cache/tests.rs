use super::*;

/// A scratch slot with a stand-in for rustc: a script that counts its runs, writes the library
/// (the source's text) and a dependency file naming the source and `extra` (when given), notes
/// the artifact on stderr (and a warning, when `warn` is there), and exits with the code in `exit`.
struct Slot {
    dir: PathBuf,
    rustc: OsString,
}

impl Slot {
    fn new(name: &str) -> Slot {
        let dir = std::env::temp_dir().join(format!("rjk-cell-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("target/debug/deps")).unwrap();
        std::fs::create_dir_all(dir.join("jit-lib-0")).unwrap();
        std::fs::write(dir.join("src.rs"), "pub fn cell() {}").unwrap();
        std::fs::write(dir.join("exit"), "0").unwrap();
        let script = dir.join("rustc");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nd={d}\necho run >> $d/runs\nout=$d/target/debug/deps\ncode=$(cat $d/exit)\n\
                 [ \"$code\" = 0 ] && cp $d/src.rs $out/libctx.so\n\
                 [ -e $d/no-dep-info ] || printf '%s: %s %s\\n\\n# env-dep:RJK_CELL_CACHE_TEST\\n' $out/ctx-1.d $d/src.rs \"$(cat $d/extra 2>/dev/null)\" > $out/ctx-1.d\n\
                 echo '{{\"$message_type\":\"artifact\",\"artifact\":\"x\"}}' >&2; [ -e $d/warn ] && echo warning: kept >&2\nexit $code\n",
                d = dir.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        Slot { rustc: script.into_os_string(), dir }
    }

    fn args(&self) -> Vec<OsString> {
        let d = self.dir.display();
        format!("--crate-name ctx {d}/src.rs --crate-type cdylib --emit=dep-info,link -C extra-filename=-1 --out-dir {d}/target/debug/deps -L dependency={d}/target/debug/deps -L native={d}/jit-lib-0")
            .split(' ')
            .map(OsString::from)
            .collect()
    }

    /// The outcome of the slot's call, as the cargo front's fast path gets it; and how many
    /// times rustc has run so far.
    fn compile(&self) -> (Outcome, usize) {
        self.compile_in(vec![(OsString::from("PATH"), OsString::from("/usr/bin:/bin"))])
    }

    fn compile_in(&self, env: Vec<(OsString, OsString)>) -> (Outcome, usize) {
        let outcome = Call::of(&self.rustc, &self.args(), env).unwrap().outcome(&self.rustc, &self.args());
        (outcome, std::fs::read_to_string(self.dir.join("runs")).unwrap_or_default().lines().count())
    }

    fn library(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("target/debug/deps/libctx.so")).ok()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn the_same_call_again_is_given_back_without_rustc() {
    let slot = Slot::new("same");
    let (first, runs) = slot.compile();
    assert_eq!((first.code, runs), (Some(0), 1));
    assert_eq!(first.stdout, b"");
    assert_eq!(first.stderr, b"{\"$message_type\":\"artifact\",\"artifact\":\"x\"}\n");
    std::fs::remove_file(slot.dir.join("target/debug/deps/libctx.so")).unwrap();
    let (again, runs) = slot.compile();
    assert_eq!((&again, runs), (&first, 1), "given back, rustc not run");
    assert_eq!(slot.library().as_deref(), Some("pub fn cell() {}"), "the library put back");
}

#[test]
fn a_changed_source_or_input_is_compiled() {
    let slot = Slot::new("changed");
    std::fs::write(slot.dir.join("included.txt"), "one").unwrap();
    std::fs::write(slot.dir.join("extra"), slot.dir.join("included.txt").display().to_string()).unwrap();
    assert_eq!(slot.compile().1, 1);
    std::fs::write(slot.dir.join("src.rs"), "pub fn other() {}").unwrap();
    assert_eq!(slot.compile().1, 2, "another source");
    assert_eq!(slot.library().as_deref(), Some("pub fn other() {}"));
    std::fs::write(slot.dir.join("src.rs"), "pub fn cell() {}").unwrap();
    assert_eq!(slot.compile().1, 2, "the first source again: its entry");
    assert_eq!(slot.library().as_deref(), Some("pub fn cell() {}"));
    std::fs::write(slot.dir.join("included.txt"), "two").unwrap();
    assert_eq!(slot.compile().1, 3, "a file the source includes");
    std::fs::write(slot.dir.join("jit-lib-0/libjit_g_2.so"), "").unwrap();
    assert_eq!(slot.compile().1, 3, "a jit library the cell does not link");
    std::fs::write(slot.dir.join("src.rs"), "#[link(name = \"jit_f_1\")] unsafe extern \"C\" {}").unwrap();
    assert_eq!(slot.compile().1, 4);
    std::fs::write(slot.dir.join("jit-lib-0/libjit_f_1.so"), "").unwrap();
    assert_eq!(slot.compile().1, 5, "the jit library the cell links, new where it links");
    assert_eq!(slot.compile().1, 5);
    let read = vec![(OsString::from("PATH"), OsString::from("/usr/bin:/bin")), (OsString::from("RJK_CELL_CACHE_TEST"), OsString::from("1"))];
    assert_eq!(slot.compile_in(read).1, 6, "another environment");
    assert_eq!(slot.compile().1, 6, "the first one's entry is still there");
}

#[test]
fn a_cell_that_does_not_compile_is_given_back_too_but_not_one_rustc_did_not_finish() {
    let slot = Slot::new("failed");
    std::fs::write(slot.dir.join("exit"), "1").unwrap();
    let (failed, runs) = slot.compile();
    assert_eq!((failed.code, runs), (Some(1), 1));
    assert_eq!(slot.compile(), (failed, 1), "the same errors, rustc not run");
    std::fs::write(slot.dir.join("src.rs"), "pub fn killed() {}").unwrap();
    std::fs::write(slot.dir.join("no-dep-info"), "").unwrap();
    assert_eq!(slot.compile().1, 2);
    assert_eq!(slot.compile().1, 3, "no dependency file: nothing to check a replay against");
}

#[test]
fn the_newest_entries_are_kept() {
    let dir = std::env::temp_dir().join(format!("rjk-cell-cache-kept-{}", std::process::id()));
    for (i, age) in [30u64, 10, 20].iter().enumerate() {
        std::fs::create_dir_all(dir.join(i.to_string())).unwrap();
        let inputs = std::fs::File::create(dir.join(i.to_string()).join("inputs")).unwrap();
        inputs.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(*age)).unwrap();
    }
    drop_oldest(&dir, 2);
    let mut left: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, ["1", "2"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_dependency_file_is_read_as_make_reads_it() {
    let (files, env) = read_dep_info(
        "/o/ctx-1.d: src/lib.rs /data/with\\ space.txt\n\n/o/libctx.so: src/lib.rs /data/with\\ space.txt\n\nsrc/lib.rs:\n\
         # env-dep:HOME=/root\n# env-dep:UNSET\n",
    );
    assert_eq!(files, ["src/lib.rs", "/data/with space.txt"]);
    assert_eq!(env, [serde_json::json!(["HOME", "/root"]), serde_json::json!(["UNSET", null])]);
}

#[test]
fn search_paths_are_stamped_but_cargos_own() {
    assert_eq!(search_dir("-L", "native=jit-lib-0"), Some(PathBuf::from("jit-lib-0")));
    assert_eq!(search_dir("x", "-Lnative=jit-lib-1"), Some(PathBuf::from("jit-lib-1")));
    assert_eq!(search_dir("-L", "/usr/lib"), Some(PathBuf::from("/usr/lib")));
    assert_eq!(search_dir("-L", "dependency=/o/deps"), None);
    assert_eq!(search_dir("--out-dir", "/o"), None);
}

#[test]
fn the_same_items_in_another_order_are_the_same_cell_when_no_message_names_a_line() {
    let slot = Slot::new("order");
    let source = |a: &str, b: &str| format!("use jit::{a};\nuse jit::{b};\npub fn cell() {{}}\n");
    std::fs::write(slot.dir.join("src.rs"), source("rayon", "ndarray")).unwrap();
    assert_eq!(slot.compile().1, 1);
    std::fs::write(slot.dir.join("src.rs"), source("ndarray", "rayon")).unwrap();
    let (outcome, runs) = slot.compile();
    assert_eq!((outcome.code, runs), (Some(0), 1), "evcxr's other order: given back");
    assert_eq!(slot.library(), Some(source("rayon", "ndarray")), "the library of the first order");
    std::fs::write(slot.dir.join("warn"), "").unwrap();
    std::fs::write(slot.dir.join("src.rs"), source("ndarray", "prelude")).unwrap();
    assert_eq!(slot.compile().1, 2);
    std::fs::write(slot.dir.join("src.rs"), source("prelude", "ndarray")).unwrap();
    assert_eq!(slot.compile().1, 3, "a warning names lines of its own order");
    assert_eq!(slot.compile().1, 3, "the same order again: given back, warning and all");
}

#[test]
fn the_libraries_a_call_links_are_found_in_its_arguments_and_sources() {
    let args = ["-l", "dylib=foo", "-lbar", "-l", "static:+bundle=baz:qux", "--out-dir", "/o"];
    let sources = ["fn f() { #[link(name = \"jit_f_1\")] unsafe extern \"C\" {} }".to_string()];
    assert_eq!(linked(&args, &sources), ["bar", "baz", "foo", "jit_f_1"]);
}

#[test]
fn rustcs_outcome_is_taken_at_its_note_that_it_linked() {
    let dir = std::env::temp_dir().join(format!("rjk-cell-cache-linked-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let script = |name: &str, body: &str| {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        path.into_os_string()
    };
    let link_note = r#"{"$message_type":"artifact","artifact":"/o/libctx.so","emit":"link"}"#;
    let linked = script("linked", &format!("echo out; echo '{link_note}' >&2; sleep 2; echo late >&2; exit 3"));
    let started = std::time::Instant::now();
    let outcome = rustc_until_linked(&linked, &[]).unwrap();
    assert!(started.elapsed() < std::time::Duration::from_millis(1500), "not waited for: {:?}", started.elapsed());
    assert_eq!((outcome.code, outcome.stdout.as_slice()), (Some(0), b"out\n".as_slice()));
    assert_eq!(String::from_utf8_lossy(&outcome.stderr), format!("{link_note}\n"));
    // No note (a failed compile, a call that links nothing): rustc's own end and status.
    let failed = script("failed", r#"echo '{"$message_type":"artifact","artifact":"/o/ctx.d","emit":"dep-info"}' >&2; echo error >&2; exit 1"#);
    let outcome = rustc_until_linked(&failed, &[]).unwrap();
    assert_eq!(outcome.code, Some(1));
    assert!(String::from_utf8_lossy(&outcome.stderr).ends_with("error\n"));
    assert!(!wrote_library(br#"{"$message_type":"diagnostic","message":"\"emit\":\"link\"}"}"#));
    let _ = std::fs::remove_dir_all(&dir);
}
