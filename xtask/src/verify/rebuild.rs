//! `verify X --rebuild`: anyone can prove a release's images came from its tag. A clone of the
//! repository at `vX` builds the images again — compiling every binary with the release's
//! toolchain, never reusing one — and each service's index digest must be the one the package
//! pins. Builds are reproducible (the same commit gives the same bytes in any clone, from any
//! directory), so a difference means the pushed images are not what the tag makes.

use anyhow::Context;
use xshell::{cmd, Shell};

use crate::{
    images::{self, assembled::PlatformImage, Finish, Plan, PlanOptions},
    model::{config::Config, version::ReleaseVersion},
    registry::{Registry, RemoteImage},
};

/// What differs between the pinned indexes and those rebuilt from the tag; nothing when they
/// are the same.
pub fn compare(
    sh: &Shell,
    config: &Config,
    registry: &Registry,
    version: &ReleaseVersion,
    pinned: &[String],
) -> anyhow::Result<Vec<String>> {
    let tag = format!("v{version}");
    let root = sh.current_dir();
    if crate::ops::git::local_tag(sh, &tag).is_none() {
        cmd!(sh, "git fetch --quiet origin tag {tag}")
            .quiet()
            .run()
            .with_context(|| format!("fetching {tag} from origin"))?;
    }
    let commit = crate::ops::git::local_tag(sh, &tag).with_context(|| format!("{tag} is no tag of this repository"))?;
    let dir = crate::ops::shell::target_dir(sh).join("xtask").join("rebuild");
    checkout(sh, &root, &dir, &commit).with_context(|| format!("checking out {tag} in {}", dir.display()))?;
    println!("  rebuild  the images of {tag}, compiled by cargo in {} (no binary kept from before)", dir.display());
    rebuilt(&crate::ops::shell::shell_in(&dir)?, config, registry, version, pinned)
}

/// A clone of this repository at `commit`, kept between rebuilds: cargo then compiles what
/// changed since the last (its own judgement, from the sources), not every crate again.
fn checkout(sh: &Shell, root: &std::path::Path, dir: &std::path::Path, commit: &str) -> anyhow::Result<()> {
    if !dir.join(".git").exists() {
        let _ = std::fs::remove_dir_all(dir);
        cmd!(sh, "git clone --quiet --no-hardlinks --no-checkout {root} {dir}").quiet().run()?;
    }
    let _in = sh.push_dir(dir);
    cmd!(sh, "git fetch --quiet --force --tags {root}").quiet().ignore_stderr().run()?;
    cmd!(sh, "git checkout --quiet --force --detach {commit}").quiet().run()?;
    cmd!(sh, "git clean --quiet -d --force -x --exclude=dashboard/node_modules").quiet().run()?;
    Ok(())
}

fn rebuilt(
    sh: &Shell,
    config: &Config,
    registry: &Registry,
    version: &ReleaseVersion,
    pinned: &[String],
) -> anyhow::Result<Vec<String>> {
    // The tag's own configuration (its Rust, its platforms, its services), published where
    // this one says: a rebuild months later builds what the tag built.
    let mut tagged = crate::model::config::load_default(sh)?;
    tagged.registry = config.registry.clone();
    tagged.namespace = config.namespace.clone();
    let options = PlanOptions { fresh: true, ..PlanOptions::default() };
    let plan = Plan::for_version(sh, tagged, version.clone(), &options)?;
    let built = images::build_all(sh, &plan, Finish { load: false, smoke: false })?;
    let mut problems = Vec::new();
    for (image, assembled) in plan.images.iter().zip(&built.assembled) {
        let name = format!("{}:{version}@", image.reference);
        let Some(pin) = pinned.iter().find_map(|p| p.strip_prefix(&name)) else {
            problems.push(format!("the package pins no {}:{version}", image.reference));
            continue;
        };
        if pin == assembled.index.digest {
            println!("  rebuilt  {}:{version}: {pin}, the pinned digest", image.reference);
        } else {
            let pushed = registry.platform_images(&image.repo, pin)?;
            let rebuilt = assembled.images.iter().map(as_remote).collect::<anyhow::Result<Vec<_>>>()?;
            problems.push(format!(
                "{}:{version}: rebuilt from v{version} it is {}, but the package pins {pin}: the pushed image is not \
                 what the tag builds ({}). Was it built from another commit, with a toolchain of another build of \
                 Rust {}, or a C compiler of another version?",
                image.reference,
                assembled.index.digest,
                differences(&pushed, &rebuilt).join("; "),
                config.rust
            ));
        }
    }
    Ok(problems)
}

/// A rebuilt platform image, seen as the registry would show it.
fn as_remote(image: &PlatformImage) -> anyhow::Result<RemoteImage> {
    let config: serde_json::Value = serde_json::from_slice(&image.config.bytes)?;
    Ok(RemoteImage {
        digest: image.manifest.digest.clone(),
        platform: format!("{}/{}", image.platform.os, image.platform.architecture),
        listed_as: None,
        labels: config["config"]["Labels"].clone(),
        layers: vec![image.layer.blob.digest.clone()],
    })
}

/// What differs, platform by platform, between the pushed images and the rebuilt ones: the
/// binary's layer, or which labels (the revision names the commit each was built from).
fn differences(pushed: &[RemoteImage], rebuilt: &[RemoteImage]) -> Vec<String> {
    let mut found = Vec::new();
    for image in rebuilt {
        let Some(other) = pushed.iter().find(|p| p.platform == image.platform) else {
            found.push(format!("{}: not in the pushed index", image.platform));
            continue;
        };
        if other.digest == image.digest {
            continue;
        }
        let mut parts = Vec::new();
        if other.layers != image.layers {
            parts.push("another binary".to_string());
        }
        let mut keys = std::collections::BTreeSet::new();
        for labels in [&other.labels, &image.labels] {
            keys.extend(labels.as_object().into_iter().flat_map(|m| m.keys().cloned()));
        }
        for key in keys.iter().filter(|k| other.labels[k.as_str()] != image.labels[k.as_str()]) {
            let name = key.strip_prefix("org.opencontainers.image.").unwrap_or(key);
            parts.push(format!("{name} {} pushed, {} rebuilt", other.labels[key.as_str()], image.labels[key.as_str()]));
        }
        if parts.is_empty() {
            parts.push("another config, its labels alike".to_string());
        }
        found.push(format!("{}: {}", image.platform, parts.join(", ")));
    }
    if found.is_empty() {
        found.push("the same platform images; the attestations beside them differ".to_string());
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn image(platform: &str, digest: &str, layer: &str, revision: &str) -> RemoteImage {
        RemoteImage {
            digest: digest.into(),
            platform: platform.into(),
            listed_as: None,
            labels: json!({ "org.opencontainers.image.revision": revision, "org.opencontainers.image.title": "t" }),
            layers: vec![layer.into()],
        }
    }

    #[test]
    fn a_difference_is_named_by_platform_binary_and_label() {
        let pushed = [image("linux/amd64", "m1", "l1", "aaa"), image("linux/arm64", "m2", "l2", "aaa")];
        let rebuilt = [image("linux/amd64", "m3", "l1", "bbb"), image("linux/arm64", "m2", "l2", "aaa")];
        assert_eq!(differences(&pushed, &rebuilt), ["linux/amd64: revision \"aaa\" pushed, \"bbb\" rebuilt"]);
        let rebuilt = [image("linux/amd64", "m3", "l9", "aaa")];
        assert_eq!(differences(&pushed, &rebuilt), ["linux/amd64: another binary"]);
        assert_eq!(
            differences(&pushed[..1], &[image("linux/arm64", "m2", "l2", "aaa")]),
            ["linux/arm64: not in the pushed index"]
        );
        assert_eq!(differences(&pushed, &pushed), ["the same platform images; the attestations beside them differ"]);
    }
}
