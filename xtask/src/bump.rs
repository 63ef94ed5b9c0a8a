//! `cargo xtask bump` and `cargo xtask version`: one version, every surface, never half-written.

use std::path::Path;

use anyhow::bail;
use xshell::Shell;

use crate::{
    flags,
    model::surfaces::{self, Surfaces},
    ops::exec::{Executor, Mode},
};

impl flags::Bump {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let config = crate::model::config::load_default(sh)?;
        self.bump_tree(&sh.current_dir(), &config.services, &Executor::new(Mode::dry_run_if(self.dry_run)))
    }

    /// Bumps the surfaces under `root`, every change through `exec` (a dry run shows the diffs).
    pub fn bump_tree(&self, root: &Path, services: &[String], exec: &Executor) -> anyhow::Result<()> {
        exec.after(|| {
            if surfaces::recover(root)? {
                exec.say("finished an interrupted bump: every surface had been written before it stopped\n");
            }
            Ok(())
        })?;
        let found = Surfaces::read(root)?;
        let current = found.current(services)?;
        let new = current.bump(&self.to)?;
        if new <= current && !self.allow_downgrade {
            bail!(
                "{new} is not greater than the current version {current}; \
                 pass --allow-downgrade to write it anyway"
            );
        }
        let edits = found.edits(services, &new)?;
        let changed: Vec<&str> = edits.iter().filter(|e| e.before != e.after).map(|e| e.path).collect();
        for edit in edits.iter().filter(|e| e.before != e.after) {
            exec.preview(|| surfaces::unified_diff(edit));
        }
        exec.run(&format!("write {}", changed.join(", ")), || surfaces::write_all(root, &edits))?;
        exec.finish(
            || exec.say(&format!("{current} -> {new} (Python: {})\n", new.pep440())),
            &format!("Run `cargo xtask bump {}` to write it.", self.to),
        );
        Ok(())
    }
}

impl flags::Version {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let config = crate::model::config::load_default(sh)?;
        let found = Surfaces::read(&sh.current_dir())?;
        for (file, what, value) in found.found(&config.services)? {
            println!("{file:<28} {what:<32} {value}");
        }
        let current = found.current(&config.services)?;
        println!("\nversion {current} (Python: {})", current.pep440());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Golden tests on copies of the real surface files (`test-data/bump/`), and one test per
    //! refusal proving that every file is left as it was.

    use std::path::{Path, PathBuf};

    use crate::{
        flags,
        model::surfaces,
        ops::exec::{Executor, Mode},
    };

    const FILES: [&str; 4] = [surfaces::VERSION_PY, surfaces::COMPOSE, surfaces::CARGO_TOML, surfaces::CARGO_LOCK];

    fn services() -> Vec<String> {
        ["backend", "dashboard", "mcp-server"].map(String::from).into()
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("test-data/bump").join(name)
    }

    /// A scratch copy of the `before` tree, with `change` applied to one file.
    fn tree(test: &str, change: Option<(&str, &dyn Fn(String) -> String)>) -> PathBuf {
        let root = std::env::temp_dir().join(format!("xtask-bump-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for file in FILES {
            let mut text = std::fs::read_to_string(fixture("before").join(file)).unwrap();
            if let Some((path, f)) = &change {
                if *path == file {
                    text = f(text);
                }
            }
            std::fs::create_dir_all(root.join(file).parent().unwrap()).unwrap();
            std::fs::write(root.join(file), text).unwrap();
        }
        root
    }

    fn snapshot(root: &Path) -> Vec<String> {
        FILES.iter().map(|f| std::fs::read_to_string(root.join(f)).unwrap()).collect()
    }

    fn bump(to: &str) -> flags::Bump {
        flags::Bump { to: to.into(), dry_run: false, allow_downgrade: false }
    }

    #[test]
    fn golden_bump_to_a_release_candidate() {
        let root = tree("golden", None);
        let exec = Executor::capturing(Mode::Run);
        bump("0.2.0rc1").bump_tree(&root, &services(), &exec).unwrap();
        assert_eq!(
            exec.captured(),
            "$ write sdk/gati/version.py, sdk/gati/docker-compose.yml, Cargo.toml, Cargo.lock\n\
             0.1.0 -> 0.2.0-rc.1 (Python: 0.2.0rc1)\n"
        );
        for file in FILES {
            let want = std::fs::read_to_string(fixture("after").join(file)).unwrap();
            assert!(
                std::fs::read_to_string(root.join(file)).unwrap() == want,
                "{file} differs from test-data/bump/after/{file}"
            );
        }
        assert!(!root.join("target").join("xtask-bump-complete").exists());
    }

    #[test]
    fn dry_run_prints_diffs_and_writes_nothing() {
        let root = tree("dry-run", None);
        let before = snapshot(&root);
        let exec = Executor::capturing(Mode::DryRun);
        flags::Bump { dry_run: true, ..bump("minor") }.bump_tree(&root, &services(), &exec).unwrap();
        let report = exec.captured();
        assert!(report.contains("-__version__ = \"0.1.0\"\n+__version__ = \"0.2.0\"\n"), "{report}");
        assert!(report.contains("+++ b/Cargo.lock\n"), "{report}");
        assert!(report.contains("$ write sdk/gati/version.py") && report.contains("dry run: nothing was changed"));
        assert_eq!(snapshot(&root), before);
    }

    /// A file of the tree and how a case edits it before the bump.
    type Edit<'a> = (&'a str, &'a dyn Fn(String) -> String);

    #[test]
    fn refusals_leave_every_file_unchanged() {
        let cases: Vec<(&str, &str, Option<Edit>, &str)> = vec![
            ("lower", "0.0.9", None, "not greater than the current version 0.1.0"),
            ("same", "0.1.0", None, "not greater than the current version 0.1.0"),
            ("invalid", "1.2.0-foo", None, "only alpha.N, beta.N and rc.N"),
            ("metadata", "1.2.0+x", None, "build metadata"),
            (
                "disagree",
                "patch",
                Some((surfaces::VERSION_PY, &|t: String| t.replace("0.1.0", "0.1.5"))),
                "sdk/gati/version.py          __version__                      0.1.5",
            ),
            (
                "no-service",
                "patch",
                Some((surfaces::COMPOSE, &|t: String| t.replace("gati-dashboard:", "other-dashboard:"))),
                "no `image: …/gati-dashboard:<version>` line",
            ),
            (
                "twice",
                "patch",
                Some((surfaces::COMPOSE, &|t: String| t.replace("gati-dashboard:", "gati-backend:"))),
                "image gati-backend is named twice",
            ),
            (
                "two-versions",
                "patch",
                Some((surfaces::VERSION_PY, &|t: String| t + "__version__ = \"0.1.0\"\n")),
                "expected exactly one `__version__",
            ),
            (
                "no-version",
                "patch",
                Some((surfaces::VERSION_PY, &|t: String| t.replace("__version__", "VERSION"))),
                "found 0",
            ),
            (
                "bad-toml",
                "patch",
                Some((surfaces::CARGO_TOML, &|t: String| t.replace("[workspace.package]", "[workspace.package"))),
                "Cargo.toml is not valid TOML",
            ),
            ("already-released", "release", None, "0.1.0 is already a release"),
        ];
        for (name, to, change, message) in cases {
            let root = tree(name, change);
            let before = snapshot(&root);
            let err = format!("{:#}", bump(to).bump_tree(&root, &services(), &Executor::new(Mode::Run)).unwrap_err());
            assert!(err.contains(message), "{name}: {err}");
            assert_eq!(snapshot(&root), before, "{name} changed a file");
        }
    }

    #[test]
    fn an_interrupted_write_is_finished_or_discarded() {
        // Interrupted after every temporary and the marker were written: the next run finishes.
        let root = tree("interrupted", None);
        let found = surfaces::Surfaces::read(&root).unwrap();
        let new = crate::model::version::ReleaseVersion::parse("0.2.0-rc.1").unwrap();
        let edits = found.edits(&services(), &new).unwrap();
        for edit in &edits {
            let path = root.join(edit.path);
            let temp = path.with_file_name(format!(".{}.xtask-new", path.file_name().unwrap().to_string_lossy()));
            std::fs::write(temp, &edit.after).unwrap();
        }
        std::fs::create_dir_all(root.join("target")).unwrap();
        std::fs::write(root.join("target/xtask-bump-complete"), FILES.join("\n")).unwrap();
        // Simulate the crash after the first rename.
        std::fs::rename(root.join("sdk/gati/.version.py.xtask-new"), root.join(surfaces::VERSION_PY)).unwrap();
        assert!(surfaces::recover(&root).unwrap());
        let after: Vec<String> =
            FILES.iter().map(|f| std::fs::read_to_string(fixture("after").join(f)).unwrap()).collect();
        assert_eq!(snapshot(&root), after);

        // Interrupted while writing temporaries (no marker): they are discarded, the tree is old.
        let root = tree("interrupted-early", None);
        let before = snapshot(&root);
        std::fs::write(root.join("sdk/gati/.version.py.xtask-new"), "__version__ = \"9.9").unwrap();
        assert!(!surfaces::recover(&root).unwrap());
        assert_eq!(snapshot(&root), before);
        assert!(!root.join("sdk/gati/.version.py.xtask-new").exists());
    }
}
