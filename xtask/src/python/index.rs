//! The index, as pip and PyPI see it: which files of a version it lists, with their sha256s,
//! from its simple API (PEP 691's JSON where it speaks it, PEP 503's HTML otherwise).

use anyhow::{bail, Context};

use super::IndexFile;
use crate::registry::curl::{self, Auth};

pub const PROJECT: &str = "gati";

/// The file names of a version's wheel and sdist, wheel first: it is reproducible, so an
/// interrupted upload never leaves on the index an sdist that a rebuild could not match.
pub fn dist_names(pep440: &str) -> [String; 2] {
    [format!("{PROJECT}-{pep440}-py3-none-any.whl"), format!("{PROJECT}-{pep440}.tar.gz")]
}

/// The files the index has for one version of the package: `(file name, sha256)`.
pub fn files_of_version(simple_url: &str, pep440: &str) -> anyhow::Result<Vec<IndexFile>> {
    let prefix = format!("{PROJECT}-{pep440}");
    Ok(index_files(simple_url, PROJECT)?
        .into_iter()
        .filter(|f| f.name.starts_with(&format!("{prefix}-")) || f.name == format!("{prefix}.tar.gz"))
        .collect())
}

/// PEP 691's JSON form of the simple API (PyPI's), asked for first; PEP 503's HTML otherwise.
const SIMPLE_JSON: &str = "application/vnd.pypi.simple.v1+json";

/// The files the index has for `project`: `(file name, sha256)`, from its simple API. Asked
/// again while the index fails for a passing reason (no connection, 5xx, 429).
pub fn index_files(simple_url: &str, project: &str) -> anyhow::Result<Vec<IndexFile>> {
    let url = format!("{}/{project}/", simple_url.trim_end_matches('/'));
    let accept = format!("{SIMPLE_JSON}, text/html;q=0.1");
    let what = format!("the index at {url} is not answering");
    let response = curl::retried(&what, || curl::curl("GET", &url, &[("Accept", &accept)], None, &Auth::None))?;
    let body = String::from_utf8_lossy(&response.body);
    match response.status {
        404 => Ok(vec![]),
        200 if response.header("Content-Type").is_some_and(|t| t.starts_with(SIMPLE_JSON)) => simple_json_files(&body),
        200 => Ok(simple_links(&body)),
        status => bail!("the index at {url} answered HTTP {status}"),
    }
}

/// `files[].filename` and `files[].hashes.sha256` of a PEP 691 answer.
fn simple_json_files(json: &str) -> anyhow::Result<Vec<IndexFile>> {
    let answer: serde_json::Value = serde_json::from_str(json).context("the index's JSON answer")?;
    Ok(answer["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            let name = f["filename"].as_str()?.to_string();
            Some(IndexFile { name, sha256: f["hashes"]["sha256"].as_str()?.to_string() })
        })
        .collect())
}

/// `<a href="…/name#sha256=hex">` links of a PEP 503 page.
fn simple_links(html: &str) -> Vec<IndexFile> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| {
            let href = &rest[..rest.find('"')?];
            let (path, hash) = href.split_once("#sha256=")?;
            let name = path.rsplit('/').next()?.to_string();
            Some(IndexFile { name, sha256: hash.to_string() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, sha256: &str) -> IndexFile {
        IndexFile { name: name.into(), sha256: sha256.into() }
    }

    #[test]
    fn reads_a_json_simple_index_answer() {
        let json = r#"{"meta": {"api-version": "1.1"}, "name": "gati", "files": [
            {"filename": "gati-0.0.3-py3-none-any.whl", "url": "https://files.example/a", "hashes": {"sha256": "d736"}},
            {"filename": "gati-0.0.3.tar.gz", "url": "https://files.example/b", "hashes": {}}]}"#;
        assert_eq!(simple_json_files(json).unwrap(), [file("gati-0.0.3-py3-none-any.whl", "d736")]);
    }

    #[test]
    fn reads_a_simple_index_page() {
        let html = r#"<a href="/packages/gati-0.1.0-py3-none-any.whl#sha256=d736">gati-0.1.0-py3-none-any.whl</a><br>
            <a href="https://files.example/gati-0.1.0.tar.gz#sha256=994c" data-requires-python="&gt;=3.9">x</a>"#;
        assert_eq!(
            simple_links(html),
            [file("gati-0.1.0-py3-none-any.whl", "d736"), file("gati-0.1.0.tar.gz", "994c")]
        );
    }
}
