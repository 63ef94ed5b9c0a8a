//! The registry's HTTP API (distribution spec v2), through `curl`, as Docker Hub serves it:
//! Bearer-token auth (a token realm, tokens scoped per repository, pull-only for the anonymous)
//! or Basic auth; blob downloads redirected to another host; tag lists in pages.
//!
//! curl reads its whole request — URL, headers, credentials, body — as a config file on stdin,
//! and answers on its stdout (the body) and stderr (status and headers as JSON). Nothing
//! touches the disk, and no process listing or error message shows a password or a token.
//! Tokens live in memory for one run. Redirects are followed, and curl sends neither the
//! `Authorization` header nor the credentials to another host or port.
//!
//! Transient failures (connection refused or reset, 5xx, 429) are retried within
//! `GATI_RETRY_SECONDS`; permanent ones (401, 403, invalid manifest) fail at once.

mod auth;
mod blobs;
pub mod curl;

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use anyhow::{bail, Context};

pub use auth::Credentials;
use auth::{parse_challenge, Scheme};
use curl::{curl, Auth, Failure, Response};

const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.index.v1+json";

pub struct Registry {
    /// As configured, e.g. `docker.io` or `127.0.0.1:5000`.
    pub name: String,
    base: String,
    credentials: Option<Credentials>,
    /// What the registry asked for, learnt from its first 401; tokens by scope. Shared by every
    /// step and thread of a command that uses this client (a push sends its blobs side by side).
    scheme: Mutex<Scheme>,
    tokens: Mutex<HashMap<String, String>>,
}

/// The registry, or its token service, refused who asked.
#[derive(Debug)]
pub struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Everything the registry says about one tag of one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// The index's digest (or the image manifest's).
    pub digest: String,
    /// Its `org.opencontainers.image.revision`: the commit it was built from.
    pub revision: Option<String>,
    /// Its `org.opencontainers.image.version`.
    pub version: Option<String>,
    /// `os/architecture` of each image it holds.
    pub platforms: Vec<String>,
}

/// One platform's image on the registry.
#[derive(Debug, Clone)]
pub struct RemoteImage {
    pub digest: String,
    /// `os/architecture`, as its config says.
    pub platform: String,
    /// As the index lists it (`os/architecture`), when read through an index.
    pub listed_as: Option<String>,
    /// Its config's labels.
    pub labels: serde_json::Value,
    /// Its layers' digests, in order.
    pub layers: Vec<String>,
}

impl RemoteImage {
    /// Its `org.opencontainers.image.<name>` label.
    pub fn label(&self, name: &str) -> Option<String> {
        self.labels[format!("org.opencontainers.image.{name}")].as_str().map(str::to_owned)
    }
}

/// What `mutex` guards, even if a thread panicked holding it (the scheme and tokens stay valid).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// `os/architecture` of an index entry.
fn platform_of(entry: &serde_json::Value) -> Option<String> {
    let platform = &entry["platform"];
    Some(format!("{}/{}", platform["os"].as_str()?, platform["architecture"].as_str()?))
}

impl Registry {
    pub fn new(name: &str, credentials: Option<Credentials>) -> Registry {
        let host = if name == "docker.io" { "registry-1.docker.io" } else { name };
        // Docker itself talks plain HTTP to loopback registries; so do we, and only to them.
        let scheme = if is_loopback(host) { "http" } else { "https" };
        Registry {
            name: name.to_string(),
            base: format!("{scheme}://{host}"),
            credentials,
            scheme: Mutex::default(),
            tokens: Mutex::default(),
        }
    }

    /// The path (and query) of `location` — relative, or absolute on this registry's own
    /// scheme, host and port — or `None` for any other host, which never gets credentials.
    pub(super) fn path_on_registry(&self, location: &str) -> Option<String> {
        if location.starts_with('/') && !location.starts_with("//") {
            return Some(location.to_string());
        }
        let rest = location.strip_prefix(&self.base)?;
        (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')).then(|| rest.to_string())
    }

    fn who(&self) -> String {
        match &self.credentials {
            Some(c) => format!("user {:?}", c.user),
            None => "anonymous access (set DOCKER_USERNAME and DOCKER_PASSWORD)".into(),
        }
    }

    /// Fails unless these credentials may push to `repo`: starts a blob upload, as a push does,
    /// and cancels it. (Reading the tag list proves nothing: a pull-only token may do that.)
    pub fn check_push(&self, repo: &str) -> anyhow::Result<()> {
        let started = self.request("POST", &format!("/v2/{repo}/blobs/uploads/"), repo, &[], None)?;
        match started.status {
            202 => {
                // Best effort, and only on the registry itself (credentials go nowhere else): an
                // abandoned upload expires on the registry anyway.
                if let Some(path) = started.header("Location").and_then(|l| self.path_on_registry(l)) {
                    let _ = self.send("DELETE", &format!("{}{path}", self.base), repo, &[], None);
                }
                Ok(())
            }
            401 | 403 => bail!("{} refused {} the right to push to {repo}", self.name, self.who()),
            status => bail!("{} answered HTTP {status} to a push to {repo} by {}", self.name, self.who()),
        }
    }

    /// Whether anyone may read `repo`, as a user of a public image does: asked without
    /// credentials, whatever this client holds. Docker Hub hands the anonymous pull tokens for
    /// public repositories; a registry with htpasswd, or private packages, refuses them.
    pub fn reads_anonymously(&self, repo: &str) -> anyhow::Result<bool> {
        let anonymous = Registry::new(&self.name, None);
        match anonymous.request("GET", &format!("/v2/{repo}/tags/list?n=1"), repo, &[], None) {
            Ok(response) => Ok(!matches!(response.status, 401 | 403)),
            Err(e) if e.is::<Refused>() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every tag of `repo`, page after page (`Link: <…>; rel="next"`); none if the repository
    /// does not exist yet.
    pub fn tags(&self, repo: &str) -> anyhow::Result<Vec<String>> {
        let mut tags = Vec::new();
        let mut next = Some(format!("/v2/{repo}/tags/list?n=100"));
        while let Some(path) = next.take() {
            let response = self.request("GET", &path, repo, &[], None)?;
            match response.status {
                404 => break,
                200 => {}
                status => bail!("listing the tags of {}/{repo}: HTTP {status}", self.name),
            }
            let page = response.json(&format!("the tags of {repo}"))?;
            tags.extend(page["tags"].as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_owned)));
            next = response.header("Link").and_then(next_link);
        }
        Ok(tags)
    }

    /// The manifest digest that `reference` (a tag or a digest) points at, if it exists.
    pub fn digest(&self, repo: &str, reference: &str) -> anyhow::Result<Option<String>> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let response = self.request("HEAD", &path, repo, &[("Accept", MANIFEST_TYPES)], None)?;
        match response.status {
            404 => Ok(None),
            200 => Ok(Some(
                response.header("Docker-Content-Digest").with_context(|| self.no_digest(repo, reference))?.to_string(),
            )),
            status => Err(self.failed_read(repo, reference, status)),
        }
    }

    /// A read answered `status`: refused (401, 403) when the credentials do not allow it, with
    /// what to do; otherwise the status.
    pub(super) fn failed_read(&self, repo: &str, reference: &str, status: u16) -> anyhow::Error {
        match status {
            401 | 403 => Refused(format!(
                "{} refused {} reading {repo}:{reference} (HTTP {status}): a registry that refuses anonymous \
                 reads needs DOCKER_USERNAME and DOCKER_PASSWORD of an account that may pull",
                self.name,
                self.who()
            ))
            .into(),
            _ => anyhow::anyhow!("reading {}/{repo}:{reference}: HTTP {status}", self.name),
        }
    }

    /// The digest, the labels and the platforms of what `reference` (a tag or a digest) names:
    /// an image index (its annotations, else its first image's labels) or a single image.
    /// Labels sit in an image's config blob, which registries like Docker Hub serve by a
    /// redirect to another host.
    pub fn remote(&self, repo: &str, reference: &str) -> anyhow::Result<Option<Remote>> {
        let Some((digest, manifest)) = self.manifest(repo, reference)? else { return Ok(None) };
        let Some(entries) = manifest["manifests"].as_array() else {
            let image = self.image(repo, &digest, &manifest)?;
            let platforms = vec![image.platform.clone()];
            return Ok(Some(Remote {
                digest,
                revision: image.label("revision"),
                version: image.label("version"),
                platforms,
            }));
        };
        let platforms: Vec<String> = entries.iter().filter_map(platform_of).collect();
        let annotation = |name: &str| {
            manifest["annotations"][format!("org.opencontainers.image.{name}")].as_str().map(str::to_owned)
        };
        let (mut revision, mut version) = (annotation("revision"), annotation("version"));
        if revision.is_none() {
            if let Some(first) = entries.iter().find_map(|e| e["digest"].as_str()) {
                let image = self.image_by_digest(repo, first)?;
                (revision, version) = (image.label("revision"), image.label("version"));
            }
        }
        Ok(Some(Remote { digest, revision, version, platforms }))
    }

    /// Every platform's image an index names (or the one image a manifest is), with its config.
    pub fn platform_images(&self, repo: &str, reference: &str) -> anyhow::Result<Vec<RemoteImage>> {
        let Some((digest, manifest)) = self.manifest(repo, reference)? else { return Ok(vec![]) };
        let Some(entries) = manifest["manifests"].as_array() else {
            return Ok(vec![self.image(repo, &digest, &manifest)?]);
        };
        let mut images = Vec::new();
        for entry in entries {
            let digest =
                entry["digest"].as_str().with_context(|| format!("{repo}@{reference}: an entry without a digest"))?;
            let mut image = self.image_by_digest(repo, digest)?;
            image.listed_as = platform_of(entry);
            images.push(image);
        }
        Ok(images)
    }

    fn image_by_digest(&self, repo: &str, digest: &str) -> anyhow::Result<RemoteImage> {
        let (digest, manifest) = self
            .manifest(repo, digest)?
            .with_context(|| format!("{}/{repo}: the index names {digest}, which is missing", self.name))?;
        self.image(repo, &digest, &manifest)
    }

    /// One image, from its manifest: its config blob read.
    fn image(&self, repo: &str, digest: &str, manifest: &serde_json::Value) -> anyhow::Result<RemoteImage> {
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .with_context(|| format!("{}/{repo}@{digest} is neither an index nor an image manifest", self.name))?;
        let blob = self.request("GET", &format!("/v2/{repo}/blobs/{config_digest}"), repo, &[], None)?;
        if blob.status != 200 {
            bail!("reading the config {config_digest} of {}/{repo}: HTTP {}", self.name, blob.status);
        }
        let config = blob.json(&format!("the image config of {repo}@{digest}"))?;
        let platform =
            format!("{}/{}", config["os"].as_str().unwrap_or("?"), config["architecture"].as_str().unwrap_or("?"));
        Ok(RemoteImage {
            digest: digest.to_string(),
            platform,
            listed_as: None,
            labels: config["config"]["Labels"].clone(),
            layers: manifest["layers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|layer| layer["digest"].as_str().map(str::to_owned))
                .collect(),
        })
    }

    /// The error of a manifest answer without its digest: registries must send one.
    pub(super) fn no_digest(&self, repo: &str, reference: &str) -> String {
        format!(
            "{} answered for {repo}:{reference} without a Docker-Content-Digest header, which the distribution API \
             requires: is {} a registry (or a proxy that drops headers)?",
            self.name, self.base
        )
    }

    /// Points `tag` at the manifest `digest`, on the registry itself: the tag gets exactly the
    /// bytes that were verified, whatever the local daemon holds.
    pub fn put_tag(&self, repo: &str, digest: &str, tag: &str) -> anyhow::Result<()> {
        let path = format!("/v2/{repo}/manifests/{digest}");
        let manifest = self.request("GET", &path, repo, &[("Accept", MANIFEST_TYPES)], None)?;
        if manifest.status != 200 {
            bail!("reading the manifest {digest} of {}/{repo}: HTTP {}", self.name, manifest.status);
        }
        let content_type = manifest.header("Content-Type").context("manifest without Content-Type")?.to_string();
        let path = format!("/v2/{repo}/manifests/{tag}");
        let put = self.request("PUT", &path, repo, &[("Content-Type", &content_type)], Some(&manifest.body))?;
        if put.status != 201 && put.status != 200 {
            bail!("tagging {}/{repo}:{tag}: HTTP {} {}", self.name, put.status, String::from_utf8_lossy(&put.body));
        }
        Ok(())
    }

    /// One API call with authentication, retried while the failure is transient.
    pub(super) fn request(
        &self,
        method: &str,
        path: &str,
        repo: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> anyhow::Result<Response> {
        let url = format!("{}{path}", self.base);
        let what = format!("{} is not answering {method} {path}", self.name);
        curl::retried(&what, || self.send(method, &url, repo, headers, body))
            .with_context(|| format!("{} is not answering", self.name))
    }

    /// One call: with what the registry asked for, learning it from a 401 the first time.
    fn send(
        &self,
        method: &str,
        url: &str,
        repo: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, Failure> {
        let scope = format!("repository:{repo}:pull,push");
        let response = curl(method, url, headers, body, &self.auth(&scope))?;
        if response.status != 401 {
            return Ok(response);
        }
        let challenge = response.header("WWW-Authenticate").unwrap_or_default();
        match parse_challenge(challenge) {
            Some(Scheme::Basic) if self.credentials.is_some() => {
                *lock(&self.scheme) = Scheme::Basic;
            }
            Some(bearer @ Scheme::Bearer { .. }) => {
                *lock(&self.scheme) = bearer;
                let token = self.token(&scope)?;
                lock(&self.tokens).insert(scope.clone(), token);
            }
            _ => return Ok(response),
        }
        curl(method, url, headers, body, &self.auth(&scope))
    }

    fn auth(&self, scope: &str) -> Auth {
        match (&*lock(&self.scheme), &self.credentials) {
            (Scheme::Basic, Some(c)) => Auth::Basic(c.clone()),
            (Scheme::Bearer { .. }, _) => lock(&self.tokens).get(scope).cloned().map_or(Auth::None, Auth::Bearer),
            _ => Auth::None,
        }
    }

    /// A token for `scope` from the realm: with the credentials if there are any, anonymous
    /// otherwise. The realm grants what it allows (the anonymous get pull at most); the
    /// registry then answers with what the token holds.
    fn token(&self, scope: &str) -> Result<String, Failure> {
        let Scheme::Bearer { realm, service } = lock(&self.scheme).clone() else { unreachable!() };
        let mut url = format!("{realm}?scope={scope}");
        if let Some(service) = service {
            url.push_str(&format!("&service={service}"));
        }
        let auth = self.credentials.clone().map_or(Auth::None, Auth::Basic);
        let response = curl("GET", &url, &[], None, &auth)?;
        match response.status {
            200 => {}
            401 | 403 => {
                return Err(Failure::Permanent(
                    Refused(format!(
                        "{} refused {} (its token service {realm} answered HTTP {})",
                        self.name,
                        self.who(),
                        response.status
                    ))
                    .into(),
                ));
            }
            status if status == 429 || status >= 500 => {
                return Err(Failure::Transient(format!("{realm} answered HTTP {status}"), response.retry_after()));
            }
            status => return Err(Failure::Permanent(anyhow::anyhow!("{realm} answered HTTP {status}"))),
        }
        let answer = response.json("the token").map_err(Failure::Permanent)?;
        answer["token"]
            .as_str()
            .or(answer["access_token"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| Failure::Permanent(anyhow::anyhow!("{realm} answered without a token")))
    }
}

/// Whether `host` (`name`, `name:port`, `[v6]:port`) is a loopback address: `localhost`,
/// 127.0.0.0/8 or ::1, parsed — never a name that merely begins like one
/// (`localhost.example.com`, `127.0.0.1.nip.io`).
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((address, port)) if port.is_empty() || port.starts_with(':') => address,
            _ => return false,
        },
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The path of `<…>; rel="next"` in a `Link` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find(|part| part.contains("rel=\"next\"")).and_then(|part| {
        let url = part.trim().strip_prefix('<')?.split_once('>')?.0;
        // Registries give a path; some an absolute URL on themselves.
        Some(match url.find("/v2/") {
            Some(at) if !url.starts_with('/') => url[at..].to_string(),
            _ => url.to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_addresses() {
        let base = |name: &str| Registry::new(name, None).base;
        for loopback in ["127.0.0.1:5000", "127.9.8.7", "localhost", "LOCALHOST:5000", "[::1]:5000", "[::1]"] {
            assert_eq!(base(loopback), format!("http://{loopback}"), "{loopback}");
        }
        for remote in [
            "localhost.evil.com",
            "localhost.evil.com:5000",
            "127.0.0.1.nip.io",
            "127.0.0.1.nip.io:443",
            "[::1].evil.com",
            "[::2]:5000",
            "128.0.0.1:5000",
            "ghcr.io",
        ] {
            assert_eq!(base(remote), format!("https://{remote}"), "{remote}");
        }
        assert_eq!(base("docker.io"), "https://registry-1.docker.io");
    }

    #[test]
    fn credentials_go_only_to_the_registrys_own_host() {
        let registry = Registry::new("127.0.0.1:5000", None);
        let on = |location: &str| registry.path_on_registry(location);
        assert_eq!(on("/v2/a/blobs/uploads/u?_state=x").as_deref(), Some("/v2/a/blobs/uploads/u?_state=x"));
        assert_eq!(on("http://127.0.0.1:5000/v2/a/blobs/uploads/u").as_deref(), Some("/v2/a/blobs/uploads/u"));
        for elsewhere in [
            "http://127.0.0.1:50001/v2/a/blobs/uploads/u",
            "http://127.0.0.1:5000.evil.com/v2/a/blobs/uploads/u",
            "https://127.0.0.1:5000/v2/a/blobs/uploads/u",
            "http://evil.com/v2/a/blobs/uploads/u",
            "//evil.com/v2/",
        ] {
            assert_eq!(on(elsewhere), None, "{elsewhere}");
        }
    }

    pub(super) type Seen = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

    /// An HTTP server on loopback answering each request (its head, as text) with `answer`,
    /// one connection each; its address, and the heads of the requests it received.
    pub(super) fn fake_server(answer: impl Fn(&str) -> String + Send + 'static) -> (String, Seen) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let seen = Seen::default();
        let kept = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                while reader.read_line(&mut head).is_ok_and(|n| n > 2) {}
                let length = (head.lines())
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|n| n.trim().to_string()))
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
                let _ = std::io::copy(&mut reader.by_ref().take(length), &mut std::io::sink());
                kept.lock().unwrap().push(head.clone());
                let _ = (&stream).write_all(answer(&head).as_bytes());
            }
        });
        (address, seen)
    }

    /// A registry on loopback that asks for Basic credentials, then starts an upload whose
    /// `Location` is `location` (with `{other}` the port of a second server); what each of the
    /// two received, request by request.
    fn check_push_against(location: &str) -> (Vec<String>, Vec<String>) {
        let (other, elsewhere) =
            fake_server(|_| "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into());
        let location = location.replace("{other}", other.rsplit(':').next().unwrap());
        let (address, at_registry) = fake_server(move |head| {
            let close = "Content-Length: 0\r\nConnection: close\r\n\r\n";
            if !head.to_ascii_lowercase().contains("authorization: basic") {
                format!("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"r\"\r\n{close}")
            } else if head.starts_with("POST") {
                format!("HTTP/1.1 202 Accepted\r\nLocation: {location}\r\n{close}")
            } else {
                format!("HTTP/1.1 204 No Content\r\n{close}")
            }
        });
        let credentials = Credentials { user: "bot".into(), password: "s3cret".into() };
        Registry::new(&address, Some(credentials)).check_push("gatidev/gati-backend").unwrap();
        let taken = |seen: &Seen| seen.lock().unwrap().clone();
        (taken(&at_registry), taken(&elsewhere))
    }

    #[test]
    fn check_push_sends_no_credentials_to_another_host() {
        let (at_registry, elsewhere) =
            check_push_against("http://127.0.0.1:{other}/v2/gatidev/gati-backend/blobs/uploads/u");
        assert!(elsewhere.is_empty(), "a request went to another host: {elsewhere:?}");
        assert!(at_registry.iter().all(|r| !r.starts_with("DELETE")), "{at_registry:?}");
        // On the registry itself, the abandoned upload is cancelled, with the credentials.
        let (at_registry, elsewhere) = check_push_against("/v2/gatidev/gati-backend/blobs/uploads/u?_state=x");
        assert!(elsewhere.is_empty());
        let delete =
            at_registry.iter().find(|r| r.starts_with("DELETE /v2/gatidev/gati-backend/blobs/uploads/u?_state=x"));
        assert!(delete.is_some_and(|r| r.to_ascii_lowercase().contains("authorization: basic")), "{at_registry:?}");
    }

    #[test]
    fn follows_next_links() {
        assert_eq!(
            next_link(r#"</v2/gatidev/gati-backend/tags/list?last=0.1.1&n=2>; rel="next""#).as_deref(),
            Some("/v2/gatidev/gati-backend/tags/list?last=0.1.1&n=2")
        );
        assert_eq!(
            next_link(r#"<https://registry.example/v2/a/b/tags/list?n=2&last=x>; rel="next""#).as_deref(),
            Some("/v2/a/b/tags/list?n=2&last=x")
        );
        assert_eq!(next_link(r#"</v2/a/tags/list?n=2>; rel="prev""#), None);
    }
}
