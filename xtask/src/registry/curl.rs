//! One HTTP exchange through `curl`, the request on stdin and the answer in memory: curl reads
//! its whole request — URL, headers, credentials, body — as a config file on stdin, and
//! answers on its stdout (the body) and stderr (the headers, then the status). Nothing touches
//! the disk, and no process listing or error message shows a password or a token. Redirects
//! are followed, and curl sends neither the `Authorization` header nor the credentials to
//! another host or port.

use std::{
    path::PathBuf,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use anyhow::Context;
use serde_json::Value;

use super::auth::Credentials;
use crate::ops::retry::Backoff;

pub struct Response {
    pub status: u16,
    /// The last response's headers (after redirects).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// How long its `Retry-After` asks to wait (in seconds; the date form is not used by
    /// registries).
    pub fn retry_after(&self) -> Option<Duration> {
        self.header("Retry-After").and_then(|s| s.trim().parse().ok()).map(Duration::from_secs)
    }

    pub fn json(&self, what: &str) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.body).with_context(|| format!("{what}: the registry's answer is not JSON"))
    }
}

pub enum Failure {
    Transient(String, Option<Duration>),
    Permanent(anyhow::Error),
}

pub enum Auth {
    None,
    Basic(Credentials),
    Bearer(String),
}

/// `send`, again while it fails for a passing reason — no connection, no answer, HTTP 5xx,
/// or 429 (after the `Retry-After` it names) — within `GATI_RETRY_SECONDS`; any other answer
/// (a 4xx too) is returned as it is, for the caller to judge. `what` names the call.
pub fn retried(what: &str, mut send: impl FnMut() -> Result<Response, Failure>) -> anyhow::Result<Response> {
    let mut backoff = Backoff::default();
    loop {
        let (why, retry_after) = match send() {
            Ok(r) if r.status == 429 || r.status >= 500 => (format!("HTTP {}", r.status), r.retry_after()),
            Ok(r) => return Ok(r),
            Err(Failure::Permanent(e)) => return Err(e),
            Err(Failure::Transient(why, wait)) => (why, wait),
        };
        backoff.wait(&format!("{what} ({why})"), retry_after)?;
    }
}

/// Marks where curl's `--write-out` begins on stderr, after the headers and any error message.
const WRITE_OUT_MARK: &str = "@@xtask-curl@@";

/// One HTTP exchange through curl, following redirects; the request on stdin, the answer in
/// memory: the body on stdout, the headers of every response and then the status (as JSON) on
/// stderr. (Not `%{header_json}`: curl 7.88 drops headers from it when one is repeated.)
pub fn curl(
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
    // Text (a manifest) goes in the config; bytes (a blob) through a file: see `BodyFile`.
    let _file = match body.map(std::str::from_utf8) {
        None => None,
        // (`@` would make curl read a file of that name.)
        Some(Ok(text)) if !text.starts_with('@') => {
            config.push(format!("data-binary = {}", quote(text)));
            None
        }
        Some(_) => {
            let file = BodyFile::new(body.unwrap_or_default()).map_err(Failure::Permanent)?;
            config.push(format!("data-binary = {}", quote(&format!("@{}", file.path.display()))));
            Some(file)
        }
    };
    if body.is_some() {
        // No `Expect: 100-continue` before a body: a wait for the server's go-ahead (curl waits
        // up to a second for it) that a registry never needs.
        config.push("header = \"Expect:\"".into());
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

/// A request body that is not text, in a file of its own (mode 0600, removed on drop) for
/// curl's `data-binary = "@file"`. It holds only the blob: image bytes, never a credential.
pub struct BodyFile {
    pub path: PathBuf,
}

impl BodyFile {
    pub fn new(bytes: &[u8]) -> anyhow::Result<BodyFile> {
        use std::os::unix::fs::OpenOptionsExt;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!("xtask-body-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("writing a request body to {}", path.display()))?;
        let body = BodyFile { path };
        std::io::Write::write_all(&mut file, bytes)?;
        Ok(body)
    }
}

impl Drop for BodyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_file_holds_the_bytes_and_goes_away() {
        let bytes = [0x1f, 0x8b, 0, 0xff, b'\n', b'"'];
        let path = {
            let file = BodyFile::new(&bytes).unwrap();
            assert_eq!(std::fs::read(&file.path).unwrap(), bytes);
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&file.path).unwrap().permissions().mode() & 0o777, 0o600);
            file.path.clone()
        };
        assert!(!path.exists());
    }

    #[test]
    fn reads_the_headers_of_the_last_response() {
        let dump = "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:2/blob\r\n\r\n\
                    HTTP/1.1 200 OK\r\nDate: a\r\nWww-Authenticate: Bearer realm=\"x\"\r\nDate: b\r\n\r\n";
        let r = Response { status: 200, headers: last_headers(dump), body: vec![] };
        assert_eq!((r.header("www-authenticate"), r.header("Location")), (Some("Bearer realm=\"x\""), None));
    }

    #[test]
    fn curl_config_strings_are_escaped() {
        assert_eq!(quote("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
    }
}
