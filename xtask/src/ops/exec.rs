//! The one door through which `release` and `images` change the world. Every effect — a
//! commit, a build, a push, an upload, a tag moved on the registry — is described as the
//! command a person would type (secrets masked) and printed as `$ …`, then run. A dry run
//! prints the same lines from the same code and runs nothing: the plan it shows is the plan a
//! real run carries out. Reading the world (git, the registry, the index) is not an effect:
//! both modes read it, so both decide alike.

use std::sync::Mutex;

/// Whether effects happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Print each effect, then do it.
    Run,
    /// Print each effect, do none.
    DryRun,
}

impl Mode {
    /// `--dry-run` given or not.
    pub fn dry_run_if(flag: bool) -> Mode {
        if flag {
            Mode::DryRun
        } else {
            Mode::Run
        }
    }
}

pub struct Executor {
    dry_run: bool,
    /// What it prints, kept instead (the tests of a command's output).
    captured: Option<Mutex<String>>,
}

impl Executor {
    pub fn new(mode: Mode) -> Executor {
        Executor { dry_run: mode == Mode::DryRun, captured: None }
    }

    /// An executor that keeps what it prints, for [`Executor::captured`].
    #[cfg(test)]
    pub fn capturing(mode: Mode) -> Executor {
        Executor { captured: Some(Mutex::default()), ..Executor::new(mode) }
    }

    /// What a capturing executor printed.
    #[cfg(test)]
    pub fn captured(&self) -> String {
        self.captured.as_ref().map(|c| c.lock().unwrap().clone()).unwrap_or_default()
    }

    /// Prints `text` (or keeps it, when capturing).
    pub fn say(&self, text: &str) {
        match &self.captured {
            Some(kept) => kept.lock().unwrap_or_else(|e| e.into_inner()).push_str(text),
            None => print!("{text}"),
        }
    }

    /// Shows what a dry run cannot run but a person wants to see, e.g. a file's diff; a real
    /// run does the change itself and shows nothing.
    pub fn preview(&self, text: impl FnOnce() -> String) {
        if self.dry_run {
            self.say(&text());
        }
    }

    /// Runs `check` only in a real run: what reads the result of an effect (the index listing
    /// an upload, the table of pushed digests, the journal's timings), which a dry run has not
    /// made.
    pub fn after(&self, check: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
        match self.dry_run {
            true => Ok(()),
            false => check(),
        }
    }

    /// The end of a command: `report` after a real run; after a dry run, that nothing changed
    /// and `how_to_run` it for real.
    pub fn finish(&self, report: impl FnOnce(), how_to_run: &str) {
        match self.dry_run {
            true => self.say(&format!("\ndry run: nothing was changed. {how_to_run}\n")),
            false => report(),
        }
    }

    /// Prints `what`, then runs `effect` (unless this is a dry run: then `None`).
    pub fn run<T>(&self, what: &str, effect: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<Option<T>> {
        self.run_all(&[what.to_string()], effect)
    }

    /// Like [`Executor::run`], for an effect made of several commands run together (parallel
    /// builds or pushes): each is printed, in a fixed order.
    pub fn run_all<T>(&self, what: &[String], effect: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<Option<T>> {
        for line in what {
            self.say(&format!("$ {line}\n"));
        }
        if self.dry_run {
            return Ok(None);
        }
        crate::ops::interrupt::check()?;
        effect().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dry_run_prints_the_same_commands_and_runs_nothing() {
        let ran = std::cell::Cell::new(0);
        for dry_run in [true, false] {
            let exec = Executor::new(Mode::dry_run_if(dry_run));
            let out = exec.run("git tag v1", || {
                ran.set(ran.get() + 1);
                Ok(7)
            });
            assert_eq!(out.unwrap(), (!dry_run).then_some(7));
        }
        assert_eq!(ran.get(), 1);
    }
}
