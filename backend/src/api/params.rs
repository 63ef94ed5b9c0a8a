//! The query parameters lists and ranges share, as extractors: `limit` and `offset`
//! ([`Paged`]), `since` and `until` ([`TimeRange`]), and a timeline's `days` ([`DayRange`]).
//! Each refuses a bad value with a JSON error naming the parameter; the `*Query` structs
//! describe them in the OpenAPI document.

use axum::{
    extract::{FromRequestParts, Query},
    http::{request::Parts, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Datelike, Days, NaiveDate};
use serde::{de::DeserializeOwned, Deserialize};
use utoipa::IntoParams;

use super::{refused, Refused};
use crate::{
    ingest,
    store::{Page, Range},
};

pub const DEFAULT_LIMIT: u32 = 50;
/// Larger limits are clamped to this, as 0.0.3 did.
pub const MAX_LIMIT: u32 = 1000;

/// The deepest `offset` a list takes: skipping rows is work, and a page past a million is not
/// one a person reads.
pub const MAX_OFFSET: u32 = 1_000_000;

/// A `limit` and `offset` as given; bad ones are refused naming the parameter and its bounds.
fn page(limit: &Option<String>, offset: &Option<String>, default: u32) -> Result<Page, Refused> {
    let limit = match given(limit) {
        None => default,
        // Larger limits are read as the largest, as 0.0.3 did.
        Some(v) => match v.parse::<u64>() {
            Ok(n @ 1..) => n.min(MAX_LIMIT.into()) as u32,
            _ => {
                let message = format!(
                    "`limit` must be an integer from 1 to {MAX_LIMIT} (a larger one is read as {MAX_LIMIT}), got {v:?}"
                );
                return Err(refused(StatusCode::BAD_REQUEST, message));
            }
        },
    };
    Ok(Page { limit, offset: bounded("offset", offset, 0, MAX_OFFSET)?.unwrap_or(0) })
}

/// An integer parameter from `min` to `max`, if given; else the 400 that names it and them.
pub fn bounded(key: &str, value: &Option<String>, min: u32, max: u32) -> Result<Option<u32>, Refused> {
    let Some(v) = given(value) else { return Ok(None) };
    match v.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => {
            Err(refused(StatusCode::BAD_REQUEST, format!("`{key}` must be an integer from {min} to {max}, got {v:?}")))
        }
    }
}

/// `since` and `until` as stored timestamps; either may be left out.
fn range(since: &Option<String>, until: &Option<String>) -> Result<Range, Refused> {
    let range = Range { since: instant("since", since)?, until: instant("until", until)? };
    if let (Some(since), Some(until)) = (&range.since, &range.until) {
        if since >= until {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                format!("`since` ({since}) must be before `until` ({until})"),
            ));
        }
    }
    Ok(range)
}

/// An ISO 8601 date-time (with an offset, or naive and read as UTC) or a date (its midnight, UTC).
fn instant(key: &str, value: &Option<String>) -> Result<Option<String>, Refused> {
    let Some(text) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
    let parsed = ingest::normalize_timestamp(text).or_else(|| {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .map(|day| format!("{}T00:00:00.000000Z", day.format("%Y-%m-%d")))
    });
    let Some(parsed) = parsed else {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            format!("`{key}` {text:?} is not an ISO 8601 date-time or date, like 2026-01-31T12:00:00Z or 2026-01-31"),
        ));
    };
    // Years 1 to 9999 only: what a timestamp stored as text sorts right in (`+10000-…` and
    // `-0001-…` would not), and what a day's arithmetic never overflows on.
    let year = &parsed.as_bytes()[..parsed.len().min(5)];
    if year.len() < 5 || !year[..4].iter().all(u8::is_ascii_digit) || year[4] != b'-' || &year[..4] == b"0000" {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            format!("`{key}` {text:?} is outside the years gati stores: from 0001-01-01 to 9999-12-31 (UTC)"),
        ));
    }
    Ok(Some(parsed))
}

/// A non-empty parameter.
pub fn given(value: &Option<String>) -> Option<String> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(String::from)
}

/// The query string as `T`; an unreadable one is refused (as JSON, by the local guard).
fn query<T: DeserializeOwned>(parts: &Parts) -> Result<T, Refused> {
    Query::<T>::try_from_uri(&parts.uri).map(|Query(q)| q).map_err(|e| Box::new(e.into_response()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1-1000 (default 50; `/api/agents`: 1000).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// Rows to skip (default 0).
    #[param(value_type = Option<u32>)]
    offset: Option<String>,
}

/// `limit` (`DEFAULT` when not given) and `offset`, checked.
pub struct Paged<const DEFAULT: u32>(pub Page);

impl<S: Send + Sync, const DEFAULT: u32> FromRequestParts<S> for Paged<DEFAULT> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let q: PageQuery = query(parts).map_err(|e| *e)?;
        page(&q.limit, &q.offset, DEFAULT).map(Paged).map_err(|e| *e)
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// At or after this time (ISO 8601, or a date: its midnight UTC).
    since: Option<String>,
    /// Before this time (ISO 8601, or a date: its midnight UTC).
    until: Option<String>,
}

/// `since` and `until`, checked; either may be left out.
pub struct TimeRange(pub Range);

impl<S: Send + Sync> FromRequestParts<S> for TimeRange {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let q: RangeQuery = query(parts).map_err(|e| *e)?;
        range(&q.since, &q.until).map(TimeRange).map_err(|e| *e)
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DaysQuery {
    /// The last N UTC days, today included: 1-365 (default 30). `since`/`until` instead set
    /// the range; `since`'s day is then the first bucket.
    #[param(value_type = Option<u32>)]
    days: Option<String>,
}

/// At most this many daily buckets (ten years).
const MAX_DAYS: u64 = 3660;

/// A timeline's range (`days`, or `since` and `until`), and its first and last UTC day.
pub struct DayRange {
    pub range: Range,
    pub first: String,
    pub last: String,
}

impl<S: Send + Sync> FromRequestParts<S> for DayRange {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let q: DaysQuery = query(parts).map_err(|e| *e)?;
        let days = match given(&q.days) {
            None => 30,
            Some(text) => match text.parse::<u64>() {
                Ok(days @ 1..=365) => days,
                _ => {
                    let message = format!("`days` must be an integer from 1 to 365, got {text:?}");
                    return Err(*refused(StatusCode::UNPROCESSABLE_ENTITY, message));
                }
            },
        };
        let TimeRange(given_range) = TimeRange::from_request_parts(parts, state).await?;
        day_range(days, given_range).map_err(|e| *e)
    }
}

fn day_range(days: u64, given_range: Range) -> Result<DayRange, Refused> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let today = DateTime::from_timestamp(now.as_secs() as i64, 0).map_or(NaiveDate::MIN, |t| t.date_naive());
    let midnight = |d: NaiveDate| format!("{}T00:00:00.000000Z", d.format("%Y-%m-%d"));
    // Stored timestamps (`instant`) start with a four-digit year.
    let day_of = |t: &str| t.get(..10).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()).unwrap_or(today);
    let too_early = || refused(StatusCode::BAD_REQUEST, "a timeline starts on 0001-01-01 at the earliest".into());
    let until = given_range.until.clone().unwrap_or_else(|| midnight(today + Days::new(1)));
    // The last bucket is the day of the range's last instant.
    let last = match until.ends_with("T00:00:00.000000Z") {
        true => day_of(&until).checked_sub_days(Days::new(1)).ok_or_else(too_early)?,
        false => day_of(&until),
    };
    let since = match given_range.since.clone() {
        Some(since) => since,
        // Not before year 1: chrono has a year 0, which gati stores none of.
        None => midnight(last.checked_sub_days(Days::new(days - 1)).filter(|d| d.year() >= 1).ok_or_else(too_early)?),
    };
    let first = day_of(&since);
    if (last - first).num_days() as u64 >= MAX_DAYS {
        return Err(refused(StatusCode::BAD_REQUEST, format!("a timeline spans at most {MAX_DAYS} days")));
    }
    let fmt = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    Ok(DayRange {
        range: Range { since: Some(since), until: Some(until) },
        first: fmt(first),
        last: fmt(last.max(first)),
    })
}
