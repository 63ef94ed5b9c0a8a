//! The release version: semver `MAJOR.MINOR.PATCH[-(alpha|beta|rc).N]`, spelled for Python per
//! PEP 440 (`1.2.0-rc.1` is `1.2.0rc1`), and the bump rules. Pure functions only.

use std::fmt;

use anyhow::bail;
use semver::{Prerelease, Version};

/// The pre-release stages, lowest first: they never go down.
const STAGES: [(&str, &str); 3] = [("alpha", "a"), ("beta", "b"), ("rc", "rc")];

/// A version valid both as semver and as PEP 440.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReleaseVersion(Version);

impl ReleaseVersion {
    /// Accepts either spelling: `0.2.0-rc.1` or `0.2.0rc1`.
    pub fn parse(input: &str) -> anyhow::Result<ReleaseVersion> {
        let s = input.trim();
        if s.starts_with(['v', 'V']) {
            bail!("{input:?} starts with a `v`: write the bare version (the tag `v…` is made from it)");
        }
        if s.contains('+') {
            bail!("{input:?} has build metadata (`+…`), which PyPI and image tags cannot carry");
        }
        let semver_spelling = match split_pep440(s) {
            Some((base, stage, n)) => format!("{base}-{stage}.{n}"),
            None => s.to_string(),
        };
        let version = Version::parse(&semver_spelling)
            .map_err(|e| anyhow::anyhow!("{input:?} is not a version like 1.2.3, 1.2.3-rc.1 or 1.2.3rc1: {e}"))?;
        if !version.pre.is_empty() {
            let parts: Vec<&str> = version.pre.as_str().split('.').collect();
            let valid = matches!(parts.as_slice(), [stage, n]
                if STAGES.iter().any(|(s, _)| s == stage) && is_number(n));
            if !valid {
                bail!(
                    "{input:?} has the pre-release `{}`: only alpha.N, beta.N and rc.N exist in both \
                     semver and PEP 440 (e.g. 1.2.3-rc.1)",
                    version.pre
                );
            }
        }
        Ok(ReleaseVersion(version))
    }

    pub fn semver(&self) -> &Version {
        &self.0
    }

    pub fn is_prerelease(&self) -> bool {
        !self.0.pre.is_empty()
    }

    /// `(stage index, N)` of a pre-release.
    fn stage(&self) -> Option<(usize, u64)> {
        let (name, n) = self.0.pre.as_str().split_once('.')?;
        Some((STAGES.iter().position(|(s, _)| *s == name)?, n.parse().ok()?))
    }

    /// The PEP 440 spelling: `1.2.0rc1`.
    pub fn pep440(&self) -> String {
        let Version { major, minor, patch, .. } = self.0;
        match self.stage() {
            Some((i, n)) => format!("{major}.{minor}.{patch}{}{n}", STAGES[i].1),
            None => format!("{major}.{minor}.{patch}"),
        }
    }

    fn new(major: u64, minor: u64, patch: u64, pre: Option<(usize, u64)>) -> ReleaseVersion {
        let mut v = Version::new(major, minor, patch);
        if let Some((i, n)) = pre {
            v.pre = Prerelease::new(&format!("{}.{n}", STAGES[i].0)).expect("a valid pre-release");
        }
        ReleaseVersion(v)
    }

    /// The next version for a bump kind (`major`, `minor`, `patch`, `alpha`, `beta`, `rc`,
    /// `release`) or an explicit version.
    pub fn bump(&self, how: &str) -> anyhow::Result<ReleaseVersion> {
        let Version { major, minor, patch, .. } = self.0;
        let pre = self.stage();
        Ok(match how {
            // On a pre-release of the same line, `major`/`minor`/`patch` finish it (cargo-release).
            "major" if pre.is_some() && minor == 0 && patch == 0 => Self::new(major, 0, 0, None),
            "major" => Self::new(major + 1, 0, 0, None),
            "minor" if pre.is_some() && patch == 0 => Self::new(major, minor, 0, None),
            "minor" => Self::new(major, minor + 1, 0, None),
            "patch" if pre.is_some() => Self::new(major, minor, patch, None),
            "patch" => Self::new(major, minor, patch + 1, None),
            "release" => match pre {
                Some(_) => Self::new(major, minor, patch, None),
                None => bail!("{self} is already a release: use major, minor, patch or a pre-release kind"),
            },
            stage if STAGES.iter().any(|(s, _)| *s == stage) => {
                let want = STAGES.iter().position(|(s, _)| *s == stage).unwrap();
                match pre {
                    None => Self::new(major, minor, patch + 1, Some((want, 1))),
                    Some((have, n)) if have == want => Self::new(major, minor, patch, Some((want, n + 1))),
                    Some((have, _)) if have < want => Self::new(major, minor, patch, Some((want, 1))),
                    Some(_) => bail!(
                        "{self} is past {stage}: pre-releases never go down; use {} or `release`",
                        STAGES[pre.unwrap().0..].iter().map(|(s, _)| format!("`{s}`")).collect::<Vec<_>>().join(", ")
                    ),
                }
            }
            explicit => ReleaseVersion::parse(explicit)?,
        })
    }
}

impl fmt::Display for ReleaseVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

/// `1.2.0rc1` → `("1.2.0", "rc", "1")`: only the normalized PEP 440 pre-release spellings.
fn split_pep440(s: &str) -> Option<(&str, &str, &str)> {
    let at = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (base, rest) = s.split_at(at);
    let letters = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
    let (short, n) = rest.split_at(letters);
    let (stage, _) = STAGES.iter().find(|(_, p)| *p == short)?;
    (base.split('.').count() == 3 && is_number(n)).then_some((base, stage, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> ReleaseVersion {
        ReleaseVersion::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn both_spellings() {
        let table = [
            ("0.1.0", "0.1.0", "0.1.0"),
            ("1.2.0-rc.1", "1.2.0-rc.1", "1.2.0rc1"),
            ("1.2.0rc1", "1.2.0-rc.1", "1.2.0rc1"),
            ("1.2.0-alpha.1", "1.2.0-alpha.1", "1.2.0a1"),
            ("1.2.0a3", "1.2.0-alpha.3", "1.2.0a3"),
            ("1.2.0-beta.10", "1.2.0-beta.10", "1.2.0b10"),
            ("1.2.0b2", "1.2.0-beta.2", "1.2.0b2"),
            ("10.20.30", "10.20.30", "10.20.30"),
        ];
        for (input, semver, pep440) in table {
            let parsed = v(input);
            assert_eq!((parsed.to_string().as_str(), parsed.pep440().as_str()), (semver, pep440), "{input}");
            // Round trips: each spelling parses back to the same version.
            assert_eq!(v(&parsed.pep440()), parsed);
            assert_eq!(v(&parsed.to_string()), parsed);
        }
    }

    #[test]
    fn refusals_say_why() {
        let table = [
            ("1.2.3+build.5", "build metadata"),
            ("1.2", "not a version"),
            ("v1.2.3.4", "starts with a `v`"),
            ("vv1.0.0", "starts with a `v`"),
            ("1.2.3.4", "not a version"),
            ("01.2.3", "not a version"),
            ("1.02.3", "not a version"),
            ("1.2.0-foo", "only alpha.N, beta.N and rc.N"),
            ("1.2.0-rc", "only alpha.N, beta.N and rc.N"),
            ("1.2.0-rc.01", "leading zero"),
            ("1.2.0-rc.1.2", "only alpha.N, beta.N and rc.N"),
            ("1.2.0.post1", "not a version"),
            ("1.2.0.dev1", "not a version"),
            ("1.2.0c1", "not a version"),
            ("", "not a version"),
        ];
        for (input, why) in table {
            let err = ReleaseVersion::parse(input).expect_err(input).to_string();
            assert!(err.contains(why), "{input}: {err}");
        }
    }

    #[test]
    fn ordering() {
        let ordered = [
            "0.9.9",
            "1.0.0-alpha.1",
            "1.0.0-alpha.2",
            "1.0.0-beta.1",
            "1.0.0-rc.1",
            "1.0.0-rc.9",
            "1.0.0-rc.10",
            "1.0.0",
            "1.0.1",
            "1.1.0",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn bumps() {
        let table = [
            ("0.1.0", "patch", "0.1.1"),
            ("0.1.9", "minor", "0.2.0"),
            ("0.9.3", "major", "1.0.0"),
            ("1.2.3", "alpha", "1.2.4-alpha.1"),
            ("1.2.3", "rc", "1.2.4-rc.1"),
            ("1.2.4-alpha.1", "alpha", "1.2.4-alpha.2"),
            ("1.2.4-alpha.2", "beta", "1.2.4-beta.1"),
            ("1.2.4-beta.3", "rc", "1.2.4-rc.1"),
            ("1.2.4-rc.9", "rc", "1.2.4-rc.10"),
            ("1.2.4-rc.2", "release", "1.2.4"),
            ("1.0.0-rc.2", "major", "1.0.0"),
            ("1.1.0-rc.2", "major", "2.0.0"),
            ("1.2.0-beta.1", "minor", "1.2.0"),
            ("1.2.1-beta.1", "minor", "1.3.0"),
            ("1.2.1-beta.1", "patch", "1.2.1"),
            ("0.1.0", "0.2.0rc1", "0.2.0-rc.1"),
        ];
        for (from, how, want) in table {
            assert_eq!(v(from).bump(how).unwrap(), v(want), "{from} + {how}");
        }
    }

    #[test]
    fn bumps_never_go_down() {
        for (from, how) in
            [("1.2.4-rc.1", "beta"), ("1.2.4-rc.1", "alpha"), ("1.2.4-beta.1", "alpha"), ("1.2.4", "release")]
        {
            assert!(v(from).bump(how).is_err(), "{from} + {how}");
        }
    }
}
