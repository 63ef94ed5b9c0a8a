//! push-images: every image's immutable tag (`X.Y.Z`), each digest verified on the registry.
//! Done when the registry's image under that tag carries the release commit as its revision
//! label, whoever pushed it (a re-run on a fresh runner adopts it rather than rebuilding).
//! Each tag names an image index of every platform, sent as it was built and smoke-tested.
//!
//! Beside the push, the package that pins the indexes' digests is built (not published: the
//! package step keeps it only if the registry then serves exactly those digests).

use super::{package, Release, Step};
use crate::{
    images::{self, assembled::Assembled, Outcome},
    python::{self, package::Pin},
};

pub struct PushImages;

impl Step for PushImages {
    fn name(&self) -> &'static str {
        "push-images"
    }

    fn describe(&self) -> &'static str {
        "push every immutable tag, each digest verified on the registry"
    }

    fn publishes(&self) -> bool {
        true
    }

    fn is_done(&self, release: &Release, commit: &str) -> anyhow::Result<bool> {
        let tag = release.version.to_string();
        let remotes = release.plan.each_image(|_, image, registry| registry.remote(&image.repo, &tag))?;
        Ok(remotes.iter().all(|remote| remote.as_ref().and_then(|r| r.revision.as_deref()) == Some(commit)))
    }

    fn run(&self, release: &mut Release) -> anyhow::Result<()> {
        let (sh, plan) = (release.sh, &release.plan);
        let (revision, version) = (plan.head.revision(), release.version.to_string());
        let built: Vec<Option<Assembled>> = (plan.images.iter())
            .map(|i| Assembled::read(sh, &i.service, &revision, &version))
            .collect::<anyhow::Result<_>>()?;
        let mut outcomes: Vec<Outcome> =
            built.iter().map(|a| a.as_ref().map(Outcome::of).unwrap_or_default()).collect();
        let digests: Option<Vec<String>> = built.iter().map(|a| a.as_ref().map(|a| a.index.digest.clone())).collect();
        let pins = digests.map(|digests| Pin::of_digests(plan, &release.version, &digests));
        let (root, python, dist, version) = (sh.current_dir(), &release.python, &release.files.dist, &release.version);
        std::thread::scope(|scope| {
            let (root, pins) = (&root, &pins);
            let package = release.exec.run(&package::prebuild_line(release), || {
                Ok(pins.as_ref().map(|pins| {
                    scope.spawn(move || {
                        let sh = crate::ops::shell::shell_in(root)?;
                        python::package::build_checked(&sh, python, dist, version, pins)
                    })
                }))
            })?;
            let pushed = images::push_immutable(sh, plan, &release.exec, &mut outcomes);
            // Whether it was built is the package step's to find out (and, if not, to build it).
            let built = package.flatten().map(|p| p.join().unwrap_or_else(|_| Err(anyhow::anyhow!("it panicked"))));
            if let Some(Err(e)) = built {
                println!("the package built beside the push failed ({e:#}): the package step builds it again");
            }
            pushed
        })?;
        release.exec.after(|| {
            print!("{}", images::table(plan, &outcomes));
            Ok(())
        })
    }
}
