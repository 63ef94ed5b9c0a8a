//! `cargo xtask bump` and `cargo xtask version`: one version, every surface, never half-written.

use anyhow::bail;
use xshell::Shell;

use crate::{
    config::{Config, Overrides},
    flags,
    surfaces::{self, Surfaces},
};

pub fn load_config(sh: &Shell) -> anyhow::Result<Config> {
    let cargo_toml = sh.read_file(crate::config::CONFIG_FILE)?;
    Config::load(
        &cargo_toml,
        |k| std::env::var(k).ok(),
        &Overrides::default(),
    )
}

impl flags::Bump {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let root = sh.current_dir();
        if surfaces::recover(&root)? {
            eprintln!("finished an interrupted bump: every surface was written before it stopped");
        }
        let config = load_config(sh)?;
        let found = Surfaces::read(&root)?;
        let current = found.current(&config.services)?;
        let new = current.bump(&self.to)?;
        if new <= current && !self.allow_downgrade {
            bail!(
                "{new} is not greater than the current version {current}; \
                 pass --allow-downgrade to write it anyway"
            );
        }
        let edits = found.edits(&config.services, &new)?;
        if self.dry_run {
            for edit in edits.iter().filter(|e| e.before != e.after) {
                print!("{}", surfaces::unified_diff(edit));
            }
            println!(
                "dry run: nothing was written; run `cargo xtask bump {}` to write it",
                self.to
            );
            return Ok(());
        }
        surfaces::write_all(&root, &edits)?;
        let files: Vec<&str> = edits
            .iter()
            .filter(|e| e.before != e.after)
            .map(|e| e.path)
            .collect();
        println!(
            "{current} -> {new} (Python: {}) in {}",
            new.pep440(),
            files.join(", ")
        );
        Ok(())
    }
}

impl flags::Version {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let config = load_config(sh)?;
        let found = Surfaces::read(&sh.current_dir())?;
        for (file, what, value) in found.found(&config.services)? {
            println!("{file:<28} {what:<32} {value}");
        }
        let current = found.current(&config.services)?;
        println!("\nversion {current} (Python: {})", current.pep440());
        Ok(())
    }
}
