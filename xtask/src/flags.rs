//! The command line. Each subcommand's struct has its `run` in the module of the same name,
//! or in `commands.rs` for those whose work is a lower layer's (`images`, `release`).

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "gati's automation: tests, versions, images, releases",
    long_about = "gati's automation: tests, versions, images, releases.\n\n\
                  Runs from anywhere in the repository. `cargo xtask COMMAND --help` tells more of each command."
)]
pub struct Xtask {
    #[command(subcommand)]
    pub command: Command,
}

/// The command line, with what only the code knows added: the release's steps, from its list
/// (`release::steps_help`, which `main` passes: release/ holds `flags::Release`'s `run`, and
/// the flags calling back into it would tie the two in a circle).
pub fn command(release_steps: &str) -> clap::Command {
    use clap::CommandFactory;
    Xtask::command().mut_subcommand("release", |release| release.after_help(release_steps.to_string()))
}

/// Parses the command line (exits with the help or an error when it does not parse).
pub fn parse(release_steps: &str) -> Xtask {
    use clap::FromArgMatches;
    let matches = command(release_steps).get_matches();
    Xtask::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Test(Test),
    Bump(Bump),
    Version(Version),
    Images(Images),
    Bench(Bench),
    Release(Release),
    Rehearse(Rehearse),
    Doctor(Doctor),
    Lint(Lint),
    Verify(Verify),
    Yank(Yank),
}

/// Take a bad release back, on the registry and for every machine
///
/// Records the yank of VERSION on origin (`refs/yanked/vVERSION`, with the reason), so that
/// from then on `release`, `images --push` and a resumed release of VERSION are refused on any
/// machine; then moves every floating tag that names VERSION's indexes (`latest`, `X.Y`) back
/// to the newest release of its scope that is not yanked: the one deliberate exception to
/// "never backwards". VERSION's own tag and digests stay. Prints PyPI's page for VERSION and
/// the reason to paste there. On a terminal it asks first (`--yes` skips that; without a
/// terminal it stops after the plan). Run again after any interruption: it completes.
#[derive(clap::Args, Debug)]
pub struct Yank {
    /// The release to yank (either spelling, with or without a leading v).
    pub version: String,
    /// Why, for the record and for PyPI's yank page (required unless --undo).
    #[arg(long, required_unless_present = "undo")]
    pub reason: Option<String>,
    /// Take the yank back: remove the record, move the floating tags forward again.
    #[arg(long)]
    pub undo: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Print every move and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Check a release from outside, as a user meets it
///
/// On any machine, with no journal: the index serves the wheel and sdist of VERSION; every image the wheel pins
/// (`…:VERSION@sha256:…`) is served by the registry with VERSION's labels, and its tag still
/// points at that digest; a fresh venv `pip install gati==VERSION` and `gati start` report
/// VERSION on /health. Everything it starts is stopped and removed. The registry is read
/// anonymously, as users of public images do; where it refuses anonymous reads, with
/// DOCKER_USERNAME/DOCKER_PASSWORD (and its users must `docker login` first).
#[derive(clap::Args, Debug)]
pub struct Verify {
    /// The released version (either spelling, with or without a leading v).
    pub version: String,
    /// Also rebuild the images from the tag vVERSION (compiling them, with the release's
    /// toolchain) and prove their index digests equal the ones the package pins.
    #[arg(long)]
    pub rebuild: bool,
    /// Print, as JSON, what the registry and the index serve of VERSION, in the structure of
    /// the release manifest (`gati-VERSION.manifest.json`) so the two can be diffed; checks
    /// nothing else (no pip install, no gati start).
    #[arg(long, conflicts_with = "rebuild")]
    pub json: bool,
}

/// Lint the workflows and the Dockerfiles
///
/// actionlint and zizmor for the GitHub workflows, hadolint for the Dockerfiles; each must
/// report nothing.
#[derive(clap::Args, Debug)]
pub struct Lint {}

/// Check this machine and configuration for a release
///
/// What the machine has (Docker, compose, Python), then every check of the release's
/// preflight, for the next patch release: each `ok` or its problem with the fix. Exits 0 only
/// when that release would pass its preflight. Changes nothing.
#[derive(clap::Args, Debug)]
pub struct Doctor {
    /// Print the checks as JSON (for CI).
    #[arg(long)]
    pub json: bool,
}

/// Rehearse a complete release into throwaway services
///
/// A complete release into a throwaway registry and index on loopback, from a throwaway clone
/// whose origin is a throwaway bare repository; then `pip install gati==VERSION` from that index
/// into a fresh venv and `gati start` against that registry. Nothing reaches your remotes,
/// registry or index; your tree and tags are untouched.
#[derive(clap::Args, Debug)]
pub struct Rehearse {
    /// The version to rehearse (default: the next patch).
    pub version: Option<String>,
}

/// Release a version: images, package and tag, together
///
/// The images to the registry and the package to the index, together, in the order that keeps
/// every failure resumable. First the preflight: every problem at once, nothing changed. On a
/// terminal it asks before changing anything (`--yes` skips that).
#[derive(clap::Args, Debug)]
pub struct Release {
    /// The version (either spelling) or a bump kind: major, minor, patch, alpha, beta, rc, release.
    #[arg(value_name = "VERSION|KIND", required_unless_present = "from_tag", conflicts_with = "from_tag")]
    pub version: Option<String>,
    /// Release an existing tag (CI on a tag push): it must point at HEAD and match every
    /// version surface. Skips bump, commit, tag and git push; builds, verifies, pushes the
    /// images and uploads, with the same journal and checks.
    #[arg(long, value_name = "vX.Y.Z")]
    pub from_tag: Option<String>,
    /// Do not ask for confirmation after the preflight.
    #[arg(long)]
    pub yes: bool,
    /// Print the plan — diffs, commands (secrets masked), tags, upload targets — and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Measure, and print figures against a baseline
///
/// No pass or fail: each benchmark prints what it measured beside a baseline measured in the
/// same run.
#[derive(clap::Args, Debug)]
pub struct Bench {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(clap::Subcommand, Debug)]
pub enum BenchWhat {
    /// `images --push` against the old sequential flow
    ///
    /// `cargo xtask images --push` against the old flow (three `docker build`s, then six
    /// `docker push`es, one after another), cold, each into its own throwaway registry.
    Images {
        /// Rounds of each flow; the median is reported.
        #[arg(long, default_value_t = 1)]
        rounds: usize,
    },
    /// The rehearsed release against the old sequential flow
    ///
    /// The rehearsal's release (`cargo xtask rehearse`) against the old flow for the same
    /// artifacts (three `docker build`s, six `docker push`es, `python -m build`, `twine upload`,
    /// one after another), and a re-run of the finished release.
    Release,
    /// The backend on a database of EVENTS events: ingest events/s, the p50/p95 of every
    /// dashboard, metrics and search route, the database's size and the backend's memory.
    ///
    /// With --otlp, the same number of GenAI spans through `/v1/traces` on a second database:
    /// spans/s and the backend's CPU per span beside its CPU per native event, with the goals.
    Backend {
        /// How many events to load (runs of 100, 20 agents); with --otlp, as many spans too.
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        /// Also send as many spans as an OpenTelemetry exporter does (protobuf batches of 512,
        /// 4 clients) to a fresh backend, and compare them with the native events.
        #[arg(long)]
        otlp: bool,
        /// Send the same spans to a rival too, and print both side by side (implies --otlp).
        /// Phoenix stores 100 to 200 spans/s here: give it about 10,000 (`--events 10240`).
        #[arg(long, value_enum, value_name = "RIVAL")]
        against: Option<Rival>,
    },
}

/// Who `bench backend --against` measures gati with.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Rival {
    /// Arize Phoenix (`phoenix serve`, SQLite), pinned and installed into target/bench-phoenix.
    Phoenix,
}

/// Build the service images, and push them
///
/// One `cargo build`, each `docker build` as soon as its binary is compiled; with `--push`,
/// every immutable tag first, each digest verified against the registry, and only then the
/// floating tags (`X.Y`, `latest`, `edge`), which never move backwards.
#[derive(clap::Args, Debug, Clone)]
pub struct Images {
    /// Push to the registry (logs in first when DOCKER_USERNAME and DOCKER_PASSWORD are set).
    #[arg(long)]
    pub push: bool,
    /// Only this service (repeatable).
    #[arg(long, value_name = "SERVICE")]
    pub only: Vec<String>,
    /// A build of `main` that is not a release: tags `edge` and `sha-<commit>`.
    #[arg(long)]
    pub edge: bool,
    /// Registry host[:port] (default: [workspace.metadata.release] registry, or GATI_REGISTRY).
    #[arg(long)]
    pub registry: Option<String>,
    /// Namespace (default: GATI_NAMESPACE, or the configured one). DOCKER_USERNAME is only the login.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Print every command and tag; run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Write a new version into every version surface
///
/// sdk/gati/version.py (PEP 440 spelling), the gati image tags in sdk/gati/docker-compose.yml, [workspace.package] version in Cargo.toml,
/// and Cargo.lock. All files are replaced together, or none.
#[derive(clap::Args, Debug)]
#[command(after_help = BUMP_RULES)]
pub struct Bump {
    /// major | minor | patch | alpha | beta | rc | release | an explicit VERSION
    #[arg(value_name = "KIND|VERSION")]
    pub to: String,
    /// Print a unified diff of every file and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write a version that is not greater than the current one.
    #[arg(long)]
    pub allow_downgrade: bool,
}

const BUMP_RULES: &str = "\
Bump rules:
  patch, minor, major   1.2.3 -> 1.2.4, 1.3.0, 2.0.0. On a pre-release they finish it when it is
                        the same line: 1.2.4-rc.1 + patch = 1.2.4; 1.3.0-beta.2 + minor = 1.3.0;
                        1.0.0-rc.2 + major = 1.0.0 (as cargo-release does).
  alpha, beta, rc       On a release, start the next patch's pre-release: 1.2.3 + rc = 1.2.4-rc.1.
                        On a pre-release, advance (rc.1 -> rc.2) or move up a stage
                        (beta.3 + rc = rc.1); never down (rc.1 + beta is refused).
  release               Drop the pre-release part: 1.2.4-rc.2 -> 1.2.4.
  VERSION               Either spelling: 0.2.0-rc.1 or 0.2.0rc1. Refused: build metadata (+x),
                        missing parts (1.2), leading zeros, a `v` prefix, labels other than
                        alpha/beta/rc.
The new version must be greater than the current one (--allow-downgrade to force).";

/// Print the version and what each surface holds
///
/// The current version in both spellings, and each surface's value; exits non-zero when the
/// surfaces disagree.
#[derive(clap::Args, Debug)]
pub struct Version {}

/// Run every test
///
/// Lint, Rust unit tests, the services over HTTP, MCP and in Chromium, the images in Docker,
/// releases into throwaway registries and indexes. Installs what is missing on a Debian machine (as root) and starts `dockerd` if
/// none answers, stopping it again afterwards.
#[derive(clap::Args, Debug)]
pub struct Test {
    /// Only run pytest tests whose name matches this expression (pytest's `-k`).
    #[arg(short = 'k', long = "filter")]
    pub filter: Option<String>,
    /// Skip the container tests (building and running the images).
    #[arg(long)]
    pub no_images: bool,
}

#[cfg(test)]
mod tests {
    /// The command line as `main` makes it.
    fn cli() -> clap::Command {
        super::command(&crate::release::steps_help())
    }

    /// The help of `cargo xtask` and of each command, as kept in `test-data/help/`. After a
    /// change to the CLI, `UPDATE_SNAPSHOTS=1 cargo test -p xtask` rewrites them: read the diff.
    #[test]
    fn help_is_as_kept() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test-data").join("help");
        let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
        let mut command = cli();
        let mut helps = vec![("cargo-xtask".to_string(), command.render_long_help().to_string())];
        for sub in command.get_subcommands_mut() {
            helps.push((format!("cargo-xtask-{}", sub.get_name()), sub.render_long_help().to_string()));
        }
        let mut stale = Vec::new();
        for (name, help) in helps {
            let path = dir.join(format!("{name}.txt"));
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &help).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(help.as_str()) {
                stale.push(format!("{}:\n{help}", path.display()));
            }
        }
        assert!(
            stale.is_empty(),
            "the help differs from its snapshot; if the change is meant, run \
                `UPDATE_SNAPSHOTS=1 cargo test -p xtask` and read the diff:\n{}",
            stale.join("\n")
        );
        let top = cli().render_help().to_string();
        let lines = top.lines().skip_while(|l| !l.starts_with("Commands:")).skip(1).take_while(|l| !l.is_empty());
        assert!(
            lines.clone().count() >= 10 && lines.clone().all(|l| l.len() < 80),
            "one short line per command:\n{top}"
        );
    }

    #[test]
    fn cli_definition_is_valid() {
        cli().debug_assert();
    }

    /// Every `cargo xtask …` written in the workflows (`run:` lines), the README and the release
    /// guide (code blocks and inline code) is a command line the current CLI accepts.
    #[test]
    fn documented_invocations_parse() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut commands = Vec::new();
        for file in [".github/workflows/ci.yml", ".github/workflows/docker-build.yml"] {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            commands.extend(text.lines().filter_map(|l| l.trim().strip_prefix("run: ")).map(|c| (file, c.to_string())));
        }
        for file in ["README.md", "docs/RELEASING.md"] {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            let mut fenced = false;
            for line in text.lines() {
                if line.starts_with("```") {
                    fenced = !fenced;
                } else if fenced {
                    let code = line.trim_start_matches("$ ").split(" #").next().unwrap().trim();
                    commands.push((file, code.to_string()));
                } else {
                    commands.extend(line.split('`').skip(1).step_by(2).map(|code| (file, code.to_string())));
                }
            }
        }
        let mut seen = 0;
        for (file, command) in commands {
            let Some(args) = command.strip_prefix("cargo xtask ") else { continue };
            // Synopses with placeholders (`<…>`, `[…]`, `…`, `a|b`) are not command lines.
            if args.contains(['<', '[', '…', '|']) {
                continue;
            }
            let argv = std::iter::once("cargo xtask".to_string())
                .chain(args.split_whitespace().map(|w| w.trim_matches('"').replace("$TAG", "v1.2.3")));
            match cli().try_get_matches_from(argv) {
                Ok(_) => {}
                Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {}
                Err(e) => panic!("{file}: `{command}` does not parse:\n{e}"),
            }
            seen += 1;
        }
        assert!(seen > 20, "only {seen} invocations found");
    }
}
