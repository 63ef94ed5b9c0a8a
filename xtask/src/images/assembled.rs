//! One service's image index as xtask assembles it: per platform a layer, a config and a
//! manifest (images/oci.rs), and the index over them; kept on disk as an OCI image layout under
//! `target/oci/<service>/`, with a stamp naming the commit and version it was built from, so
//! that the push (maybe a later run) sends exactly the bytes that were smoke-tested.

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::{bail, Context};
use serde_json::Value;
use xshell::Shell;

use super::{
    dockerfile::ImageSpec,
    oci::{self, Blob, Layer, Platform, PLATFORMS},
    Image, Plan,
};

/// One platform's image.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    pub platform: &'static Platform,
    pub layer: Layer,
    pub config: Blob,
    pub manifest: Blob,
}

/// One service's index and everything it names.
#[derive(Debug, Clone)]
pub struct Assembled {
    pub service: String,
    pub index: Blob,
    pub images: Vec<PlatformImage>,
}

/// The image spec of `image` from its Dockerfile, with the plan's build arguments.
pub fn spec(sh: &Shell, plan: &Plan, image: &Image, args: &BTreeMap<String, String>) -> anyhow::Result<ImageSpec> {
    let path = sh.current_dir().join(&image.service).join("Dockerfile");
    let dockerfile = sh.read_file(&path)?;
    let binary = format!("gati-{}", image.service);
    ImageSpec::from_dockerfile(&dockerfile, &binary, args)
        .with_context(|| format!("{}/Dockerfile, the description of its image", image.service))
        .with_context(|| format!("assembling {}:{}", image.reference, plan.version))
}

/// One platform's image of `binary`, as `spec` describes it.
pub fn platform_image(
    spec: &ImageSpec,
    platform: &'static Platform,
    binary: &[u8],
    created: &str,
) -> anyhow::Result<PlatformImage> {
    let layer = oci::layer(spec, binary)?;
    let config = oci::config(spec, platform, &layer, created)?;
    let manifest = oci::manifest(&config, &layer);
    Ok(PlatformImage { platform, layer, config, manifest })
}

impl Assembled {
    /// The index over `images`, in the order of the platforms gati knows, annotated with the labels.
    pub fn new(service: &str, spec: &ImageSpec, mut images: Vec<PlatformImage>) -> Assembled {
        images.sort_by_key(|i| PLATFORMS.iter().position(|p| p == i.platform));
        let pairs: Vec<(&Platform, &Blob)> = images.iter().map(|i| (i.platform, &i.manifest)).collect();
        Assembled { service: service.to_string(), index: oci::index(&pairs, &spec.labels), images }
    }

    /// The layers and configs.
    pub fn blobs(&self) -> Vec<&Blob> {
        self.images.iter().flat_map(|i| [&i.layer.blob, &i.config]).collect()
    }

    pub fn manifests(&self) -> Vec<&Blob> {
        self.images.iter().map(|i| &i.manifest).collect()
    }

    /// Where a tree keeps the layout of `service`'s index.
    pub fn dir(sh: &Shell, service: &str) -> PathBuf {
        sh.current_dir().join("target").join("oci").join(service)
    }

    /// Writes the layout, replacing the one before, then the stamp: `revision` and `version`.
    pub fn write(&self, sh: &Shell, revision: &str, version: &str) -> anyhow::Result<()> {
        let dir = Assembled::dir(sh, &self.service);
        let _ = std::fs::remove_file(stamp(&dir));
        if dir.exists() {
            sh.remove_path(&dir)?;
        }
        let blobs: Vec<&Blob> = self.blobs().into_iter().chain(self.manifests()).collect();
        for (name, bytes) in oci::layout(&self.index, &blobs) {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap())?;
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        }
        let stamp_text = serde_json::json!({ "revision": revision, "version": version, "index": self.index.digest });
        std::fs::write(stamp(&dir), stamp_text.to_string())?;
        Ok(())
    }

    /// The layout of `service` kept by this tree, if it was built from `revision` at `version`.
    pub fn read(sh: &Shell, service: &str, revision: &str, version: &str) -> anyhow::Result<Option<Assembled>> {
        let dir = Assembled::dir(sh, service);
        let Ok(text) = std::fs::read_to_string(stamp(&dir)) else { return Ok(None) };
        let stamped: Value =
            serde_json::from_str(&text).with_context(|| format!("{} is damaged", stamp(&dir).display()))?;
        if stamped["revision"] != revision || stamped["version"] != version {
            return Ok(None);
        }
        let blob = |digest: &str, media_type: &'static str| -> anyhow::Result<Blob> {
            let path = dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let blob = Blob::new(media_type, bytes);
            anyhow::ensure!(blob.digest == digest, "{} does not hold {digest}: build the images again", path.display());
            Ok(blob)
        };
        let index = blob(stamped["index"].as_str().context("the stamp names no index")?, oci::INDEX)?;
        let entries: Value = serde_json::from_slice(&index.bytes)?;
        let mut images = Vec::new();
        for entry in entries["manifests"].as_array().into_iter().flatten() {
            let manifest = blob(entry["digest"].as_str().context("an index entry without a digest")?, oci::MANIFEST)?;
            let json: Value = serde_json::from_slice(&manifest.bytes)?;
            let config = blob(json["config"]["digest"].as_str().context("a manifest without a config")?, oci::CONFIG)?;
            let layer = blob(json["layers"][0]["digest"].as_str().context("a manifest without a layer")?, oci::LAYER)?;
            let config_json: Value = serde_json::from_slice(&config.bytes)?;
            let diff_id = config_json["rootfs"]["diff_ids"][0].as_str().unwrap_or_default().to_string();
            let architecture = entry["platform"]["architecture"].as_str().unwrap_or_default();
            let Some(platform) = PLATFORMS.iter().find(|p| p.architecture == architecture) else {
                bail!("{}: the index names the unknown architecture {architecture:?}", dir.display())
            };
            images.push(PlatformImage { platform, layer: Layer { blob: layer, diff_id }, config, manifest });
        }
        Ok(Some(Assembled { service: service.to_string(), index, images }))
    }
}

fn stamp(dir: &std::path::Path) -> PathBuf {
    dir.with_extension("built.json")
}

/// The binary inside a layer: what a platform's image runs, for the smoke test.
pub fn binary_of(layer: &Layer, name: &str) -> anyhow::Result<Vec<u8>> {
    let tar = flate2::read::GzDecoder::new(&layer.blob.bytes[..]);
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.path()?.to_string_lossy().trim_start_matches('/') == name {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes)?;
            return Ok(bytes);
        }
    }
    bail!("the layer {} holds no {name}", layer.blob.digest)
}
