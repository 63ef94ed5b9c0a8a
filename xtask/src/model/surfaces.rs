//! The version surfaces: every file that spells the release version. They are read and checked
//! to agree before anything acts, and rewritten together: each edit touches exactly the spans
//! it expects, is re-read to prove the result, and every file is replaced atomically.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use toml_edit::DocumentMut;

use crate::model::version::ReleaseVersion;

pub const VERSION_PY: &str = "sdk/gati/version.py";
pub const COMPOSE: &str = "sdk/gati/docker-compose.yml";
pub const CARGO_TOML: &str = "Cargo.toml";
pub const CARGO_LOCK: &str = "Cargo.lock";

/// The text of each surface file, as read.
#[derive(Debug, Clone)]
pub struct Surfaces {
    pub version_py: String,
    pub compose: String,
    pub cargo_toml: String,
    pub cargo_lock: String,
}

/// A file's new content, not yet written.
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    pub path: &'static str,
    pub before: String,
    pub after: String,
}

impl Surfaces {
    pub fn read(root: &Path) -> anyhow::Result<Surfaces> {
        let read = |path: &str| std::fs::read_to_string(root.join(path)).with_context(|| format!("reading {path}"));
        Ok(Surfaces {
            version_py: read(VERSION_PY)?,
            compose: read(COMPOSE)?,
            cargo_toml: read(CARGO_TOML)?,
            cargo_lock: read(CARGO_LOCK)?,
        })
    }

    /// What each surface holds: `(file, what, value)`, one row per version it spells.
    pub fn found(&self, services: &[String]) -> anyhow::Result<Vec<(&'static str, String, String)>> {
        let mut rows = vec![(VERSION_PY, "__version__".to_string(), version_py_value(&self.version_py)?.1)];
        for (service, span) in compose_tags(&self.compose, services)? {
            rows.push((COMPOSE, format!("gati-{service} image tag"), self.compose[span].to_string()));
        }
        rows.push((CARGO_TOML, "[workspace.package] version".into(), workspace_version(&self.cargo_toml)?));
        for (package, version) in lock_versions(&self.cargo_lock)? {
            rows.push((CARGO_LOCK, format!("package {package}"), version));
        }
        Ok(rows)
    }

    /// The version every surface agrees on; otherwise an error naming each file and value.
    pub fn current(&self, services: &[String]) -> anyhow::Result<ReleaseVersion> {
        let rows = self.found(services)?;
        let parsed: Vec<Option<ReleaseVersion>> = rows.iter().map(|(_, _, v)| ReleaseVersion::parse(v).ok()).collect();
        if parsed[0].is_some() && parsed.iter().all(|p| p == &parsed[0]) {
            return Ok(parsed[0].clone().unwrap());
        }
        let table: Vec<String> =
            rows.iter().map(|(file, what, value)| format!("  {file:<28} {what:<32} {value}")).collect();
        bail!(
            "the version surfaces disagree:\n{}\nmake them agree with `cargo xtask bump <VERSION> --allow-downgrade` \
             (it rewrites every one), or fix the odd file by hand",
            table.join("\n")
        )
    }

    /// The edits that write `new` into every surface. Each one states how many spans it changes.
    pub fn edits(&self, services: &[String], new: &ReleaseVersion) -> anyhow::Result<Vec<Edit>> {
        let semver = new.to_string();
        let pep440 = new.pep440();

        let (span, _) = version_py_value(&self.version_py)?;
        let version_py = replace_spans(&self.version_py, &[span], &pep440);
        expect_value(VERSION_PY, &version_py_value(&version_py)?.1, &pep440)?;

        let spans: Vec<_> = compose_tags(&self.compose, services)?.into_iter().map(|(_, span)| span).collect();
        let compose = replace_spans(&self.compose, &spans, &semver);
        let written = compose_tags(&compose, services)?;
        if written.len() != services.len() || written.iter().any(|(_, s)| compose[s.clone()] != semver) {
            bail!("{COMPOSE}: rewriting {} image tags did not give {} tags of {semver}", spans.len(), services.len());
        }

        let mut doc: DocumentMut =
            self.cargo_toml.parse().with_context(|| format!("{CARGO_TOML} is not valid TOML"))?;
        let item = &mut doc["workspace"]["package"]["version"];
        let Some(value) = item.as_value_mut() else { bail!("{CARGO_TOML}: [workspace.package] version is missing") };
        let decor = value.decor().clone();
        *value = toml_edit::Value::from(semver.as_str());
        *value.decor_mut() = decor;
        let cargo_toml = doc.to_string();
        expect_value(CARGO_TOML, &workspace_version(&cargo_toml)?, &semver)?;

        let mut lock: DocumentMut =
            self.cargo_lock.parse().with_context(|| format!("{CARGO_LOCK} is not valid TOML"))?;
        let members = lock_versions(&self.cargo_lock)?.len();
        let packages = lock["package"].as_array_of_tables_mut().context("Cargo.lock has no [[package]]")?;
        for package in packages.iter_mut().filter(|p| is_released(p)) {
            let decor = package["version"].as_value().map(|v| v.decor().clone()).unwrap_or_default();
            package["version"] = toml_edit::value(semver.as_str());
            *package["version"].as_value_mut().unwrap().decor_mut() = decor;
        }
        let cargo_lock = lock.to_string();
        let rewritten = lock_versions(&cargo_lock)?;
        if rewritten.len() != members || rewritten.iter().any(|(_, v)| *v != semver) {
            bail!("{CARGO_LOCK}: expected {members} workspace packages at {semver} after the edit");
        }

        Ok([
            (VERSION_PY, &self.version_py, version_py),
            (COMPOSE, &self.compose, compose),
            (CARGO_TOML, &self.cargo_toml, cargo_toml),
            (CARGO_LOCK, &self.cargo_lock, cargo_lock),
        ]
        .into_iter()
        .map(|(path, before, after)| Edit { path, before: before.clone(), after })
        .collect())
    }
}

fn expect_value(file: &str, found: &str, want: &str) -> anyhow::Result<()> {
    if found != want {
        bail!("{file}: after the edit it holds {found:?}, not {want:?}; nothing was written");
    }
    Ok(())
}

fn replace_spans(text: &str, spans: &[std::ops::Range<usize>], with: &str) -> String {
    let mut sorted = spans.to_vec();
    sorted.sort_by_key(|s| s.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for span in sorted {
        out.push_str(&text[at..span.start]);
        out.push_str(with);
        at = span.end;
    }
    out.push_str(&text[at..]);
    out
}

/// The span and value of the string in the one `__version__ = "…"` line.
fn version_py_value(text: &str) -> anyhow::Result<(std::ops::Range<usize>, String)> {
    let mut found = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_end();
        if let Some(rest) = trimmed.strip_prefix("__version__") {
            let rest = rest.trim_start();
            let value = rest.strip_prefix('=').map(str::trim).and_then(|v| {
                let quote = v.chars().next().filter(|q| *q == '"' || *q == '\'')?;
                let inner = v.strip_prefix(quote)?.strip_suffix(quote)?;
                (!inner.contains(quote) && !inner.contains('\\')).then_some(inner)
            });
            let Some(value) = value else {
                bail!("{VERSION_PY}: `{trimmed}` is not of the form __version__ = \"X.Y.Z\"; write it so");
            };
            let start = offset + line.find(value).unwrap();
            found.push((start..start + value.len(), value.to_string()));
        }
        offset += line.len();
    }
    match found.len() {
        1 => Ok(found.pop().unwrap()),
        n => bail!("{VERSION_PY}: expected exactly one `__version__ = \"X.Y.Z\"` line, found {n}; keep exactly one"),
    }
}

/// For each configured service, the span of its image tag in the compose file: exactly one
/// `image: …/gati-<service>:<tag>` each, and no gati image that is not configured.
fn compose_tags(text: &str, services: &[String]) -> anyhow::Result<Vec<(String, std::ops::Range<usize>)>> {
    let mut found: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    let mut offset = 0;
    for (number, line) in text.split_inclusive('\n').enumerate() {
        let content = line.trim_end();
        if let Some(value) = content.trim_start().strip_prefix("image:") {
            let value = value.trim().trim_matches(['"', '\'']);
            let last = value.rsplit('/').next().unwrap_or(value);
            if let Some(image) = last.strip_prefix("gati-") {
                let Some((service, tag)) = image.split_once(':') else {
                    bail!(
                        "{COMPOSE} line {}: image {value:?} has no tag; pin it as gati-{image}:<version>",
                        number + 1
                    );
                };
                if !services.iter().any(|s| s == service) {
                    bail!(
                        "{COMPOSE} line {}: image gati-{service} is not a configured service ({})",
                        number + 1,
                        services.join(", ")
                    );
                }
                if found.iter().any(|(s, _)| s == service) {
                    bail!("{COMPOSE} line {}: image gati-{service} is named twice; keep one", number + 1);
                }
                let start = offset + content.rfind(tag).unwrap();
                found.push((service.to_string(), start..start + tag.len()));
            }
        }
        offset += line.len();
    }
    for service in services {
        if !found.iter().any(|(s, _)| s == service) {
            bail!("{COMPOSE}: no `image: …/gati-{service}:<version>` line; add the {service} service");
        }
    }
    Ok(found)
}

fn workspace_version(text: &str) -> anyhow::Result<String> {
    let doc: DocumentMut = text.parse().with_context(|| format!("{CARGO_TOML} is not valid TOML"))?;
    doc.get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .with_context(|| format!("{CARGO_TOML}: [workspace.package] version is missing; add version = \"X.Y.Z\""))
}

/// The workspace's released packages in Cargo.lock: local (no `source`) and named `gati-*`.
/// xtask keeps a version of its own, so that a bump does not recompile the automation.
fn is_released(package: &toml_edit::Table) -> bool {
    package.get("source").is_none()
        && package.get("name").and_then(|n| n.as_str()).is_some_and(|n| n.starts_with("gati-"))
}

/// `(name, version)` of the released packages in Cargo.lock.
fn lock_versions(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    let doc: DocumentMut = text.parse().with_context(|| format!("{CARGO_LOCK} is not valid TOML"))?;
    let packages = doc.get("package").and_then(|p| p.as_array_of_tables()).with_context(|| {
        format!("{CARGO_LOCK} has no [[package]] entries; regenerate it with `cargo generate-lockfile`")
    })?;
    Ok(packages
        .iter()
        .filter(|p| is_released(p))
        .filter_map(|p| Some((p.get("name")?.as_str()?.to_owned(), p.get("version")?.as_str()?.to_owned())))
        .collect())
}

/// Replaces every file or none: all temporaries are written and synced first; a marker then
/// says the set is complete, and the renames follow. [`recover`] finishes or discards an
/// interrupted set, so the tree is always the old one or the new one.
pub fn write_all(root: &Path, edits: &[Edit]) -> anyhow::Result<()> {
    recover(root)?;
    let mut temps = Vec::new();
    for edit in edits.iter().filter(|e| e.before != e.after) {
        let temp = temp_path(root, edit.path);
        write_synced(&temp, &edit.after)?;
        temps.push(edit.path);
    }
    // The marker itself appears atomically: a half-written list must never be read.
    let marker = marker(root);
    let marker_temp = marker.with_extension("new");
    write_synced(&marker_temp, &temps.join("\n"))?;
    std::fs::rename(&marker_temp, &marker)?;
    recover(root)?;
    Ok(())
}

/// Completes an interrupted [`write_all`]: with the marker, every temporary is complete and is
/// renamed into place; without it, stray temporaries are partial and removed.
pub fn recover(root: &Path) -> anyhow::Result<bool> {
    let marker = marker(root);
    let complete = std::fs::read_to_string(&marker).ok();
    let mut finished = false;
    for path in [VERSION_PY, COMPOSE, CARGO_TOML, CARGO_LOCK] {
        let temp = temp_path(root, path);
        if !temp.exists() {
            continue;
        }
        if complete.as_deref().is_some_and(|list| list.lines().any(|l| l == path)) {
            std::fs::rename(&temp, root.join(path)).with_context(|| format!("replacing {path}"))?;
            finished = true;
        } else {
            std::fs::remove_file(&temp).with_context(|| format!("removing {}", temp.display()))?;
        }
    }
    if complete.is_some() {
        std::fs::remove_file(&marker)?;
    }
    let _ = std::fs::remove_file(marker.with_extension("new"));
    Ok(finished)
}

fn temp_path(root: &Path, path: &str) -> PathBuf {
    let path = root.join(path);
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    path.with_file_name(format!(".{name}.xtask-new"))
}

fn marker(root: &Path) -> PathBuf {
    root.join("target").join("xtask-bump-complete")
}

fn write_synced(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// A unified diff of an edit. Surface edits replace spans inside lines, so both sides have the
/// same lines and each hunk is the changed lines with three lines of context.
pub fn unified_diff(edit: &Edit) -> String {
    let before: Vec<&str> = edit.before.lines().collect();
    let after: Vec<&str> = edit.after.lines().collect();
    let mut out = format!("--- a/{0}\n+++ b/{0}\n", edit.path);
    if before.len() != after.len() {
        out.push_str(&format!("@@ -1,{} +1,{} @@\n", before.len(), after.len()));
        before.iter().for_each(|l| out.push_str(&format!("-{l}\n")));
        after.iter().for_each(|l| out.push_str(&format!("+{l}\n")));
        return out;
    }
    let changed: Vec<usize> = (0..before.len()).filter(|&i| before[i] != after[i]).collect();
    let mut i = 0;
    while i < changed.len() {
        // Changes closer than seven lines share a hunk.
        let mut j = i;
        while j + 1 < changed.len() && changed[j + 1] - changed[j] <= 6 {
            j += 1;
        }
        let start = changed[i].saturating_sub(3);
        let end = (changed[j] + 4).min(before.len());
        out.push_str(&format!("@@ -{0},{1} +{0},{1} @@\n", start + 1, end - start));
        for k in start..end {
            if before[k] == after[k] {
                out.push_str(&format!(" {}\n", before[k]));
            } else {
                out.push_str(&format!("-{}\n+{}\n", before[k], after[k]));
            }
        }
        i = j + 1;
    }
    out
}
