//! OCI images assembled without a builder, as ko does for Go: per service and platform, one
//! gzip'd layer holding the static binary, an image config and a manifest; per service, an
//! image index over the platforms. Pure: bytes in, blobs out, so the same binaries and the same
//! Dockerfile give the same digests on any machine, in any directory.
//!
//! What makes the bytes reproducible: layer entries in path order with fixed owners, modes and
//! a zero mtime (ko's choice: the layer then depends on the binary alone); gzip with a zero
//! mtime and no file name, from the Cargo.lock-pinned flate2 (another deflate implementation
//! or level gives other bytes, so a rebuild uses the tag's Cargo.lock); JSON with its keys in
//! sorted order whatever serde_json's features (`preserve_order` could be switched on by any
//! crate of a workspace build); and times taken from the commit, never the clock.

use std::{collections::BTreeMap, io::Write};

use anyhow::{bail, Context};
use serde_json::{json, Map, Value};

use super::dockerfile::{ImageSpec, Kind};
pub use crate::model::{
    blob::{sha256, Blob},
    platform::{Platform, PLATFORMS},
};

pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The one layer of an image: the gzip'd tar (the blob a registry stores) and the digest of the
/// tar itself (its `diff_id`, which the config names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub blob: Blob,
    pub diff_id: String,
}

/// The layer of `spec` with `binary` as its binary: every entry in path order, the owner the
/// Dockerfile gives it (root unless `COPY --chown`), mode 0755, mtime 0.
pub fn layer(spec: &ImageSpec, binary: &[u8]) -> anyhow::Result<Layer> {
    let tar = layer_tar(spec, binary)?;
    let diff_id = sha256(&tar);
    let mut gzip = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::default());
    gzip.write_all(&tar)?;
    Ok(Layer { blob: Blob::new(LAYER, gzip.finish()?), diff_id })
}

fn layer_tar(spec: &ImageSpec, binary: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for entry in &spec.entries {
        let mut header = tar::Header::new_ustar();
        let (path, size, kind) = match entry.kind {
            Kind::Binary => (entry.path.clone(), binary.len() as u64, tar::EntryType::Regular),
            Kind::Dir => (format!("{}/", entry.path), 0, tar::EntryType::Directory),
        };
        header.set_path(&path).with_context(|| format!("the layer entry {path}"))?;
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(0o755);
        header.set_uid(entry.uid);
        header.set_gid(entry.gid);
        header.set_mtime(0);
        header.set_cksum();
        let data: &[u8] = if entry.kind == Kind::Binary { binary } else { &[] };
        tar.append(&header, data)?;
    }
    Ok(tar.into_inner()?)
}

/// The image config of `spec` on `platform` over `layer`, as Docker's builder would write it
/// from the Dockerfile (`docker image inspect` shows the same `Config`). `created` is the
/// commit's time, RFC 3339 in UTC (`2026-05-01T12:00:00Z`): never the clock.
pub fn config(spec: &ImageSpec, platform: &Platform, layer: &Layer, created: &str) -> anyhow::Result<Blob> {
    if !is_rfc3339_utc(created) {
        bail!("created {created:?}: give the commit's time as YYYY-MM-DDTHH:MM:SSZ");
    }
    let mut config = Map::new();
    config.insert("User".into(), spec.user.clone().into());
    config.insert("Env".into(), spec.env.clone().into());
    config.insert("Entrypoint".into(), spec.entrypoint.clone().into());
    if !spec.cmd.is_empty() {
        config.insert("Cmd".into(), spec.cmd.clone().into());
    }
    if let Some(dir) = &spec.working_dir {
        config.insert("WorkingDir".into(), dir.clone().into());
    }
    let set = |names: &[String]| Value::Object(names.iter().map(|n| (n.clone(), json!({}))).collect());
    if !spec.exposed_ports.is_empty() {
        config.insert("ExposedPorts".into(), set(&spec.exposed_ports));
    }
    if !spec.volumes.is_empty() {
        config.insert("Volumes".into(), set(&spec.volumes));
    }
    config.insert("Labels".into(), json!(spec.labels));
    if let Some(check) = &spec.healthcheck {
        let healthcheck = json!({
            "Test": check.test,
            "Interval": check.interval,
            "Timeout": check.timeout,
            "StartPeriod": check.start_period,
            "Retries": check.retries,
        });
        config.insert("Healthcheck".into(), healthcheck);
    }
    let binary = spec.entries.iter().find(|e| e.kind == Kind::Binary).map_or("", |e| e.path.as_str());
    let mut image = json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "created": created,
        "config": config,
        "rootfs": { "type": "layers", "diff_ids": [layer.diff_id] },
        "history": [{ "created": created, "created_by": format!("cargo xtask images: /{binary}, static ({})", platform.rust_target) }],
    });
    if let Some(variant) = platform.variant {
        image["variant"] = variant.into();
    }
    Ok(Blob::new(CONFIG, canonical_json(&image)))
}

/// `YYYY-MM-DDTHH:MM:SSZ`: what Docker and the OCI spec read as `created`.
fn is_rfc3339_utc(text: &str) -> bool {
    let shape = "dddd-dd-ddTdd:dd:ddZ";
    text.len() == shape.len()
        && text.bytes().zip(shape.bytes()).all(|(c, s)| if s == b'd' { c.is_ascii_digit() } else { c == s })
}

/// The image manifest of one platform's image: its config and its one layer.
pub fn manifest(config: &Blob, layer: &Layer) -> Blob {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.blob.descriptor()],
    });
    Blob::new(MANIFEST, canonical_json(&manifest))
}

/// The image index over every platform's manifest, in the order given, with `annotations`
/// (the OCI labels, readable from the index alone).
pub fn index(manifests: &[(&Platform, &Blob)], annotations: &BTreeMap<String, String>) -> Blob {
    let entries: Vec<Value> = manifests
        .iter()
        .map(|(platform, manifest)| {
            let mut entry = manifest.descriptor();
            entry["platform"] = platform.json();
            entry
        })
        .collect();
    let mut index = json!({ "schemaVersion": 2, "mediaType": INDEX, "manifests": entries });
    if !annotations.is_empty() {
        index["annotations"] = json!(annotations);
    }
    Blob::new(INDEX, canonical_json(&index))
}

/// One platform's image, for `docker load` (Docker 20.10 reads this format, not an OCI layout):
/// a tar of `manifest.json`, the config and the gzip'd layer, tagged `tags`. The loaded image's
/// ID is the config's digest.
pub fn docker_archive(tags: &[String], config: &Blob, layer: &Layer) -> anyhow::Result<Vec<u8>> {
    let config_name = format!("{}.json", config.hex());
    let layer_name = format!("{}.tar.gz", layer.blob.hex());
    let manifest = json!([{ "Config": config_name, "RepoTags": tags, "Layers": [layer_name] }]);
    let mut files = vec![
        (config_name, &config.bytes[..]),
        (layer_name, &layer.blob.bytes[..]),
        ("manifest.json".to_string(), &canonical_json(&manifest)[..]),
    ]
    .into_iter()
    .map(|(name, bytes)| (name, bytes.to_vec()))
    .collect::<Vec<_>>();
    files.sort();
    tar_of(&files)
}

/// The files of an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) holding
/// `index` and `blobs`: what `verify --rebuild` compares and a push reads.
pub fn layout(index: &Blob, blobs: &[&Blob]) -> Vec<(String, Vec<u8>)> {
    let mut files = vec![
        ("oci-layout".to_string(), canonical_json(&json!({ "imageLayoutVersion": "1.0.0" }))),
        ("index.json".to_string(), canonical_json(&json!({ "schemaVersion": 2, "manifests": [index.descriptor()] }))),
    ];
    for blob in std::iter::once(&index).chain(blobs) {
        files.push((format!("blobs/sha256/{}", blob.hex()), blob.bytes.clone()));
    }
    files.sort();
    files.dedup();
    files
}

/// A tar of regular files (root-owned, mode 0644, mtime 0), in the order given.
fn tar_of(files: &[(String, Vec<u8>)]) -> anyhow::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut header = tar::Header::new_ustar();
        header.set_path(name)?;
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append(&header, &bytes[..])?;
    }
    Ok(tar.into_inner()?)
}

/// Compact JSON with every object's keys in sorted order: the same bytes whether or not
/// serde_json's `preserve_order` is on in this build.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&map[k]))).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sorted(value)).expect("a JSON value serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATED: &str = "2026-05-01T12:00:00Z";

    fn spec() -> ImageSpec {
        let dockerfile =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../backend/Dockerfile")).unwrap();
        let args = [("VERSION", "1.2.3"), ("REVISION", "c0ffee"), ("CREATED", CREATED)];
        let args = args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ImageSpec::from_dockerfile(&dockerfile, "gati-backend", &args).unwrap()
    }

    /// Every blob of one service's index over both platforms, from two fake binaries.
    fn assemble() -> (Blob, Vec<(Layer, Blob, Blob)>) {
        let spec = spec();
        let images: Vec<(Layer, Blob, Blob)> = PLATFORMS
            .iter()
            .map(|platform| {
                let layer = layer(&spec, format!("binary for {}", platform.rust_target).as_bytes()).unwrap();
                let config = config(&spec, platform, &layer, CREATED).unwrap();
                let manifest = manifest(&config, &layer);
                (layer, config, manifest)
            })
            .collect();
        let manifests: Vec<(&Platform, &Blob)> = PLATFORMS.iter().zip(images.iter().map(|(_, _, m)| m)).collect();
        let labels = spec.labels.clone();
        (index(&manifests, &labels), images)
    }

    fn json(blob: &Blob) -> Value {
        serde_json::from_slice(&blob.bytes).unwrap()
    }

    #[test]
    fn the_same_input_gives_the_same_digests() {
        let (index, images) = assemble();
        let (again, images_again) = assemble();
        assert_eq!(index, again);
        assert_eq!(images, images_again);
        assert_eq!(index.digest, sha256(&index.bytes));
        // The two platforms' binaries differ, and so does everything above them.
        assert_ne!(images[0].0.diff_id, images[1].0.diff_id);
        assert_ne!(images[0].2.digest, images[1].2.digest);
    }

    #[test]
    fn each_config_names_its_platform_and_layer() {
        let (_, images) = assemble();
        for (platform, (layer, config, manifest)) in PLATFORMS.iter().zip(&images) {
            let c = json(config);
            assert_eq!((c["architecture"].as_str(), c["os"].as_str()), (Some(platform.architecture), Some("linux")));
            assert_eq!(c["variant"].as_str(), platform.variant);
            assert_eq!(c["rootfs"]["diff_ids"], json!([layer.diff_id]));
            assert_eq!(c["created"], CREATED);
            let m = json(manifest);
            assert_eq!(m["config"], config.descriptor());
            assert_eq!(m["layers"], json!([layer.blob.descriptor()]));
            assert_eq!(m["mediaType"], MANIFEST);
        }
        let c = json(&images[1].1);
        assert_eq!(c["config"]["User"], "65532:65532");
        assert_eq!(c["config"]["Entrypoint"], json!(["/gati-backend"]));
        assert_eq!(c["config"]["ExposedPorts"], json!({"8000/tcp": {}}));
        assert_eq!(c["config"]["Volumes"], json!({"/data": {}}));
        assert_eq!(c["config"]["Healthcheck"]["Test"], json!(["CMD", "/gati-backend", "healthcheck"]));
        assert_eq!(c["config"]["Healthcheck"]["Interval"], 5_000_000_000u64);
        assert_eq!(c["config"]["Labels"]["org.opencontainers.image.version"], "1.2.3");
        assert_eq!(c["config"]["Labels"]["org.opencontainers.image.revision"], "c0ffee");
        assert!(c["config"].get("Cmd").is_none());
    }

    #[test]
    fn the_index_lists_every_platform() {
        let (index, images) = assemble();
        let i = json(&index);
        assert_eq!(i["mediaType"], INDEX);
        let platforms: Vec<&Value> = i["manifests"].as_array().unwrap().iter().map(|m| &m["platform"]).collect();
        assert_eq!(
            platforms,
            [
                &json!({"architecture": "amd64", "os": "linux"}),
                &json!({"architecture": "arm64", "os": "linux", "variant": "v8"})
            ]
        );
        assert_eq!(i["manifests"][1]["digest"], images[1].2.digest.as_str());
        assert_eq!(i["annotations"]["org.opencontainers.image.revision"], "c0ffee");
    }

    #[test]
    fn the_layer_holds_the_binary_and_the_data_directory_with_fixed_owners() {
        let binary = b"\x7fELF a static binary";
        let layer = layer(&spec(), binary).unwrap();
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&layer.blob.bytes[..]), &mut tar).unwrap();
        assert_eq!(layer.diff_id, sha256(&tar));
        // gzip header: no file name, mtime 0.
        assert_eq!(&layer.blob.bytes[3..8], &[0, 0, 0, 0, 0]);
        let mut archive = tar::Archive::new(&tar[..]);
        let entries: Vec<(String, u64, u64, u32, u64, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                let path = e.path().unwrap().display().to_string();
                (path, h.uid().unwrap(), h.gid().unwrap(), h.mode().unwrap(), h.mtime().unwrap(), h.size().unwrap())
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("data/".to_string(), 65532, 65532, 0o755, 0, 0),
                ("gati-backend".to_string(), 0, 0, 0o755, 0, binary.len() as u64)
            ]
        );
    }

    #[test]
    fn created_is_the_commits_time_in_utc() {
        let layer = layer(&spec(), b"x").unwrap();
        assert!(config(&spec(), &PLATFORMS[0], &layer, "unknown").is_err());
        assert!(config(&spec(), &PLATFORMS[0], &layer, "2026-05-01T12:00:00+02:00").is_err());
    }

    #[test]
    fn json_keys_are_sorted_whatever_the_insertion_order() {
        let mut map = Map::new();
        map.insert("b".into(), json!({"z": 1, "a": [{"y": 1, "x": 2}]}));
        map.insert("a".into(), json!(1));
        assert_eq!(canonical_json(&Value::Object(map)), br#"{"a":1,"b":{"a":[{"x":2,"y":1}],"z":1}}"#);
    }

    #[test]
    fn a_docker_archive_names_the_config_and_the_layer() {
        let (_, images) = assemble();
        let (layer, config, _) = &images[0];
        let archive = docker_archive(&["gati-test/gati-backend:1.2.3".to_string()], config, layer).unwrap();
        let mut files = BTreeMap::new();
        for entry in tar::Archive::new(&archive[..]).entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            files.insert(entry.path().unwrap().display().to_string(), bytes);
        }
        let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
        let config_name = format!("{}.json", config.hex());
        assert_eq!(manifest[0]["Config"], config_name.as_str());
        assert_eq!(manifest[0]["RepoTags"], json!(["gati-test/gati-backend:1.2.3"]));
        assert_eq!(files[&config_name], config.bytes);
        assert_eq!(files[manifest[0]["Layers"][0].as_str().unwrap()], layer.blob.bytes);
        assert_eq!(archive, docker_archive(&["gati-test/gati-backend:1.2.3".to_string()], config, layer).unwrap());
    }
}
