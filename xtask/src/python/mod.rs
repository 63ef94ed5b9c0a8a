//! The Python side of a release: the package ([`package`]), the index's simple API
//! ([`index`]), and twine ([`twine`]). The tools come from the project's pinned environment
//! (`.tools/venv`).

pub mod index;
pub mod package;
pub mod twine;

use std::path::Path;

use anyhow::Context;
use xshell::{cmd, Shell};

/// A file of the package, as the index lists it and as the release built it: name and sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    pub name: String,
    pub sha256: String,
}

impl IndexFile {
    /// The files in `dir`, each with its sha256, sorted by name.
    pub fn of_dir(sh: &Shell, dir: &Path) -> anyhow::Result<Vec<IndexFile>> {
        let mut files = Vec::new();
        for path in sh.read_dir(dir)? {
            let name = path.file_name().context("a file without a name")?.to_string_lossy().into_owned();
            files.push(IndexFile { name, sha256: sha256(sh, &path)? });
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(files)
    }
}

pub fn sha256(sh: &Shell, path: &Path) -> anyhow::Result<String> {
    let out = cmd!(sh, "sha256sum {path}").quiet().read()?;
    Ok(out.split_whitespace().next().context("sha256sum printed nothing")?.to_string())
}

/// Which of `modules` `python` cannot import (found without importing them: one fast start).
pub fn missing_modules(python: &Path, modules: &[&str]) -> anyhow::Result<Vec<String>> {
    const SCRIPT: &str =
        "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] if not importlib.util.find_spec(m)))";
    let out = duct::cmd(python, ["-c", SCRIPT].iter().copied().chain(modules.iter().copied()))
        .read()
        .with_context(|| format!("starting {}", python.display()))?;
    Ok(out.split_whitespace().map(String::from).collect())
}
