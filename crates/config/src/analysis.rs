//! A gate's traffic analysis (`healthCheck.analysis:`): thresholds on the slot's Azure Monitor metrics
//! over a window, and the comparison with production's failed-request rate (Kayenta's baseline).

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::types::Duration;

/// What the slot's real traffic must look like over a window, read from Azure Monitor's App Service
/// metrics (`Requests`, `Http5xx`, `HttpResponseTime`) of that slot. The analysis runs after the
/// probes: the gate passes only when both pass, and a failed analysis fails the gate as a failed
/// probe does (staging: no swap; the watch: rollback).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Analysis {
    /// How much traffic is judged: from the gate's start until at least this long after it, e.g.
    /// `5m`. Azure Monitor counts in whole minutes, so the minute the gate starts in is read whole.
    pub window: Duration,
    /// The fewest requests (`Requests`) the slot must have served in the window; with fewer the
    /// analysis fails, so an idle slot cannot pass. Send traffic to the slot during the window
    /// (a load test hook, or real users) when it gets none by itself.
    #[serde(default = "default_min_requests")]
    pub min_requests: u64,
    /// The highest share of requests answered with a 5xx status (`Http5xx` / `Requests`), e.g. `1%`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_http5xx_rate: Option<Percent>,
    /// The highest average response time (`HttpResponseTime`, averaged over every request of the
    /// window), e.g. `800ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_average_response_time: Option<Duration>,
    /// Compare the slot's 5xx rate with production's over the same window: the slot fails when its
    /// rate exceeds production's by more than `margin`. Not for the production watch, whose slot
    /// is production itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    /// Judge the slot's requests as Application Insights logged them too, with a Log Analytics
    /// query of the workspace the app sends its telemetry to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<LogsQuery>,
}

/// A Log Analytics query over the window: the built-in failed-request rate of the slot, a KQL
/// query of your own with a threshold, or both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogsQuery {
    /// The Log Analytics workspace ID (a GUID: the workspace's Overview, or the Application
    /// Insights resource's workspace). The service connection needs Log Analytics Reader on it.
    pub workspace: String,
    /// The highest share of the slot's requests that failed (`AppRequests` rows with `Success ==
    /// false` for the slot's `AppRoleName`: the app's name for production, `<app>-<slot>` for a
    /// slot), e.g. `1%`. Fewer than `minRequests` logged requests fail the analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failed_request_rate: Option<Percent>,
    /// A KQL query of your own, run over the window (the request's `timespan`); its first row's
    /// first number is compared with `max`, e.g. `AppExceptions | summarize count()`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The highest value `query` may return.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl LogsQuery {
    /// Whether `workspace` is written as a GUID (`8-4-4-4-12` hexadecimal digits).
    pub fn workspace_is_guid(&self) -> bool {
        let parts: Vec<&str> = self.workspace.split('-').collect();
        parts.len() == 5
            && parts
                .iter()
                .zip([8, 4, 4, 4, 12])
                .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
    }
}

fn default_min_requests() -> u64 {
    20
}

/// The comparison with production (the baseline), as Kayenta compares a canary with its baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Baseline {
    /// How many percentage points the slot's 5xx rate may exceed production's, e.g. `1%`: with
    /// production at 0.5 %, the slot fails above 1.5 %. Production with fewer than `minRequests`
    /// requests counts as 0 %.
    pub margin: Percent,
}

/// A share written as a percentage, e.g. `2%` or `0.5%`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Percent(f64);

impl Percent {
    /// Parses `<number>%`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let number = text.trim().strip_suffix('%').ok_or_else(|| {
            format!("`{text}` is not a percentage: write it with `%`, e.g. `2%` or `0.5%`")
        })?;
        let value: f64 = number
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not a percentage: write e.g. `2%` or `0.5%`"))?;
        if !value.is_finite() || value < 0.0 {
            return Err(format!("`{text}` is not a percentage between 0% and 100%"));
        }
        Ok(Percent(value))
    }

    /// The percentage, e.g. `2.0` for `2%`.
    pub const fn value(self) -> f64 {
        self.0
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Percent {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Percent")
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A percentage, e.g. `2%` or `0.5%`.",
            "pattern": "^[0-9]+(\\.[0-9]+)?%$",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_percentage_needs_its_sign_and_a_number_from_zero() {
        assert_eq!(Percent::parse("2%").unwrap().value(), 2.0);
        assert_eq!(Percent::parse("0.5%").unwrap().value(), 0.5);
        assert!(Percent::parse("0.02").unwrap_err().contains("with `%`"));
        assert!(Percent::parse("-1%").is_err());
        assert!(Percent::parse("lots%").is_err());
        assert_eq!(Percent::parse("2.5%").unwrap().to_string(), "2.5%");
    }
}
