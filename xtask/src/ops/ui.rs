//! npm, for the one test that needs it: the dashboard's bundled packages are kept in
//! `dashboard/vendor/` (build.rs reads them from there, so cargo alone builds the dashboard),
//! and `tests/stack/test_dashboard_vendored.py` proves that `npm ci` of `package-lock.json`
//! gives the same bytes.

use xshell::{cmd, Shell};

/// npm on the PATH: the machine's own (Node comes with it), else Debian's.
pub fn npm(sh: &Shell) -> anyhow::Result<()> {
    if cmd!(sh, "npm --version").quiet().ignore_stdout().ignore_stderr().run().is_err() {
        crate::ops::provision::debian_packages(sh, &["nodejs", "npm"])?;
    }
    Ok(())
}
