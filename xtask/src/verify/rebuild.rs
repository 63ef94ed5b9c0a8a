//! `verify X --rebuild`: anyone can prove a release's images came from its tag. A clone of the
//! repository at `vX` builds the images again — compiling every binary with the release's
//! toolchain, never reusing one — and each service's index digest must be the one the package
//! pins. Builds are reproducible (the same commit gives the same bytes in any clone, from any
//! directory), so a difference means the pushed images are not what the tag makes.

use anyhow::Context;
use xshell::{cmd, Shell};

use crate::{
    images::{self, Finish, Plan, PlanOptions},
    model::{config::Config, version::ReleaseVersion},
};

/// What differs between the pinned indexes and those rebuilt from the tag; nothing when they
/// are the same.
pub fn compare(
    sh: &Shell,
    config: &Config,
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
    let dir = crate::target_dir(sh).join("xtask").join("rebuild");
    checkout(sh, &root, &dir, &commit).with_context(|| format!("checking out {tag} in {}", dir.display()))?;
    println!("  rebuild  the images of {tag}, compiled by cargo in {} (no binary kept from before)", dir.display());
    rebuilt(&crate::shell_in(&dir)?, config, version, pinned)
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

fn rebuilt(sh: &Shell, config: &Config, version: &ReleaseVersion, pinned: &[String]) -> anyhow::Result<Vec<String>> {
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
            problems.push(format!(
                "{}:{version}: rebuilt from v{version} it is {}, but the package pins {pin}: the pushed image is not \
                 what the tag builds (a toolchain of another build of Rust {}, a C compiler of another version, or \
                 bytes not from this tag)",
                image.reference, assembled.index.digest, config.rust
            ));
        }
    }
    Ok(problems)
}
