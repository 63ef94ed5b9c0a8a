//! What each image of a release says about itself, checked: every platform's image has an SBOM
//! and a provenance statement attached to its index, about that very image (their subject is
//! its digest); the provenance names the release's commit and platform, and the binary the
//! layer holds; the SBOM lists the service's own stack and exactly the crates the binary
//! embeds (read back with rust-audit-info).

use std::path::Path;

use anyhow::Context;
use xshell::Shell;

use crate::{
    images::attest::check::{self as attest_check, Attested, Expected},
    ops::{audit, git},
    registry::Registry,
};

/// The crates each service's SBOM must list: its own stack, which another service's lacks.
fn stack(service: &str) -> &'static [&'static str] {
    match service {
        "backend" => &["axum", "rusqlite", "utoipa"],
        "dashboard" => &["axum", "reqwest"],
        "mcp-server" => &["rmcp", "axum"],
        _ => &[],
    }
}

/// The problems of the attestations of the index `digest` of `repo` (`namespace/gati-<service>`),
/// built from `commit`.
pub fn check(
    sh: &Shell,
    registry: &Registry,
    repo: &str,
    digest: &str,
    commit: &str,
    dir: &Path,
) -> anyhow::Result<Vec<String>> {
    let label = format!("{repo}@{}", git::short(digest));
    let (images, mut problems) = statements(registry, repo, digest, commit)?;
    let clean = problems.is_empty();
    for image in images.iter().filter(|_| clean) {
        problems.extend(binary_problems(sh, registry, repo, &label, image, dir)?);
    }
    if problems.is_empty() {
        let platforms: Vec<&str> = images.iter().map(|i| i.platform.as_str()).collect();
        println!("  attested {label}: SBOM and provenance of {} for {}", git::short(commit), platforms.join(", "));
    }
    Ok(problems)
}

/// The statements attached to each platform's image of the index, and what is wrong with them.
fn statements(
    registry: &Registry,
    repo: &str,
    digest: &str,
    commit: &str,
) -> anyhow::Result<(Vec<Attested>, Vec<String>)> {
    let service = repo.rsplit_once("/gati-").map_or(repo, |(_, s)| s);
    let label = format!("{repo}@{}", git::short(digest));
    let index = registry.blob_or_manifest(repo, digest)?;
    let (images, mut problems) = attest_check::read(&label, &index, &mut |d| registry.blob_or_manifest(repo, d))?;
    problems.extend(attest_check::check(&label, &images, &Expected { commit, crates: stack(service) }));
    Ok((images, problems))
}

/// The binary of `image`'s layer against its attestations.
fn binary_problems(
    sh: &Shell,
    registry: &Registry,
    repo: &str,
    label: &str,
    image: &Attested,
    dir: &Path,
) -> anyhow::Result<Vec<String>> {
    let manifest: serde_json::Value = serde_json::from_slice(&registry.blob_or_manifest(repo, &image.manifest)?)?;
    let layer = manifest["layers"][0]["digest"].as_str().context("an image manifest without a layer")?;
    let bytes = registry.blob_or_manifest(repo, layer)?;
    let name = format!("gati-{}", repo.rsplit_once("/gati-").map_or(repo, |(_, s)| s));
    let binary = crate::images::assembled::binary_in(&bytes, &name)?;
    let path = dir.join(format!("{name}-{}", image.platform.replace('/', "-")));
    std::fs::write(&path, &binary)?;
    let embedded = audit::embedded_list(sh, &path)?;
    Ok(attest_check::check_binary(label, image, &binary, &embedded))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::{assembled, attest, dockerfile::ImageSpec, oci};

    /// An index without attestations, and one whose statements are about another image, are
    /// named with the image and the platform.
    #[test]
    fn a_missing_attestation_or_one_about_another_image_is_named() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let sh = crate::ops::shell::shell_in(root).unwrap();
        let dir =
            crate::ops::shell::target_dir(&sh).join("xtask").join(format!("test-attestations-{}", std::process::id()));
        let _one = crate::ops::sandbox::one_at_a_time();
        let local = crate::ops::sandbox::LocalRegistry::start(&sh, &dir).unwrap();
        let registry = Registry::new(&local.address, Some(local.credentials.clone()));
        let repo = format!("{}/gati-backend", local.namespace);
        let dockerfile = std::fs::read_to_string(root.join("backend/Dockerfile")).unwrap();
        let spec = ImageSpec::from_dockerfile(&dockerfile, "gati-backend", &Default::default()).unwrap();
        let commit = "c0ffee0000000000000000000000000000000000";
        let push = |tag: &str, about: Option<&str>| {
            let mut image =
                assembled::platform_image(&spec, &oci::PLATFORMS[0], b"a binary", "2026-05-01T12:00:00Z").unwrap();
            if let Some(about) = about {
                let subject = attest::Subject::image(&repo, "1.2.3", "linux/amd64", about).unwrap();
                let sbom =
                    serde_json::json!({"bomFormat": "CycloneDX", "components": [{"name": "axum", "version": "0.8.4"}]});
                let statements = [attest::statement(&subject, attest::CYCLONEDX, sbom)];
                image.attestations = Some(attest::attestations(&image.manifest.digest, &statements).unwrap());
            }
            let index = assembled::Assembled::new("backend", &spec, vec![image]).unwrap();
            registry.push_index(&repo, tag, &index.index, &index.manifests(), &index.blobs()).unwrap();
            index.index.digest
        };
        let bare = push("bare", None);
        let (_, problems) = statements(&registry, &repo, &bare, commit).unwrap();
        assert!(problems.iter().any(|p| p.contains("linux/amd64: no provenance statement")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("linux/amd64: no SBOM")), "{problems:?}");
        let other = format!("sha256:{}", "ab".repeat(32));
        let elsewhere = push("elsewhere", Some(&other));
        let (_, problems) = statements(&registry, &repo, &elsewhere, commit).unwrap();
        assert!(problems.iter().any(|p| p.contains("the SBOM attached is about another image")), "{problems:?}");
        drop(local);
        let _ = std::fs::remove_dir_all(dir);
    }
}
