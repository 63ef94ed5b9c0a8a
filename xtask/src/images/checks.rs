//! What must hold before images are built or pushed. Each check is also one of the release's
//! preflight checks (`release::checks`), so `images`, the release and `doctor` ask alike.

use std::path::Path;

use xshell::Shell;

use super::{push::RegistryState, Plan};
use crate::{
    images::context,
    model::{check::Outcome, config::Config},
    ops::docker,
};

pub fn docker_daemon(sh: &Shell) -> Outcome {
    match docker::server_version(sh) {
        Some(version) => Ok(format!("Docker Engine {version}")),
        None => Err(vec!["the Docker daemon is not answering: start it (`sudo systemctl start docker`, `dockerd`, \
                          or Docker Desktop)"
            .into()]),
    }
}

/// The release's Rust, with what every platform needs: its standard library, its cross linker
/// and qemu-user for its smoke test.
pub fn toolchain(sh: &Shell, config: &Config) -> Outcome {
    let found = crate::ops::toolchain::find(sh, &config.rust, &config.platforms).map_err(|e| vec![format!("{e:#}")])?;
    let problems = crate::ops::toolchain::problems(sh, &found, &config.platforms);
    let platforms: Vec<&str> = config.platforms.iter().map(|p| p.name).collect();
    match problems.is_empty() {
        true => {
            Ok(format!("{} ({}) builds {}", found.name, found.rustc.lines().next().unwrap_or(""), platforms.join(", ")))
        }
        false => Err(problems),
    }
}

/// Every service folder has its Dockerfile and `.dockerignore`, and no likely secret.
pub fn build_contexts(root: &Path, plan: &Plan) -> Outcome {
    let mut problems = Vec::new();
    for image in &plan.images {
        let service = &image.service;
        for file in ["Dockerfile", ".dockerignore"] {
            if !root.join(service).join(file).exists() {
                problems.push(format!("{service}/{file} is missing: every service folder needs one"));
            }
        }
        for secret in context::find_secrets(root, &root.join(service)) {
            problems.push(format!("{secret} looks like a secret inside a build context: move it out of {service}/"));
        }
    }
    match problems.is_empty() {
        true => Ok(format!("{}: Dockerfile, .dockerignore, no likely secret", services(plan))),
        false => Err(problems),
    }
}

/// The credentials may push to every image's repository.
pub fn push_rights(plan: &Plan) -> Outcome {
    let Some(credentials) = &plan.credentials else {
        return Err(vec![format!("set DOCKER_USERNAME and DOCKER_PASSWORD (a token) for {}", plan.config.registry)]);
    };
    let checked = plan.each_image(|_, image, registry| Ok(registry.check_push(&image.repo).err()));
    match checked {
        Err(e) => Err(vec![format!("{e:#}")]),
        Ok(refusals) => {
            let refusals: Vec<String> = refusals.into_iter().flatten().map(|e| format!("{e:#}")).collect();
            match refusals.is_empty() {
                true => {
                    Ok(format!("{} lets user {:?} push to {}", plan.config.registry, credentials.user, services(plan)))
                }
                false => Err(refusals),
            }
        }
    }
}

/// No immutable tag of this build is on the registry from another commit.
pub fn immutable_tags(plan: &Plan) -> Outcome {
    let state = RegistryState::read(plan).map_err(|e| vec![format!("{e:#}")])?;
    let taken = state.taken(plan);
    match taken.is_empty() {
        true => Ok(format!("{} free, or this commit's", plan.tags.immutable.join(", "))),
        false => Err(taken),
    }
}

/// A push is made from a committed tree, so that its revision label names what it holds.
pub fn clean_for_push(plan: &Plan) -> Outcome {
    if plan.head.dirty && !plan.options.allow_dirty {
        return Err(vec![format!(
            "the tree has uncommitted changes: images ({}) are pushed only from a clean commit; commit or stash them",
            plan.tags.immutable.join(", ")
        )]);
    }
    Ok("committed".into())
}

/// What `cargo xtask images` is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Build,
    BuildAndPush,
}

/// Every problem that would stop `cargo xtask images`: building needs the daemon and the
/// contexts; pushing also a clean tree, the right to push, and free immutable tags.
pub fn problems(sh: &Shell, plan: &Plan, purpose: Purpose) -> Vec<String> {
    let mut outcomes = vec![toolchain(sh, &plan.config), docker_daemon(sh), build_contexts(&sh.current_dir(), plan)];
    if purpose == Purpose::BuildAndPush {
        outcomes.push(clean_for_push(plan));
        outcomes.push(push_rights(plan));
        if outcomes.iter().all(Result::is_ok) {
            outcomes.push(immutable_tags(plan));
        }
    }
    outcomes.into_iter().filter_map(Result::err).flatten().collect()
}

fn services(plan: &Plan) -> String {
    plan.images.iter().map(|i| format!("{}/", i.service)).collect::<Vec<_>>().join(", ")
}
