//! upload: the sdist and the wheel to the index. A file name can never be uploaded twice, so
//! only what the index lacks is sent; a file it has with our sha256 counts as uploaded, with
//! other bytes the version is burned and the release stops. Done when the index lists both
//! files, with our sha256s where this machine has the files (a machine that has not built them
//! trusts the images' proof and the reproducible build).

use anyhow::{bail, Context};

use super::{Release, Step};
use crate::python::{self, twine, IndexFile};

pub struct Upload;

impl Step for Upload {
    fn name(&self) -> &'static str {
        "upload"
    }

    fn describe(&self) -> &'static str {
        "upload what the index lacks; files it has must have our sha256"
    }

    fn publishes(&self) -> bool {
        true
    }

    fn is_done(&self, release: &Release, _commit: &str) -> anyhow::Result<bool> {
        let listed = listed(release)?;
        let ours = IndexFile::of_dir(release.sh, &release.files.dist).unwrap_or_default();
        Ok(UploadPlan::decide(&names(release), &listed).send.is_empty() && problems(&ours, &listed).is_empty())
    }

    fn run(&self, release: &mut Release) -> anyhow::Result<()> {
        let listed = listed(release)?;
        // What the index lacks is decided by name, which a dry run knows too.
        let plan = UploadPlan::decide(&names(release), &listed);
        let (sh, dist, index) = (release.sh, &release.files.dist, &release.config.index);
        release.exec.after(|| {
            let ours = IndexFile::of_dir(sh, dist)?;
            let burned = problems(&ours, &listed);
            if !burned.is_empty() {
                bail!("{}: this version is burned on the index; release a new version", burned.join("; "));
            }
            for file in &plan.present {
                println!("{} is already on the index", file.name);
            }
            Ok(())
        })?;
        if !plan.send.is_empty() {
            let source = twine::credentials_source(index).map_or("none".to_string(), |c| c.to_string());
            let attestations = match twine::pep740_signer(&release.python, index) {
                Some(signer) => format!(" with PEP 740 attestations signed by `{}`", signer.join(" ")),
                None => String::new(),
            };
            let what = format!(
                "twine upload --non-interactive --repository-url {index} {}{attestations}   # credentials: {source} (****)",
                plan.send.join(" "),
            );
            release.exec.run(&what, || {
                if let Some(missing) = plan.send.iter().map(|name| dist.join(name)).find(|p| !p.exists()) {
                    bail!("{} is missing: the package step builds it; run the same command again", missing.display());
                }
                let ours = IndexFile::of_dir(sh, dist)?;
                let files: Vec<IndexFile> =
                    plan.send.iter().filter_map(|name| ours.iter().find(|f| f.name == *name).cloned()).collect();
                let simple = &release.config.index_simple;
                twine::upload(sh, &release.python, index, simple, &files, dist)
                    .with_context(|| format!("uploading to {index}"))
            })?;
        }
        release.exec.after(|| check_listed(release))
    }
}

/// What the index must end up listing, and what it lists already, decided by file name.
#[derive(Debug, PartialEq, Eq)]
struct UploadPlan {
    /// Names the index lacks, in upload order (the reproducible wheel first).
    send: Vec<String>,
    /// Files the index lists already.
    present: Vec<IndexFile>,
}

impl UploadPlan {
    fn decide(names: &[String], listed: &[IndexFile]) -> UploadPlan {
        let find = |name: &String| listed.iter().find(|f| f.name == *name);
        UploadPlan {
            send: names.iter().filter(|n| find(n).is_none()).cloned().collect(),
            present: names.iter().filter_map(|n| find(n).cloned()).collect(),
        }
    }
}

/// Each of our files that the index lists with other bytes.
fn problems(ours: &[IndexFile], listed: &[IndexFile]) -> Vec<String> {
    let mut found = Vec::new();
    for file in ours {
        if let Some(theirs) = listed.iter().find(|l| l.name == file.name && l.sha256 != file.sha256) {
            found.push(format!(
                "the index has {} with other bytes (sha256 {}, ours {})",
                file.name, theirs.sha256, file.sha256
            ));
        }
    }
    found
}

/// After the upload: the index lists every file, with our sha256.
fn check_listed(release: &Release) -> anyhow::Result<()> {
    let listed = listed(release)?;
    let ours = IndexFile::of_dir(release.sh, &release.files.dist)?;
    let missing = UploadPlan::decide(&names(release), &listed).send;
    let wrong = problems(&ours, &listed);
    if missing.is_empty() && wrong.is_empty() {
        return Ok(());
    }
    let what: Vec<String> = missing.iter().map(|n| format!("{n} is not listed")).chain(wrong).collect();
    bail!(
        "after the upload, the index at {} does not serve what was uploaded: {}. If the index is slow to list new \
         files, run the same command again; it uploads nothing twice",
        release.config.index_simple,
        what.join("; ")
    )
}

fn names(release: &Release) -> Vec<String> {
    python::index::dist_names(&release.version.pep440()).to_vec()
}

fn listed(release: &Release) -> anyhow::Result<Vec<IndexFile>> {
    python::index::files_of_version(&release.config.index_simple, &release.version.pep440())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, sha256: &str) -> IndexFile {
        IndexFile { name: name.into(), sha256: sha256.into() }
    }

    #[test]
    fn only_what_the_index_lacks_is_sent_and_other_bytes_are_named() {
        let names = ["gati-0.1.1-py3-none-any.whl".to_string(), "gati-0.1.1.tar.gz".to_string()];
        let nothing = UploadPlan::decide(&names, &[]);
        assert_eq!((nothing.send, nothing.present), (names.to_vec(), vec![]));
        // A run stopped between the two files: only the sdist is left.
        let listed = [file("gati-0.1.1-py3-none-any.whl", "aa")];
        let partial = UploadPlan::decide(&names, &listed);
        assert_eq!((partial.send, partial.present), (vec![names[1].clone()], listed.to_vec()));
        assert_eq!(
            UploadPlan::decide(&names, &[file(&names[0], "aa"), file(&names[1], "bb")]).send,
            Vec::<String>::new()
        );

        assert!(problems(&[file(&names[0], "aa")], &listed).is_empty());
        let burned = problems(&[file(&names[0], "cc")], &listed);
        assert_eq!(burned.len(), 1);
        assert!(burned[0].contains("sha256 aa, ours cc"), "{burned:?}");
    }
}
