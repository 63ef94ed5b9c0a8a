//! The `run` of each command whose work is a layer below the commands (`images/`,
//! `release/`): its flags made that layer's request. Those layers know no flags, so imports
//! point down only.

use anyhow::Context;
use xshell::Shell;

use crate::{
    flags, images,
    model::config::Overrides,
    ops::exec::Mode,
    release::{self, Asked},
};

impl flags::Images {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let overrides = Overrides { registry: self.registry, namespace: self.namespace };
        let options = images::PlanOptions { only: self.only, edge: self.edge, ..Default::default() };
        let request = images::Request { push: self.push, overrides, options, mode: Mode::dry_run_if(self.dry_run) };
        images::run(sh, &request)
    }
}

impl flags::Release {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let asked = match (self.from_tag, self.version) {
            (Some(tag), _) => Asked::Tag(tag),
            (None, version) => Asked::Version(version.context("clap requires VERSION or --from-tag")?),
        };
        release::run(sh, &release::Request { asked, yes: self.yes, mode: Mode::dry_run_if(self.dry_run) })
    }
}
