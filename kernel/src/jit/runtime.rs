//! The runtime crate (`jit/runtime`, embedded in the binary): its sources written to the cache
//! for cargo to build, and the names of its prelude, which decide when it joins a session.

use std::path::PathBuf;

use crate::cache::{self, Caches};

/// The runtime's sources, written to the cache for evcxr's cargo to build as a path dependency.
const RUNTIME_FILES: [(&str, &str); 11] = [
    ("Cargo.toml", include_str!("../../../jit/runtime/Cargo.toml")),
    ("src/chart.rs", include_str!("../../../jit/runtime/src/chart.rs")),
    ("src/cuda.rs", include_str!("../../../jit/runtime/src/cuda.rs")),
    ("src/display.rs", include_str!("../../../jit/runtime/src/display.rs")),
    ("src/input.rs", include_str!("../../../jit/runtime/src/input.rs")),
    ("src/lib.rs", include_str!("../../../jit/runtime/src/lib.rs")),
    ("src/ops.rs", include_str!("../../../jit/runtime/src/ops.rs")),
    ("src/par.rs", include_str!("../../../jit/runtime/src/par.rs")),
    ("src/pool.rs", include_str!("../../../jit/runtime/src/pool.rs")),
    ("src/sweep.rs", include_str!("../../../jit/runtime/src/sweep.rs")),
    ("src/ufunc.rs", include_str!("../../../jit/runtime/src/ufunc.rs")),
];

/// Writes the runtime crate under `<cache>/runtime/<content hash>` (once) and returns its path;
/// the shared cache's copy when it has one (then the session's dependencies built there are
/// the learner's too: cargo names a path dependency by its path).
pub fn write_sources(caches: &Caches) -> std::io::Result<PathBuf> {
    let dir = caches.find(format!("runtime/{:016x}", cache::key(&RUNTIME_FILES)), "Cargo.toml");
    if !dir.join("Cargo.toml").exists() {
        cache::publish(&dir, |staging| {
            for (name, text) in RUNTIME_FILES {
                let path = staging.join(name);
                std::fs::create_dir_all(path.parent().expect("a file in a folder"))?;
                std::fs::write(path, text)?;
            }
            Ok(())
        }, |e| e)?;
    }
    Ok(dir)
}

/// Names the runtime's prelude brings into scope (ndarray 0.17's prelude, the runtime's own,
/// the re-exported crates).
const RUNTIME_NAMES: &[&str] = &[
    "ArcArray", "Array", "ArrayBase", "ArrayRef", "ArrayView", "ArrayViewMut", "CowArray", "LayoutRef", "RawArrayView",
    "RawArrayViewMut", "RawRef", "Axis", "Dim", "Dimension", "ArrayRef0", "ArrayRef1", "ArrayRef2", "ArrayRef3",
    "ArrayRef4", "ArrayRef5", "ArrayRef6", "ArrayRefD", "Array0", "Array1", "Array2", "Array3", "Array4", "Array5",
    "Array6", "ArrayD", "ArrayView0", "ArrayView1", "ArrayView2", "ArrayView3", "ArrayView4", "ArrayView5",
    "ArrayView6", "ArrayViewD", "ArrayViewMut0", "ArrayViewMut1", "ArrayViewMut2", "ArrayViewMut3", "ArrayViewMut4",
    "ArrayViewMut5", "ArrayViewMut6", "ArrayViewMutD", "Ix0", "Ix1", "Ix2", "Ix3", "Ix4", "Ix5", "Ix6", "IxDyn",
    "arr0", "arr1", "arr2", "aview0", "aview1", "aview2", "aview_mut1", "array", "azip", "s", "ShapeBuilder",
    "NewAxis", "AsArray", "NdFloat", "prange", "num_threads", "ndarray", "rayon", "jit", "cuda", "to_device",
    "DeviceArray", "Chart", "sweep",
];

/// Whether `code` names something from the runtime's prelude (words in strings and comments
/// count too: a false yes only imports the prelude early).
pub fn uses_runtime(code: &str) -> bool {
    code.split(|c: char| !(c.is_alphanumeric() || c == '_')).any(|word| RUNTIME_NAMES.contains(&word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn cells_that_use_the_runtime() {
        assert!(uses_runtime("let a = Array2::<f64>::zeros((2, 2));"));
        assert!(uses_runtime("use ndarray::Zip;"));
        assert!(uses_runtime("let v = array![1, 2];"));
        assert!(uses_runtime("for i in prange(0..4) {}"));
        assert!(!uses_runtime("let x = 1 + 1;\nfn arrays() {}"));
    }

    /// The list above has every name of ndarray's prelude (read from cargo's copy of its
    /// sources): a name it lacked would not compile in a cell that uses nothing else.
    #[test]
    fn runtime_names_cover_ndarrays_prelude() {
        let manifest = include_str!("../../../jit/runtime/Cargo.toml");
        let version = manifest.split("ndarray = { version = \"=").nth(1).and_then(|r| r.split('"').next()).expect("ndarray's pinned version");
        let home = std::env::var_os("CARGO_HOME").map(std::path::PathBuf::from).unwrap_or_else(|| Path::new(&std::env::var_os("HOME").unwrap()).join(".cargo"));
        let prelude = std::fs::read_dir(home.join("registry/src"))
            .expect("cargo's registry sources")
            .filter_map(Result::ok)
            .map(|index| index.path().join(format!("ndarray-{version}/src/prelude.rs")))
            .find(|p| p.exists())
            .expect("ndarray's sources (cargo fetched them to build the runtime)");
        let text = std::fs::read_to_string(prelude).unwrap();
        let mut seen = 0;
        for statement in text.split("pub use crate::").skip(1) {
            let statement = statement.split(';').next().unwrap();
            for name in statement.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty()) {
                assert!(RUNTIME_NAMES.contains(&name), "`{name}` from ndarray's prelude is missing in RUNTIME_NAMES");
                seen += 1;
            }
        }
        assert!(seen > 50, "read {seen} names only");
    }

    #[test]
    fn the_runtime_names_the_interrupt_flag_as_the_magics_do() {
        let sweep = include_str!("../../../jit/runtime/src/sweep.rs");
        assert!(sweep.contains(&format!("pub const INTERRUPT_FILE_VAR: &str = \"{}\";", magics::INTERRUPT_FILE_VAR)));
    }

    #[test]
    fn every_runtime_source_is_embedded() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../jit/runtime/src");
        for entry in std::fs::read_dir(src).unwrap() {
            let name = format!("src/{}", entry.unwrap().file_name().to_string_lossy());
            assert!(RUNTIME_FILES.iter().any(|(f, _)| *f == name), "{name} is missing in RUNTIME_FILES");
        }
    }
}
