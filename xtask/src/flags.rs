//! The command line. Each subcommand's struct has its `run` in the module of the same name.

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask",
    about = "gati's build, test and release automation",
    version
)]
pub struct Xtask {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Test(Test),
}

/// Run every test: Rust unit tests, the services over HTTP, MCP and in Chromium, and the images
/// in Docker. Installs what is missing on a Debian machine (as root) and starts `dockerd` if
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
    #[test]
    fn cli_definition_is_valid() {
        use clap::CommandFactory;
        super::Xtask::command().debug_assert();
    }
}
