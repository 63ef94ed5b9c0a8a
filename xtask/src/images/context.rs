//! Build contexts: what `docker build` sees. Each is staged under `target/images/<service>`
//! with exactly what the Dockerfile copies — the binary, and empty directories it gives to the
//! image's user — so nothing else from the tree can end up in an image.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use xshell::Shell;

/// File names that likely hold a secret, and must never be inside a build context.
pub fn likely_secret(name: &str) -> bool {
    name.starts_with(".env")
        || name.ends_with(".pem")
        || name.ends_with(".key")
        || name.starts_with("id_rsa")
        || name.starts_with("id_ed25519")
        || name == ".pypirc"
        || name == ".netrc"
}

/// Every likely secret under `dir` (including `.docker/config.json`), relative to `root`.
pub fn find_secrets(root: &Path, dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_docker_config = name == "config.json" && dir.file_name().is_some_and(|d| d == ".docker");
            if path.is_dir() {
                stack.push(path);
            } else if likely_secret(&name) || is_docker_config {
                found.push(path.strip_prefix(root).unwrap_or(&path).display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// The sources of the Dockerfile's `COPY` lines: the binary, or `dir/` for an empty directory.
fn copy_sources(dockerfile: &str) -> Vec<String> {
    dockerfile
        .lines()
        .filter_map(|l| l.trim().strip_prefix("COPY "))
        .flat_map(|args| {
            let words: Vec<&str> = args.split_whitespace().filter(|w| !w.starts_with("--")).collect();
            words[..words.len().saturating_sub(1)].iter().map(|s| s.to_string()).collect::<Vec<_>>()
        })
        .collect()
}

/// Where `service`'s context is staged.
pub fn dir(sh: &Shell, service: &str) -> PathBuf {
    sh.current_dir().join("target").join("images").join(service)
}

/// Stages `service`'s context from its folder and `bin_dir`; returns the context's path.
pub fn stage(sh: &Shell, service: &str, bin_dir: &Path) -> anyhow::Result<PathBuf> {
    let root = sh.current_dir();
    let context = dir(sh, service);
    if context.exists() {
        sh.remove_path(&context)?;
    }
    sh.create_dir(&context)?;
    let binary = format!("gati-{service}");
    for file in ["Dockerfile", ".dockerignore"] {
        let from = root.join(service).join(file);
        if !from.exists() {
            bail!("{service}/{file} is missing: every service folder needs a {file}");
        }
        sh.copy_file(&from, context.join(file))?;
    }
    let dockerfile = sh.read_file(root.join(service).join("Dockerfile"))?;
    for source in copy_sources(&dockerfile) {
        if source == binary {
            sh.copy_file(bin_dir.join(&binary), context.join(&binary))
                .with_context(|| format!("staging {}: build it first", bin_dir.join(&binary).display()))?;
        } else if let Some(dir) = source.strip_suffix('/') {
            sh.create_dir(context.join(dir))?;
        } else {
            bail!(
                "{service}/Dockerfile copies {source:?}: a context holds only the binary {binary} and empty \
                 directories (written `name/`)"
            );
        }
    }
    Ok(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_likely_secrets() {
        for name in [".env", ".env.production", "server.pem", "tls.key", "id_rsa", "id_rsa.pub", ".pypirc"] {
            assert!(likely_secret(name), "{name}");
        }
        for name in ["Dockerfile", "gati-backend", "environment.md", "keys.rs"] {
            assert!(!likely_secret(name), "{name}");
        }
    }

    #[test]
    fn reads_copy_sources() {
        let dockerfile = "FROM scratch\nCOPY gati-backend /gati-backend\nCOPY --chown=1:1 data/ /data/\n";
        assert_eq!(copy_sources(dockerfile), ["gati-backend", "data/"]);
    }
}
