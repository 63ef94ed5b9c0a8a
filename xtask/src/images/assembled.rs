//! One service's image index as xtask assembles it: per platform a layer, a config and a
//! manifest (images/oci.rs), and the index over them; kept on disk as an OCI image layout under
//! `target/oci/<service>/`, with a stamp naming the commit and version it was built from, so
//! that the push (maybe a later run) sends exactly the bytes that were smoke-tested.

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::{bail, Context};
use serde_json::Value;
use xshell::Shell;

use super::{
    attest::{self, Attestations},
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
    /// Its SBOM and provenance (none for an image of uncommitted sources: they could name no
    /// commit).
    pub attestations: Option<Attestations>,
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
    Ok(PlatformImage { platform, layer, config, manifest, attestations: None })
}

impl Assembled {
    /// The index over `images`, in the order of the platforms gati knows, annotated with the labels.
    pub fn new(service: &str, spec: &ImageSpec, mut images: Vec<PlatformImage>) -> anyhow::Result<Assembled> {
        images.sort_by_key(|i| PLATFORMS.iter().position(|p| p == i.platform));
        let pairs: Vec<(&Platform, &Blob)> = images.iter().map(|i| (i.platform, &i.manifest)).collect();
        let index = oci::index(&pairs, &spec.labels);
        let attestations: Vec<&Attestations> = images.iter().filter_map(|i| i.attestations.as_ref()).collect();
        let index = match attestations.is_empty() {
            true => index,
            false => attest::attach(&index, &attestations)?,
        };
        Ok(Assembled { service: service.to_string(), index, images })
    }

    /// The layers and configs, and the attestations' statements and configs.
    pub fn blobs(&self) -> Vec<&Blob> {
        let images = self.images.iter().flat_map(|i| [&i.layer.blob, &i.config]);
        let attestations = (self.images.iter().filter_map(|i| i.attestations.as_ref()))
            .flat_map(|a| a.layers.iter().chain([&a.config]));
        images.chain(attestations).collect()
    }

    /// The index, or any blob or manifest it names, by digest.
    pub fn blob(&self, digest: &str) -> Option<&Blob> {
        let mut all = self.blobs().into_iter().chain(self.manifests()).chain([&self.index]);
        all.find(|b| b.digest == digest)
    }

    /// Every platform's manifest, then the attestation manifests.
    pub fn manifests(&self) -> Vec<&Blob> {
        let attestations = self.images.iter().filter_map(|i| i.attestations.as_ref()).map(|a| &a.manifest);
        self.images.iter().map(|i| &i.manifest).chain(attestations).collect()
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
        let mut images: Vec<PlatformImage> = Vec::new();
        let mut attestations = Vec::new();
        for entry in entries["manifests"].as_array().into_iter().flatten() {
            let manifest = blob(entry["digest"].as_str().context("an index entry without a digest")?, oci::MANIFEST)?;
            if entry["annotations"][attest::REFERENCE_TYPE] == attest::ATTESTATION_MANIFEST {
                attestations.push(read_attestations(&blob, entry, manifest)?);
                continue;
            }
            let json: Value = serde_json::from_slice(&manifest.bytes)?;
            let config = blob(json["config"]["digest"].as_str().context("a manifest without a config")?, oci::CONFIG)?;
            let layer = blob(json["layers"][0]["digest"].as_str().context("a manifest without a layer")?, oci::LAYER)?;
            let config_json: Value = serde_json::from_slice(&config.bytes)?;
            let diff_id = config_json["rootfs"]["diff_ids"][0].as_str().unwrap_or_default().to_string();
            let architecture = entry["platform"]["architecture"].as_str().unwrap_or_default();
            let Some(platform) = PLATFORMS.iter().find(|p| p.architecture == architecture) else {
                bail!("{}: the index names the unknown architecture {architecture:?}", dir.display())
            };
            let layer = Layer { blob: layer, diff_id };
            images.push(PlatformImage { platform, layer, config, manifest, attestations: None });
        }
        for found in attestations {
            let target = found.entry["annotations"][attest::REFERENCE_DIGEST].clone();
            let image = images.iter_mut().find(|i| i.manifest.digest == target);
            image
                .with_context(|| format!("{}: an attestation of {target}, which it lacks", dir.display()))?
                .attestations = Some(found);
        }
        Ok(Some(Assembled { service: service.to_string(), index, images }))
    }
}

/// An attestation manifest of a layout and what it names, from its index entry.
fn read_attestations(
    blob: &dyn Fn(&str, &'static str) -> anyhow::Result<Blob>,
    entry: &Value,
    manifest: Blob,
) -> anyhow::Result<Attestations> {
    let json: Value = serde_json::from_slice(&manifest.bytes)?;
    let config =
        blob(json["config"]["digest"].as_str().context("an attestation manifest without a config")?, oci::CONFIG)?;
    let layers = (json["layers"].as_array().into_iter().flatten())
        .map(|l| blob(l["digest"].as_str().unwrap_or_default(), attest::IN_TOTO))
        .collect::<anyhow::Result<_>>()?;
    Ok(Attestations { layers, config, manifest, entry: entry.clone() })
}

fn stamp(dir: &std::path::Path) -> PathBuf {
    dir.with_extension("built.json")
}

/// The binary inside a layer: what a platform's image runs, for the smoke test.
pub fn binary_of(layer: &Layer, name: &str) -> anyhow::Result<Vec<u8>> {
    binary_in(&layer.blob.bytes, name).with_context(|| format!("the layer {}", layer.blob.digest))
}

/// The file `name` of a gzip'd layer's tar.
pub fn binary_in(layer: &[u8], name: &str) -> anyhow::Result<Vec<u8>> {
    let tar = flate2::read::GzDecoder::new(layer);
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.path()?.to_string_lossy().trim_start_matches('/') == name {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes)?;
            return Ok(bytes);
        }
    }
    bail!("the layer holds no {name}")
}
