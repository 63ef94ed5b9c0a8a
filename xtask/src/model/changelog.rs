//! What a release says changed: the commits since the previous tag, grouped by
//! conventional-commit type where they follow it, rendered by git-cliff (`cliff.toml`, the
//! binary pinned in the tools' environment; run by `ops::git::cliff`). The section goes into `CHANGELOG.md` in the
//! release commit; the release notes add the pinned images to it.

use crate::model::version::ReleaseVersion;

pub const CHANGELOG: &str = "CHANGELOG.md";
const HEADER: &str = "# Changelog\n\nEvery release of gati: its changes, the images it pins and how to install it.\n";

/// The section of `version` from git-cliff's rendering of its commits (`commits`, see
/// `ops::git::cliff`), then how to install it.
pub fn section(commits: &str, version: &ReleaseVersion) -> String {
    let body = commits.trim();
    let body = if body.lines().count() <= 1 {
        format!("{body}\n\nNo changes since the previous release.")
    } else {
        body.to_string()
    };
    format!("{body}\n\nInstall: `pip install gati=={}`\n", version.pep440())
}

/// `CHANGELOG.md` with `section` as its newest entry (after the header), unless it has one for
/// `version` already. `None`: nothing to change.
pub fn with_section(changelog: Option<&str>, version: &ReleaseVersion, section: &str) -> Option<String> {
    let text = changelog.unwrap_or(HEADER);
    let heading = format!("## {version} (");
    if text.lines().any(|l| l.starts_with(&heading)) {
        return None;
    }
    let at = text.find("\n## ").map(|i| i + 1).unwrap_or(text.len());
    let (head, rest) = text.split_at(at);
    let head = head.trim_end();
    Some(format!("{head}\n\n{}\n{}{rest}", section.trim_end(), if rest.is_empty() { "" } else { "\n" }))
}

/// The section of `version` in a `CHANGELOG.md`, if it has one.
pub fn section_of(changelog: &str, version: &ReleaseVersion) -> Option<String> {
    let heading = format!("## {version} (");
    let start = changelog.lines().position(|l| l.starts_with(&heading))?;
    let lines: Vec<&str> = changelog.lines().skip(start).collect();
    let end = lines.iter().skip(1).position(|l| l.starts_with("## ")).map_or(lines.len(), |i| i + 1);
    Some(lines[..end].join("\n").trim_end().to_string() + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> ReleaseVersion {
        ReleaseVersion::parse(s).unwrap()
    }

    #[test]
    fn the_newest_section_goes_first_once() {
        let first = with_section(None, &v("0.1.1"), "## 0.1.1 (2026-11-27)\n\n- a change\n").unwrap();
        assert!(first.starts_with(HEADER.trim_end()), "{first}");
        let second = with_section(Some(&first), &v("0.2.0"), "## 0.2.0 (2026-12-01)\n\n- another\n").unwrap();
        let order: Vec<&str> = second.lines().filter(|l| l.starts_with("## ")).collect();
        assert_eq!(order, ["## 0.2.0 (2026-12-01)", "## 0.1.1 (2026-11-27)"]);
        assert_eq!(with_section(Some(&second), &v("0.2.0"), "## 0.2.0 (2026-12-02)\n"), None);
        assert_eq!(section_of(&second, &v("0.1.1")).unwrap(), "## 0.1.1 (2026-11-27)\n\n- a change\n");
        assert_eq!(section_of(&second, &v("0.2.0")).unwrap(), "## 0.2.0 (2026-12-01)\n\n- another\n");
        assert_eq!(section_of(&second, &v("0.3.0")), None);
    }
}
