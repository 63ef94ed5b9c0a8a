//! What each platform's image says about itself, attached to its index where Docker Hub,
//! BuildKit and the scanners look (images/attest/mod.rs): the SBOM of its binary (CycloneDX, from
//! the dependency list cargo-auditable embedded, by auditable2cdx) and its provenance (SLSA v1:
//! the source and commit, the toolchain, the command and the flags that built it). Nothing in
//! them names a time of day, a run or this machine: the same commit gives the same attestations,
//! and so the same index, on any machine.

use std::collections::BTreeMap;

use anyhow::ensure;
use xshell::{cmd, Shell};

use crate::{
    images::{
        assembled::{self, PlatformImage},
        attest::{self, sha256, Attestations, Subject, CYCLONEDX, SLSA_PROVENANCE_V1},
        Image, Plan,
    },
    model::platform::Platform,
    ops::{audit, cargo::Binary, toolchain::Toolchain},
};

/// The attestations of one platform's image of `image`, whose layer holds `binary`: its SBOM
/// is made from the bytes read when cargo wrote it, as the layer was, never from the file again.
pub fn of(
    sh: &Shell,
    plan: &Plan,
    image: &Image,
    toolchain: &Toolchain,
    built: &PlatformImage,
    binary: &Binary,
) -> anyhow::Result<Attestations> {
    let platform = built.platform;
    let name = format!("gati-{}", image.service);
    let reference = match plan.options.edge {
        true => format!("refs/heads/{}", plan.config.branch),
        false => format!("refs/tags/v{}", plan.version),
    };
    let repository = plan.build_args.iter().find(|(k, _)| k == "SOURCE").map_or("", |(_, v)| v.as_str());
    let facts = Facts {
        subject: Subject::image(&image.repo, &plan.version.to_string(), platform.name, &built.manifest.digest)?,
        cyclonedx: audit::cyclonedx(sh, &name, &binary.bytes)?,
        created: plan.head.created.clone(),
        repository: repository.to_string(),
        reference,
        commit: plan.head.commit.clone(),
        service: image.service.clone(),
        toolchain: attest::Toolchain::from_rustc_vv(&toolchain.rustc)?,
        command: command(plan, toolchain),
        environment: environment(platform),
        system_packages: system_packages(sh, platform),
    };
    attestations(built, &binary.bytes, &facts)
}

/// What the attestations of one platform image state besides its binary.
struct Facts {
    subject: Subject,
    /// auditable2cdx's SBOM of the binary.
    cyclonedx: Vec<u8>,
    /// The commit's time.
    created: String,
    repository: String,
    reference: String,
    commit: String,
    service: String,
    toolchain: attest::Toolchain,
    command: Vec<String>,
    environment: BTreeMap<String, String>,
    system_packages: Vec<String>,
}

/// The provenance and the SBOM of `built`, both naming the digest of `binary`, which must be
/// the binary its layer holds.
fn attestations(built: &PlatformImage, binary: &[u8], facts: &Facts) -> anyhow::Result<Attestations> {
    let platform = built.platform;
    let name = format!("gati-{}", facts.service);
    let digest = sha256(binary);
    let held = sha256(&assembled::binary_of(&built.layer, &name)?);
    ensure!(
        held == digest,
        "the {platform} image of {name} holds binary {held}, and its attestations were to name {digest}: they \
         would be another binary's",
        platform = platform.name
    );
    let generator = (audit::AUDITABLE2CDX.krate, audit::AUDITABLE2CDX.version);
    let sbom = attest::sbom(&facts.cyclonedx, &digest, &facts.created, generator)?;
    let build = attest::Build {
        repository: &facts.repository,
        reference: &facts.reference,
        commit: &facts.commit,
        service: &facts.service,
        platform: platform.name,
        rust_target: platform.rust_target,
        toolchain: &facts.toolchain,
        command: &facts.command,
        environment: &facts.environment,
        system_packages: &facts.system_packages,
        binary: &digest,
    };
    let provenance = attest::statement(&facts.subject, SLSA_PROVENANCE_V1, attest::provenance(&build)?);
    let sbom = attest::statement(&facts.subject, CYCLONEDX, sbom);
    attest::attestations(&built.manifest.digest, &[provenance, sbom])
}

/// The cargo command that builds the binaries, as run, without this machine's paths.
fn command(plan: &Plan, toolchain: &Toolchain) -> Vec<String> {
    let mut command: Vec<String> =
        ["cargo", &format!("+{}", toolchain.name), "auditable", "build", "--release"].map(String::from).to_vec();
    for p in &plan.config.platforms {
        command.extend(["--target".into(), p.rust_target.into()]);
    }
    for service in &plan.config.services {
        command.extend(["--package".into(), format!("gati-{service}")]);
    }
    command
}

/// The settings that shape the binary, this machine's cargo home written `$CARGO_HOME`.
fn environment(platform: &Platform) -> BTreeMap<String, String> {
    let mut environment = BTreeMap::new();
    environment.insert(
        platform.cargo_env("RUSTFLAGS"),
        "-C target-feature=+crt-static --remap-path-prefix=$CARGO_HOME=/cargo".to_string(),
    );
    if Platform::host() != Some(platform) {
        environment.insert(platform.cargo_env("LINKER"), platform.linker.to_string());
    }
    environment
}

/// The Debian packages whose bytes are in the binary, as purls: the C compiler of the bundled
/// SQLite, the static C library, the linker (none, where dpkg does not know them).
fn system_packages(sh: &Shell, platform: &Platform) -> Vec<String> {
    let host = Platform::host() == Some(platform);
    let names: Vec<String> = match host {
        true => vec!["gcc-12".into(), "libc6-dev".into(), "binutils".into()],
        false => vec![
            format!("gcc-12-{}", platform.linker.trim_end_matches("-gcc").replace('_', "-")),
            format!("libc6-dev-{}-cross", platform.architecture),
            format!("binutils-{}", platform.linker.trim_end_matches("-gcc").replace('_', "-")),
        ],
    };
    let format = "${Package} ${Version} ${Architecture}\n";
    let Ok(out) = cmd!(sh, "dpkg-query -W -f={format} {names...}").quiet().ignore_stderr().ignore_status().read()
    else {
        return vec![];
    };
    out.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (name, version, arch) = (words.next()?, words.next()?, words.next()?);
            Some(format!("pkg:deb/debian/{name}@{version}?arch={arch}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::{
        attest::check::{check_binary, read, Attested},
        dockerfile::ImageSpec,
        oci::PLATFORMS,
    };

    const CREATED: &str = "2026-05-01T12:00:00Z";
    const RUSTC_VV: &str = "rustc 1.96.0 (ac68faa20 2026-05-25)\nbinary: rustc\ncommit-hash: \
                            ac68faa20c58cbccd01ee7208bf3b6e93a7d7f96\nhost: x86_64-unknown-linux-gnu\nrelease: \
                            1.96.0\nLLVM version: 22.1.8\n";

    fn image_of(binary: &[u8]) -> PlatformImage {
        let dockerfile =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../mcp-server/Dockerfile")).unwrap();
        let args = [("VERSION", "0.1.2"), ("REVISION", "c0ffee"), ("CREATED", CREATED)];
        let args = args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let spec = ImageSpec::from_dockerfile(&dockerfile, "gati-mcp-server", &args).unwrap();
        assembled::platform_image(&spec, &PLATFORMS[1], binary, CREATED).unwrap()
    }

    fn facts(built: &PlatformImage) -> Facts {
        let sbom = r#"{"bomFormat": "CycloneDX", "specVersion": "1.3",
            "metadata": {"component": {"name": "gati-mcp-server", "version": "0.1.2"}}, "components": []}"#;
        Facts {
            subject: Subject::image("gatidev/gati-mcp-server", "0.1.2", "linux/arm64", &built.manifest.digest).unwrap(),
            cyclonedx: sbom.as_bytes().to_vec(),
            created: CREATED.into(),
            repository: "https://github.com/gati-dev/gati".into(),
            reference: "refs/tags/v0.1.2".into(),
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            service: "mcp-server".into(),
            toolchain: attest::Toolchain::from_rustc_vv(RUSTC_VV).unwrap(),
            command: vec!["cargo".into(), "auditable".into(), "build".into()],
            environment: BTreeMap::new(),
            system_packages: vec![],
        }
    }

    fn attested(built: &PlatformImage, attestations: &Attestations) -> Attested {
        let index = attest::attach(
            &crate::images::oci::index(&[(built.platform, &built.manifest)], &BTreeMap::new()),
            &[attestations],
        )
        .unwrap();
        let blobs: BTreeMap<String, Vec<u8>> =
            attestations.blobs().map(|b| (b.digest.clone(), b.bytes.clone())).collect();
        let mut fetch = |digest: &str| Ok(blobs[digest].clone());
        let (mut images, problems) = read("gatidev/gati-mcp-server:0.1.2", &index.bytes, &mut fetch).unwrap();
        assert_eq!(problems, Vec::<String>::new());
        images.remove(0)
    }

    #[test]
    fn the_attestations_name_the_digest_of_the_bytes_the_layer_holds() {
        let binary = b"\x7fELF gati-mcp-server 0.1.2 for arm64";
        let built = image_of(binary);
        let attestations = attestations(&built, binary, &facts(&built)).unwrap();
        let image = attested(&built, &attestations);
        assert_eq!(image.binary(), Some(sha256(binary)));
        let serial = image.sbom().unwrap()["serialNumber"].as_str().unwrap().to_string();
        assert!(serial.starts_with(&format!("urn:uuid:{}", &sha256(binary)[7..15])), "{serial}");
        // What verify reads out of the layer is what they name.
        let layer = assembled::binary_of(&built.layer, "gati-mcp-server").unwrap();
        let embedded = serde_json::json!({"packages": [{"name": "gati-mcp-server", "version": "0.1.2", "root": true}]});
        assert_eq!(check_binary("m", &image, &layer, &embedded), Vec::<String>::new());
    }

    #[test]
    fn attestations_of_other_bytes_than_the_layers_are_refused_naming_both() {
        let (held, other) = (b"the 0.1.2 binary".as_slice(), b"the 0.1.1 binary".as_slice());
        let built = image_of(held);
        let e = attestations(&built, other, &facts(&built)).unwrap_err().to_string();
        assert!(e.contains(&format!("holds binary {}", sha256(held))), "{e}");
        assert!(e.contains(&format!("to name {}", sha256(other))), "{e}");
        assert!(e.contains("linux/arm64 image of gati-mcp-server"), "{e}");
    }
}
