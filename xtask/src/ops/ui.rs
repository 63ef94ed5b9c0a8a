//! The dashboard's npm packages (Chart.js), which `dashboard/build.rs` bundles into the binary.
//!
//! `provision` runs `npm ci` in `dashboard/` when `node_modules/` does not hold exactly what
//! `package-lock.json` pins — by the same rule build.rs refuses a build by, so a build after it
//! never fails on the packages — like `provision::python_tools` installs the pinned Python
//! tools. Call it before any cargo build or test that compiles gati-dashboard. A fresh clone
//! needs it once (seconds, from npm's cache or the registry); afterwards it reads two files.

use std::path::Path;

use anyhow::Context;
use serde_json::Value;
use xshell::{cmd, Shell};

const DASHBOARD: &str = "dashboard";

pub fn provision(sh: &Shell) -> anyhow::Result<()> {
    let dir = sh.current_dir().join(DASHBOARD);
    if installed(&dir)? {
        return Ok(());
    }
    if cmd!(sh, "npm --version").quiet().ignore_stdout().ignore_stderr().run().is_err() {
        crate::ops::provision::debian_packages(sh, &["nodejs", "npm"])?;
    }
    eprintln!("installing the dashboard's npm packages from {DASHBOARD}/package-lock.json (npm ci)");
    cmd!(sh, "npm ci --prefix {dir} --no-audit --no-fund --loglevel=error")
        .run()
        .context("installing the dashboard's npm packages: `npm ci --prefix dashboard` failed")?;
    anyhow::ensure!(installed(&dir)?, "`npm ci` left {DASHBOARD}/node_modules unlike {DASHBOARD}/package-lock.json");
    Ok(())
}

/// Whether `node_modules/` holds what the lockfile pins: npm's record of what it installed
/// (`node_modules/.package-lock.json`) has every package at the lockfile's version and integrity.
fn installed(dir: &Path) -> anyhow::Result<bool> {
    let lockfile = dir.join("package-lock.json");
    let text = std::fs::read_to_string(&lockfile).with_context(|| format!("reading {}", lockfile.display()))?;
    let wanted: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", lockfile.display()))?;
    let Ok(text) = std::fs::read_to_string(dir.join("node_modules").join(".package-lock.json")) else {
        return Ok(false);
    };
    Ok(serde_json::from_str(&text).is_ok_and(|have: Value| matches(&wanted, &have)))
}

fn matches(wanted: &Value, installed: &Value) -> bool {
    let Some(wanted) = wanted["packages"].as_object() else { return false };
    wanted.iter().filter(|(path, _)| !path.is_empty()).all(|(path, pinned)| {
        let have = &installed["packages"][path];
        have["version"] == pinned["version"] && have["integrity"] == pinned["integrity"]
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn node_modules_match_the_lockfile_by_version_and_integrity() {
        let lock = json!({"packages": {"": {"name": "ui"}, "node_modules/chart.js": {"version": "4.6.1", "integrity": "sha512-a"}}});
        let same = json!({"packages": {"node_modules/chart.js": {"version": "4.6.1", "integrity": "sha512-a"}}});
        assert!(super::matches(&lock, &same));
        let older = json!({"packages": {"node_modules/chart.js": {"version": "4.5.0", "integrity": "sha512-b"}}});
        assert!(!super::matches(&lock, &older));
        assert!(!super::matches(&lock, &json!({"packages": {}})));
        assert!(!super::matches(&json!({}), &same), "a lockfile without packages proves nothing");
    }
}
