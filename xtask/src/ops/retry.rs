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
