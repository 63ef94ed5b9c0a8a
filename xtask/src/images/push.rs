//! Pushing: every immutable tag the registry lacks, verified; then the floating tags, moved on
//! the registry itself to the verified digests, never backwards.

use std::time::Instant;

use anyhow::{bail, Context};
use xshell::Shell;

use super::{board::Board, Outcome, Plan};
use crate::{
    model::tags::{self, Move},
    ops::{docker, exec::Executor, git, interrupt, retry::Backoff},
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

/// The decision for one immutable tag: pure, from what the registry and the daemon hold.
pub fn decide_push(remote: Option<&Remote>, local_digests: &[String], repo: &str, revision: &str) -> Push {
    let Some(remote) = remote else { return Push::Send };
    if local_digests
        .iter()
        .any(|d| *d == format!("{repo}@{}", remote.digest) || d.ends_with(&format!("/{repo}@{}", remote.digest)))
    {
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
                let Push::Taken(remote) = decide_push(self.remote(i, t), &[], &image.repo, &plan.head.revision())
                else {
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

/// Logs in, pushes every immutable tag (verified), then moves the floating tags.
pub fn push(sh: &Shell, plan: &mut Plan, exec: &Executor, outcomes: &mut [Outcome]) -> anyhow::Result<()> {
    let _login = plan.login(sh, exec)?;
    push_immutable(sh, plan, exec, outcomes)?;
    move_floating(plan, exec, outcomes)
}

/// Pushes every immutable tag the registry lacks, at once, and verifies each pushed digest on
/// the registry. Tags the registry holds are decided from one read of it ([`decide_push`]):
/// up to date, adopted (built from this commit elsewhere), or refused (another commit's).
/// Nothing floating moves here.
pub fn push_immutable(sh: &Shell, plan: &Plan, exec: &Executor, outcomes: &mut [Outcome]) -> anyhow::Result<()> {
    let mut board = Board::new(plan.images.iter().map(|i| i.service.clone()).collect());
    let started = Instant::now();
    let fix = || format!("no floating tag was moved. Run the same command again once {} answers", plan.config.registry);
    let state = RegistryState::read(plan).with_context(fix)?;
    let taken = state.taken(plan);
    if !taken.is_empty() {
        bail!("nothing was pushed:\n  - {}", taken.join("\n  - "));
    }
    for (t, tag) in plan.tags.immutable.iter().enumerate() {
        let mut to_push = Vec::new();
        for (i, image) in plan.images.iter().enumerate() {
            let local = docker::repo_digests(sh, &format!("{}:{tag}", image.reference))?;
            let (how, digest) = match decide_push(state.remote(i, t), &local, &image.repo, &plan.head.revision()) {
                Push::Send => {
                    to_push.push(i);
                    continue;
                }
                Push::UpToDate(digest) => ("up to date", digest),
                Push::Adopt(digest) => ("already pushed from this commit", digest),
                Push::Taken(_) => unreachable!("refused above"),
            };
            board.set(i, format!("{tag} {how}"));
            outcomes[i].seconds += started.elapsed().as_secs_f64();
            outcomes[i].digest = Some(digest);
            outcomes[i].tags.push(tag.clone());
        }
        if to_push.is_empty() {
            continue;
        }
        let lines: Vec<String> =
            to_push.iter().map(|&i| format!("docker push {}:{tag}", plan.images[i].reference)).collect();
        let pushed = exec.run_all(&lines, || {
            let digests = push_with_retries(plan, tag, &to_push, &mut board).with_context(fix)?;
            // What the registry now serves under the tag, every image at once.
            let served = plan.each_image(|i, image, registry| match to_push.contains(&i) {
                true => registry.digest(&image.repo, tag),
                false => Ok(None),
            });
            let served = served.with_context(fix)?;
            for (i, pushed) in &digests {
                let image = &plan.images[*i];
                if served[*i].as_deref() != Some(pushed.as_str()) {
                    bail!(
                        "{}:{tag}: pushed {pushed}, but the registry has {}; push again",
                        image.reference,
                        served[*i].as_deref().unwrap_or("nothing")
                    );
                }
                board.set(*i, format!("{tag} verified"));
            }
            Ok(digests)
        })?;
        for (i, digest) in pushed.into_iter().flatten() {
            outcomes[i].seconds += started.elapsed().as_secs_f64();
            outcomes[i].digest = Some(digest);
            outcomes[i].tags.push(tag.clone());
        }
    }
    Ok(())
}

/// Which floating tags move, decided once for all images from the registry's tags, so that
/// they move together or not at all; and why each other one stays.
pub struct FloatingMoves {
    pub moving: Vec<String>,
    /// A line for each tag that stays where it is.
    pub staying: Vec<String>,
}

pub fn floating_moves(plan: &Plan) -> anyhow::Result<FloatingMoves> {
    let existing: Vec<String> = plan.each_image(|_, image, registry| registry.tags(&image.repo))?.concat();
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

/// `docker push` of `tag` for the images `which`, at once; transient failures are retried
/// with backoff within a bounded total. Returns each pushed digest.
fn push_with_retries(
    plan: &Plan,
    tag: &str,
    which: &[usize],
    board: &mut Board,
) -> anyhow::Result<Vec<(usize, String)>> {
    let mut backoff = Backoff::default();
    let mut pending = which.to_vec();
    let mut pushed = Vec::new();
    let config: Vec<String> = match &plan.docker_config {
        Some(dir) => vec!["--config".into(), dir.display().to_string()],
        None => vec![],
    };
    while !pending.is_empty() {
        let handles = pending
            .iter()
            .map(|&i| {
                board.set(i, format!("pushing {tag}"));
                let mut args = config.clone();
                args.extend(["push".into(), format!("{}:{tag}", plan.images[i].reference)]);
                duct::cmd("docker", args).stdout_capture().stderr_capture().unchecked().start()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut retry = Vec::new();
        let mut permanent = Vec::new();
        interrupt::wait_all(&handles, |k, output| {
            let i = pending[k];
            let text =
                format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
            match (output.status.success(), pushed_digest(&text)) {
                (true, Some(digest)) => {
                    board.set(i, format!("pushed {tag}"));
                    pushed.push((i, digest));
                }
                _ if is_transient(&text) => {
                    board.set(i, format!("push failed, retrying: {}", last_line(&text)));
                    retry.push((i, last_line(&text)));
                }
                _ => {
                    board.set(i, "push failed".into());
                    permanent.push(format!("{}:{tag}: {}", plan.images[i].reference, last_line(&text)));
                }
            }
        })?;
        if !permanent.is_empty() {
            bail!("pushing to {} failed:\n  {}", plan.config.registry, permanent.join("\n  "));
        }
        if !retry.is_empty() {
            let why: Vec<String> =
                retry.iter().map(|(i, why)| format!("{}:{tag}: {why}", plan.images[*i].reference)).collect();
            backoff.wait(&format!("{} failed a push ({})", plan.config.registry, why.join("; ")), None)?;
        }
        pending = retry.into_iter().map(|(i, _)| i).collect();
    }
    Ok(pushed)
}

/// The digest in `docker push`'s last line: `<tag>: digest: sha256:… size: N`.
fn pushed_digest(output: &str) -> Option<String> {
    let at = output.rfind("digest: sha256:")? + "digest: ".len();
    let digest: String = output[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == ':').collect();
    (digest.len() == "sha256:".len() + 64).then_some(digest)
}

/// Connection trouble, server errors and rate limits pass; refusals and bad manifests do not.
fn is_transient(output: &str) -> bool {
    let text = output.to_ascii_lowercase();
    let permanent = [
        "unauthorized",
        "denied",
        "authentication required",
        "manifest invalid",
        "name invalid",
        "no basic auth credentials",
    ];
    if permanent.iter().any(|p| text.contains(p)) {
        return false;
    }
    let transient = [
        "connection refused",
        "connection reset",
        "broken pipe",
        "i/o timeout",
        "eof",
        "toomanyrequests",
        "429",
        "500 internal",
        "502",
        "503",
        "504",
        "tls handshake timeout",
        "no such host",
    ];
    transient.iter().any(|t| text.contains(t))
}

fn last_line(text: &str) -> String {
    text.trim().lines().last().unwrap_or("").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_pushed_digest() {
        let out = "The push refers to repository [127.0.0.1:5000/gatidev/gati-backend]\n\
                   5f70bf18a086: Pushed\n0.1.0: digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef size: 528\n";
        assert_eq!(
            pushed_digest(out).as_deref(),
            Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
        );
        assert_eq!(pushed_digest("no digest here"), None);
    }

    #[test]
    fn an_immutable_tag_is_sent_kept_adopted_or_refused() {
        let remote =
            |revision: &str| Remote { digest: "sha256:aa".into(), revision: Some(revision.into()), version: None };
        let repo = "gatidev/gati-backend";
        let pushed_here = ["127.0.0.1:5000/gatidev/gati-backend@sha256:aa".to_string()];
        assert_eq!(decide_push(None, &[], repo, "c1"), Push::Send);
        assert_eq!(decide_push(Some(&remote("c1")), &pushed_here, repo, "c1"), Push::UpToDate("sha256:aa".into()));
        // Built from this commit on another machine: other bytes, same source. It stays.
        assert_eq!(decide_push(Some(&remote("c1")), &[], repo, "c1"), Push::Adopt("sha256:aa".into()));
        // Built from another commit: an immutable tag never changes.
        assert_eq!(decide_push(Some(&remote("c0")), &[], repo, "c1"), Push::Taken(remote("c0")));
        let unlabelled = Remote { digest: "sha256:bb".into(), revision: None, version: None };
        assert_eq!(decide_push(Some(&unlabelled), &pushed_here, repo, "c1"), Push::Taken(unlabelled.clone()));
    }

    #[test]
    fn classifies_push_failures() {
        assert!(is_transient(
            "Put \"http://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused"
        ));
        assert!(is_transient("received unexpected HTTP status: 503 Service Unavailable"));
        assert!(is_transient("toomanyrequests: You have reached your pull rate limit"));
        assert!(!is_transient("unauthorized: authentication required"));
        assert!(!is_transient("denied: requested access to the resource is denied"));
        assert!(!is_transient("manifest invalid: manifest invalid"));
    }
}
