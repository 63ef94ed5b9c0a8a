//! push-images: every image's immutable tag (`X.Y.Z`), each digest verified on the registry.
//! Done when the registry's image under that tag carries the release commit as its revision
//! label, whoever pushed it (a re-run on a fresh runner adopts it rather than rebuilding).
//! Each tag names an image index of every platform, sent as it was built and smoke-tested.

use super::{Release, Step};
use crate::images::{self, assembled::Assembled, Outcome};

pub struct PushImages;

impl Step for PushImages {
    fn name(&self) -> &'static str {
        "push-images"
    }

    fn describe(&self) -> &'static str {
        "push every immutable tag, each digest verified on the registry"
    }

    fn is_done(&self, release: &Release, commit: &str) -> anyhow::Result<bool> {
        let tag = release.version.to_string();
        let remotes = release.plan.each_image(|_, image, registry| registry.remote(&image.repo, &tag))?;
        Ok(remotes.iter().all(|remote| remote.as_ref().and_then(|r| r.revision.as_deref()) == Some(commit)))
    }

    fn run(&self, release: &mut Release) -> anyhow::Result<()> {
        let (sh, plan) = (release.sh, &release.plan);
        let (revision, version) = (plan.head.revision(), release.version.to_string());
        let mut outcomes: Vec<Outcome> = (plan.images.iter())
            .map(|i| {
                Ok(Assembled::read(sh, &i.service, &revision, &version)?.map(|a| Outcome::of(&a)).unwrap_or_default())
            })
            .collect::<anyhow::Result<_>>()?;
        images::push_immutable(sh, plan, &release.exec, &mut outcomes)?;
        release.exec.after(|| {
            print!("{}", images::table(plan, &outcomes));
            Ok(())
        })
    }
}
