//! Azure Monitor's Metrics - List for a site or slot (`GET {resource}/providers/Microsoft.Insights/
//! metrics`): every metric of one query in one request, as the REST contract batches `metricnames`,
//! over the same ARM pipeline (its host policy, token, 429 and `Retry-After` handling, cancellation).

use azure_core::http::Method;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;

use super::{SlotName, WebApp};
use crate::client::{Call, parse_json};
use crate::error::{AzureError, Result};

/// The Metrics REST API version (Metrics - List).
pub const METRICS_API_VERSION: &str = "2023-10-01";

/// One Metrics - List query: which metrics, over which span, at which grain, with which aggregations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsQuery {
    /// Metric names as App Service defines them, e.g. `Requests`, `Http5xx`, `HttpResponseTime`.
    pub names: Vec<String>,
    /// The span's start and end, Unix seconds (`timespan=start/end`).
    pub from_unix: i64,
    pub to_unix: i64,
    /// The grain, an ISO 8601 duration (`PT1M`, Azure Monitor's finest) or `FULL`.
    pub interval: String,
    /// Aggregations, e.g. `Total`, `Count`, `Average`.
    pub aggregations: Vec<String>,
}

/// One metric's points over the span (the first time series: App Service's site metrics have no
/// dimension unless one is asked for).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSeries {
    /// The metric's name, e.g. `Http5xx`.
    pub name: String,
    /// Its unit, e.g. `Count` or `Seconds`.
    pub unit: String,
    /// One point per grain, oldest first.
    pub points: Vec<MetricPoint>,
}

/// One grain of a metric; an aggregation Azure left out (no data in the grain) is `None`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricPoint {
    pub time_stamp: String,
    #[serde(default)]
    pub total: Option<f64>,
    #[serde(default)]
    pub count: Option<f64>,
    #[serde(default)]
    pub average: Option<f64>,
    #[serde(default)]
    pub minimum: Option<f64>,
    #[serde(default)]
    pub maximum: Option<f64>,
}

impl MetricSeries {
    /// The sum of one aggregation over every point that has it.
    pub fn sum(&self, pick: fn(&MetricPoint) -> Option<f64>) -> f64 {
        self.points.iter().filter_map(pick).sum()
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    value: Vec<Metric>,
}

#[derive(Deserialize)]
struct Metric {
    name: MetricName,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    timeseries: Vec<Series>,
}

#[derive(Deserialize)]
struct MetricName {
    value: String,
}

#[derive(Deserialize)]
struct Series {
    #[serde(default)]
    data: Vec<MetricPoint>,
}

fn rfc3339(unix: i64) -> Result<String> {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .ok_or_else(|| AzureError::invalid("metrics time span", unix.to_string(), "out of range"))
}

impl WebApp {
    /// Metrics - List of a site or slot: one request for every metric of `query`.
    pub async fn metrics(
        &self,
        slot: &SlotName,
        query: &MetricsQuery,
        cancel: &CancellationToken,
    ) -> Result<Vec<MetricSeries>> {
        let op = self.op("read the metrics", slot);
        if query.to_unix <= query.from_unix || query.names.is_empty() {
            return Err(AzureError::invalid(
                "metrics query",
                format!("{query:?}"),
                "needs a metric and a span that ends after it starts",
            ));
        }
        let mut url = self.url(Some(slot), "/providers/Microsoft.Insights/metrics")?;
        url.query_pairs_mut()
            .clear()
            .append_pair(
                "timespan",
                &format!("{}/{}", rfc3339(query.from_unix)?, rfc3339(query.to_unix)?),
            )
            .append_pair("interval", &query.interval)
            .append_pair("metricnames", &query.names.join(","))
            .append_pair("aggregation", &query.aggregations.join(","))
            .append_pair("api-version", METRICS_API_VERSION);
        let rsp = self
            .inner
            .send(Call::new(&op, Method::Get, url), cancel)
            .await?;
        let answer: Answer = parse_json(&op, &rsp)?;
        Ok(answer
            .value
            .into_iter()
            .map(|m| MetricSeries {
                name: m.name.value,
                unit: m.unit,
                points: m
                    .timeseries
                    .into_iter()
                    .next()
                    .map(|s| s.data)
                    .unwrap_or_default(),
            })
            .collect())
    }
}
