//! The release journal: how long each step took, and the few results the world cannot show
//! (the image id the smoke test passed), in the repository's ignored state directory,
//! rewritten atomically. A cache, not the truth: the release proves each step done from git,
//! the registry and the index, and a machine without a journal continues a release the same.

use std::path::{Path, PathBuf};

use anyhow::Context;
use toml_edit::{value, DocumentMut};

pub struct Journal {
    path: PathBuf,
    doc: DocumentMut,
}

impl Journal {
    /// The journal of `version`'s release, empty if there is none yet.
    pub fn open(state_dir: &Path, version: &str) -> anyhow::Result<Journal> {
        let path = state_dir.join(format!("release-{version}.toml"));
        let doc = match std::fs::read_to_string(&path) {
            Ok(text) => {
                text.parse().with_context(|| format!("{} is damaged; delete it to start over", path.display()))?
            }
            Err(_) => DocumentMut::new(),
        };
        Ok(Journal { path, doc })
    }

    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// The proof recorded for `step`, if it completed.
    pub fn proof(&self, step: &str) -> Option<&str> {
        self.doc.get("steps")?.get(step)?.as_str()
    }

    pub fn record(&mut self, step: &str, proof: &str) -> anyhow::Result<()> {
        if !self.doc.contains_key("steps") {
            self.doc["steps"] = toml_edit::table();
        }
        self.doc["steps"][step] = value(proof);
        self.save()
    }

    /// This machine began a release that it has not seen finish (its last step never timed).
    pub fn unfinished(&self) -> bool {
        self.exists() && self.seconds("push-git").is_none()
    }

    /// Records how long `what` took (a step, or a part of one such as `compile`).
    pub fn time(&mut self, what: &str, seconds: f64) -> anyhow::Result<()> {
        if !self.doc.contains_key("seconds") {
            self.doc["seconds"] = toml_edit::table();
        }
        self.doc["seconds"][what] = value((seconds * 100.0).round() / 100.0);
        self.save()
    }

    pub fn seconds(&self, step: &str) -> Option<f64> {
        self.doc.get("seconds")?.get(step)?.as_float()
    }

    /// Written to a temporary file and renamed: a crash leaves the old journal or the new one.
    pub fn save(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(self.path.parent().unwrap())?;
        let temp = self.path.with_extension("toml.new");
        std::fs::write(&temp, self.doc.to_string())?;
        std::fs::rename(&temp, &self.path).with_context(|| format!("saving {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_a_reopen() {
        let dir = std::env::temp_dir().join(format!("xtask-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut journal = Journal::open(&dir, "0.1.1").unwrap();
        assert!(!journal.exists() && journal.proof("bump").is_none());
        journal.record("bump", "commit abc").unwrap();
        journal.time("bump", 0.123).unwrap();
        let mut again = Journal::open(&dir, "0.1.1").unwrap();
        assert_eq!((again.proof("bump"), again.seconds("bump")), (Some("commit abc"), Some(0.12)));
        assert!(again.unfinished());
        again.time("push-git", 1.0).unwrap();
        assert!(!Journal::open(&dir, "0.1.1").unwrap().unfinished());
    }
}
