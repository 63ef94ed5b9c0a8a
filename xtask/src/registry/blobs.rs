//! Pushing an image index that xtask assembled itself (`images/oci.rs`) over the registry API,
//! with the authentication and retries of `registry.rs` (one more `impl Registry`):
//!
//! 1. Every blob (layer, config) the registry lacks: `HEAD`, then a upload session (`POST`)
//!    and its bytes in one `PUT …?digest=` (the monolithic upload every registry takes).
//! 2. Every platform's manifest, `PUT` by its digest: a registry refuses a manifest whose
//!    blobs it lacks (400 `MANIFEST_BLOB_UNKNOWN`).
//! 3. The index, `PUT` under the tag: likewise refused while a manifest it names is missing.
//!
//! Every digest the registry answers (`Docker-Content-Digest`) is checked against ours. A tag is
//! read with `Accept` listing the index types: distribution 2.8 answers 404 for an index when
//! `Accept` lists none.
//!
//! Bytes reach curl through a file of their own (`curl::BodyFile`), as its config on stdin holds
//! only text; the credentials stay in that config, never in the file, a command line or a message.

use anyhow::{bail, Context};
use serde_json::Value;

use super::{curl::Response, Registry};
use crate::model::blob::Blob;
use crate::ops::retry::Backoff;

/// `call` for every item, each on a thread of its own (a registry call mostly waits); the
/// answers in the items' order, or the first failure.
fn side_by_side<T: Send>(items: &[&Blob], call: impl Fn(&Blob) -> anyhow::Result<T> + Sync) -> anyhow::Result<Vec<T>> {
    std::thread::scope(|scope| {
        let call = &call;
        let handles: Vec<_> = items.iter().map(|&item| scope.spawn(move || call(item))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a registry call panicked"))))
            .collect()
    })
}

/// The size from which a blob is looked for on the registry before it is sent.
const ASK_FIRST: usize = 64 * 1024;

/// What a push did with each blob: the registry had it, or it was sent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub sent: Vec<String>,
    pub present: Vec<String>,
}

impl Registry {
    /// Whether `repo` holds the blob `digest` (a redirect to another host, as Docker Hub's CDN,
    /// is followed).
    pub fn has_blob(&self, repo: &str, digest: &str) -> anyhow::Result<bool> {
        let response = self.request("HEAD", &format!("/v2/{repo}/blobs/{digest}"), repo, &[], None)?;
        match response.status {
            200 => Ok(true),
            404 => Ok(false),
            status => bail!("checking the blob {digest} of {}/{repo}: HTTP {status}", self.name),
        }
    }

    /// Uploads `blob` into `repo`: a session, then its bytes with `?digest=`; the registry
    /// checks the digest, and we check the one it answers. A session the registry no longer
    /// knows (`404 BLOB_UPLOAD_UNKNOWN`: the answer to a PUT that completed it was lost, and
    /// the PUT was sent again) is asked about: the blob there is done, else a new session.
    pub fn upload_blob(&self, repo: &str, blob: &Blob) -> anyhow::Result<()> {
        let mut backoff = Backoff::default();
        loop {
            let put = self.upload_session(repo, blob)?;
            match put.status {
                201 => {
                    return check_digest(
                        put.header("Docker-Content-Digest"),
                        &blob.digest,
                        &format!("{repo}@{}", blob.digest),
                    )
                }
                404 if self.has_blob(repo, &blob.digest)? => return Ok(()),
                404 => backoff.wait(
                    &format!("{}/{repo}: the upload of {} was lost ({})", self.name, blob.digest, body_text(&put.body)),
                    None,
                )?,
                status => {
                    bail!("uploading {} to {}/{repo}: HTTP {status} {}", blob.digest, self.name, body_text(&put.body))
                }
            }
        }
    }

    /// One upload session (`POST`), and the blob's bytes in one `PUT …?digest=`: the PUT's answer.
    fn upload_session(&self, repo: &str, blob: &Blob) -> anyhow::Result<Response> {
        let started = self.request("POST", &format!("/v2/{repo}/blobs/uploads/"), repo, &[], None)?;
        if started.status != 202 {
            bail!("starting an upload to {}/{repo}: HTTP {} {}", self.name, started.status, body_text(&started.body));
        }
        let location = started.header("Location").context("the registry started an upload without a Location")?;
        // The session's URL, relative or absolute, often with a query of its own; the
        // credentials go to the registry only.
        let Some(url) = self.path_on_registry(location) else {
            bail!("{}: the upload session is on another host ({location})", self.name)
        };
        let separator = if url.contains('?') { '&' } else { '?' };
        let path = format!("{url}{separator}digest={}", blob.digest);
        let headers = [("Content-Type", "application/octet-stream")];
        self.request("PUT", &path, repo, &headers, Some(&blob.bytes))
    }

    /// Each blob `repo` lacks, uploaded; those it has, left alone. A small blob (a config, an
    /// attestation) is sent without asking: asking costs the round trips that sending it does
    /// (a registry takes a blob it has again, unchanged). Every blob side by side.
    pub fn push_blobs(&self, repo: &str, blobs: &[&Blob]) -> anyhow::Result<Pushed> {
        let sent = side_by_side(blobs, |blob| {
            if blob.bytes.len() >= ASK_FIRST && self.has_blob(repo, &blob.digest)? {
                return Ok(false);
            }
            self.upload_blob(repo, blob).map(|()| true)
        })?;
        let mut pushed = Pushed::default();
        for (blob, sent) in blobs.iter().zip(sent) {
            match sent {
                true => pushed.sent.push(blob.digest.clone()),
                false => pushed.present.push(blob.digest.clone()),
            }
        }
        Ok(pushed)
    }

    /// PUTs `manifest` (an image manifest or an index) under `reference`: its digest, or a tag.
    pub fn put_manifest(&self, repo: &str, reference: &str, manifest: &Blob) -> anyhow::Result<()> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let headers = [("Content-Type", manifest.media_type)];
        let put = self.request("PUT", &path, repo, &headers, Some(&manifest.bytes))?;
        if put.status != 201 && put.status != 200 {
            bail!(
                "putting {repo}:{reference} ({}) on {}: HTTP {} {}",
                manifest.digest,
                self.name,
                put.status,
                body_text(&put.body)
            );
        }
        check_digest(put.header("Docker-Content-Digest"), &manifest.digest, &format!("{repo}:{reference}"))
    }

    /// One service's index under `tag`: the blobs the registry lacks, every manifest by digest,
    /// then the index; and what the tag now names, read back, is the index.
    pub fn push_index(
        &self,
        repo: &str,
        tag: &str,
        index: &Blob,
        manifests: &[&Blob],
        blobs: &[&Blob],
    ) -> anyhow::Result<Pushed> {
        let pushed = self.push_blobs(repo, blobs)?;
        side_by_side(manifests, |manifest| self.put_manifest(repo, &manifest.digest, manifest))?;
        self.put_manifest(repo, tag, index)?;
        match self.manifest(repo, tag)? {
            Some((digest, _)) if digest == index.digest => Ok(pushed),
            served => bail!(
                "{}/{repo}:{tag}: pushed {}, but the registry serves {}; push again",
                self.name,
                index.digest,
                served.map_or("nothing".into(), |(d, _)| d)
            ),
        }
    }

    /// The digest and the JSON of what `reference` (a tag or a digest) names, index or image
    /// manifest, if anything.
    pub fn manifest(&self, repo: &str, reference: &str) -> anyhow::Result<Option<(String, Value)>> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        // distribution 2.8 answers 404 for an index unless `Accept` lists an index type.
        let response = self.request("GET", &path, repo, &[("Accept", super::MANIFEST_TYPES)], None)?;
        match response.status {
            404 => return Ok(None),
            200 => {}
            status => return Err(self.failed_read(repo, reference, status)),
        }
        let digest = response.header("Docker-Content-Digest").with_context(|| self.no_digest(repo, reference))?;
        let json = serde_json::from_slice(&response.body)
            .with_context(|| format!("{}/{repo}:{reference}: the manifest is not JSON", self.name))?;
        Ok(Some((digest.to_string(), json)))
    }

    /// The bytes of `digest` in `repo`: a blob, or else a manifest (registries keep those
    /// apart), checked against the digest.
    pub fn blob_or_manifest(&self, repo: &str, digest: &str) -> anyhow::Result<Vec<u8>> {
        let blob = self.request("GET", &format!("/v2/{repo}/blobs/{digest}"), repo, &[], None)?;
        let bytes = match blob.status {
            200 => blob.body,
            404 => {
                let path = format!("/v2/{repo}/manifests/{digest}");
                let manifest = self.request("GET", &path, repo, &[("Accept", super::MANIFEST_TYPES)], None)?;
                anyhow::ensure!(
                    manifest.status == 200,
                    "{}/{repo} serves no {digest}: HTTP {}",
                    self.name,
                    manifest.status
                );
                manifest.body
            }
            status => return Err(self.failed_read(repo, digest, status)),
        };
        let served = crate::model::blob::sha256(&bytes);
        anyhow::ensure!(served == digest, "{}/{repo}: {digest} arrived with digest {served}", self.name);
        Ok(bytes)
    }

    /// The bytes of the blob `digest` of `repo`, following a redirect to another host.
    #[cfg(test)]
    pub fn blob(&self, repo: &str, digest: &str) -> anyhow::Result<Vec<u8>> {
        let response = self.request("GET", &format!("/v2/{repo}/blobs/{digest}"), repo, &[], None)?;
        if response.status != 200 {
            bail!("reading the blob {digest} of {}/{repo}: HTTP {}", self.name, response.status);
        }
        let served = crate::model::blob::sha256(&response.body);
        if served != digest {
            bail!("{}/{repo}: the blob {digest} arrived with digest {served}", self.name);
        }
        Ok(response.body)
    }
}

/// The registry's `Docker-Content-Digest` must be ours (a registry may omit it).
fn check_digest(answered: Option<&str>, ours: &str, what: &str) -> anyhow::Result<()> {
    match answered {
        Some(digest) if digest != ours => bail!("{what}: the registry stored {digest}, not {ours}"),
        _ => Ok(()),
    }
}

/// An error body, as the registry's JSON says it, shortened.
fn body_text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).trim().chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One service's index over both platforms, from fake binaries; the blobs, the manifests.
    fn assemble() -> (Blob, Vec<Blob>, Vec<Blob>) {
        use crate::images::{dockerfile::ImageSpec, oci};
        let dockerfile =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../backend/Dockerfile")).unwrap();
        let args = [("VERSION".to_string(), "1.2.3".to_string())].into();
        let spec = ImageSpec::from_dockerfile(&dockerfile, "gati-backend", &args).unwrap();
        let (mut blobs, mut manifests) = (Vec::new(), Vec::new());
        for platform in oci::PLATFORMS {
            // Incompressible, so that its layer is large enough to be looked for before it is sent.
            let mut state = platform.name.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
            let binary: Vec<u8> = (0..100_000)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (state >> 56) as u8
                })
                .collect();
            let layer = oci::layer(&spec, &binary).unwrap();
            let config = oci::config(&spec, platform, &layer, "2026-05-01T12:00:00Z").unwrap();
            manifests.push(oci::manifest(&config, &layer));
            blobs.extend([layer.blob, config]);
        }
        let pairs: Vec<_> = oci::PLATFORMS.iter().zip(&manifests).collect();
        (oci::index(&pairs, &spec.labels), blobs, manifests)
    }

    #[test]
    fn pushes_an_index_to_a_registry_like_docker_hub() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let sh = crate::ops::shell::shell_in(root).unwrap();
        let dir = crate::ops::shell::target_dir(&sh)
            .join("xtask")
            .join(format!("test-registry-blobs-{}", std::process::id()));
        let _one = crate::ops::sandbox::one_at_a_time();
        let local = crate::ops::sandbox::LocalRegistry::start(&sh, &dir).unwrap();
        let registry = Registry::new(&local.address, Some(local.credentials.clone()));
        let repo = format!("{}/gati-backend", local.namespace);
        let (index, blobs, manifests) = assemble();
        let (blobs, manifests): (Vec<&Blob>, Vec<&Blob>) = (blobs.iter().collect(), manifests.iter().collect());

        // An index naming manifests the registry lacks is refused, and leaves no tag.
        let refused = registry.put_manifest(&repo, "1.2.3", &index).unwrap_err();
        assert!(format!("{refused:#}").contains("MANIFEST_BLOB_UNKNOWN"), "{refused:#}");
        assert_eq!(registry.digest(&repo, "1.2.3").unwrap(), None);

        let pushed = registry.push_index(&repo, "1.2.3", &index, &manifests, &blobs).unwrap();
        assert_eq!((pushed.sent.len(), pushed.present.len()), (4, 0));
        // Again: the layers are there and are not sent; the small configs are sent unasked.
        let again = registry.push_index(&repo, "1.2.3", &index, &manifests, &blobs).unwrap();
        assert_eq!((again.sent.len(), again.present.len()), (2, 2));
        let layers: Vec<&String> = blobs.iter().filter(|b| b.bytes.len() >= ASK_FIRST).map(|b| &b.digest).collect();
        assert_eq!(again.present.iter().collect::<Vec<_>>(), layers);

        // What a user pulls, anonymously (a pull-only token), blobs through the redirect.
        let anonymous = Registry::new(&local.address, None);
        let (digest, served) = anonymous.manifest(&repo, "1.2.3").unwrap().expect("the tag names the index");
        assert_eq!(digest, index.digest);
        let platforms: Vec<&str> = served["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["platform"]["architecture"].as_str().unwrap())
            .collect();
        assert_eq!(platforms, ["amd64", "arm64"]);
        for (entry, architecture) in served["manifests"].as_array().unwrap().iter().zip(["amd64", "arm64"]) {
            let (_, manifest) = anonymous.manifest(&repo, entry["digest"].as_str().unwrap()).unwrap().unwrap();
            let config = anonymous.blob(&repo, manifest["config"]["digest"].as_str().unwrap()).unwrap();
            let config: Value = serde_json::from_slice(&config).unwrap();
            assert_eq!(config["architecture"], architecture);
            let layer = anonymous.blob(&repo, manifest["layers"][0]["digest"].as_str().unwrap()).unwrap();
            assert!(blobs.iter().any(|b| b.bytes == layer));
        }
        // distribution 2.8 hides an index from a client whose Accept lists no index type.
        let images_only = [("Accept", "application/vnd.oci.image.manifest.v1+json")];
        let hidden =
            anonymous.request("GET", &format!("/v2/{repo}/manifests/1.2.3"), &repo, &images_only, None).unwrap();
        assert_eq!(hidden.status, 404);
        assert_eq!(anonymous.digest(&repo, "1.2.3").unwrap().as_deref(), Some(index.digest.as_str()));
        drop(local);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A registry whose first upload completes (`present`) or not, but whose answer to the PUT
    /// is lost: the PUT sent again meets `404 BLOB_UPLOAD_UNKNOWN`. Whether the blob is there
    /// then decides: done, or a new session (`u2`). The request lines it received.
    fn upload_whose_answer_was_lost(present: bool) -> (anyhow::Result<()>, Vec<String>) {
        let count = std::sync::atomic::AtomicUsize::new(0);
        let (address, seen) = super::super::tests::fake_server(move |head| {
            let close = "Content-Length: 0\r\nConnection: close\r\n\r\n";
            let unknown = r#"{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"blob upload unknown to registry"}]}"#;
            let line = head.lines().next().unwrap_or_default();
            let first = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) <= 1;
            let session = if first { "u" } else { "u2" };
            match line.split(' ').next().unwrap_or_default() {
                "POST" => {
                    format!("HTTP/1.1 202 Accepted\r\nLocation: /v2/r/blobs/uploads/{session}?_state=s\r\n{close}")
                }
                // The first completing PUT's answer is lost: the connection closes unanswered.
                "PUT" if first => String::new(),
                "PUT" if line.contains("/uploads/u2?") => format!("HTTP/1.1 201 Created\r\n{close}"),
                "PUT" => format!(
                    "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{unknown}",
                    unknown.len()
                ),
                "HEAD" if present => format!("HTTP/1.1 200 OK\r\n{close}"),
                _ => format!("HTTP/1.1 404 Not Found\r\n{close}"),
            }
        });
        let registry = Registry::new(&address, None);
        let bytes = b"a blob".to_vec();
        let blob = Blob { digest: crate::model::blob::sha256(&bytes), media_type: "application/octet-stream", bytes };
        let result = registry.upload_blob("r", &blob);
        let seen = seen.lock().unwrap().iter().map(|h| h.lines().next().unwrap_or_default().to_string()).collect();
        (result, seen)
    }

    #[test]
    fn an_upload_whose_answer_was_lost_asks_the_registry_then_goes_on() {
        let calls = |seen: &[String]| {
            seen.iter().map(|l| l.split('?').next().unwrap().to_string()).collect::<Vec<_>>().join(", ")
        };
        let (done, seen) = upload_whose_answer_was_lost(true);
        done.unwrap();
        let head = format!("HEAD /v2/r/blobs/{}", crate::model::blob::sha256(b"a blob"));
        assert_eq!(
            calls(&seen),
            format!("POST /v2/r/blobs/uploads/ HTTP/1.1, PUT /v2/r/blobs/uploads/u, PUT /v2/r/blobs/uploads/u, {head} HTTP/1.1")
        );
        // Not there: a new session, and the bytes sent again.
        let (done, seen) = upload_whose_answer_was_lost(false);
        done.unwrap();
        assert_eq!(
            calls(&seen),
            format!(
                "POST /v2/r/blobs/uploads/ HTTP/1.1, PUT /v2/r/blobs/uploads/u, PUT /v2/r/blobs/uploads/u, \
                 {head} HTTP/1.1, POST /v2/r/blobs/uploads/ HTTP/1.1, PUT /v2/r/blobs/uploads/u2"
            )
        );
    }

    #[test]
    fn a_digest_the_registry_did_not_store_is_named() {
        assert!(check_digest(Some("sha256:aa"), "sha256:aa", "r:t").is_ok());
        assert!(check_digest(None, "sha256:aa", "r:t").is_ok());
        let e = check_digest(Some("sha256:bb"), "sha256:aa", "gatidev/gati-backend:1.0.0").unwrap_err();
        assert_eq!(e.to_string(), "gatidev/gati-backend:1.0.0: the registry stored sha256:bb, not sha256:aa");
    }
}
