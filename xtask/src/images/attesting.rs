//! What each platform's image says about itself, attached to its index where Docker Hub,
//! BuildKit and the scanners look (images/attest.rs): the SBOM of its binary (CycloneDX, from
//! the dependency list cargo-auditable embedded, by auditable2cdx) and its provenance (SLSA v1:
//! the source and commit, the toolchain, the command and the flags that built it). Nothing in
//! them names a time of day, a run or this machine: the same commit gives the same attestations,
//! and so the same index, on any machine.

use std::{collections::BTreeMap, path::Path};

use xshell::{cmd, Shell};

use super::{
    assembled::PlatformImage,
    attest::{self, Attestations, Subject, CYCLONEDX, SLSA_PROVENANCE_V1},
    Image, Plan,
};
use crate::{
    model::platform::Platform,
    ops::{audit, toolchain::Toolchain},
};

/// The attestations of one platform's image of `image`, whose binary is `binary`.
pub fn of(
    sh: &Shell,
    plan: &Plan,
    image: &Image,
    toolchain: &Toolchain,
    built: &PlatformImage,
    binary: &Path,
) -> anyhow::Result<Attestations> {
    let platform = built.platform;
    let bytes = std::fs::read(binary)?;
    let digest = crate::images::oci::sha256(&bytes);
    let subject = Subject::image(&image.repo, &plan.version.to_string(), platform.name, &built.manifest.digest)?;
    let cyclonedx = audit::cyclonedx(sh, binary)?;
    let generator = (audit::AUDITABLE2CDX.krate, audit::AUDITABLE2CDX.version);
    let sbom = attest::sbom(&cyclonedx, &digest, &plan.head.created, generator)?;
    let (command, environment) = (command(plan, toolchain), environment(platform));
    let packages = system_packages(sh, platform);
    let reference = match plan.options.edge {
        true => format!("refs/heads/{}", plan.config.branch),
        false => format!("refs/tags/v{}", plan.version),
    };
    let repository = plan.build_args.iter().find(|(k, _)| k == "SOURCE").map_or("", |(_, v)| v.as_str());
    let rustc = attest::Toolchain::from_rustc_vv(&toolchain.rustc)?;
    let build = attest::Build {
        repository,
        reference: &reference,
        commit: &plan.head.commit,
        service: &image.service,
        platform: platform.name,
        rust_target: platform.rust_target,
        toolchain: &rustc,
        command: &command,
        environment: &environment,
        system_packages: &packages,
        binary: &digest,
    };
    let provenance = attest::statement(&subject, SLSA_PROVENANCE_V1, attest::provenance(&build)?);
    let sbom = attest::statement(&subject, CYCLONEDX, sbom);
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
