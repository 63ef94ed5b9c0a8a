//! gati-backend — stores agent events in SQLite and serves them over HTTP (see API.md).
//!
//! USAGE
//!     gati-backend                serve on GATI_HOST:GATI_PORT (127.0.0.1:8000)
//!     gati-backend healthcheck    exit 0 only if the local server answers /health (database ok)
//!     gati-backend --version
//!
//! ENVIRONMENT
//!     GATI_DATA_DIR   where the database lives (default: ./data; /data in the image)
//!     GATI_PORT       port to listen on (default 8000)
//!     GATI_HOST       address to bind (default 127.0.0.1; 0.0.0.0 in the image)
//!     GATI_ALLOWED_HOSTS
//!                     more Host names to answer, comma-separated, for a backend published on
//!                     purpose; loopback names are always accepted, any other is refused (403)
//!     GATI_CONTAINER_HOSTS
//!                     the same, set by the image: its compose service name, `backend` (a
//!                     native install answers no service name)
//!     GATI_RETENTION_DAYS
//!                     delete the runs whose last event is older than this many days, at start
//!                     and then hourly (default: keep everything)
//!
//! It is a local service (gati_service::local_guard): writes need `Content-Type: application/json`
//! (OpenTelemetry's `POST /v1/traces` also takes `application/x-protobuf`), a foreign `Origin` is refused, no answer may be framed, and every error is JSON. A DELETE or
//! PATCH without a body needs no content type.

mod api;
mod docs;
mod ingest;
mod model;
mod otlp;
#[cfg(test)]
mod properties;
mod store;
mod trace;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context};
use gati_service::{local_guard, Service};

use crate::model::Retention;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

static SERVICE: Service =
    Service { name: "gati-backend", version: VERSION, default_port: 8000, health_path: "/health", modes: &[] };

/// How often retention looks for runs to delete after the first sweep.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

fn main() -> anyhow::Result<()> {
    SERVICE.main(|_, port| serve(port))
}

fn serve(port: u16) -> anyhow::Result<()> {
    let host = gati_service::host();
    let retention_days = retention_days(std::env::var("GATI_RETENTION_DAYS").ok().as_deref())?;
    let data_dir = PathBuf::from(std::env::var("GATI_DATA_DIR").unwrap_or_else(|_| "data".into()));
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let db = data_dir.join("gati.db");
    let store = store::Store::open(&db).with_context(|| format!("opening {}", db.display()))?;
    let guard = local_guard::LocalGuard::from_env(&[]);
    let retention = Arc::new(Mutex::new(Retention { days: retention_days, deleted_runs: 0, last_swept_at: None }));
    match retention_days {
        None => eprintln!("retention: off, every run is kept (set GATI_RETENTION_DAYS to delete old runs)"),
        Some(days) => {
            let deleted = sweep(&store, &retention, days).context("deleting the runs retention keeps no longer")?;
            eprintln!("retention: runs whose last event is older than {days} days are deleted, hourly; {deleted} now");
            let (store, retention) = (store.clone(), retention.clone());
            std::thread::spawn(move || loop {
                std::thread::sleep(SWEEP_EVERY);
                if let Err(e) = sweep(&store, &retention, days) {
                    eprintln!("retention: sweeping failed: {e}");
                }
            });
        }
    }
    let app = api::App { store, retention };

    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let listener = gati_service::bind(&host, port).await?;
        eprintln!(
            "gati-backend {VERSION} listening on {host}:{port}, data in {}, answering Host {}",
            db.display(),
            guard.hosts().join(", ")
        );
        axum::serve(listener, api::router(app, guard)).with_graceful_shutdown(gati_service::shutdown_signal()).await?;
        eprintln!("gati-backend stopped");
        Ok(())
    })
}

/// `GATI_RETENTION_DAYS`: unset, empty or 0 keep everything; else a number of days.
fn retention_days(value: Option<&str>) -> anyhow::Result<Option<u32>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => match v.parse::<u32>() {
            Ok(0) => Ok(None),
            Ok(days) if days <= 36_500 => Ok(Some(days)),
            _ => bail!("GATI_RETENTION_DAYS={v:?} is not a number of days (1-36500; 0 or unset keeps everything)"),
        },
    }
}

/// Deletes the runs whose last event is older than `days` days; how many went.
fn sweep(store: &store::Store, retention: &Mutex<Retention>, days: u32) -> anyhow::Result<i64> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let stamp = |secs: i64| {
        chrono::DateTime::from_timestamp(secs, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .unwrap_or_default()
    };
    let deleted = store.sweep(&stamp(now - i64::from(days) * 86_400))?;
    let mut retention = retention.lock().unwrap_or_else(|p| p.into_inner());
    retention.deleted_runs += deleted as u64;
    retention.last_swept_at = Some(stamp(now));
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    #[test]
    fn retention_days() {
        assert_eq!(super::retention_days(None).unwrap(), None);
        assert_eq!(super::retention_days(Some("0")).unwrap(), None);
        assert_eq!(super::retention_days(Some(" 30 ")).unwrap(), Some(30));
        let refused = super::retention_days(Some("a month")).unwrap_err().to_string();
        assert!(refused.contains("GATI_RETENTION_DAYS=\"a month\""), "{refused}");
    }
}
