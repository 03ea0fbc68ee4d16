//! `install`'s build of a cache, so that no learner's kernel builds what it holds: the session
//! crate and its dependencies (saved as the seed, [`crate::workspace`]), the runtime's release
//! build for `#[jit]`, and the notebooks named with `--prepare`, run once from top to bottom
//! through the kernel's own dispatch (magics included) as a learner would run them: their
//! `:dep` lines are built with the same features, in the same order, and their `#[jit]` and
//! `#[vectorize]` functions are compiled into the cache with the same keys a learner's run
//! computes. A cell that fails is reported and the run goes on. Last, a session starts from the
//! seed as a learner's first kernel does, so rust-analyzer's questions to cargo have their answers
//! in the cache (`cargo_front::answers`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use jupyter_protocol::{Channel, ExecuteRequest, JupyterMessage, JupyterMessageContent};

use crate::backend::{discard, Backend, CellError};
use crate::cache::Caches;
use crate::dispatch::{Outbox, Shell};
use crate::setup::{self, Toolchain};
use crate::workspace;

/// What a build did.
#[derive(Debug)]
pub struct Built {
    pub took: Duration,
    pub notebooks: Vec<NotebookRun>,
}

/// One prepared notebook.
#[derive(Debug)]
pub struct NotebookRun {
    pub path: PathBuf,
    pub cells: usize,
    /// (the cell's number among the code cells, from 1; `ename: evalue`)
    pub failed: Vec<(usize, String)>,
}

/// Builds the cache `cache` (its own, as a learner's kernel would) with `toolchain` and runs
/// `notebooks` in it.
pub fn build(cache: &Path, toolchain: &Toolchain, notebooks: &[PathBuf]) -> anyhow::Result<Built> {
    let started = Instant::now();
    let cells: Vec<Vec<String>> = notebooks.iter().map(|path| code_cells(path)).collect::<anyhow::Result<_>>()?;
    let caches = Caches::own_only(cache);
    let workspace = setup::prepare_environment(&caches, toolchain)?;
    let (mut backend, _) = setup::start_session(None, &caches, &workspace, toolchain, no_input())?;
    let failed = |e: CellError| anyhow::anyhow!("{}: {}", e.ename, e.evalue);
    // A plain cell, then one that brings in the runtime (cargo builds ndarray, rayon and the
    // runtime's `libjit-<hash>.so`, which cells and jit functions link).
    for cell in ["1 + 1", "Array2::<f64>::zeros((2, 2)).sum()"] {
        backend.execute(cell, &discard).map_err(failed)?;
    }
    drop(backend);
    // Each notebook in a session of its own, as a learner starts it: the dependencies a cell
    // builds depend on what the session had before (cargo unifies features), so a notebook that
    // starts with `:dep` needs its build without the runtime in the session, as learners have it.
    let mut runs = Vec::new();
    for (path, cells) in notebooks.iter().zip(cells) {
        let (backend, _) = setup::start_session(None, &caches, &workspace, toolchain, no_input())?;
        let recorder = Arc::new(Errors::default());
        let mut shell = Shell::new(backend, recorder.clone());
        let mut run = NotebookRun { path: path.clone(), cells: cells.len(), failed: Vec::new() };
        for (number, code) in cells.iter().enumerate() {
            shell.handle(&JupyterMessage::new(ExecuteRequest::new(code.clone()), None));
            if let Some(error) = recorder.take() {
                run.failed.push((number + 1, error));
            }
        }
        runs.push(run);
    }
    workspace::save_seed(cache, &workspace.build)?;
    // Once more as a learner's kernel starts, from the seed, so that what rust-analyzer asks cargo
    // then is answered from the cache at the learner's first start (`cargo_front::answers`).
    drop(setup::start_session(None, &caches, &workspace, toolchain, no_input())?);
    Ok(Built { took: started.elapsed(), notebooks: runs })
}

/// The code cells of a notebook (`.ipynb`), in order.
pub fn code_cells(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the notebook {}", path.display()))?;
    let notebook: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not a notebook (not JSON)", path.display()))?;
    let cells = notebook["cells"].as_array().with_context(|| format!("{} is not a notebook (no cells)", path.display()))?;
    Ok(cells
        .iter()
        .filter(|cell| cell["cell_type"] == "code")
        .map(|cell| match &cell["source"] {
            serde_json::Value::Array(lines) => lines.iter().filter_map(|l| l.as_str()).collect(),
            source => source.as_str().unwrap_or_default().to_string(),
        })
        .filter(|code: &String| !code.trim().is_empty())
        .collect())
}

/// The first error a cell published.
#[derive(Default)]
struct Errors(Mutex<Option<String>>);

impl Errors {
    fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl Outbox for Errors {
    fn send(&self, channel: Channel, message: JupyterMessage) {
        if let (Channel::IOPub, JupyterMessageContent::ErrorOutput(error)) = (channel, &message.content) {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(|| format!("{}: {}", error.ename, error.evalue));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_cells_of_a_notebook() {
        let dir = std::env::temp_dir().join(format!("rjk-prepare-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("n.ipynb");
        let notebook = serde_json::json!({"cells": [
            {"cell_type": "markdown", "source": "# Title"},
            {"cell_type": "code", "source": [":dep plotters\n", "1 + 1"]},
            {"cell_type": "code", "source": "  "},
            {"cell_type": "code", "source": "#[jit]\nfn f() {}"},
        ]});
        std::fs::write(&path, notebook.to_string()).unwrap();
        assert_eq!(code_cells(&path).unwrap(), [":dep plotters\n1 + 1", "#[jit]\nfn f() {}"]);
        std::fs::write(&path, "{").unwrap();
        assert!(format!("{:#}", code_cells(&path).unwrap_err()).contains("not a notebook"));
        assert!(code_cells(&dir.join("missing.ipynb")).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Prepared notebooks run without a frontend: a cell that reads stdin gets end-of-file.
fn no_input() -> Arc<crate::input::Input> {
    crate::input::Input::new(Arc::new(Discard))
}

struct Discard;

impl Outbox for Discard {
    fn send(&self, _: Channel, _: JupyterMessage) {}
}
