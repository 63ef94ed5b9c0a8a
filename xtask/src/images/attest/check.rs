//! What `cargo xtask verify X` proves of an image index's attestations ([`super`]):
//! every platform image has a provenance statement and an SBOM, each about that image's
//! manifest digest; the provenance names the release's commit and the platform; the SBOM lists
//! the service's own crates; and, given the binary the image's layer holds, the binary is the
//! one the provenance names and its embedded dependency list is the SBOM's. Every problem is
//! named, with the image and the platform, all at once.
//!
//! [`read`] walks the index through a `fetch` of blobs by digest (the registry, or a map in the
//! tests); the checks are pure.

use anyhow::Context;
use serde_json::Value;

use super::{sha256, ATTESTATION_MANIFEST, CYCLONEDX, IN_TOTO, REFERENCE_DIGEST, REFERENCE_TYPE, SLSA_PROVENANCE_V1};
use crate::ops::audit;

/// One platform image of an index and the statements its attestation manifests hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Attested {
    /// `linux/arm64`.
    pub platform: String,
    /// The platform manifest's digest.
    pub manifest: String,
    pub statements: Vec<Value>,
}

impl Attested {
    /// The statements of `predicate_type`.
    fn of_type(&self, predicate_type: &str) -> Vec<&Value> {
        self.statements.iter().filter(|s| s["predicateType"] == predicate_type).collect()
    }

    /// The SBOM, where there is exactly one.
    pub fn sbom(&self) -> Option<&Value> {
        match self.of_type(CYCLONEDX)[..] {
            [statement] => Some(&statement["predicate"]),
            _ => None,
        }
    }

    /// The binary's digest (`sha256:…`) the provenance names, where there is exactly one.
    pub fn binary(&self) -> Option<String> {
        match self.of_type(SLSA_PROVENANCE_V1)[..] {
            [statement] => statement["predicate"]["runDetails"]["byproducts"][0]["digest"]["sha256"]
                .as_str()
                .map(|hex| format!("sha256:{hex}")),
            _ => None,
        }
    }
}

/// What a release's images must say of themselves.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The tag's commit.
    pub commit: &'a str,
    /// Crates the service's SBOM must list (`axum` for the backend, `rmcp` for the MCP server).
    pub crates: &'a [&'a str],
}

fn is_attestation(entry: &Value) -> bool {
    entry["annotations"][REFERENCE_TYPE] == ATTESTATION_MANIFEST
}

fn platform_of(entry: &Value) -> String {
    let platform = &entry["platform"];
    format!("{}/{}", platform["os"].as_str().unwrap_or("?"), platform["architecture"].as_str().unwrap_or("?"))
}

/// Every platform image of `index` with its statements, fetching the attestation manifests and
/// their layers by digest; and the problems of the layout itself (a blob whose bytes are not
/// its digest, an attestation manifest that refers to no image of the index).
pub fn read(
    label: &str,
    index: &[u8],
    fetch: &mut dyn FnMut(&str) -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<(Vec<Attested>, Vec<String>)> {
    let index: Value =
        serde_json::from_slice(index).with_context(|| format!("{label}: the image index is not JSON"))?;
    let entries =
        index["manifests"].as_array().with_context(|| format!("{label}: the image index lists no manifests"))?;
    let mut images: Vec<Attested> = entries
        .iter()
        .filter(|e| !is_attestation(e))
        .map(|e| Attested {
            platform: platform_of(e),
            manifest: e["digest"].as_str().unwrap_or("").into(),
            statements: vec![],
        })
        .collect();
    let mut problems = Vec::new();
    for entry in entries.iter().filter(|e| is_attestation(e)) {
        let target = entry["annotations"][REFERENCE_DIGEST].as_str().unwrap_or("");
        let Some(image) = images.iter_mut().find(|i| i.manifest == target) else {
            problems
                .push(format!("{label}: an attestation manifest refers to {target:?}, which is no image of the index"));
            continue;
        };
        let where_ = format!("{label} {}", image.platform);
        for statement in statements(&where_, entry, fetch, &mut problems)? {
            image.statements.push(statement);
        }
    }
    Ok((images, problems))
}

/// The in-toto statements of the attestation manifest that `entry` points at.
fn statements(
    where_: &str,
    entry: &Value,
    fetch: &mut dyn FnMut(&str) -> anyhow::Result<Vec<u8>>,
    problems: &mut Vec<String>,
) -> anyhow::Result<Vec<Value>> {
    let digest = entry["digest"].as_str().unwrap_or("");
    let Some(manifest) = blob(where_, digest, "attestation manifest", fetch, problems)? else { return Ok(vec![]) };
    let manifest: Value =
        serde_json::from_slice(&manifest).with_context(|| format!("{where_}: its attestation manifest"))?;
    let mut found = Vec::new();
    // Layers of other media types are for other tools: BuildKit's rule is to ignore them.
    let layers = manifest["layers"].as_array().into_iter().flatten().filter(|l| l["mediaType"] == IN_TOTO);
    for layer in layers {
        let Some(bytes) = blob(where_, layer["digest"].as_str().unwrap_or(""), "statement", fetch, problems)? else {
            continue;
        };
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(statement) => found.push(statement),
            Err(e) => problems.push(format!("{where_}: a statement that is not JSON ({e})")),
        }
    }
    Ok(found)
}

/// The blob `digest`, if its bytes are that digest's.
fn blob(
    where_: &str,
    digest: &str,
    what: &str,
    fetch: &mut dyn FnMut(&str) -> anyhow::Result<Vec<u8>>,
    problems: &mut Vec<String>,
) -> anyhow::Result<Option<Vec<u8>>> {
    let bytes = fetch(digest).with_context(|| format!("{where_}: fetching its {what} {digest}"))?;
    if sha256(&bytes) != digest {
        problems.push(format!("{where_}: the {what} served as {digest} has other bytes (sha256 {})", sha256(&bytes)));
        return Ok(None);
    }
    Ok(Some(bytes))
}

/// The problems of `images` (from [`read`]) for a release of `expected`, each naming the image
/// and platform; none when all is well.
pub fn check(label: &str, images: &[Attested], expected: &Expected) -> Vec<String> {
    let mut problems = Vec::new();
    for image in images {
        let where_ = format!("{label} {}", image.platform);
        let about_it = |s: &Value| {
            s["subject"].as_array().into_iter().flatten().any(|subject| {
                subject["digest"]["sha256"].as_str().map(|hex| format!("sha256:{hex}")).as_deref()
                    == Some(image.manifest.as_str())
            })
        };
        for (predicate_type, what) in [(SLSA_PROVENANCE_V1, "provenance statement"), (CYCLONEDX, "SBOM")] {
            let statements = image.of_type(predicate_type);
            match statements.iter().filter(|s| about_it(s)).count() {
                1 if statements.len() == 1 => {}
                0 if statements.is_empty() => {
                    problems.push(format!("{where_}: no {what} ({predicate_type}) is attached"))
                }
                0 => problems
                    .push(format!("{where_}: the {what} attached is about another image, not {}", image.manifest)),
                _ => problems
                    .push(format!("{where_}: {} statements of type {predicate_type}, one expected", statements.len())),
            }
        }
        if let [provenance] = image.of_type(SLSA_PROVENANCE_V1)[..] {
            problems.extend(provenance_problems(&where_, image, provenance, expected));
        }
        if let Some(sbom) = image.sbom() {
            match audit::unlisted(sbom, expected.crates) {
                Ok(missing) if missing.is_empty() => {}
                Ok(missing) => problems
                    .push(format!("{where_}: the SBOM lists no {} (the SBOM of another service?)", missing.join(", "))),
                Err(e) => problems.push(format!("{where_}: the SBOM: {e:#}")),
            }
        }
    }
    problems
}

fn provenance_problems(where_: &str, image: &Attested, provenance: &Value, expected: &Expected) -> Vec<String> {
    let definition = &provenance["predicate"]["buildDefinition"];
    let mut problems = Vec::new();
    let source = definition["resolvedDependencies"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["uri"].as_str().is_some_and(|u| u.starts_with("git+")));
    match source.and_then(|s| s["digest"]["gitCommit"].as_str()) {
        Some(commit) if commit == expected.commit => {}
        Some(commit) => problems
            .push(format!("{where_}: the provenance names commit {commit}, the release's is {}", expected.commit)),
        None => problems.push(format!("{where_}: the provenance names no source commit")),
    }
    let platform = definition["externalParameters"]["platform"].as_str().unwrap_or("");
    if platform != image.platform {
        problems.push(format!("{where_}: the provenance is of a build for {platform:?}"));
    }
    problems
}

/// The problems of `binary` (the bytes the image's layer holds) against the image's
/// attestations: it is the binary the provenance names, and its embedded dependency list (read
/// with rust-audit-info: `embedded`) is the SBOM's.
pub fn check_binary(label: &str, image: &Attested, binary: &[u8], embedded: &Value) -> Vec<String> {
    let where_ = format!("{label} {}", image.platform);
    let mut problems = Vec::new();
    match image.binary() {
        Some(digest) if digest == sha256(binary) => {}
        Some(digest) => {
            problems.push(format!("{where_}: the provenance names binary {digest}, the image holds {}", sha256(binary)))
        }
        None => problems.push(format!("{where_}: no provenance names the binary")),
    }
    if let Some(sbom) = image.sbom() {
        if let Err(e) = audit::agree(embedded, sbom) {
            problems.push(format!("{where_}: {e:#}"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::images::attest::{
        self, attach, attestations, canonical_json, statement, Blob, Subject, INDEX, MANIFEST,
    };

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
    const CRATES: &[&str] = &["axum"];

    struct Fixture {
        index: Blob,
        blobs: BTreeMap<String, Vec<u8>>,
        amd64: String,
        binary: Vec<u8>,
    }

    fn sbom_of(crates: &[(&str, &str)]) -> Value {
        let components: Vec<Value> =
            crates.iter().map(|(n, v)| json!({"type": "library", "name": n, "version": v})).collect();
        json!({"bomFormat": "CycloneDX", "specVersion": "1.3",
               "metadata": {"component": {"type": "application", "name": "gati-backend", "version": "0.1.0"}},
               "components": components})
    }

    fn provenance_of(platform: &str, commit: &str, binary: &[u8]) -> Value {
        json!({
            "buildDefinition": {
                "externalParameters": {"platform": platform},
                "resolvedDependencies": [
                    {"uri": "git+https://github.com/gati-dev/gati@refs/tags/v0.1.0", "digest": {"gitCommit": commit}},
                    {"name": "rustc", "uri": "pkg:generic/rustc@1.96.0"},
                ],
            },
            "runDetails": {"byproducts": [{"name": "gati-backend", "digest": {"sha256": &sha256(binary)[7..]}}]},
        })
    }

    /// An index over two platforms, each with its statements made by `statements(platform,
    /// manifest digest)`, and every blob by digest.
    fn fixture(statements: impl Fn(&str, &str) -> Vec<Value>) -> Fixture {
        let binary = b"\x7fELF the amd64 binary".to_vec();
        let platforms = [("linux/amd64", "amd64"), ("linux/arm64", "arm64")];
        let manifests: Vec<String> = platforms.iter().map(|(p, _)| attest::sha256(p.as_bytes())).collect();
        let entries: Vec<Value> = platforms
            .iter()
            .zip(&manifests)
            .map(|((_, arch), digest)| json!({"mediaType": MANIFEST, "digest": digest, "size": 1, "platform": {"os": "linux", "architecture": arch}}))
            .collect();
        let index =
            Blob::new(INDEX, canonical_json(&json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries})));
        let made: Vec<_> = platforms
            .iter()
            .zip(&manifests)
            .map(|((platform, _), digest)| attestations(digest, &statements(platform, digest)).unwrap())
            .collect();
        let index = attach(&index, &made.iter().collect::<Vec<_>>()).unwrap();
        let blobs = made.iter().flat_map(|a| a.blobs()).map(|b| (b.digest.clone(), b.bytes.clone())).collect();
        Fixture { index, blobs, amd64: manifests[0].clone(), binary }
    }

    fn good(platform: &str, digest: &str) -> Vec<Value> {
        let subject = Subject::image("gatidev/gati-backend", "0.1.0", platform, digest).unwrap();
        let binary = b"\x7fELF the amd64 binary";
        vec![
            statement(&subject, SLSA_PROVENANCE_V1, provenance_of(platform, COMMIT, binary)),
            statement(&subject, CYCLONEDX, sbom_of(&[("axum", "0.8.4"), ("tokio", "1.47.1")])),
        ]
    }

    fn problems_of(fixture: &Fixture, crates: &[&str]) -> Vec<String> {
        let mut fetch = |digest: &str| fixture.blobs.get(digest).cloned().context("no such blob");
        let (images, mut problems) = read("gatidev/gati-backend:0.1.0", &fixture.index.bytes, &mut fetch).unwrap();
        problems.extend(check("gatidev/gati-backend:0.1.0", &images, &Expected { commit: COMMIT, crates }));
        problems
    }

    #[test]
    fn a_release_index_with_its_attestations_passes() {
        let fixture = fixture(good);
        assert_eq!(problems_of(&fixture, CRATES), Vec::<String>::new());
    }

    #[test]
    fn a_missing_attestation_is_named_with_its_image_and_platform() {
        let fixture =
            fixture(|platform, digest| if platform == "linux/arm64" { vec![] } else { good(platform, digest) });
        let problems = problems_of(&fixture, CRATES);
        assert_eq!(
            problems,
            [
                "gatidev/gati-backend:0.1.0 linux/arm64: no provenance statement (https://slsa.dev/provenance/v1) is attached",
                "gatidev/gati-backend:0.1.0 linux/arm64: no SBOM (https://cyclonedx.org/bom) is attached",
            ]
        );
    }

    #[test]
    fn a_statement_about_another_image_or_commit_is_named() {
        let fixture = fixture(|platform, digest| {
            let mut statements = good(platform, digest);
            if platform == "linux/amd64" {
                statements[0]["subject"][0]["digest"]["sha256"] = "ab".repeat(32).into();
                statements[1]["predicate"] = sbom_of(&[("rmcp", "0.3.0")]);
            } else {
                statements[0]["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]["gitCommit"] =
                    "f".repeat(40).into();
            }
            statements
        });
        let problems = problems_of(&fixture, CRATES).join("\n");
        assert!(
            problems.contains("linux/amd64: the provenance statement attached is about another image, not sha256:"),
            "{problems}"
        );
        assert!(problems.contains("linux/amd64: the SBOM lists no axum (the SBOM of another service?)"), "{problems}");
        assert!(
            problems.contains(&format!(
                "linux/arm64: the provenance names commit {}, the release's is {COMMIT}",
                "f".repeat(40)
            )),
            "{problems}"
        );
        assert_eq!(problems.lines().count(), 3, "{problems}");
    }

    #[test]
    fn a_provenance_of_another_platform_is_named() {
        let fixture = fixture(|platform, digest| {
            let mut statements = good(platform, digest);
            statements[0]["predicate"]["buildDefinition"]["externalParameters"]["platform"] = "linux/amd64".into();
            statements
        });
        assert_eq!(
            problems_of(&fixture, CRATES),
            ["gatidev/gati-backend:0.1.0 linux/arm64: the provenance is of a build for \"linux/amd64\""]
        );
    }

    #[test]
    fn a_blob_served_with_other_bytes_is_named() {
        let mut fixture = fixture(good);
        let statement =
            fixture.blobs.iter().find(|(_, b)| b.starts_with(b"{\"_type\"")).map(|(d, _)| d.clone()).unwrap();
        fixture.blobs.get_mut(&statement).unwrap().push(b' ');
        let problems = problems_of(&fixture, CRATES).join("\n");
        assert!(problems.contains(&format!("the statement served as {statement} has other bytes")), "{problems}");
    }

    #[test]
    fn the_binary_must_be_the_provenances_and_its_list_the_sboms() {
        let fixture = fixture(good);
        let mut fetch = |digest: &str| fixture.blobs.get(digest).cloned().context("no such blob");
        let (images, _) = read("b", &fixture.index.bytes, &mut fetch).unwrap();
        let amd64 = images.iter().find(|i| i.manifest == fixture.amd64).unwrap();
        let embedded = json!({"packages": [
            {"name": "gati-backend", "version": "0.1.0", "root": true},
            {"name": "axum", "version": "0.8.4"},
            {"name": "tokio", "version": "1.47.1"},
        ]});
        assert_eq!(check_binary("b", amd64, &fixture.binary, &embedded), Vec::<String>::new());
        let other = check_binary(
            "b",
            amd64,
            b"another binary",
            &json!({"packages": [{"name": "gati-backend", "version": "0.1.0", "root": true}]}),
        );
        assert_eq!(other.len(), 2, "{other:?}");
        assert!(other[0].starts_with("b linux/amd64: the provenance names binary sha256:"), "{other:?}");
        assert!(other[1].contains("in the SBOM only: [axum 0.8.4, tokio 1.47.1]"), "{other:?}");
    }
}
