//! Retrying what fails for passing reasons (a registry restarting, a rate limit), within one
//! bounded total: `GATI_RETRY_SECONDS`, default 60. The waits end at once on Ctrl-C.

use std::time::{Duration, Instant};

use crate::ops::interrupt;

/// How long transient failures are retried in all: `GATI_RETRY_SECONDS`, default 60.
pub fn budget() -> Duration {
    let seconds = std::env::var("GATI_RETRY_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    Duration::from_secs(seconds)
}

/// Exponential backoff from 0.5 s, each wait at most 30 s, all of them within [`budget`].
pub struct Backoff {
    started: Instant,
    delay: Duration,
    budget: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { started: Instant::now(), delay: Duration::from_millis(500), budget: budget() }
    }
}

impl Backoff {
    /// Waits before the next attempt (`retry_after` when the server named one). Fails when that
    /// would pass the budget, saying for how long it tried, or when the user interrupts.
    pub fn wait(&mut self, why: &str, retry_after: Option<Duration>) -> anyhow::Result<()> {
        let wait = retry_after.unwrap_or(self.delay).min(Duration::from_secs(30));
        let elapsed = self.started.elapsed();
        if elapsed + wait > self.budget {
            anyhow::bail!("{why}, still after retrying for {} s (GATI_RETRY_SECONDS)", elapsed.as_secs());
        }
        eprintln!("  {why}; retrying in {:.1} s", wait.as_secs_f32());
        interrupt::sleep(wait)?;
        self.delay = (self.delay * 2).min(Duration::from_secs(30));
        Ok(())
    }
}

/// Why a tool's failure is worth another try, from what it printed (twine, git, docker,
/// compose): no connection, a lost answer, HTTP 5xx or 429. `None` for anything else — a 4xx,
/// refused credentials, a rejected push, a name that does not exist, or a failure it does not
/// recognise — which is not retried. A refusal anywhere in the output wins over a dropped
/// connection beside it.
pub fn transient_failure(said: &str) -> Option<String> {
    let said = said.to_ascii_lowercase();
    let statuses = http_statuses(&said);
    if statuses.iter().any(|s| (400..500).contains(s) && *s != 429) {
        return None;
    }
    const REFUSED: [&str; 9] = [
        "permission denied",
        "authentication failed",
        "unauthorized",
        "access denied",
        "rejected",
        "non-fast-forward",
        "not found",
        "manifest unknown",
        "does not appear to be a git repository",
    ];
    if REFUSED.iter().any(|r| said.contains(r)) {
        return None;
    }
    if let Some(status) = statuses.iter().find(|s| **s == 429 || **s >= 500) {
        return Some(format!("HTTP {status}"));
    }
    const PASSING: [&str; 21] = [
        "connection error",
        "connection reset",
        "connection refused",
        "connection aborted",
        "connection closed",
        "connectionerror",
        "remotedisconnected",
        "timed out",
        "timeout",
        "could not resolve host",
        "temporary failure in name resolution",
        "early eof",
        "unexpected eof",
        ": eof",
        "hung up unexpectedly",
        "rpc failed",
        "empty reply",
        "broken pipe",
        "toomanyrequests",
        "service unavailable",
        "bad gateway",
    ];
    PASSING.iter().find(|p| said.contains(*p)).map(|p| format!("no answer ({p})"))
}

/// The HTTP statuses a tool's (lowercased) output names: a number of three digits after
/// `http `, `httperror: `, `error: `, `http error `, `status: ` or `status code `.
fn http_statuses(said: &str) -> Vec<u16> {
    const BEFORE: [&str; 6] = ["http ", "httperror: ", "error: ", "http error ", "status: ", "status code "];
    let mut found = Vec::new();
    for before in BEFORE {
        for (at, _) in said.match_indices(before) {
            let digits: String = said[at + before.len()..].chars().take_while(char::is_ascii_digit).collect();
            if let (3, Ok(status)) = (digits.len(), digits.parse::<u16>()) {
                if (100..600).contains(&status) {
                    found.push(status);
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_passing_failures_are_tried_again() {
        let transient = |said: &str| transient_failure(said).unwrap_or_else(|| panic!("not transient: {said}"));
        // twine
        assert_eq!(transient("ERROR    HTTPError: 503 Service Unavailable from http://127.0.0.1:1/"), "HTTP 503");
        assert_eq!(transient("ERROR    HTTPError: 429 Too Many Requests from http://127.0.0.1:1/"), "HTTP 429");
        transient("requests.exceptions.ConnectionError: ('Connection aborted.', RemoteDisconnected('Remote end'))");
        assert_eq!(transient_failure("ERROR    HTTPError: 409 Conflict from http://127.0.0.1:1/"), None);
        assert_eq!(transient_failure("ERROR    HTTPError: 403 Forbidden from http://127.0.0.1:1/"), None);
        assert_eq!(transient_failure("InvalidDistribution: Unknown distribution format: 'x'"), None);
        // pip
        assert_eq!(transient("ERROR: HTTP error 429 while getting http://127.0.0.1:1/simple/gati/"), "HTTP 429");
        // git
        transient("error: RPC failed; HTTP 502 curl 22 The requested URL returned error: 502");
        transient("fatal: unable to access 'https://github.com/a/b/': Could not resolve host: github.com");
        transient("fatal: the remote end hung up unexpectedly");
        assert_eq!(
            transient_failure("fatal: unable to access 'https://x/': The requested URL returned error: 403"),
            None
        );
        assert_eq!(transient_failure(" ! [rejected]        main -> main (non-fast-forward)"), None);
        assert_eq!(
            transient_failure(
                "git@github.com: Permission denied (publickey).\nfatal: Could not read from remote repository."
            ),
            None
        );
        // docker, compose
        transient("ERROR: for backend  received unexpected HTTP status: 503 Service Unavailable");
        transient(
            "Get \"http://127.0.0.1:5000/v2/\": read tcp 127.0.0.1:1->127.0.0.1:5000: read: connection reset by peer",
        );
        transient("toomanyrequests: You have reached your pull rate limit.");
        assert_eq!(transient_failure("manifest for x/y:1 not found: manifest unknown"), None);
        assert_eq!(transient_failure("error parsing HTTP 404 response body"), None);
        assert_eq!(transient_failure("something else went wrong"), None);
    }
}
