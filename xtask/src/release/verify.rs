//! verify: the release from outside, as a user meets it (`cargo xtask verify X`): the index,
//! the pinned digests, pip install, gati start. Read-only, and proven only by doing it: a
//! finished release is not verified again (`cargo xtask verify X` does that); a resumed one is.

use super::{Release, Step};
use crate::python::IndexFile;

pub struct Verify;

impl Step for Verify {
    fn name(&self) -> &'static str {
        "verify"
    }

    fn describe(&self) -> &'static str {
        "from outside, as a user: index, pinned digests, pip install, gati start"
    }

    /// Everything is published when verify fails: what remains is to find out why.
    fn continued_by(&self, release: &Release) -> Option<String> {
        Some(format!("cargo xtask verify {}", release.version))
    }

    fn is_done(&self, _: &Release, _commit: &str) -> anyhow::Result<bool> {
        Ok(false)
    }

    fn run(&self, release: &mut Release) -> anyhow::Result<()> {
        let what = format!(
            "cargo xtask verify {}   # the index, the pinned digests, pip install, gati start",
            release.version
        );
        release.exec.run(&what, || {
            let expected = crate::verify::Expected {
                revision: Some(crate::ops::git::head(release.sh)?),
                files: IndexFile::of_dir(release.sh, &release.files.dist)?,
                rebuild: false,
            };
            crate::verify::verify(release.sh, &release.python, &release.config, &release.version, &expected)
        })?;
        Ok(())
    }
}
