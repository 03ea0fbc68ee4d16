//! The jit layer in memory: the fake backend and a fake compiler (no rustc, no evcxr).

use std::cell::RefCell;
use std::path::PathBuf;

use super::*;
use crate::testing::{Call, Fake};
use magics::Found;

/// What the fake compiler was asked, per compile.
#[derive(Debug, Clone)]
struct Asked {
    name: String,
    body: String,
    deps: Vec<(String, String)>,
    uses: Vec<String>,
}

/// Compiles by name: a wrapper `fn NAME() {}`, or one that does not compile in a cell when the
/// function's name starts with `broken`. A reference to a name the session defines outside jit
/// functions fails the way rustc does (E0425), through the real error mapping.
#[derive(Default)]
struct FakeCompiler {
    asked: RefCell<Vec<Asked>>,
}

impl Compile for FakeCompiler {
    fn runtime_built(&self) -> bool {
        true
    }

    fn compile(&self, function: &JitFn, deps: &[&JitFn], uses: &[String], cell: &str, plain: &dyn Fn(&str) -> bool) -> Result<Compiled, CellError> {
        self.asked.borrow_mut().push(Asked {
            name: function.name.clone(),
            body: function.source.clone(),
            deps: deps.iter().map(|d| (d.name.clone(), d.source.clone())).collect(),
            uses: uses.to_vec(),
        });
        let krate = format!("jit_{}_0", function.name);
        if let Some(name) = function.references.iter().find(|r| plain(r)) {
            let source = jit_codegen::crate_source(function, &krate, deps, uses);
            let line = source.first_line;
            let json = format!(
                r#"{{"message":"cannot find function `{name}` in this scope","code":{{"code":"E0425"}},"level":"error","spans":[{{"file_name":"{krate}.rs","line_start":{line},"line_end":{line},"column_start":1,"column_end":2,"is_primary":true,"label":"not found"}}],"children":[]}}"#
            );
            return Err(errors::rustc_error(&json, &krate, function, &source, cell, plain));
        }
        let wrapper = if function.name.starts_with("broken") { "fn BROKEN() {}\n".to_string() } else { format!("fn {}() {{}}\n", function.name) };
        Ok(Compiled { name: function.name.clone(), krate, wrapper, seconds: Some(0.5), library: PathBuf::from("/nowhere/lib.so"), device: None })
    }

    fn naive(&self, function: &JitFn, _deps: &[&JitFn], _uses: &[String], _cell: &str) -> Result<Compiled, CellError> {
        Err(CellError::new("JitError", format!("naive {}", function.name)))
    }
}

fn layer(fake: Fake) -> JitBackend<Fake, FakeCompiler> {
    JitBackend::new(fake, FakeCompiler::default(), PathBuf::from("/cache/runtime/0"))
}

/// Runs `code`; returns the result and what the cell printed.
fn run(jit: &mut JitBackend<Fake, FakeCompiler>, code: &str) -> (Result<Option<MimeBundle>, CellError>, String) {
    let printed = std::sync::Mutex::new(String::new());
    let sink = |o: LiveOutput| {
        if let LiveOutput::Stdout(text) = o {
            printed.lock().unwrap().push_str(&text);
        }
    };
    let result = jit.execute(code, &sink);
    (result, printed.into_inner().unwrap())
}

/// Runs each cell; each must succeed.
fn cells(jit: &mut JitBackend<Fake, FakeCompiler>, codes: &[&str]) {
    for code in codes {
        run(jit, code).0.unwrap_or_else(|e| panic!("{code}: {e:?}"));
    }
}

fn calls(jit: &JitBackend<Fake, FakeCompiler>) -> Vec<Call> {
    jit.inner.calls()
}

const ADD: &str = "#[jit]\nfn add(a: f64, b: f64) -> f64 {\n    a + b\n}";

#[test]
fn a_jit_function_is_split_off_and_the_rest_runs_with_lines_kept() {
    let mut jit = layer(Fake::default());
    let (result, printed) = run(&mut jit, &format!("let x = 1;\n{ADD}\nx + 1"));
    assert_eq!(printed, "jit: compiled add in 0.50 s\n");
    assert_eq!(jit.compiler.asked.borrow().iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["add"]);
    let calls = calls(&jit);
    assert_eq!(calls.len(), 1);
    // The function is blanked, its lines kept, so errors in the rest keep their cell lines.
    assert_eq!(calls[0].code.lines().count(), 6);
    assert_eq!(calls[0].code.lines().next(), Some("let x = 1;"));
    assert_eq!(calls[0].code.lines().last(), Some("x + 1"));
    assert!(!calls[0].code.contains("fn add"));
    assert!(result.is_ok());
}

#[test]
fn glue_and_the_runtime_go_in_front_of_the_next_cell_once() {
    let mut jit = layer(Fake::default());
    let (result, _) = run(&mut jit, ADD);
    assert_eq!(result, Ok(None));
    assert!(calls(&jit).is_empty(), "a cell of only jit functions compiles nothing else");
    run(&mut jit, "add(1.0, 2.0)").0.unwrap();
    run(&mut jit, "3").0.unwrap();
    let calls = calls(&jit);
    assert_eq!(calls[0].code, "add(1.0, 2.0)");
    assert!(calls[0].front.starts_with(RUNTIME_PRELUDE), "{:?}", calls[0].front);
    assert!(calls[0].front.ends_with("fn add() {}\n"), "{:?}", calls[0].front);
    assert!(calls[0].dependency, "the runtime joins the session with the glue");
    assert_eq!((calls[1].front.as_str(), calls[1].dependency), ("", false), "both go once");
}

#[test]
fn the_runtime_joins_with_the_first_cell_that_names_it() {
    let mut jit = layer(Fake::default());
    cells(&mut jit, &["1 + 1", "Array2::<f64>::zeros((2, 2))", "Array1::<f64>::zeros(2)"]);
    let fronts: Vec<(String, bool)> = calls(&jit).into_iter().map(|c| (c.front, c.dependency)).collect();
    assert_eq!(fronts, [(String::new(), false), (RUNTIME_PRELUDE.to_string(), true), (String::new(), false)]);
}

#[test]
fn a_cell_that_fails_keeps_the_glue_for_the_next() {
    let mut jit = layer(Fake::default());
    run(&mut jit, ADD).0.unwrap();
    assert_eq!(run(&mut jit, "fail").0.unwrap_err().ename, "CompilationError");
    run(&mut jit, "add(1.0, 2.0)").0.unwrap();
    let calls = calls(&jit);
    assert!(calls[1].front.contains("fn add() {}"), "{:?}", calls[1].front);
}

#[test]
fn a_name_from_a_plain_cell_is_the_nopython_error() {
    let mut jit = layer(Fake { items: vec!["helper".into()], variables: vec!["scale".into()], ..Fake::default() });
    let cell = "#[jit]\nfn f(x: f64) -> f64 {\n    helper(x)\n}";
    let error = run(&mut jit, cell).0.unwrap_err();
    assert_eq!(error.ename, "JitError");
    assert!(error.evalue.starts_with("`helper` is defined in a plain cell, and #[jit] function `f` cannot use it"), "{}", error.evalue);
    let error = run(&mut jit, "#[jit]\nfn g(x: f64) -> f64 {\n    x * scale\n}").0.unwrap_err();
    assert!(error.evalue.starts_with("`scale` is defined in a plain cell"), "{}", error.evalue);
    assert!(calls(&jit).is_empty(), "nothing of the cell runs");
    // A jit function of that name is no plain name.
    cells(&mut jit, &["#[jit]\nfn helper(x: f64) -> f64 {\n    x\n}", cell]);
}

#[test]
fn a_redefinition_replaces_the_function_that_later_ones_compile_in() {
    let mut jit = layer(Fake::default());
    let inner = |value: &str| format!("#[jit]\nfn inner() -> f64 {{\n    {value}\n}}");
    cells(&mut jit, &[&inner("1.0"), &inner("2.0"), "#[jit]\nfn outer() -> f64 {\n    inner() + 1.0\n}"]);
    let asked = jit.compiler.asked.borrow();
    let outer = asked.iter().find(|a| a.name == "outer").unwrap();
    assert_eq!(outer.deps.len(), 1);
    assert!(outer.deps[0].1.contains("2.0") && !outer.deps[0].1.contains("1.0"), "{:?}", outer.deps);
}

#[test]
fn functions_of_one_cell_compile_callees_first() {
    let mut jit = layer(Fake::default());
    let cell = "#[jit]\nfn top() -> f64 {\n    mid() + 1.0\n}\n#[jit]\nfn mid() -> f64 {\n    low() * 2.0\n}\n#[jit]\nfn low() -> f64 {\n    3.0\n}";
    run(&mut jit, cell).0.unwrap();
    let asked = jit.compiler.asked.borrow();
    assert_eq!(asked.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["low", "mid", "top"]);
    let top = &asked[2];
    assert_eq!(top.deps.iter().map(|d| d.0.as_str()).collect::<Vec<_>>(), ["low", "mid"], "callees of callees too");
    assert!(asked[0].body.contains("3.0"));
}

#[test]
fn a_wrapper_that_does_not_compile_in_a_cell_is_dropped() {
    let mut jit = layer(Fake::default());
    run(&mut jit, "#[jit]\nfn broken_one() -> f64 {\n    1.0\n}").0.unwrap();
    let error = run(&mut jit, "1 + 1").0.unwrap_err();
    assert_eq!(error.ename, "CompilationError");
    assert!(error.evalue.starts_with("a #[jit] function compiled, but cells cannot call it (cannot find type `Broken`)"), "{}", error.evalue);
    run(&mut jit, "2 + 2").0.unwrap();
    assert!(!calls(&jit)[1].front.contains("BROKEN"), "dropped");
}

#[test]
fn use_items_of_cells_that_compiled_reach_jit_functions() {
    let mut jit = layer(Fake::default());
    run(&mut jit, "use std::f64::consts::PI;\nuse my_crate::Thing;").0.unwrap();
    run(&mut jit, "use std::collections::HashMap;\nfail").0.unwrap_err();
    run(&mut jit, &format!("use std::f32::consts::E;\n{ADD}")).0.unwrap();
    let asked = jit.compiler.asked.borrow();
    assert_eq!(asked[0].uses, ["use std::f64::consts::PI;", "use std::f32::consts::E;"], "allowed roots only; not from a failed cell");
}

#[test]
fn an_interrupted_compile_runs_nothing_and_loses_nothing() {
    let mut jit = layer(Fake { interrupt_compiles: true, ..Fake::default() });
    let error = run(&mut jit, &format!("{ADD}\nadd(1.0, 2.0)")).0.unwrap_err();
    assert_eq!(error.ename, "Interrupted");
    assert!(error.evalue.contains("Nothing was lost"), "{}", error.evalue);
    assert!(calls(&jit).is_empty());
}

#[test]
fn a_codegen_error_points_at_the_cell() {
    let mut jit = layer(Fake::default());
    let error = run(&mut jit, "#[jit(fastmath)]\nfn f() {}").0.unwrap_err();
    assert_eq!(error.ename, "JitError");
    assert!(error.evalue.contains("(cell line 1)"), "{}", error.evalue);
}

#[test]
fn later_uses_replace_earlier_ones_of_the_same_name() {
    let uses = merged_uses(&["use std::f64::consts::PI;".into(), "use std::collections::HashMap;".into()], &[
        "use std::f32::consts::PI;".into(),
        "use my_crate::Thing;".into(),
    ]);
    assert_eq!(uses, vec!["use std::collections::HashMap;".to_string(), "use std::f32::consts::PI;".to_string()]);
}

#[test]
fn jit_magics_find_jit_plain_and_unknown_functions() {
    let mut jit = layer(Fake { variables: vec!["x".into()], ..Fake::default() });
    let parallel = "#[jit(parallel)]\nfn p(a: &Array2<f64>) -> Array2<f64> {\n    let mut t = 0.0;\n    for i in prange(0..3) {\n        t += 1.0;\n    }\n    a * t\n}";
    cells(&mut jit, &[parallel, "fn plain_one() -> f64 {\n    1.0\n}"]);
    let sink = |_: LiveOutput| {};
    assert_eq!(jit.compiled_code("plain_one", false, &sink), Ok(Found::Plain));
    assert_eq!(jit.jit_report("plain_one"), Ok(Found::Plain));
    let naive = jit.compiled_code("plain_one", true, &sink).unwrap_err();
    assert_eq!(naive.evalue, "naive plain_one", "a plain function compiles for its naive listing");
    assert_eq!(jit.compiled_code("nope", false, &sink).unwrap_err().ename, "NameError");
    assert!(jit.jit_report("x").unwrap_err().evalue.contains("is a variable"));
    // The fake compiler keeps no listing: a clear error, not a panic.
    let missing = jit.compiled_code("p", false, &sink).unwrap_err();
    assert!(missing.evalue.contains("not in the cache"), "{}", missing.evalue);
    let Ok(Found::Jit(report)) = jit.jit_report("p") else { panic!() };
    assert_eq!((report.what.as_str(), report.parallel, report.from_cache), ("#[jit(parallel)]", true, false));
    let lines: Vec<(usize, bool, &str)> = report.sites.iter().map(|s| (s.line, s.parallel, s.code.as_str())).collect();
    assert_eq!(lines, [(4, true, "for i in prange(0..3)"), (7, false, "a * t")]);
    assert!(report.sites[1].what.contains("not recorded"), "no build record: no verdict");
    // A plain definition replaces a jit one of the same name.
    cells(&mut jit, &["fn p() {}"]);
    assert_eq!(jit.jit_report("p"), Ok(Found::Plain));
}

#[test]
fn the_warm_up_joins_the_runtime_once_and_later_cells_do_not() {
    let mut jit = layer(Fake::default());
    jit.warm_up();
    jit.warm_up();
    cells(&mut jit, &["Array2::<f64>::zeros((2, 2))"]);
    let calls = calls(&jit);
    assert_eq!(calls.len(), 2, "one warm-up, one cell");
    assert_eq!((calls[0].code.as_str(), calls[0].front.as_str(), calls[0].dependency), (WARM_UP, RUNTIME_PRELUDE, true));
    assert_eq!((calls[1].front.as_str(), calls[1].dependency), ("", false), "the runtime is there already");
    // A failed warm-up leaves the work to the first cell.
    let mut failing = layer(Fake { fail_all: true, ..Fake::default() });
    failing.warm_up();
    assert!(!failing.runtime_joined);
}
