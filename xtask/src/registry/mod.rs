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

use std::{cell::RefCell, collections::HashMap, time::Duration};

use anyhow::{bail, Context};
use serde_json::Value;

use crate::ops::retry::Backoff;

/// A user and a password or token. `Debug` never shows the password.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ****)", self.user)
    }
}

impl Credentials {
    /// `DOCKER_USERNAME`/`DOCKER_PASSWORD`, when both are set and not empty.
    pub fn from_env() -> Option<Credentials> {
        let user = std::env::var("DOCKER_USERNAME").ok().filter(|u| !u.is_empty())?;
        let password = std::env::var("DOCKER_PASSWORD").ok().filter(|p| !p.is_empty())?;
        Some(Credentials { user, password })
    }
}

const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.index.v1+json";
const IMAGE_MANIFEST_TYPES: &str =
    "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";

pub struct Registry {
    /// As configured, e.g. `docker.io` or `127.0.0.1:5000`.
    pub name: String,
    base: String,
    credentials: Option<Credentials>,
    /// What the registry asked for, learnt from its first 401; tokens by scope.
    scheme: RefCell<Scheme>,
    tokens: RefCell<HashMap<String, String>>,
}

#[derive(Clone, Default)]
enum Scheme {
    #[default]
    Unknown,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

pub struct Response {
    pub status: u16,
    /// The last response's headers (after redirects).
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self, what: &str) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.body).with_context(|| format!("{what}: the registry's answer is not JSON"))
    }
}

enum Failure {
    Transient(String, Option<Duration>),
    Permanent(anyhow::Error),
}

/// Everything the registry says about one tag of one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub digest: String,
    /// The image's `org.opencontainers.image.revision` label: the commit it was built from.
    pub revision: Option<String>,
    /// Its `org.opencontainers.image.version` label.
    pub version: Option<String>,
}

impl Registry {
    pub fn new(name: &str, credentials: Option<Credentials>) -> Registry {
        let host = if name == "docker.io" { "registry-1.docker.io" } else { name };
        // Docker itself talks plain HTTP to loopback registries; so do we.
        let scheme = if host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]") {
            "http"
        } else {
            "https"
        };
        Registry {
            name: name.to_string(),
            base: format!("{scheme}://{host}"),
            credentials,
            scheme: RefCell::default(),
            tokens: RefCell::default(),
        }
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
                if let Some(location) = started.header("Location") {
                    let url =
                        if location.starts_with('/') { format!("{}{location}", self.base) } else { location.into() };
                    // Best effort: an abandoned upload expires on the registry anyway.
                    let _ = self.send("DELETE", &url, repo, &[], None);
                }
                Ok(())
            }
            401 | 403 => bail!("{} refused {} the right to push to {repo}", self.name, self.who()),
            status => bail!("{} answered HTTP {status} to a push to {repo} by {}", self.name, self.who()),
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
                response.header("Docker-Content-Digest").context("no Docker-Content-Digest header")?.to_string(),
            )),
            status => bail!("reading {}/{repo}:{reference}: HTTP {status}", self.name),
        }
    }

    /// The digest and the revision label of the image `reference` points at, if it exists.
    /// The label is in the image's config blob, which registries like Docker Hub serve by a
    /// redirect to another host.
    pub fn remote(&self, repo: &str, reference: &str) -> anyhow::Result<Option<Remote>> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let manifest = self.request("GET", &path, repo, &[("Accept", IMAGE_MANIFEST_TYPES)], None)?;
        match manifest.status {
            404 => return Ok(None),
            200 => {}
            status => bail!("reading {}/{repo}:{reference}: HTTP {status}", self.name),
        }
        let digest = manifest.header("Docker-Content-Digest").context("no Docker-Content-Digest header")?.to_string();
        let config = manifest.json(&format!("the manifest of {repo}:{reference}"))?["config"]["digest"]
            .as_str()
            .map(str::to_owned);
        let Some(config) = config else { return Ok(Some(Remote { digest, revision: None, version: None })) };
        let blob = self.request("GET", &format!("/v2/{repo}/blobs/{config}"), repo, &[], None)?;
        if blob.status != 200 {
            bail!("reading the config {config} of {}/{repo}: HTTP {}", self.name, blob.status);
        }
        let labels = blob.json(&format!("the image config of {repo}:{reference}"))?["config"]["Labels"].take();
        let label = |name: &str| labels[format!("org.opencontainers.image.{name}")].as_str().map(str::to_owned);
        Ok(Some(Remote { digest, revision: label("revision"), version: label("version") }))
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
    fn request(
        &self,
        method: &str,
        path: &str,
        repo: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> anyhow::Result<Response> {
        let mut backoff = Backoff::default();
        let url = format!("{}{path}", self.base);
        loop {
            let (why, retry_after) = match self.send(method, &url, repo, headers, body) {
                Ok(r) if r.status == 429 || r.status >= 500 => {
                    let wait = r.header("Retry-After").and_then(|s| s.trim().parse().ok()).map(Duration::from_secs);
                    (format!("HTTP {}", r.status), wait)
                }
                Ok(r) => return Ok(r),
                Err(Failure::Permanent(e)) => return Err(e),
                Err(Failure::Transient(why, wait)) => (why, wait),
            };
            backoff
                .wait(&format!("{} is not answering {method} {path} ({why})", self.name), retry_after)
                .with_context(|| format!("{} is not answering", self.name))?;
        }
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
                *self.scheme.borrow_mut() = Scheme::Basic;
            }
            Some(bearer @ Scheme::Bearer { .. }) => {
                *self.scheme.borrow_mut() = bearer;
                let token = self.token(&scope)?;
                self.tokens.borrow_mut().insert(scope.clone(), token);
            }
            _ => return Ok(response),
        }
        curl(method, url, headers, body, &self.auth(&scope))
    }

    fn auth(&self, scope: &str) -> Auth {
        match (&*self.scheme.borrow(), &self.credentials) {
            (Scheme::Basic, Some(c)) => Auth::Basic(c.clone()),
            (Scheme::Bearer { .. }, _) => self.tokens.borrow().get(scope).cloned().map_or(Auth::None, Auth::Bearer),
            _ => Auth::None,
        }
    }

    /// A token for `scope` from the realm: with the credentials if there are any, anonymous
    /// otherwise. The realm grants what it allows (the anonymous get pull at most); the
    /// registry then answers with what the token holds.
    fn token(&self, scope: &str) -> Result<String, Failure> {
        let Scheme::Bearer { realm, service } = self.scheme.borrow().clone() else { unreachable!() };
        let mut url = format!("{realm}?scope={scope}");
        if let Some(service) = service {
            url.push_str(&format!("&service={service}"));
        }
        let auth = self.credentials.clone().map_or(Auth::None, Auth::Basic);
        let response = curl("GET", &url, &[], None, &auth)?;
        match response.status {
            200 => {}
            401 | 403 => {
                return Err(Failure::Permanent(anyhow::anyhow!(
                    "{} refused {} (its token service {realm} answered HTTP {})",
                    self.name,
                    self.who(),
                    response.status
                )));
            }
            status if status == 429 || status >= 500 => {
                return Err(Failure::Transient(format!("{realm} answered HTTP {status}"), None));
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

enum Auth {
    None,
    Basic(Credentials),
    Bearer(String),
}

/// Marks where curl's `--write-out` begins on stderr, after the headers and any error message.
const WRITE_OUT_MARK: &str = "@@xtask-curl@@";

/// One HTTP exchange through curl, following redirects; the request on stdin, the answer in
/// memory: the body on stdout, the headers of every response and then the status (as JSON) on
/// stderr. (Not `%{header_json}`: curl 7.88 drops headers from it when one is repeated.)
fn curl(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    auth: &Auth,
) -> Result<Response, Failure> {
    let mut config = vec![format!("url = {}", quote(url)), "location".to_string()];
    config.push(if method == "HEAD" { "head".into() } else { format!("request = {}", quote(method)) });
    for (k, v) in headers {
        config.push(format!("header = {}", quote(&format!("{k}: {v}"))));
    }
    match auth {
        Auth::None => {}
        Auth::Basic(c) => config.push(format!("user = {}", quote(&format!("{}:{}", c.user, c.password)))),
        Auth::Bearer(t) => config.push(format!("header = {}", quote(&format!("Authorization: Bearer {t}")))),
    }
    if let Some(body) = body {
        let text = std::str::from_utf8(body).map_err(|e| Failure::Permanent(e.into()))?;
        config.push(format!("data-binary = {}", quote(text)));
    }
    config.push("dump-header = \"/dev/stderr\"".into());
    let write_out = format!("%{{stderr}}{WRITE_OUT_MARK}{{\"status\":%{{http_code}}}}");
    config.push(format!("write-out = {}", quote(&write_out)));
    let curl = duct::cmd!("curl", "--silent", "--show-error", "--max-time", "60", "--config", "-")
        .stdin_bytes(config.join("\n") + "\n")
        .stdout_capture()
        .stderr_capture()
        .unchecked();
    let output = crate::ops::interrupt::output(curl).map_err(Failure::Permanent)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let (message, written) = stderr.rsplit_once(WRITE_OUT_MARK).unwrap_or((&stderr, "{}"));
    if !output.status.success() {
        let code = output.status.code().unwrap_or(-1);
        let said: Vec<&str> = message.lines().filter(|l| l.starts_with("curl:")).collect();
        let why = format!("{} (curl exit {code})", said.join(" "));
        // connect failed, timeout, empty reply, send or receive failure: worth retrying
        return Err(if [7, 28, 52, 55, 56].contains(&code) {
            Failure::Transient(why, None)
        } else {
            Failure::Permanent(anyhow::anyhow!("{url}: {why}"))
        });
    }
    let written: Value = serde_json::from_str(written)
        .map_err(|e| Failure::Permanent(anyhow::anyhow!("curl's --write-out for {url} is not JSON: {e}")))?;
    let status = written["status"].as_u64().unwrap_or(0) as u16;
    Ok(Response { status, headers: last_headers(message), body: output.stdout })
}

/// The header lines of the last response in a header dump (each response's begin with its
/// status line).
fn last_headers(dump: &str) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    for line in dump.lines() {
        if line.starts_with("HTTP/") {
            headers.clear();
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    headers
}

/// A string for curl's config file: quoted, with `\`, `"` and line breaks escaped.
fn quote(s: &str) -> String {
    let escaped = s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").replace('\r', "\\r");
    format!("\"{escaped}\"")
}

/// `Bearer realm="…",service="…"` or `Basic realm="…"`.
fn parse_challenge(challenge: &str) -> Option<Scheme> {
    let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Scheme::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut values = HashMap::new();
    let mut rest = params;
    while let Some((key, after)) = rest.split_once("=\"") {
        let Some((value, after)) = after.split_once('"') else { break };
        values.insert(key.trim().trim_start_matches(',').trim().to_ascii_lowercase(), value.to_string());
        rest = after;
    }
    Some(Scheme::Bearer { realm: values.remove("realm")?, service: values.remove("service") })
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
    fn parses_challenges() {
        let bearer = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull""#,
        );
        let Some(Scheme::Bearer { realm, service }) = bearer else { panic!("not a bearer challenge") };
        assert_eq!((realm.as_str(), service.as_deref()), ("https://auth.docker.io/token", Some("registry.docker.io")));
        assert!(matches!(parse_challenge(r#"Basic realm="gati""#), Some(Scheme::Basic)));
        assert!(parse_challenge("Negotiate").is_none());
    }

    #[test]
    fn reads_the_headers_of_the_last_response() {
        let dump = "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:2/blob\r\n\r\n\
                    HTTP/1.1 200 OK\r\nDate: a\r\nWww-Authenticate: Bearer realm=\"x\"\r\nDate: b\r\n\r\n";
        let r = Response { status: 200, headers: last_headers(dump), body: vec![] };
        assert_eq!((r.header("www-authenticate"), r.header("Location")), (Some("Bearer realm=\"x\""), None));
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

    #[test]
    fn curl_config_strings_are_escaped() {
        assert_eq!(quote("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
    }

    #[test]
    fn credentials_never_print_the_password() {
        let c = Credentials { user: "alice".into(), password: "hunter2".into() };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
