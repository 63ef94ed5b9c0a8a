//! Which tags an image gets, and whether the floating ones may move. Pure decisions.
//!
//! Immutable tags name one build forever: `X.Y.Z` (or `X.Y.Z-rc.N`), and `sha-<commit>` for
//! builds of `main`. Floating tags move: `X.Y` and `latest` for stable releases, `edge` for
//! builds of `main`. `X.Y` and `latest` never move backwards: each moves only when the release
//! is the highest stable version in its scope among the tags already on the registry.

use crate::model::version::ReleaseVersion;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tags {
    /// Pushed first, each verified against the registry.
    pub immutable: Vec<String>,
    /// Candidates, moved only after every image's immutable tags are verified.
    pub floating: Vec<String>,
}

/// The tags of a release build, or of an `--edge` build of `commit`.
pub fn for_build(version: &ReleaseVersion, edge_commit: Option<&str>) -> Tags {
    if let Some(commit) = edge_commit {
        let short = &commit[..commit.len().min(12)];
        return Tags { immutable: vec![format!("sha-{short}")], floating: vec!["edge".into()] };
    }
    if version.is_prerelease() {
        return Tags { immutable: vec![version.to_string()], floating: vec![] };
    }
    let v = version.semver();
    Tags { immutable: vec![version.to_string()], floating: vec![format!("{}.{}", v.major, v.minor), "latest".into()] }
}

/// Whether a floating tag moves, and why not if it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Move {
    Move(String),
    /// The tag stays where it is: `higher` is already on the registry.
    Keep {
        tag: String,
        higher: String,
    },
}

/// Decides each floating tag against the tags already on the registry.
pub fn floating_moves(version: &ReleaseVersion, floating: &[String], existing: &[String]) -> Vec<Move> {
    let stable: Vec<ReleaseVersion> =
        existing.iter().filter_map(|t| ReleaseVersion::parse(t).ok()).filter(|v| !v.is_prerelease()).collect();
    floating
        .iter()
        .map(|tag| {
            let in_scope = |v: &&ReleaseVersion| match tag.as_str() {
                "latest" => true,
                "edge" => false,
                line => format!("{}.{}", v.semver().major, v.semver().minor) == line,
            };
            match stable.iter().filter(in_scope).max() {
                Some(highest) if highest > version => Move::Keep { tag: tag.clone(), higher: highest.to_string() },
                _ => Move::Move(tag.clone()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> ReleaseVersion {
        ReleaseVersion::parse(s).unwrap()
    }

    fn strings(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tags_of_each_kind_of_build() {
        assert_eq!(
            for_build(&v("1.2.3"), None),
            Tags { immutable: strings(&["1.2.3"]), floating: strings(&["1.2", "latest"]) }
        );
        assert_eq!(for_build(&v("1.2.3-rc.1"), None), Tags { immutable: strings(&["1.2.3-rc.1"]), floating: vec![] });
        assert_eq!(
            for_build(&v("1.2.3"), Some("0123456789abcdef0123")),
            Tags { immutable: strings(&["sha-0123456789ab"]), floating: strings(&["edge"]) }
        );
    }

    #[test]
    fn a_hotfix_moves_its_line_but_not_latest() {
        let existing = strings(&["0.1.4", "0.1", "0.2.0", "0.2", "latest", "0.3.0-rc.1", "edge", "sha-abc"]);
        let moves = floating_moves(&v("0.1.5"), &strings(&["0.1", "latest"]), &existing);
        assert_eq!(moves, vec![Move::Move("0.1".into()), Move::Keep { tag: "latest".into(), higher: "0.2.0".into() }]);
    }

    #[test]
    fn the_highest_release_moves_both_and_prereleases_do_not_count() {
        let existing = strings(&["0.1.4", "0.2.0", "0.3.0-rc.1"]);
        let moves = floating_moves(&v("0.2.1"), &strings(&["0.2", "latest"]), &existing);
        assert_eq!(moves, vec![Move::Move("0.2".into()), Move::Move("latest".into())]);
        // A re-run of the same release moves nothing backwards: equal is not higher.
        let moves = floating_moves(&v("0.2.1"), &strings(&["0.2", "latest"]), &strings(&["0.2.1"]));
        assert_eq!(moves, vec![Move::Move("0.2".into()), Move::Move("latest".into())]);
    }

    #[test]
    fn an_older_patch_never_moves_its_line_back() {
        let moves = floating_moves(&v("0.2.0"), &strings(&["0.2", "latest"]), &strings(&["0.2.3"]));
        assert_eq!(
            moves,
            vec![
                Move::Keep { tag: "0.2".into(), higher: "0.2.3".into() },
                Move::Keep { tag: "latest".into(), higher: "0.2.3".into() }
            ]
        );
    }

    #[test]
    fn edge_always_moves() {
        assert_eq!(
            floating_moves(&v("9.9.9"), &strings(&["edge"]), &strings(&["10.0.0"])),
            vec![Move::Move("edge".into())]
        );
    }
}
