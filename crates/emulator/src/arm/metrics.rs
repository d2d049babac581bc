//! Azure Monitor's Metrics - List (`GET {site or slot}/providers/Microsoft.Insights/metrics`) for App
//! Service's HTTP metrics, answered from the requests the slot's front end served (crate::metrics).
//!
//! What it follows: the Metrics REST API's query (`timespan` as `start/end`, `start/duration` or a
//! duration ending now, any ISO 8601 duration, default the last hour; `interval` an ISO 8601 grain of whole minutes or `FULL`,
//! default `PT1M`; `metricnames`; `aggregation` from Total, Average, Count, Minimum, Maximum, default the
//! metric's primary one), its answer (`cost`, `timespan`, `interval`, `namespace`, `resourceregion`, and
//! per metric `id`, `type`, `name`, `unit`, `timeseries[].data[]` with one point per grain, `timeStamp`
//! at the grain's start, only the requested aggregations), and its refusal of a metric the resource type
//! does not define (400 naming the valid ones). What it leaves out: dimensions (`$filter`, `top`,
//! `orderby` are accepted and not applied: one instance, no dimension values) and ingestion delay
//! (a request is counted the moment it is answered; Azure shows it a minute or more later).

use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::response::Response;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::resource_id;
use super::route::Ctx;
use crate::lock;
use crate::metrics::Bucket;
use crate::server::{json, query_param};
use crate::state::PRODUCTION;

/// How a metric is computed from a minute's bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    /// Requests of these status classes (1 to 5), one sample per minute.
    Count(&'static [usize]),
    /// Response time in seconds, one sample per request.
    ResponseTime,
}

/// A metric App Service defines for `Microsoft.Web/sites` (and its slots) that the emulator computes.
struct Definition {
    name: &'static str,
    display: &'static str,
    description: &'static str,
    unit: &'static str,
    primary: &'static str,
    source: Source,
}

const DEFINITIONS: &[Definition] = &[
    Definition {
        name: "Requests",
        display: "Requests",
        description: "The total number of requests regardless of their resulting HTTP status code.",
        unit: "Count",
        primary: "Total",
        source: Source::Count(&[1, 2, 3, 4, 5]),
    },
    Definition {
        name: "Http2xx",
        display: "Http 2xx",
        description: "The count of requests resulting in an HTTP status code >= 200 but < 300.",
        unit: "Count",
        primary: "Total",
        source: Source::Count(&[2]),
    },
    Definition {
        name: "Http3xx",
        display: "Http 3xx",
        description: "The count of requests resulting in an HTTP status code >= 300 but < 400.",
        unit: "Count",
        primary: "Total",
        source: Source::Count(&[3]),
    },
    Definition {
        name: "Http4xx",
        display: "Http 4xx",
        description: "The count of requests resulting in an HTTP status code >= 400 but < 500.",
        unit: "Count",
        primary: "Total",
        source: Source::Count(&[4]),
    },
    Definition {
        name: "Http5xx",
        display: "Http Server Errors",
        description: "The count of requests resulting in an HTTP status code >= 500 but < 600.",
        unit: "Count",
        primary: "Total",
        source: Source::Count(&[5]),
    },
    Definition {
        name: "HttpResponseTime",
        display: "Response Time",
        description: "The time taken for the app to serve requests, in seconds.",
        unit: "Seconds",
        primary: "Average",
        source: Source::ResponseTime,
    },
    Definition {
        name: "AverageResponseTime",
        display: "Average Response Time (deprecated)",
        description: "The average time taken for the app to serve requests, in seconds.",
        unit: "Seconds",
        primary: "Average",
        source: Source::ResponseTime,
    },
];

const AGGREGATIONS: &[&str] = &["Average", "Count", "Minimum", "Maximum", "Total"];

/// The Metrics API's error shape (`{code, message}` at the top level, not under `error`).
fn bad_request(message: &str) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        &serde_json::json!({"code": "BadRequest", "message": message}),
    )
}

/// An ISO 8601 duration (`PT5M`, `PT1H30M`, `P1D`, `PT3600.0S` as Microsoft's Python client writes it),
/// in seconds.
pub(crate) fn seconds_of(duration: &str) -> Option<f64> {
    let d = duration.trim().to_ascii_uppercase();
    let rest = d.strip_prefix('P')?;
    let (days, time) = rest.split_once('T').unwrap_or((rest, ""));
    let mut secs = 0.0;
    let mut any = false;
    for (part, units) in [
        (days, &[('D', 86_400.0)][..]),
        (time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)][..]),
    ] {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                number.push(c);
                continue;
            }
            let unit = units.iter().find(|(u, _)| *u == c)?.1;
            secs += number.parse::<f64>().ok()? * unit;
            number.clear();
            any = true;
        }
        if !number.is_empty() {
            return None;
        }
    }
    (any && secs > 0.0 && secs.is_finite()).then_some(secs)
}

/// A time grain: a duration of whole minutes, Azure Monitor's finest being one.
fn grain_minutes(interval: &str) -> Option<i64> {
    let secs = seconds_of(interval)?;
    (secs >= 60.0 && secs % 60.0 == 0.0).then(|| (secs / 60.0) as i64)
}

/// The query's time span as Unix seconds `[start, end)`.
pub(crate) fn timespan(value: Option<&str>, now: i64) -> Result<(i64, i64), String> {
    let parse = |t: &str| {
        OffsetDateTime::parse(t.trim(), &Rfc3339)
            .map(OffsetDateTime::unix_timestamp)
            .map_err(|_| format!("Invalid timespan: '{t}' is not an ISO 8601 date and time."))
    };
    let span = match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => (now - 3600, now),
        Some(v) => match v.split_once('/') {
            Some((start, end)) => {
                let start = parse(start)?;
                let end = match seconds_of(end) {
                    Some(secs) => start + secs.round() as i64,
                    None => parse(end)?,
                };
                (start, end)
            }
            None => {
                let secs = seconds_of(v).ok_or_else(|| format!("Invalid timespan: '{v}'."))?;
                (now - secs.round() as i64, now)
            }
        },
    };
    if span.1 <= span.0 {
        return Err("Invalid timespan: the end must be after the start.".into());
    }
    Ok(span)
}

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// One data point of `def` over `buckets`, with the aggregations asked for.
fn point(
    def: &Definition,
    buckets: &[&Bucket],
    at: i64,
    aggregations: &[&str],
) -> serde_json::Value {
    let (total, count, min, max) = match def.source {
        Source::Count(classes) => {
            let per_minute: Vec<f64> = buckets
                .iter()
                .map(|b| classes.iter().map(|c| b.by_class[c - 1]).sum::<u64>() as f64)
                .collect();
            (
                per_minute.iter().sum::<f64>(),
                per_minute.len() as f64,
                per_minute.iter().copied().reduce(f64::min),
                per_minute.iter().copied().reduce(f64::max),
            )
        }
        Source::ResponseTime => {
            let served: Vec<&&Bucket> = buckets.iter().filter(|b| b.requests() > 0).collect();
            (
                served.iter().map(|b| b.time_sum).sum::<f64>(),
                served.iter().map(|b| b.requests()).sum::<u64>() as f64,
                served.iter().map(|b| b.time_min).reduce(f64::min),
                served.iter().map(|b| b.time_max).reduce(f64::max),
            )
        }
    };
    let mut p = serde_json::Map::new();
    p.insert("timeStamp".into(), rfc3339(at).into());
    for a in aggregations {
        let value = match *a {
            "Total" if def.source != Source::ResponseTime || count > 0.0 => Some(total),
            "Count" => Some(count),
            "Average" if count > 0.0 => Some(total / count),
            "Minimum" => min,
            "Maximum" => max,
            _ => None,
        };
        if let Some(v) = value {
            p.insert(a.to_ascii_lowercase(), v.into());
        }
    }
    serde_json::Value::Object(p)
}

/// `GET …/sites/{name}[/slots/{slot}]/providers/Microsoft.Insights/metrics`.
pub(crate) async fn list(RawQuery(query): RawQuery, ctx: Ctx) -> Response {
    let q = query.as_deref();
    // A span that ends now must hold what was answered this second: requests are stamped in whole
    // seconds and spans are end-exclusive, so "now" is the end of the current second. Without it, a
    // request answered in a minute's first second and queried in that same second fell outside the
    // span (its bucket starts at the span's end).
    let now = OffsetDateTime::now_utc().unix_timestamp() + 1;
    let (start, end) = match timespan(query_param(q, "timespan").as_deref(), now) {
        Ok(span) => span,
        Err(message) => return bad_request(&message),
    };
    let interval = query_param(q, "interval").unwrap_or_else(|| "PT1M".into());
    let grain = if interval.eq_ignore_ascii_case("FULL") {
        None
    } else {
        match grain_minutes(&interval) {
            Some(m) => Some(m),
            None => {
                return bad_request(&format!(
                    "Invalid time grain '{interval}': give an ISO 8601 duration of whole minutes (PT1M, PT5M, PT1H, P1D) or FULL."
                ));
            }
        }
    };
    let resource_type = if ctx.slot == PRODUCTION {
        "sites"
    } else {
        "sites/slots"
    };
    let wanted = query_param(q, "metricnames").unwrap_or_else(|| "Requests".into());
    let mut defs = Vec::new();
    for name in wanted.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match DEFINITIONS
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
        {
            Some(d) => defs.push(d),
            None => {
                let valid: Vec<&str> = DEFINITIONS.iter().map(|d| d.name).collect();
                return bad_request(&format!(
                    "Failed to find metric configuration for provider: Microsoft.Web, resource Type: {resource_type}, metric: {name}, Valid metrics: {}",
                    valid.join(",")
                ));
            }
        }
    }
    let mut asked = Vec::new();
    if let Some(list) = query_param(q, "aggregation") {
        for a in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match AGGREGATIONS.iter().find(|k| k.eq_ignore_ascii_case(a)) {
                Some(k) => asked.push(*k),
                None => {
                    return bad_request(&format!(
                        "Invalid aggregation '{a}': use Average, Count, Minimum, Maximum or Total."
                    ));
                }
            }
        }
    }
    let (app_json, region) = {
        let state = lock(&ctx.shared.state);
        let Some(app) = state.apps.get(&ctx.name) else {
            return super::not_found("Microsoft.Web/sites", &ctx.name, &ctx.rg);
        };
        (resource_id(app, &ctx.slot), app.location.clone())
    };
    // Points start at the grain's boundary at or before the span's start, as Azure aligns them.
    let grain_secs = grain.map(|m| m * 60);
    let first = match grain_secs {
        Some(g) => start.div_euclid(g) * g,
        None => start,
    };
    let buckets = lock(&ctx.shared.metrics).buckets(
        &ctx.name,
        &ctx.slot,
        first.div_euclid(60),
        (end + 59).div_euclid(60),
    );
    let mut points_total = 0usize;
    let value: Vec<serde_json::Value> = defs
        .iter()
        .map(|def| {
            let aggregations: Vec<&str> = if asked.is_empty() {
                vec![def.primary]
            } else {
                asked.clone()
            };
            let mut data = Vec::new();
            let mut at = first;
            while at < end {
                let until = grain_secs.map_or(end, |g| at + g);
                let inside: Vec<&Bucket> = buckets
                    .iter()
                    .filter(|b| b.minute * 60 >= at && b.minute * 60 < until)
                    .collect();
                data.push(point(def, &inside, at, &aggregations));
                at = until;
            }
            points_total += data.len();
            serde_json::json!({
                "id": format!("{app_json}/providers/Microsoft.Insights/metrics/{}", def.name),
                "type": "Microsoft.Insights/metrics",
                "name": {"value": def.name, "localizedValue": def.display},
                "displayDescription": def.description,
                "unit": def.unit,
                "timeseries": [{"metadatavalues": [], "data": data}],
                "errorCode": "Success",
            })
        })
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({
            "cost": points_total,
            "timespan": format!("{}/{}", rfc3339(start), rfc3339(end)),
            "interval": if grain.is_some() { interval.to_ascii_uppercase() } else { "FULL".to_owned() },
            "value": value,
            "namespace": format!("Microsoft.Web/{resource_type}"),
            "resourceregion": region,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_grains_are_read_as_iso_8601() {
        assert_eq!(
            seconds_of("PT3600.0S"),
            Some(3600.0),
            "Microsoft's Python client"
        );
        assert_eq!(seconds_of("P1DT1H"), Some(90_000.0));
        assert_eq!(seconds_of("PT"), None);
        assert_eq!(seconds_of("5M"), None);
        assert_eq!(seconds_of("PT5"), None);
        assert_eq!(seconds_of("P5H"), None, "hours belong after T");
        assert_eq!(grain_minutes("PT1M"), Some(1));
        assert_eq!(grain_minutes("pt5m"), Some(5));
        assert_eq!(grain_minutes("PT1H30M"), Some(90));
        assert_eq!(grain_minutes("P1D"), Some(1440));
        assert_eq!(grain_minutes("PT120S"), Some(2));
        assert_eq!(grain_minutes("PT30S"), None, "below Azure's finest grain");
        assert_eq!(grain_minutes("PT90S"), None, "not whole minutes");
    }

    #[test]
    fn a_timespan_is_start_end_start_duration_or_a_duration_ending_now() {
        let now = 1_800_000_000;
        assert_eq!(timespan(None, now), Ok((now - 3600, now)));
        assert_eq!(timespan(Some("PT10M"), now), Ok((now - 600, now)));
        assert_eq!(timespan(Some("PT600.0S"), now), Ok((now - 600, now)));
        assert_eq!(
            timespan(Some("2026-12-05T10:00:00Z/2026-12-05T10:05:00Z"), now),
            Ok((1_796_464_800, 1_796_465_100))
        );
        assert_eq!(
            timespan(Some("2026-12-05T10:00:00Z/PT5M"), now),
            Ok((1_796_464_800, 1_796_465_100))
        );
        assert!(timespan(Some("2026-12-05T10:05:00Z/2026-12-05T10:00:00Z"), now).is_err());
        assert!(timespan(Some("yesterday"), now).is_err());
    }

    #[test]
    fn count_metrics_sample_once_a_minute_and_response_time_once_a_request() {
        let bucket = |minute, by_class: [u64; 5], sum: f64| Bucket {
            minute,
            by_class,
            time_sum: sum,
            time_min: 0.01,
            time_max: 0.5,
        };
        let (a, b) = (
            bucket(0, [0, 8, 0, 0, 2], 1.0),
            bucket(1, [0, 0, 0, 0, 0], 0.0),
        );
        let all = ["Total", "Count", "Average", "Minimum", "Maximum"];
        let http5xx = &DEFINITIONS[4];
        assert_eq!(
            point(http5xx, &[&a, &b], 0, &all),
            serde_json::json!({"timeStamp": "1970-01-01T00:00:00Z", "total": 2.0, "count": 2.0, "average": 1.0, "minimum": 0.0, "maximum": 2.0})
        );
        let time = &DEFINITIONS[5];
        assert_eq!(
            point(time, &[&a, &b], 60, &all),
            serde_json::json!({"timeStamp": "1970-01-01T00:01:00Z", "total": 1.0, "count": 10.0, "average": 0.1, "minimum": 0.01, "maximum": 0.5})
        );
        // No traffic: a count is 0, a time has no value.
        assert_eq!(
            point(http5xx, &[], 0, &["Total"]),
            serde_json::json!({"timeStamp": "1970-01-01T00:00:00Z", "total": 0.0})
        );
        assert_eq!(
            point(time, &[], 0, &["Average", "Total"]),
            serde_json::json!({"timeStamp": "1970-01-01T00:00:00Z"})
        );
    }
}
