//! `gati-X.manifest.json`, the release as data (schema: `docs/release-manifest.schema.json`):
//! the version in both spellings, the commit, the tag, the time; per service the registry,
//! repository, tags, index digest and, per platform, the manifest digest, sizes and
//! attestation digests; the package files with sha256, size and index URL; the changelog
//! section; the steps' timings.
//!
//! The same [`world`] reading makes `cargo xtask verify X --json`: what the registry and the
//! index serve now, in the same structure, so "what we released" and "what users get" diff
//! field by field. Only `time`, `changelog` and `timings` are the release's own; everything
//! else is world-facing. The workflow reads the manifest with `jq`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use super::Release;
use crate::{
    images::attest::{ATTESTATION_MANIFEST, REFERENCE_DIGEST, REFERENCE_TYPE},
    model::{changelog, config::Config, tags, version::ReleaseVersion},
    ops::interrupt,
    python::{index::PROJECT, IndexFile},
    registry::Registry,
};

/// Raised whenever a field changes meaning or goes; adding a field keeps it.
pub const SCHEMA_VERSION: u64 = 1;

/// The fields that are the release's own, not the world's: left out of `verify --json`.
#[cfg(test)]
const RELEASE_ONLY: [&str; 3] = ["time", "changelog", "timings"];

/// The file name among the release files.
pub fn file_name(version: &ReleaseVersion) -> String {
    format!("gati-{}.manifest.json", version.pep440())
}

/// What the registry and the index serve of `version` now (`verify X --json`): the tags listed
/// are those of the release's tags (`X.Y.Z`, `X.Y`, `latest`) that name its index.
pub fn world(registry: &Registry, config: &Config, version: &ReleaseVersion) -> anyhow::Result<Value> {
    let mut services = Vec::new();
    let mut commit = None;
    for service in &config.services {
        let (value, revision) = service_on_registry(registry, config, service, version, None)?;
        services.push(value);
        commit = commit.or(revision);
    }
    let files = listed_files(&config.index_simple, version)?;
    Ok(document(version, commit, services, package(config, files)))
}

/// The manifest of `release`, written among its release files: the registry read now (every
/// image is pushed), the floating tags this release moved, the package as built and as the
/// index lists it, the changelog section and `timings` (step, seconds, how).
pub fn write(release: &Release, timings: &[(&str, f64, &str)]) -> anyhow::Result<PathBuf> {
    let (plan, version) = (&release.plan, &release.version);
    let moved = crate::images::floating_moves(plan)?.moving;
    let mut planned = plan.tags.immutable.clone();
    planned.extend(plan.tags.floating.iter().filter(|t| moved.contains(t)).cloned());
    let config = &plan.config;
    let mut services = Vec::new();
    for service in &config.services {
        services.push(service_on_registry(plan.registry(), config, service, version, Some(&planned))?.0);
    }
    let listed = listed_files(&config.index_simple, version)?;
    let mut files = Vec::new();
    let names = crate::python::index::dist_names(&version.pep440());
    // Only the package's files: a signer may have left its attestations beside them.
    for built in IndexFile::of_dir(release.sh, &release.files.dist)?.into_iter().filter(|f| names.contains(&f.name)) {
        let size = std::fs::metadata(release.files.dist.join(&built.name))?.len();
        let url = listed.iter().find(|f| f.name == built.name).map(|f| f.url.clone()).unwrap_or_default();
        files.push(Listed { name: built.name, sha256: built.sha256, size, url });
    }
    let commit = crate::ops::git::local_tag(release.sh, &release.tag).or(Some(plan.head.commit.clone()));
    let mut manifest = document(version, commit, services, package(config, files));
    let recorded = release.sh.read_file(changelog::CHANGELOG).ok().and_then(|c| changelog::section_of(&c, version));
    manifest["time"] = json!(now_utc());
    manifest["changelog"] = json!(recorded.unwrap_or_default());
    manifest["timings"] =
        timings.iter().map(|(step, seconds, how)| json!({"step": step, "seconds": seconds, "how": how})).collect();
    let dir = &release.files.release;
    std::fs::create_dir_all(dir)?;
    let path = dir.join(file_name(version));
    let temporary = dir.join(format!(".{}.new", file_name(version)));
    std::fs::write(&temporary, serde_json::to_vec_pretty(&manifest)?)?;
    std::fs::rename(&temporary, &path)?;
    Ok(path)
}

/// The world-facing fields of a manifest: what `verify --json` prints.
#[cfg(test)]
fn world_facing(manifest: &Value) -> Value {
    let mut facing = manifest.clone();
    if let Some(fields) = facing.as_object_mut() {
        for field in RELEASE_ONLY {
            fields.remove(field);
        }
    }
    facing
}

fn document(version: &ReleaseVersion, commit: Option<String>, services: Vec<Value>, package: Value) -> Value {
    json!({
        "schema_version": SCHEMA_VERSION,
        "version": {"semver": version.to_string(), "pep440": version.pep440()},
        "tag": format!("v{version}"),
        "commit": commit,
        "services": services,
        "package": package,
    })
}

fn package(config: &Config, files: Vec<Listed>) -> Value {
    let files: Vec<Value> =
        files.into_iter().map(|f| json!({"name": f.name, "sha256": f.sha256, "size": f.size, "url": f.url})).collect();
    json!({"name": PROJECT, "index": project_page(&config.index_simple), "files": files})
}

fn project_page(index_simple: &str) -> String {
    format!("{}/{PROJECT}/", index_simple.trim_end_matches('/'))
}

/// One service's index of `version` as the registry serves it, and its revision label. The
/// tags are `tags` when given (the release's), else those of the version's that name the index.
fn service_on_registry(
    registry: &Registry,
    config: &Config,
    service: &str,
    version: &ReleaseVersion,
    tags: Option<&[String]>,
) -> anyhow::Result<(Value, Option<String>)> {
    let repo = format!("{}/gati-{service}", config.namespace);
    let immutable = version.to_string();
    let remote = (registry.remote(&repo, &immutable)?)
        .with_context(|| format!("{}/{repo}:{immutable} is not on the registry", config.registry))?;
    let (_, index) = (registry.manifest(&repo, &remote.digest)?)
        .with_context(|| format!("{}/{repo}@{}: gone while read", config.registry, remote.digest))?;
    let tags = match tags {
        Some(tags) => tags.to_vec(),
        None => {
            let candidates = tags::for_build(version, None);
            let mut naming = Vec::new();
            for tag in candidates.immutable.iter().chain(&candidates.floating) {
                if registry.digest(&repo, tag)?.as_deref() == Some(remote.digest.as_str()) {
                    naming.push(tag.clone());
                }
            }
            naming
        }
    };
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    let mut platforms = Vec::new();
    for entry in entries.iter().filter(|e| e["annotations"][REFERENCE_TYPE] != ATTESTATION_MANIFEST) {
        let digest = entry["digest"].as_str().unwrap_or_default();
        let (_, manifest) = (registry.manifest(&repo, digest)?)
            .with_context(|| format!("{}/{repo}: the index names {digest}, which is missing", config.registry))?;
        let layers: u64 = manifest["layers"].as_array().into_iter().flatten().filter_map(|l| l["size"].as_u64()).sum();
        let attestations: Vec<&str> = (entries.iter())
            .filter(|e| e["annotations"][REFERENCE_TYPE] == ATTESTATION_MANIFEST)
            .filter(|e| e["annotations"][REFERENCE_DIGEST] == digest)
            .filter_map(|e| e["digest"].as_str())
            .collect();
        let platform = &entry["platform"];
        platforms.push(json!({
            "platform": format!("{}/{}", platform["os"].as_str().unwrap_or("?"), platform["architecture"].as_str().unwrap_or("?")),
            "manifest_digest": digest,
            "manifest_size": entry["size"].as_u64().unwrap_or(0),
            "config_size": manifest["config"]["size"].as_u64().unwrap_or(0),
            "layers_size": layers,
            "attestations": attestations,
        }));
    }
    let value = json!({
        "service": service,
        "registry": config.registry,
        "repository": repo,
        "tags": tags,
        "index_digest": remote.digest,
        "platforms": platforms,
    });
    Ok((value, remote.revision))
}

/// A file of the package as the index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub sha256: String,
    pub size: u64,
    /// Where the index serves it.
    pub url: String,
}

/// The wheel and sdist of `version` the index lists, each with its size (downloaded when the
/// listing does not say it, as PEP 503 pages do not).
fn listed_files(index_simple: &str, version: &ReleaseVersion) -> anyhow::Result<Vec<Listed>> {
    let page = project_page(index_simple);
    let names = crate::python::index::dist_names(&version.pep440());
    let listing = simple_page(&page)?;
    let mut files = Vec::new();
    for file in listing.files.into_iter().filter(|f| names.contains(&f.name)) {
        let size = match file.size {
            Some(size) => size,
            None => download_size(&file.url)?,
        };
        files.push(Listed { name: file.name, sha256: file.sha256, size, url: file.url });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// One file of a simple API page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleFile {
    pub name: String,
    pub sha256: String,
    /// Absolute.
    pub url: String,
    pub size: Option<u64>,
    /// PEP 691's `yanked`: `Some(reason)` (possibly empty) when yanked. Only JSON answers say.
    pub yanked: Option<String>,
}

/// A project's simple API page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimplePage {
    /// Whether the index answered PEP 691's JSON (which says what is yanked); HTML otherwise.
    pub json: bool,
    pub files: Vec<SimpleFile>,
}

const SIMPLE_JSON: &str = "application/vnd.pypi.simple.v1+json";

/// `page` asked for PEP 691's JSON first, PEP 503's HTML otherwise; none when it is a 404.
pub fn simple_page(page: &str) -> anyhow::Result<SimplePage> {
    let written = "\n%{http_code} %{content_type}";
    let output = interrupt::output(
        duct::cmd!(
            "curl",
            "--silent",
            "--show-error",
            "--location",
            "--max-time",
            "30",
            "--header",
            format!("Accept: {SIMPLE_JSON}, text/html;q=0.1"),
            "--write-out",
            written,
            page
        )
        .stdout_capture()
        .stderr_capture()
        .unchecked(),
    )?;
    if !output.status.success() {
        bail!("the index at {page} is not answering: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let (body, status_line) = text.rsplit_once('\n').unwrap_or(("", &text));
    let (status, content_type) = status_line.split_once(' ').unwrap_or((status_line, ""));
    match status {
        "404" => Ok(SimplePage { json: false, files: vec![] }),
        "200" if content_type.starts_with(SIMPLE_JSON) => Ok(SimplePage { json: true, files: json_files(body, page)? }),
        "200" => Ok(SimplePage { json: false, files: html_files(body, page) }),
        status => bail!("the index at {page} answered HTTP {status}"),
    }
}

/// The files of a PEP 691 answer (`yanked` is `false`, `true` or the reason).
fn json_files(body: &str, page: &str) -> anyhow::Result<Vec<SimpleFile>> {
    let answer: Value = serde_json::from_str(body).with_context(|| format!("the JSON answer of {page}"))?;
    Ok((answer["files"].as_array().into_iter().flatten())
        .filter_map(|f| {
            let yanked = match &f["yanked"] {
                Value::Bool(true) => Some(String::new()),
                Value::String(reason) => Some(reason.clone()),
                _ => None,
            };
            Some(SimpleFile {
                name: f["filename"].as_str()?.to_string(),
                sha256: f["hashes"]["sha256"].as_str()?.to_string(),
                url: absolute(page, f["url"].as_str()?),
                size: f["size"].as_u64(),
                yanked,
            })
        })
        .collect())
}

/// `<a href="…/name#sha256=hex">` links of a PEP 503 page.
fn html_files(html: &str, page: &str) -> Vec<SimpleFile> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| {
            let href = &rest[..rest.find('"')?];
            let (path, hash) = href.split_once("#sha256=")?;
            let name = path.rsplit('/').next()?.to_string();
            Some(SimpleFile { name, sha256: hash.to_string(), url: absolute(page, path), size: None, yanked: None })
        })
        .collect()
}

/// `href` resolved against `page` (an absolute URL, a path from the host, or a relative path).
fn absolute(page: &str, href: &str) -> String {
    if href.contains("://") {
        return href.to_string();
    }
    let (scheme, rest) = page.split_once("://").unwrap_or(("http", page));
    let host = rest.split('/').next().unwrap_or(rest);
    if let Some(path) = href.strip_prefix('/') {
        return format!("{scheme}://{host}/{path}");
    }
    let mut segments: Vec<&str> = rest[host.len()..].split('/').filter(|s| !s.is_empty()).collect();
    if !page.ends_with('/') {
        segments.pop();
    }
    for part in href.split('/') {
        match part {
            ".." => {
                segments.pop();
            }
            "." | "" => {}
            part => segments.push(part),
        }
    }
    format!("{scheme}://{host}/{}", segments.join("/"))
}

/// The size of what `url` serves, downloaded and counted (nothing is kept).
fn download_size(url: &str) -> anyhow::Result<u64> {
    let output = interrupt::output(
        duct::cmd!(
            "curl",
            "--silent",
            "--show-error",
            "--fail",
            "--location",
            "--max-time",
            "120",
            "--output",
            "/dev/null",
            "--write-out",
            "%{size_download}",
            url
        )
        .stdout_capture()
        .stderr_capture()
        .unchecked(),
    )?;
    if !output.status.success() {
        bail!("downloading {url}: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    String::from_utf8_lossy(&output.stdout).trim().parse().with_context(|| format!("the size of {url}"))
}

/// Now, UTC, `2026-05-01T12:00:00Z` (from `date`: no clock crate for one line).
fn now_utc() -> String {
    duct::cmd!("date", "-u", "+%Y-%m-%dT%H:%M:%SZ").read().unwrap_or_default()
}

/// Whether the manifest of `version` is among the kept release files.
pub fn kept(files: &Path, version: &ReleaseVersion) -> bool {
    files.join(file_name(version)).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hrefs_resolve_against_the_page() {
        let page = "http://127.0.0.1:8080/simple/gati/";
        assert_eq!(absolute(page, "/packages/gati-1.tar.gz"), "http://127.0.0.1:8080/packages/gati-1.tar.gz");
        assert_eq!(absolute(page, "../../packages/gati-1.tar.gz"), "http://127.0.0.1:8080/packages/gati-1.tar.gz");
        assert_eq!(absolute(page, "https://files.example/a/b.whl"), "https://files.example/a/b.whl");
    }

    #[test]
    fn a_json_page_says_what_is_yanked_and_an_html_page_cannot() {
        let json = r#"{"meta": {"api-version": "1.1"}, "name": "gati", "files": [
            {"filename": "gati-0.1.2-py3-none-any.whl", "url": "https://files.example/w", "hashes": {"sha256": "aa"},
             "size": 12, "yanked": "crashes on start"},
            {"filename": "gati-0.1.1.tar.gz", "url": "/p/gati-0.1.1.tar.gz", "hashes": {"sha256": "bb"}, "yanked": false}]}"#;
        let files = json_files(json, "https://pypi.org/simple/gati/").unwrap();
        assert_eq!(files[0].yanked.as_deref(), Some("crashes on start"));
        assert_eq!(files[0].size, Some(12));
        assert_eq!((files[1].yanked.clone(), files[1].url.as_str()), (None, "https://pypi.org/p/gati-0.1.1.tar.gz"));
        let html = r#"<a href="/packages/gati-0.1.2.tar.gz#sha256=cc">gati-0.1.2.tar.gz</a>"#;
        let files = html_files(html, "http://127.0.0.1:1/simple/gati/");
        assert_eq!(files[0].url, "http://127.0.0.1:1/packages/gati-0.1.2.tar.gz");
        assert_eq!(files[0].yanked, None);
    }

    #[test]
    fn the_world_facing_fields_leave_out_the_releases_own() {
        let manifest = json!({"schema_version": 1, "tag": "v1.0.0", "time": "t", "changelog": "c", "timings": []});
        assert_eq!(world_facing(&manifest), json!({"schema_version": 1, "tag": "v1.0.0"}));
    }
}
