//! What each image says about itself: per platform image, an SBOM of the crates linked into its
//! binary and a provenance statement (in-toto Statement v1, SLSA v1 provenance predicate),
//! attached to the image index as BuildKit writes them and Docker Hub shows them: one
//! attestation manifest per platform image, after the runnable ones, with the platform
//! `unknown/unknown` (so no runtime ever picks it), annotated `vnd.docker.reference.type:
//! attestation-manifest` and `vnd.docker.reference.digest: <the platform manifest's digest>`;
//! its layers are the statements (`application/vnd.in-toto+json`, each annotated with its
//! `in-toto.io/predicate-type`), its config an image config for `unknown/unknown`.
//!
//! Pure, and reproducible: these entries are part of the index, whose digest `verify --rebuild`
//! compares, so nothing here depends on the clock, the machine, the checkout's directory or the
//! CI run. Who ran the build, where and when belongs to the keyless GitHub attestation made in
//! the workflow, outside the index.
//!
//! This file holds the formats; [`image`] makes one platform image's attestations as the build
//! does (its SBOM from auditable2cdx, the machine's packages); [`check`] is what `verify` proves
//! of them.

use std::collections::BTreeMap;

use anyhow::{bail, ensure, Context};
use serde_json::{json, Value};

pub use super::oci::{canonical_json, sha256, Blob, CONFIG, INDEX, MANIFEST};

pub mod check;
pub mod image;

pub const IN_TOTO: &str = "application/vnd.in-toto+json";
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// The predicate type of a CycloneDX SBOM, as in-toto's predicate list and GitHub's
/// `actions/attest` name it.
pub const CYCLONEDX: &str = "https://cyclonedx.org/bom";
pub const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
pub const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";
pub const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";

/// What a statement is about: one platform's image manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// `pkg:docker/gatidev/gati-backend@0.1.0?platform=linux%2Famd64`, as BuildKit names it.
    pub name: String,
    /// `sha256:<hex>` of the platform's image manifest.
    pub digest: String,
}

impl Subject {
    /// The image of `repository` (`gatidev/gati-backend`, without registry, so that the same
    /// release mirrored to another registry has the same index) at `version` for `platform`.
    pub fn image(repository: &str, version: &str, platform: &str, manifest_digest: &str) -> anyhow::Result<Subject> {
        sha256_hex(manifest_digest).with_context(|| format!("the manifest digest of {repository} {platform}"))?;
        let platform = platform.replace('/', "%2F");
        Ok(Subject {
            name: format!("pkg:docker/{repository}@{version}?platform={platform}"),
            digest: manifest_digest.into(),
        })
    }
}

/// The hex part of `sha256:<64 hex>`, or what is wrong with it.
pub fn sha256_hex(digest: &str) -> anyhow::Result<&str> {
    let hex = digest.strip_prefix("sha256:").unwrap_or("");
    ensure!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{digest:?} is not a digest: write it as sha256:<64 lowercase hex digits>"
    );
    Ok(hex)
}

/// An in-toto Statement v1 about `subject`.
pub fn statement(subject: &Subject, predicate_type: &str, predicate: Value) -> Value {
    let hex = subject.digest.trim_start_matches("sha256:");
    json!({
        "_type": STATEMENT_V1,
        "subject": [{ "name": subject.name, "digest": { "sha256": hex } }],
        "predicateType": predicate_type,
        "predicate": predicate,
    })
}

/// The compiler, from `rustc -vV`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    /// The first line: `rustc 1.96.0 (ac68faa20 2026-05-25) (built from a source tarball)`.
    pub rustc: String,
    pub release: String,
    /// The commit of rust-lang/rust it was built from (`unknown` for some distribution builds).
    pub commit_hash: String,
    pub llvm_version: String,
    /// Where it runs. Kept out of the provenance: a rebuild on another host gives the same
    /// binary, and must give the same index.
    pub host: String,
}

impl Toolchain {
    pub fn from_rustc_vv(text: &str) -> anyhow::Result<Toolchain> {
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
                .map(|value| value.trim().to_string())
                .with_context(|| format!("`rustc -vV` printed no {name:?} line:\n{text}"))
        };
        let rustc =
            text.lines().next().filter(|l| l.starts_with("rustc ")).context("`rustc -vV` printed no version")?;
        Ok(Toolchain {
            rustc: rustc.trim().into(),
            release: field("release")?,
            commit_hash: field("commit-hash")?,
            llvm_version: field("LLVM version")?,
            host: field("host")?,
        })
    }

    /// The compiler as a resolved dependency of the build: its source commit where rustc knows it.
    fn dependency(&self) -> Value {
        let mut rustc = json!({
            "name": "rustc",
            "uri": format!("pkg:generic/rustc@{}", self.release),
            "annotations": { "rustc": self.rustc, "llvmVersion": self.llvm_version },
        });
        if self.commit_hash.len() == 40 && self.commit_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            rustc["digest"] = json!({ "gitCommit": self.commit_hash });
        }
        rustc
    }
}

/// How one platform's binary of one service was built: everything its provenance states.
/// Nothing here may name this machine or this checkout (paths, host, user, time).
#[derive(Debug, Clone)]
pub struct Build<'a> {
    /// `https://github.com/gati-dev/gati`: `[workspace.package] repository`.
    pub repository: &'a str,
    /// The git reference built: `refs/tags/v0.1.0` for a release, `refs/heads/main` for an
    /// edge build.
    pub reference: &'a str,
    /// The tag's commit, 40 hex digits.
    pub commit: &'a str,
    /// `backend`.
    pub service: &'a str,
    /// `linux/arm64`.
    pub platform: &'a str,
    pub rust_target: &'a str,
    pub toolchain: &'a Toolchain,
    /// The cargo command that built the binary, one argument per item, as run.
    pub command: &'a [String],
    /// The environment that shapes the binary (`RUSTFLAGS`, the linker), with this machine's
    /// paths written as placeholders: `--remap-path-prefix=$CARGO_HOME=/cargo`, not
    /// `/root/.cargo=/cargo`.
    pub environment: &'a BTreeMap<String, String>,
    /// The system packages whose bytes end up in the binary, as purls: the C compiler of the
    /// bundled SQLite, the static glibc, the linker (`pkg:deb/debian/libc6-dev@2.36-9+deb12u14?arch=amd64`).
    pub system_packages: &'a [String],
    /// `sha256:<hex>` of the binary the image's layer holds.
    pub binary: &'a str,
}

impl Build<'_> {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(self.commit.len() == 40 && self.commit.bytes().all(|b| b.is_ascii_hexdigit())) {
            problems.push(format!(
                "commit {:?}: give the full commit of {} (`git rev-parse {}^{{commit}}`)",
                self.commit, self.reference, self.reference
            ));
        }
        if !self.reference.starts_with("refs/") {
            problems.push(format!("reference {:?}: give it in full, e.g. refs/tags/v1.2.3", self.reference));
        }
        if !self.repository.starts_with("https://") {
            problems
                .push(format!("repository {:?}: give `[workspace.package] repository`, an https URL", self.repository));
        }
        if let Err(e) = sha256_hex(self.binary) {
            problems.push(format!("binary digest: {e}"));
        }
        // A path of this machine would make the statement, and so the index, differ per clone.
        let values = self.command.iter().chain(self.environment.values());
        let machine_paths = ["/home/", "/root/", "/Users/", "/tmp/", "/work/", "/runner/"];
        for value in values.filter(|v| machine_paths.iter().any(|p| v.contains(p))) {
            problems.push(format!(
                "{value:?} names a path of this machine: record it with a placeholder ($CARGO_HOME, $WORKSPACE)"
            ));
        }
        for purl in self.system_packages.iter().filter(|p| !p.starts_with("pkg:")) {
            problems.push(format!("system package {purl:?}: give it as a purl (pkg:deb/debian/NAME@VERSION)"));
        }
        problems
    }
}

/// The SLSA v1 provenance predicate of `build`: the source (repository, tag, commit), the
/// toolchain and target, the command and its environment, the binary; the builder is xtask at
/// that same commit, the only builder whose output a rebuild can compare byte for byte.
pub fn provenance(build: &Build) -> anyhow::Result<Value> {
    let problems = build.problems();
    if !problems.is_empty() {
        bail!("the provenance of gati-{} {}:\n  {}", build.service, build.platform, problems.join("\n  "));
    }
    let repository = build.repository.trim_end_matches('/');
    let source = format!("git+{repository}@{}", build.reference);
    let mut resolved =
        vec![json!({ "uri": source, "digest": { "gitCommit": build.commit } }), build.toolchain.dependency()];
    resolved.extend(build.system_packages.iter().map(|purl| json!({ "uri": purl })));
    Ok(json!({
        "buildDefinition": {
            "buildType": format!("{repository}/xtask/images@v1"),
            "externalParameters": {
                "source": { "uri": format!("git+{repository}"), "ref": build.reference },
                "service": build.service,
                "platform": build.platform,
            },
            "internalParameters": {
                "target": build.rust_target,
                "toolchain": build.toolchain.rustc,
                "command": build.command,
                "environment": build.environment,
            },
            "resolvedDependencies": resolved,
        },
        "runDetails": {
            "builder": { "id": format!("{repository}/xtask"), "version": { "xtask": build.commit } },
            "byproducts": [{
                "name": format!("gati-{}", build.service),
                "digest": { "sha256": build.binary.trim_start_matches("sha256:") },
            }],
        },
    }))
}

/// The SBOM as stored: the generator's CycloneDX JSON with a serial number derived from the
/// binary's digest (the same binary, the same serial), the commit's time as its timestamp and
/// the generator named among its tools. `created` is RFC 3339 UTC.
pub fn sbom(cyclonedx: &[u8], binary: &str, created: &str, generator: (&str, &str)) -> anyhow::Result<Value> {
    let mut bom: Value = serde_json::from_slice(cyclonedx).context("the SBOM generator's output is not JSON")?;
    ensure!(
        bom["bomFormat"] == "CycloneDX",
        "the SBOM generator's output is not CycloneDX (bomFormat {})",
        bom["bomFormat"]
    );
    let hex = sha256_hex(binary).context("the binary's digest")?;
    ensure!(
        created.len() == 20 && created.ends_with('Z'),
        "created {created:?}: give the commit's time as YYYY-MM-DDTHH:MM:SSZ"
    );
    // An RFC 4122 UUID (version 8: "custom") from the first 16 bytes of the digest.
    let mut uuid: Vec<char> = hex[..32].chars().collect();
    uuid[12] = '8';
    uuid[16] = ['8', '9', 'a', 'b'][usize::from_str_radix(&hex[16..17], 16)? & 3];
    let uuid: String = uuid.into_iter().collect();
    bom["serialNumber"] =
        format!("urn:uuid:{}-{}-{}-{}-{}", &uuid[..8], &uuid[8..12], &uuid[12..16], &uuid[16..20], &uuid[20..]).into();
    bom["version"] = 1.into();
    let metadata = bom.as_object_mut().unwrap().entry("metadata").or_insert_with(|| json!({}));
    metadata["timestamp"] = created.into();
    metadata["tools"] = json!([{ "name": generator.0, "version": generator.1 }]);
    Ok(bom)
}

/// One platform image's attestation manifest and the blobs it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestations {
    /// The statements, one blob each.
    pub layers: Vec<Blob>,
    pub config: Blob,
    pub manifest: Blob,
    /// Its entry in the image index.
    pub entry: Value,
}

#[cfg(test)]
impl Attestations {
    /// Every blob to push, manifests last (a registry refuses a manifest naming a missing blob).
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        self.layers.iter().chain([&self.config, &self.manifest])
    }
}

/// The attestation manifest of the platform image whose manifest has digest `target`, holding
/// `statements` in the order given.
pub fn attestations(target: &str, statements: &[Value]) -> anyhow::Result<Attestations> {
    sha256_hex(target).context("the platform manifest's digest")?;
    let mut layers = Vec::new();
    let mut descriptors = Vec::new();
    for statement in statements {
        let predicate_type = statement["predicateType"].as_str().context("a statement without predicateType")?;
        ensure!(
            statement["_type"] == STATEMENT_V1,
            "a statement that is not an in-toto Statement v1: {}",
            statement["_type"]
        );
        let layer = Blob::new(IN_TOTO, canonical_json(statement));
        let mut descriptor = layer.descriptor();
        descriptor["annotations"] = json!({ PREDICATE_TYPE: predicate_type });
        descriptors.push(descriptor);
        layers.push(layer);
    }
    // BuildKit's config for an attestation manifest: an image of no platform whose layers are
    // the statements (uncompressed, so each diff_id is its digest).
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
    let config = json!({
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let config = Blob::new(CONFIG, canonical_json(&config));
    let manifest =
        json!({ "schemaVersion": 2, "mediaType": MANIFEST, "config": config.descriptor(), "layers": descriptors });
    let manifest = Blob::new(MANIFEST, canonical_json(&manifest));
    let mut entry = manifest.descriptor();
    entry["annotations"] = json!({ REFERENCE_TYPE: ATTESTATION_MANIFEST, REFERENCE_DIGEST: target });
    entry["platform"] = json!({ "architecture": "unknown", "os": "unknown" });
    Ok(Attestations { layers, config, manifest, entry })
}

/// `index` with the attestation manifests' entries after its runnable manifests, each of which
/// must refer to a manifest of the index.
pub fn attach(index: &Blob, attestations: &[&Attestations]) -> anyhow::Result<Blob> {
    let mut index: Value = serde_json::from_slice(&index.bytes).context("the image index is not JSON")?;
    let manifests = index["manifests"].as_array_mut().context("the image index lists no manifests")?;
    for attestation in attestations {
        let target = &attestation.entry["annotations"][REFERENCE_DIGEST];
        if !manifests.iter().any(|m| &m["digest"] == target) {
            bail!("an attestation manifest refers to {target}, which the index does not list");
        }
    }
    manifests.extend(attestations.iter().map(|a| a.entry.clone()));
    Ok(Blob::new(INDEX, canonical_json(&index)))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const RUSTC_VV: &str = "rustc 1.96.0 (ac68faa20 2026-05-25) (built from a source tarball)
binary: rustc
commit-hash: ac68faa20c58cbccd01ee7208bf3b6e93a7d7f96
commit-date: 2026-05-25
host: x86_64-unknown-linux-gnu
release: 1.96.0
LLVM version: 22.1.8
";
    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

    fn digest_of(text: &str) -> String {
        sha256(text.as_bytes())
    }

    const PACKAGES: &[&str] =
        &["pkg:deb/debian/libc6-dev-arm64-cross@2.36-8cross1", "pkg:deb/debian/gcc-aarch64-linux-gnu@4%3A12.2.0-3"];

    fn build_of<'a>(
        packages: &'a [String],
        toolchain: &'a Toolchain,
        command: &'a [String],
        environment: &'a BTreeMap<String, String>,
        binary: &'a str,
    ) -> Build<'a> {
        Build {
            repository: "https://github.com/gati-dev/gati",
            reference: "refs/tags/v0.1.0",
            commit: COMMIT,
            service: "backend",
            platform: "linux/arm64",
            rust_target: "aarch64-unknown-linux-gnu",
            toolchain,
            command,
            environment,
            system_packages: packages,
            binary,
        }
    }

    fn provenance_statement(binary: &str) -> Value {
        let toolchain = Toolchain::from_rustc_vv(RUSTC_VV).unwrap();
        let command: Vec<String> =
            "cargo auditable build --release --locked --target aarch64-unknown-linux-gnu --package gati-backend"
                .split(' ')
                .map(String::from)
                .collect();
        let environment = BTreeMap::from([(
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS".to_string(),
            "-C target-feature=+crt-static".to_string(),
        )]);
        let packages: Vec<String> = PACKAGES.iter().map(|p| p.to_string()).collect();
        let predicate = provenance(&build_of(&packages, &toolchain, &command, &environment, binary)).unwrap();
        let subject =
            Subject::image("gatidev/gati-backend", "0.1.0", "linux/arm64", &digest_of("arm64 manifest")).unwrap();
        statement(&subject, SLSA_PROVENANCE_V1, predicate)
    }

    #[test]
    fn rustc_vv_is_read_field_by_field() {
        let toolchain = Toolchain::from_rustc_vv(RUSTC_VV).unwrap();
        assert_eq!(toolchain.release, "1.96.0");
        assert_eq!(toolchain.commit_hash, "ac68faa20c58cbccd01ee7208bf3b6e93a7d7f96");
        assert_eq!(toolchain.llvm_version, "22.1.8");
        assert_eq!(toolchain.host, "x86_64-unknown-linux-gnu");
        assert!(toolchain.rustc.starts_with("rustc 1.96.0 (ac68faa20"));
        let e = Toolchain::from_rustc_vv("rustc 1.96.0\nhost: x\n").unwrap_err().to_string();
        assert!(e.contains("\"release\""), "{e}");
    }

    #[test]
    fn the_provenance_names_the_source_commit_toolchain_and_binary() {
        let binary = digest_of("the arm64 binary");
        let s = provenance_statement(&binary);
        assert_eq!(s["_type"], STATEMENT_V1);
        assert_eq!(s["predicateType"], SLSA_PROVENANCE_V1);
        assert_eq!(s["subject"][0]["digest"]["sha256"], digest_of("arm64 manifest").trim_start_matches("sha256:"));
        assert_eq!(s["subject"][0]["name"], "pkg:docker/gatidev/gati-backend@0.1.0?platform=linux%2Farm64");
        let p = &s["predicate"];
        let source = &p["buildDefinition"]["resolvedDependencies"][0];
        assert_eq!(source["uri"], "git+https://github.com/gati-dev/gati@refs/tags/v0.1.0");
        assert_eq!(source["digest"]["gitCommit"], COMMIT);
        let rustc = &p["buildDefinition"]["resolvedDependencies"][1];
        assert_eq!(rustc["digest"]["gitCommit"], "ac68faa20c58cbccd01ee7208bf3b6e93a7d7f96");
        assert_eq!(rustc["uri"], "pkg:generic/rustc@1.96.0");
        assert_eq!(p["buildDefinition"]["resolvedDependencies"][2]["uri"], PACKAGES[0]);
        assert_eq!(p["buildDefinition"]["resolvedDependencies"].as_array().unwrap().len(), 4);
        assert_eq!(p["buildDefinition"]["internalParameters"]["target"], "aarch64-unknown-linux-gnu");
        assert_eq!(p["buildDefinition"]["internalParameters"]["command"][1], "auditable");
        assert_eq!(p["buildDefinition"]["externalParameters"]["platform"], "linux/arm64");
        assert_eq!(p["runDetails"]["byproducts"][0]["digest"]["sha256"], binary.trim_start_matches("sha256:"));
        assert_eq!(p["runDetails"]["builder"]["id"], "https://github.com/gati-dev/gati/xtask");
    }

    #[test]
    fn the_provenance_holds_nothing_of_the_machine_or_the_moment() {
        let text = String::from_utf8(canonical_json(&provenance_statement(&digest_of("b")))).unwrap();
        // No host (a rebuild elsewhere must compare equal), no run, no time.
        for varying in ["x86_64-unknown-linux-gnu", "startedOn", "finishedOn", "invocationId", "metadata"] {
            assert!(!text.contains(varying), "{varying} in {text}");
        }
        assert_eq!(canonical_json(&provenance_statement(&digest_of("b"))), text.as_bytes());
    }

    #[test]
    fn a_provenance_with_a_short_commit_or_a_local_path_is_refused_naming_each() {
        let toolchain = Toolchain::from_rustc_vv(RUSTC_VV).unwrap();
        let command = vec!["cargo".into(), "--manifest-path".into(), "/work/gati/Cargo.toml".into()];
        let remap = "-C target-feature=+crt-static --remap-path-prefix=/root/.cargo=/cargo";
        let environment = BTreeMap::from([("RUSTFLAGS".to_string(), remap.to_string())]);
        let packages = vec!["libc6-dev 2.36".to_string()];
        let mut build = build_of(&packages, &toolchain, &command, &environment, "sha256:12");
        build.commit = "c0ffee";
        let e = provenance(&build).unwrap_err().to_string();
        assert!(e.contains("commit \"c0ffee\": give the full commit of refs/tags/v0.1.0"), "{e}");
        assert!(e.contains("binary digest"), "{e}");
        assert!(e.contains("/root/.cargo=/cargo\" names a path of this machine: record it with a placeholder"), "{e}");
        assert!(e.contains("/work/gati/Cargo.toml\" names a path of this machine"), "{e}");
        assert!(e.contains("system package \"libc6-dev 2.36\": give it as a purl"), "{e}");
    }

    #[test]
    fn the_sbom_serial_follows_the_binary_and_its_time_the_commit() {
        let generated = br#"{"bomFormat":"CycloneDX","specVersion":"1.3","metadata":{"component":{"name":"gati-backend"}},"components":[]}"#;
        let a = sbom(generated, &digest_of("binary a"), "2026-05-01T12:00:00Z", ("auditable2cdx", "0.1.0")).unwrap();
        let again =
            sbom(generated, &digest_of("binary a"), "2026-05-01T12:00:00Z", ("auditable2cdx", "0.1.0")).unwrap();
        let b = sbom(generated, &digest_of("binary b"), "2026-05-01T12:00:00Z", ("auditable2cdx", "0.1.0")).unwrap();
        assert_eq!(a, again);
        assert_ne!(a["serialNumber"], b["serialNumber"]);
        let serial = a["serialNumber"].as_str().unwrap();
        // urn:uuid:xxxxxxxx-xxxx-8xxx-[89ab]xxx-xxxxxxxxxxxx
        assert_eq!(serial.len(), "urn:uuid:".len() + 36, "{serial}");
        assert_eq!(&serial[23..24], "8", "{serial}");
        assert!("89ab".contains(&serial[28..29]), "{serial}");
        assert_eq!(a["metadata"]["timestamp"], "2026-05-01T12:00:00Z");
        assert_eq!(a["metadata"]["component"]["name"], "gati-backend");
        assert_eq!(a["metadata"]["tools"][0]["name"], "auditable2cdx");
        let e =
            sbom(br#"{"spdxVersion":"SPDX-2.3"}"#, &digest_of("a"), "2026-05-01T12:00:00Z", ("x", "1")).unwrap_err();
        assert!(e.to_string().contains("not CycloneDX"), "{e}");
    }

    #[test]
    fn an_attestation_manifest_is_laid_out_as_buildkit_writes_it() {
        let target = digest_of("arm64 manifest");
        let statements = [
            provenance_statement(&digest_of("b")),
            statement(&Subject { name: "x".into(), digest: target.clone() }, CYCLONEDX, json!({})),
        ];
        let a = attestations(&target, &statements).unwrap();
        assert_eq!(a.entry["platform"], json!({ "architecture": "unknown", "os": "unknown" }));
        assert_eq!(a.entry["annotations"][REFERENCE_TYPE], ATTESTATION_MANIFEST);
        assert_eq!(a.entry["annotations"][REFERENCE_DIGEST], target.as_str());
        assert_eq!(a.entry["digest"], a.manifest.digest.as_str());
        assert_eq!(a.entry["mediaType"], MANIFEST);
        let manifest: Value = serde_json::from_slice(&a.manifest.bytes).unwrap();
        assert_eq!(manifest["config"], a.config.descriptor());
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[0]["mediaType"], IN_TOTO);
        assert_eq!(layers[0]["annotations"][PREDICATE_TYPE], SLSA_PROVENANCE_V1);
        assert_eq!(layers[1]["annotations"][PREDICATE_TYPE], CYCLONEDX);
        assert_eq!(layers[1]["digest"], a.layers[1].digest.as_str());
        let config: Value = serde_json::from_slice(&a.config.bytes).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"], json!([a.layers[0].digest, a.layers[1].digest]));
        assert_eq!(config["os"], "unknown");
        // The statement is stored as canonical JSON, and the same input gives the same bytes.
        assert_eq!(a.layers[0].bytes, canonical_json(&statements[0]));
        assert_eq!(a, attestations(&target, &statements).unwrap());
        assert_eq!(a.blobs().last().unwrap(), &a.manifest);
    }

    #[test]
    fn attestations_follow_the_runnable_manifests_of_the_index() {
        let amd64 = digest_of("amd64 manifest");
        let index = json!({
            "schemaVersion": 2,
            "mediaType": INDEX,
            "manifests": [{ "mediaType": MANIFEST, "digest": amd64, "size": 1, "platform": { "architecture": "amd64", "os": "linux" } }],
        });
        let index = Blob::new(INDEX, canonical_json(&index));
        let a = attestations(
            &amd64,
            &[statement(&Subject { name: "x".into(), digest: amd64.clone() }, CYCLONEDX, json!({}))],
        )
        .unwrap();
        let attached: Value = serde_json::from_slice(&attach(&index, &[&a]).unwrap().bytes).unwrap();
        assert_eq!(attached["manifests"][0]["digest"], amd64.as_str());
        assert_eq!(attached["manifests"][1], a.entry);
        let elsewhere = attestations(&digest_of("another"), &[]).unwrap();
        let e = attach(&index, &[&elsewhere]).unwrap_err().to_string();
        assert!(e.contains("which the index does not list"), "{e}");
    }
}
