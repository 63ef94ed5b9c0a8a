//! Where a release goes: `[workspace.metadata.release]` in `Cargo.toml`, overridden by the
//! environment and then by flags. Validated on load; errors name the key and the fix.

use anyhow::{bail, Context};
use toml_edit::DocumentMut;

use crate::model::platform::{self, Platform};
use xshell::Shell;

pub const CONFIG_FILE: &str = "Cargo.toml";
const TABLE: &str = "[workspace.metadata.release]";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `host[:port]` of the image registry, e.g. `docker.io`.
    pub registry: String,
    pub namespace: String,
    /// Service folders, each with a Dockerfile; the image is `gati-<service>`.
    pub services: Vec<String>,
    /// twine's upload URL.
    pub index: String,
    /// The index's simple API (PEP 503), asked which files of a version it already has.
    pub index_simple: String,
    /// The only branch releases are made from.
    pub branch: String,
    /// Every platform the images are built for: an image index lists one image of each.
    pub platforms: Vec<&'static Platform>,
    /// The Rust release every binary of a release is built with (`rust`, e.g. "1.96.0"): one
    /// toolchain for every platform, named in the images' provenance, the same for a rebuild.
    pub rust: String,
}

/// Command-line overrides, applied after the environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub registry: Option<String>,
    pub namespace: Option<String>,
}

/// The configuration of the tree `sh` is in, with the environment's overrides and `flags`'.
pub fn load(sh: &Shell, flags: &Overrides) -> anyhow::Result<Config> {
    Config::load(&sh.read_file(CONFIG_FILE)?, |k| std::env::var(k).ok(), flags)
}

/// [`load`] without flags.
pub fn load_default(sh: &Shell) -> anyhow::Result<Config> {
    load(sh, &Overrides::default())
}

impl Config {
    pub fn load(cargo_toml: &str, env: impl Fn(&str) -> Option<String>, flags: &Overrides) -> anyhow::Result<Config> {
        // An empty variable is an unset one (CI often passes absent secrets as "").
        let env = |key: &str| env(key).filter(|value| !value.is_empty());

        let doc: DocumentMut = cargo_toml.parse().with_context(|| format!("{CONFIG_FILE} is not valid TOML"))?;
        let table = doc
            .get("workspace")
            .and_then(|w| w.get("metadata"))
            .and_then(|m| m.get("release"))
            .with_context(|| format!("{CONFIG_FILE} has no {TABLE} table: add one (see README)"))?;
        let text = |key: &str| -> anyhow::Result<String> {
            table
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .with_context(|| format!("{CONFIG_FILE} {TABLE}: `{key}` is missing or not a string"))
        };
        let services = table
            .get("services")
            .and_then(|v| v.as_array())
            .with_context(|| format!("{CONFIG_FILE} {TABLE}: `services` is missing or not a list"))?
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .with_context(|| format!("{CONFIG_FILE} {TABLE}: `services` must be a list of strings"))?;
        let platforms = match table.get("platforms") {
            None => platform::PLATFORMS.iter().collect(),
            Some(list) => list
                .as_array()
                .with_context(|| format!("{CONFIG_FILE} {TABLE}: `platforms` must be a list like [\"linux/amd64\"]"))?
                .iter()
                .map(|v| {
                    let name =
                        v.as_str().with_context(|| format!("{CONFIG_FILE} {TABLE}: `platforms` lists strings"))?;
                    platform::platform(name).with_context(|| format!("{CONFIG_FILE} {TABLE} platforms"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
        };
        let config = Config {
            registry: flags.registry.clone().or_else(|| env("GATI_REGISTRY")).map_or_else(|| text("registry"), Ok)?,
            // Not DOCKER_USERNAME: that is the login (a bot or a member account in CI), and the
            // images go to the organisation's namespace whoever pushes them.
            namespace: flags
                .namespace
                .clone()
                .or_else(|| env("GATI_NAMESPACE"))
                .map_or_else(|| text("namespace"), Ok)?,
            services,
            index: env("GATI_INDEX").map_or_else(|| text("index"), Ok)?,
            index_simple: env("GATI_INDEX_SIMPLE").map_or_else(|| text("index_simple"), Ok)?,
            branch: text("branch")?,
            platforms,
            rust: text("rust")?,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        let registry_ok = !self.registry.is_empty()
            && !self.registry.contains("://")
            && self.registry.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
        if !registry_ok {
            problems.push(format!(
                "registry {:?} must be a host[:port] such as docker.io or 127.0.0.1:5000, without a scheme",
                self.registry
            ));
        }
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        };
        if !name_ok(&self.namespace) {
            problems.push(format!(
                "namespace {:?} must be lowercase letters, digits, `.`, `_` or `-` (a Docker Hub user or organisation)",
                self.namespace
            ));
        }
        if self.services.is_empty() {
            problems.push("services must name at least one service folder".into());
        }
        for (i, s) in self.services.iter().enumerate() {
            if !name_ok(s) {
                problems.push(format!("service {s:?} must be lowercase letters, digits, `.`, `_` or `-`"));
            }
            if self.services[..i].contains(s) {
                problems.push(format!("service {s:?} is listed twice"));
            }
        }
        for (key, value, example) in [
            ("index", &self.index, "https://upload.pypi.org/legacy/"),
            ("index_simple", &self.index_simple, "https://pypi.org/simple/"),
        ] {
            if !(value.starts_with("https://") || value.starts_with("http://")) {
                problems.push(format!("{key} {value:?} must be an http(s) URL such as {example}"));
            }
        }
        for (i, platform) in self.platforms.iter().enumerate() {
            if self.platforms[..i].contains(platform) {
                problems.push(format!("platform {:?} is listed twice", platform.name));
            }
        }
        if self.platforms.is_empty() {
            problems.push("platforms must list at least one platform, e.g. [\"linux/amd64\", \"linux/arm64\"]".into());
        }
        let release = semver::Version::parse(&self.rust);
        if release.as_ref().map_or(true, |v| !v.pre.is_empty() || !v.build.is_empty()) {
            problems.push(format!("rust {:?} must be a stable Rust release such as \"1.96.0\"", self.rust));
        }
        if self.branch.trim().is_empty() {
            problems.push("branch must name the release branch, e.g. \"main\"".into());
        }
        if !problems.is_empty() {
            bail!("{CONFIG_FILE} {TABLE} (or its overrides) is not valid:\n  - {}", problems.join("\n  - "));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARGO_TOML: &str = r#"
[workspace.metadata.release]
registry = "docker.io"
namespace = "gatidev"
services = ["backend", "dashboard"]
index = "https://upload.pypi.org/legacy/"
index_simple = "https://pypi.org/simple/"
branch = "main"
rust = "1.96.0"
"#;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn loads_and_names_images() {
        let config = Config::load(CARGO_TOML, no_env, &Overrides::default()).unwrap();
        assert_eq!((config.registry.as_str(), config.namespace.as_str()), ("docker.io", "gatidev"));
        assert_eq!(config.services, ["backend", "dashboard"]);
        let platforms: Vec<&str> = config.platforms.iter().map(|p| p.name).collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "the default: every platform gati ships");
        let amd64 = CARGO_TOML.replace("branch = \"main\"", "branch = \"main\"\nplatforms = [\"linux/amd64\"]");
        assert_eq!(Config::load(&amd64, no_env, &Overrides::default()).unwrap().platforms.len(), 1);
        let riscv = CARGO_TOML.replace("branch = \"main\"", "branch = \"main\"\nplatforms = [\"linux/riscv64\"]");
        let err = format!("{:#}", Config::load(&riscv, no_env, &Overrides::default()).unwrap_err());
        assert!(err.contains("linux/riscv64") && err.contains("linux/arm64"), "{err}");
    }

    #[test]
    fn flags_beat_environment_beats_file() {
        let env = |k: &str| match k {
            "GATI_NAMESPACE" => Some("fromenv".to_string()),
            "GATI_REGISTRY" => Some("127.0.0.1:5000".to_string()),
            _ => None,
        };
        let config = Config::load(CARGO_TOML, env, &Overrides::default()).unwrap();
        assert_eq!((config.registry.as_str(), config.namespace.as_str()), ("127.0.0.1:5000", "fromenv"));
        let flags = Overrides { namespace: Some("fromflag".into()), ..Default::default() };
        assert_eq!(Config::load(CARGO_TOML, env, &flags).unwrap().namespace, "fromflag");
    }

    #[test]
    fn the_login_is_not_the_namespace() {
        // CI logs in as a bot account and pushes to the organisation's namespace.
        let env = |k: &str| (k == "DOCKER_USERNAME").then(|| "gati-ci-bot".to_string());
        assert_eq!(Config::load(CARGO_TOML, env, &Overrides::default()).unwrap().namespace, "gatidev");
    }

    #[test]
    fn invalid_values_are_all_named() {
        let bad = CARGO_TOML
            .replace("\"docker.io\"", "\"https://docker.io\"")
            .replace("\"gatidev\"", "\"Gati Dev\"")
            .replace("\"dashboard\"]", "\"backend\"]");
        let err = Config::load(&bad, no_env, &Overrides::default()).unwrap_err().to_string();
        for needle in ["registry \"https://docker.io\"", "namespace \"Gati Dev\"", "listed twice"] {
            assert!(err.contains(needle), "{needle} in {err}");
        }
        let missing = CARGO_TOML.replace("branch = \"main\"\n", "");
        let err = Config::load(&missing, no_env, &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("`branch` is missing"), "{err}");
    }
}
