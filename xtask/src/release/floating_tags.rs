//! floating-tags: `X.Y` and `latest` to the verified digests, never backwards, only now that
//! the package can be installed: `latest` never names a version users cannot install. Done
//! when every floating tag that should name this release does (none, for a pre-release or a
//! release below a higher one).

use super::{Release, Step};
use crate::images::{self, Outcome};

pub struct FloatingTags;

impl Step for FloatingTags {
    fn name(&self) -> &'static str {
        "floating-tags"
    }

    fn describe(&self) -> &'static str {
        "move X.Y and latest to the verified digests, never backwards"
    }

    fn publishes(&self) -> bool {
        true
    }

    fn is_done(&self, release: &Release, _commit: &str) -> anyhow::Result<bool> {
        let plan = &release.plan;
        let moves = images::floating_moves(plan)?;
        let immutable = release.version.to_string();
        let states = plan.each_image(|_, image, registry| {
            let pushed = registry.digest(&image.repo, &immutable)?;
            let floating: Vec<Option<String>> =
                moves.moving.iter().map(|tag| registry.digest(&image.repo, tag)).collect::<anyhow::Result<_>>()?;
            Ok(pushed.is_some() && floating.iter().all(|d| *d == pushed))
        })?;
        Ok(states.into_iter().all(|moved| moved))
    }

    fn run(&self, release: &mut Release) -> anyhow::Result<()> {
        // Each image's floating tags go to the digest of its immutable tag, read in the effect.
        let mut outcomes = vec![Outcome::default(); release.plan.images.len()];
        images::move_floating(&release.plan, &release.exec, &mut outcomes)
    }
}
