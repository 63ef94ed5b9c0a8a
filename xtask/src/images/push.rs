//! Pushing: every immutable tag the registry lacks, verified; then the floating tags, moved on
//! the registry itself to the verified digests, never backwards.

use std::{sync::Mutex, time::Instant};

use anyhow::{bail, Context};
use xshell::Shell;

use super::{assembled::Assembled, board::Board, Outcome, Plan};
use crate::{
    model::tags::{self, Move},
    ops::{exec::Executor, git},
    registry::Remote,
};

/// What to do with one immutable tag of one image, given what the registry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    /// The registry lacks it.
    Send,
    /// The registry has exactly the local image.
    UpToDate(String),
    /// The registry has an image built from this same commit (a re-run on another machine, whose
    /// build has other bytes): it stays, and counts as pushed.
    Adopt(String),
    /// The registry has an image built from another commit: an immutable tag never changes.
    Taken(Remote),
}

/// The decision for one immutable tag: pure, from what the registry holds and the digest of
/// the index built here (`local`, when there is one).
pub fn decide_push(remote: Option<&Remote>, local: Option<&str>, revision: &str) -> Push {
    let Some(remote) = remote else { return Push::Send };
    if local == Some(remote.digest.as_str()) {
        return Push::UpToDate(remote.digest.clone());
    }
    match remote.revision.as_deref() {
        Some(r) if r == revision => Push::Adopt(remote.digest.clone()),
        _ => Push::Taken(remote.clone()),
    }
}

/// What the registry holds under every immutable tag of every image, read once.
pub struct RegistryState {
    /// By image, then by immutable tag, in the plan's order.
    remotes: Vec<Vec<Option<Remote>>>,
}

impl RegistryState {
    pub fn read(plan: &Plan) -> anyhow::Result<RegistryState> {
        let remotes = plan.each_image(|_, image, registry| {
            plan.tags.immutable.iter().map(|tag| registry.remote(&image.repo, tag)).collect()
        })?;
        Ok(RegistryState { remotes })
    }

    /// What image `image` has under immutable tag `tag` (indexes into the plan).
    pub fn remote(&self, image: usize, tag: usize) -> Option<&Remote> {
        self.remotes[image][tag].as_ref()
    }

    /// The immutable tags the registry holds from another commit, each with the fix.
    pub fn taken(&self, plan: &Plan) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, image) in plan.images.iter().enumerate() {
            for (t, tag) in plan.tags.immutable.iter().enumerate() {
                let Push::Taken(remote) = decide_push(self.remote(i, t), None, &plan.head.revision()) else {
                    continue;
                };
                problems.push(format!(
                    "{}:{tag} is on the registry already, built from {} (this tree is {}): an immutable tag never \
                     changes. Release a new version (`cargo xtask bump patch`), or push this commit with `--edge`",
                    image.reference,
                    git::short(remote.revision.as_deref().unwrap_or("an unknown commit")),
                    git::short(&plan.head.revision()),
                ));
            }
        }
        problems
    }
}

/// Pushes every immutable tag (verified), then moves the floating tags.
pub fn push(sh: &Shell, plan: &Plan, exec: &Executor, outcomes: &mut [Outcome]) -> anyhow::Result<()> {
    push_immutable(sh, plan, exec, outcomes)?;
    move_floating(plan, exec, outcomes)
}

/// Pushes every immutable tag the registry lacks, every image at once, from the indexes this
/// tree built (`target/oci`): the blobs the registry lacks, every platform's manifest by digest,
/// then the index under the tag, read back to prove the tag names it. Tags the registry holds
/// are decided from one read of it ([`decide_push`]): up to date, adopted (built from this
/// commit elsewhere), or refused (another commit's). Nothing floating moves here.
pub fn push_immutable(sh: &Shell, plan: &Plan, exec: &Executor, outcomes: &mut [Outcome]) -> anyhow::Result<()> {
    let started = Instant::now();
    let fix = || format!("no floating tag was moved. Run the same command again once {} answers", plan.config.registry);
    let state = RegistryState::read(plan).with_context(fix)?;
    let taken = state.taken(plan);
    if !taken.is_empty() {
        bail!("nothing was pushed:\n  - {}", taken.join("\n  - "));
    }
    let (revision, version) = (plan.head.revision(), plan.version.to_string());
    let built: Vec<Option<Assembled>> = (plan.images.iter())
        .map(|image| Assembled::read(sh, &image.service, &revision, &version))
        .collect::<anyhow::Result<_>>()?;
    let board = Mutex::new(Board::new(plan.images.iter().map(|i| i.service.clone()).collect()));
    let set = |i: usize, state: String| board.lock().unwrap_or_else(|e| e.into_inner()).set(i, state);
    for (t, tag) in plan.tags.immutable.iter().enumerate() {
        let mut to_push = Vec::new();
        for i in 0..plan.images.len() {
            let local = built[i].as_ref().map(|b| b.index.digest.as_str());
            let (how, digest) = match decide_push(state.remote(i, t), local, &revision) {
                Push::Send => {
                    to_push.push(i);
                    continue;
                }
                Push::UpToDate(digest) => ("up to date", digest),
                Push::Adopt(digest) => ("already pushed from this commit", digest),
                Push::Taken(_) => unreachable!("refused above"),
            };
            set(i, format!("{tag} {how}"));
            outcomes[i].record(tag, digest, started);
        }
        if to_push.is_empty() {
            continue;
        }
        let lines: Vec<String> = to_push.iter().map(|&i| push_line(plan, &plan.images[i].reference, tag)).collect();
        let pushed = exec.run_all(&lines, || {
            plan.each_image(|i, image, registry| {
                if !to_push.contains(&i) {
                    return Ok(None);
                }
                let index = built[i].as_ref().with_context(|| {
                    format!(
                        "{}: no index of {version} built from {} here: build it first",
                        image.service,
                        git::short(&revision)
                    )
                })?;
                set(i, format!("pushing {tag}"));
                registry.push_index(&image.repo, tag, &index.index, &index.manifests(), &index.blobs())?;
                set(i, format!("pushed {tag}, verified"));
                Ok(Some(index.index.digest.clone()))
            })
            .with_context(fix)
        })?;
        for (i, digest) in pushed.into_iter().flatten().enumerate() {
            if let Some(digest) = digest {
                outcomes[i].record(tag, digest, started);
            }
        }
    }
    Ok(())
}

/// The printed line of one push.
fn push_line(plan: &Plan, reference: &str, tag: &str) -> String {
    let platforms: Vec<&str> = plan.config.platforms.iter().map(|p| p.name).collect();
    format!(
        "push {reference}:{tag} ({}): the blobs the registry lacks, each image's manifest by digest, then the index \
         under the tag, read back",
        platforms.join(", ")
    )
}

impl Outcome {
    fn record(&mut self, tag: &str, digest: String, started: Instant) {
        self.seconds += started.elapsed().as_secs_f64();
        self.digest = Some(digest);
        self.tags.push(tag.to_string());
    }
}

/// Which floating tags move, decided once for all images from the registry's tags, so that
/// they move together or not at all; and why each other one stays.
pub struct FloatingMoves {
    pub moving: Vec<String>,
    /// A line for each tag that stays where it is.
    pub staying: Vec<String>,
}

pub fn floating_moves(plan: &Plan) -> anyhow::Result<FloatingMoves> {
    let mut existing: Vec<String> = plan.each_image(|_, image, registry| registry.tags(&image.repo))?.concat();
    // A yanked release is no candidate: the next release moves the floating tags past it.
    let yanked = plan.yanks.versions()?;
    existing.retain(|tag| !yanked.contains(tag));
    let mut moves = FloatingMoves { moving: Vec::new(), staying: Vec::new() };
    for decision in tags::floating_moves(&plan.version, &plan.tags.floating, &existing) {
        match decision {
            Move::Keep { tag, higher } => moves
                .staying
                .push(format!("{tag} stays where it is: {higher} on the registry is higher than {}", plan.version)),
            Move::Move(tag) => moves.moving.push(tag),
        }
    }
    Ok(moves)
}

/// Every immutable tag is verified: the floating tags move, on the registry itself, to the
/// digests of the immutable tag, never backwards. Each image's tags move in order; the images
/// side by side.
pub fn move_floating(plan: &Plan, exec: &Executor, outcomes: &mut [Outcome]) -> anyhow::Result<()> {
    let fix = || {
        format!(
            "every image is pushed and verified, but not every floating tag moved. Run the same command again \
             once {} answers: it moves the rest",
            plan.config.registry
        )
    };
    let FloatingMoves { moving: moves, staying } = floating_moves(plan).with_context(fix)?;
    for line in staying {
        println!("{line}");
    }
    if moves.is_empty() {
        return Ok(());
    }
    let immutable = &plan.tags.immutable[0];
    let what: Vec<String> = moves
        .iter()
        .flat_map(|tag| {
            let repos = plan.images.iter().map(|image| &image.repo);
            repos.map(move |repo| format!("registry: {repo}:{tag} -> the digest of {repo}:{immutable}"))
        })
        .collect();
    let known: Vec<Option<String>> = outcomes.iter().map(|o| o.digest.clone()).collect();
    let moved = exec
        .run_all(&what, || {
            plan.each_image(|i, image, registry| {
                let repo = &image.repo;
                let digest = match &known[i] {
                    Some(digest) => digest.clone(),
                    None => registry.digest(repo, immutable)?.with_context(|| {
                        format!(
                            "{repo}:{immutable} is not on {} any more, though it was pushed and verified: someone \
                             deleted it. Push it again (`cargo xtask images --push`), then run this again",
                            plan.config.registry
                        )
                    })?,
                };
                let mut moved = Vec::new();
                for tag in &moves {
                    if registry.digest(repo, tag)?.as_deref() != Some(digest.as_str()) {
                        registry.put_tag(repo, &digest, tag)?;
                        moved.push(tag.as_str());
                    }
                }
                Ok(moved.join(", "))
            })
        })
        .with_context(fix)?;
    let mut board = Board::new(plan.images.iter().map(|i| i.service.clone()).collect());
    for (i, moved) in moved.into_iter().flatten().enumerate() {
        if !moved.is_empty() {
            board.set(i, format!("{moved} moved"));
        }
    }
    for outcome in outcomes.iter_mut() {
        outcome.tags.extend(moves.iter().cloned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_immutable_tag_is_sent_kept_adopted_or_refused() {
        let remote = |revision: &str| Remote {
            digest: "sha256:aa".into(),
            revision: Some(revision.into()),
            version: None,
            platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
        };
        assert_eq!(decide_push(None, None, "c1"), Push::Send);
        assert_eq!(decide_push(Some(&remote("c1")), Some("sha256:aa"), "c1"), Push::UpToDate("sha256:aa".into()));
        // Built from this commit on another machine (or not built here): it stays, and counts.
        assert_eq!(decide_push(Some(&remote("c1")), None, "c1"), Push::Adopt("sha256:aa".into()));
        assert_eq!(decide_push(Some(&remote("c1")), Some("sha256:bb"), "c1"), Push::Adopt("sha256:aa".into()));
        // Built from another commit: an immutable tag never changes.
        assert_eq!(decide_push(Some(&remote("c0")), None, "c1"), Push::Taken(remote("c0")));
        let unlabelled = Remote { revision: None, ..remote("c1") };
        assert_eq!(decide_push(Some(&unlabelled), Some("sha256:cc"), "c1"), Push::Taken(unlabelled.clone()));
        // The very bytes, even unlabelled: up to date.
        assert_eq!(decide_push(Some(&unlabelled), Some("sha256:aa"), "c1"), Push::UpToDate("sha256:aa".into()));
    }
}
