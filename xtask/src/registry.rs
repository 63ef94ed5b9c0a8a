//! The registry's HTTP API (distribution spec v2), through `curl`. Credentials reach curl as a
//! config file on stdin, never as arguments, so no process listing or error message shows them.
//! Transient failures (connection refused or reset, 5xx, 429) are retried with backoff within a
//! bounded total; permanent ones (401, 403, invalid manifest) fail at once.

use std::{
    cell::RefCell,
    collections::HashMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

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
    /// `DOCKER_USERNAME`/`DOCKER_PASSWORD`, when both are set.
    pub fn from_env() -> Option<Credentials> {
        let user = std::env::var("DOCKER_USERNAME").ok().filter(|u| !u.is_empty())?;
        let password = std::env::var("DOCKER_PASSWORD").ok().filter(|p| !p.is_empty())?;
        Some(Credentials { user, password })
    }
}

const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.index.v1+json";

/// How long transient registry failures are retried: `GATI_RETRY_SECONDS`, default 60.
pub fn retry_budget() -> Duration {
    let seconds = std::env::var("GATI_RETRY_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    Duration::from_secs(seconds)
}

pub struct Registry {
    /// As configured, e.g. `docker.io` or `127.0.0.1:5000`.
    pub name: String,
    base: String,
    credentials: Option<Credentials>,
    tokens: RefCell<HashMap<String, String>>,
    scratch: PathBuf,
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

enum Failure {
    Transient(String, Option<Duration>),
    Permanent(anyhow::Error),
}

impl Registry {
    pub fn new(name: &str, credentials: Option<Credentials>, scratch: PathBuf) -> Registry {
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
            tokens: RefCell::default(),
            scratch,
        }
    }

    fn who(&self) -> String {
        match &self.credentials {
            Some(c) => format!("user {:?}", c.user),
            None => "anonymous access (set DOCKER_USERNAME and DOCKER_PASSWORD)".into(),
        }
    }

    /// Fails unless the registry answers and accepts the credentials for pushing to `repo`.
    pub fn check_access(&self, repo: &str) -> anyhow::Result<()> {
        let response = self.request("GET", &format!("/v2/{repo}/tags/list"), repo, &[], None)?;
        match response.status {
            200 | 404 => Ok(()),
            401 | 403 => bail!("{} refused {} for {repo}", self.name, self.who()),
            status => bail!("{} answered HTTP {status} to {}", self.name, self.who()),
        }
    }

    /// The tags of `repo`; none if the repository does not exist yet.
    pub fn tags(&self, repo: &str) -> anyhow::Result<Vec<String>> {
        let response = self.request("GET", &format!("/v2/{repo}/tags/list?n=10000"), repo, &[], None)?;
        match response.status {
            404 => Ok(vec![]),
            200 => {
                let text = String::from_utf8_lossy(&response.body);
                Ok(json_string_array(&text, "tags"))
            }
            status => bail!("listing the tags of {}/{repo}: HTTP {status}", self.name),
        }
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

    /// The `org.opencontainers.image.revision` label of the image `reference` points at.
    pub fn revision(&self, repo: &str, reference: &str) -> anyhow::Result<Option<String>> {
        let accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";
        let manifest =
            self.request("GET", &format!("/v2/{repo}/manifests/{reference}"), repo, &[("Accept", accept)], None)?;
        if manifest.status != 200 {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&manifest.body);
        let Some(config) = text.find("\"config\"").and_then(|at| json_string(&text[at..], "digest")) else {
            return Ok(None);
        };
        let blob = self.request("GET", &format!("/v2/{repo}/blobs/{config}"), repo, &[], None)?;
        Ok(json_string(&String::from_utf8_lossy(&blob.body), "org.opencontainers.image.revision"))
    }

    /// Points `tag` at the manifest `digest`, on the registry itself: the tag gets exactly the
    /// bytes that were verified, whatever the local daemon holds.
    pub fn put_tag(&self, repo: &str, digest: &str, tag: &str) -> anyhow::Result<()> {
        let manifest =
            self.request("GET", &format!("/v2/{repo}/manifests/{digest}"), repo, &[("Accept", MANIFEST_TYPES)], None)?;
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

    /// One API call with authentication and retries.
    fn request(
        &self,
        method: &str,
        path: &str,
        repo: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> anyhow::Result<Response> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(500);
        loop {
            let failure = match self.authenticated(method, path, repo, headers, body) {
                Ok(r) if r.status == 429 || r.status >= 500 => {
                    let wait = r.header("Retry-After").and_then(|s| s.trim().parse().ok()).map(Duration::from_secs);
                    Failure::Transient(format!("HTTP {}", r.status), wait)
                }
                Ok(r) => return Ok(r),
                Err(f) => f,
            };
            match failure {
                Failure::Permanent(e) => return Err(e),
                Failure::Transient(why, retry_after) => {
                    let wait = retry_after.unwrap_or(delay).min(Duration::from_secs(30));
                    if started.elapsed() + wait > retry_budget() {
                        bail!(
                            "{} is not answering ({why}) after retrying for {} s: {method} {path}",
                            self.name,
                            started.elapsed().as_secs()
                        );
                    }
                    eprintln!("  {}: {why}; retrying in {:.1} s", self.name, wait.as_secs_f32());
                    std::thread::sleep(wait);
                    delay *= 2;
                }
            }
        }
    }

    fn authenticated(
        &self,
        method: &str,
        path: &str,
        repo: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, Failure> {
        let token = self.tokens.borrow().get(repo).cloned();
        let auth = match (&token, &self.credentials) {
            (Some(token), _) => Auth::Bearer(token.clone()),
            (None, Some(c)) => Auth::Basic(c.clone()),
            (None, None) => Auth::None,
        };
        let response = self.curl(method, &format!("{}{path}", self.base), headers, body, &auth)?;
        if response.status != 401 {
            return Ok(response);
        }
        // Token authentication (Docker Hub): ask the realm for a token for this repository.
        let Some(challenge) = response.header("WWW-Authenticate").filter(|c| c.starts_with("Bearer ")) else {
            return Ok(response);
        };
        let params = challenge_params(&challenge["Bearer ".len()..]);
        let Some(realm) = params.get("realm") else { return Ok(response) };
        let mut url = format!("{realm}?scope=repository:{repo}:pull,push");
        if let Some(service) = params.get("service") {
            url.push_str(&format!("&service={service}"));
        }
        let auth = self.credentials.clone().map_or(Auth::None, Auth::Basic);
        let token_response = self.curl("GET", &url, &[], None, &auth)?;
        if token_response.status != 200 {
            return Ok(token_response);
        }
        let text = String::from_utf8_lossy(&token_response.body);
        let Some(token) = json_string(&text, "token").or_else(|| json_string(&text, "access_token")) else {
            return Err(Failure::Permanent(anyhow::anyhow!("{} gave no token", realm)));
        };
        self.tokens.borrow_mut().insert(repo.to_string(), token.clone());
        self.curl(method, &format!("{}{path}", self.base), headers, body, &Auth::Bearer(token))
    }

    fn curl(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        auth: &Auth,
    ) -> Result<Response, Failure> {
        std::fs::create_dir_all(&self.scratch).map_err(|e| Failure::Permanent(e.into()))?;
        let id = format!("{}-{}", std::process::id(), NEXT.with(|n| n.replace(n.get() + 1)));
        let header_file = self.scratch.join(format!("http-{id}.headers"));
        let body_file = self.scratch.join(format!("http-{id}.body"));
        let mut config = vec![
            format!("url = {}", quote(url)),
            format!("request = {}", quote(method)),
            format!("dump-header = {}", quote(&header_file.to_string_lossy())),
            format!("output = {}", quote(&body_file.to_string_lossy())),
        ];
        if method == "HEAD" {
            config.push("head".into());
        }
        for (k, v) in headers {
            config.push(format!("header = {}", quote(&format!("{k}: {v}"))));
        }
        match auth {
            Auth::None => {}
            Auth::Basic(c) => config.push(format!("user = {}", quote(&format!("{}:{}", c.user, c.password)))),
            Auth::Bearer(t) => config.push(format!("header = {}", quote(&format!("Authorization: Bearer {t}")))),
        }
        let upload = self.scratch.join(format!("http-{id}.upload"));
        if let Some(body) = body {
            std::fs::write(&upload, body).map_err(|e| Failure::Permanent(e.into()))?;
            config.push(format!("data-binary = {}", quote(&format!("@{}", upload.display()))));
        }
        let curl = duct::cmd!("curl", "--silent", "--show-error", "--max-time", "60", "--config", "-")
            .stdin_bytes(config.join("\n") + "\n")
            .stdout_capture()
            .stderr_capture()
            .unchecked();
        let output = crate::interrupt::output(curl).map_err(Failure::Permanent)?;
        let headers = std::fs::read_to_string(&header_file).unwrap_or_default();
        let body = std::fs::read(&body_file).unwrap_or_default();
        for file in [&header_file, &body_file, &upload] {
            let _ = std::fs::remove_file(file);
        }
        if !output.status.success() {
            let code = output.status.code().unwrap_or(-1);
            let why = format!("{} (curl exit {code})", String::from_utf8_lossy(&output.stderr).trim());
            // connect failed, timeout, empty reply, send or receive failure: worth retrying
            return Err(if [7, 28, 52, 55, 56].contains(&code) {
                Failure::Transient(why, None)
            } else {
                Failure::Permanent(anyhow::anyhow!("{}: {why}", self.name))
            });
        }
        Ok(parse_headers(&headers, body))
    }
}

thread_local! {
    static NEXT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

enum Auth {
    None,
    Basic(Credentials),
    Bearer(String),
}

/// A string for curl's config file: quoted, with `\` and `"` escaped.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The status and headers of the last response in a `--dump-header` file.
fn parse_headers(text: &str, body: Vec<u8>) -> Response {
    let mut status = 0;
    let mut headers = Vec::new();
    for line in text.lines() {
        if line.starts_with("HTTP/") {
            status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            headers.clear();
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Response { status, headers, body }
}

/// `realm="…",service="…"` → map.
fn challenge_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s;
    while let Some((key, after)) = rest.split_once("=\"") {
        let Some((value, after)) = after.split_once('"') else { break };
        out.insert(key.trim().trim_start_matches(',').trim().to_string(), value.to_string());
        rest = after;
    }
    out
}

/// The string value of `"key": "…"` in a small JSON document.
fn json_string(text: &str, key: &str) -> Option<String> {
    let at = text.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

/// The strings of `"key": ["…", …]` in a small JSON document (`null` gives none).
fn json_string_array(text: &str, key: &str) -> Vec<String> {
    let Some(at) = text.find(&format!("\"{key}\"")) else { return vec![] };
    let rest = &text[at + key.len() + 2..];
    let Some(open) = rest.find('[') else { return vec![] };
    let Some(close) = rest[open..].find(']') else { return vec![] };
    rest[open + 1..open + close]
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_last_response_of_a_header_dump() {
        let dump = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: x\r\n\r\nHTTP/1.1 200 OK\r\nDocker-Content-Digest: sha256:ab\r\n\r\n";
        let r = parse_headers(dump, vec![]);
        assert_eq!((r.status, r.header("docker-content-digest")), (200, Some("sha256:ab")));
        assert_eq!(r.header("WWW-Authenticate"), None);
    }

    #[test]
    fn parses_a_bearer_challenge() {
        let p = challenge_params(
            r#"realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull""#,
        );
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
    }

    #[test]
    fn reads_small_json_answers() {
        assert_eq!(json_string(r#"{"token": "abc", "x": 1}"#, "token").as_deref(), Some("abc"));
        assert_eq!(json_string_array(r#"{"name":"a/b","tags":["0.1.0","latest"]}"#, "tags"), ["0.1.0", "latest"]);
        assert!(json_string_array(r#"{"name":"a/b","tags":null}"#, "tags").is_empty());
    }

    #[test]
    fn curl_config_strings_are_escaped() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn credentials_never_print_the_password() {
        let c = Credentials { user: "alice".into(), password: "hunter2".into() };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
