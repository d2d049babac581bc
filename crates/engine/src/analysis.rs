//! A gate's traffic analysis: the slot's requests, 5xx rate and response time over a window, from
//! Azure Monitor's metrics, judged against the config's thresholds and against production's 5xx rate
//! (the baseline, as Kayenta compares a canary with its baseline).
//!
//! [`evaluate`] is the decision as a pure function (numbers in, the verdict with its numbers out);
//! [`run`] waits out the window, reads the numbers through the [`Port`] and logs every finding.

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use slot_release_pipelines::Log;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::port::Port;
use crate::state::SlotName;

/// What the analysis requires of a slot's traffic, as the plan shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    /// The least span judged, from the gate's start (milliseconds).
    #[serde(rename = "windowMs", with = "crate::health::millis_serde")]
    #[schemars(with = "u64")]
    pub window: Duration,
    /// Fewer requests than this in the window fail the analysis.
    pub min_requests: u64,
    /// The highest 5xx share of requests, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_http5xx_percent: Option<f64>,
    /// The highest average response time, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_average_response_ms: Option<u64>,
    /// How many percentage points the slot's 5xx rate may exceed production's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_margin_percent: Option<f64>,
    /// The Log Analytics query, when the analysis reads the logs too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<LogsAnalysis>,
}

/// What the analysis asks of a Log Analytics workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogsAnalysis {
    /// The workspace ID.
    pub workspace: String,
    /// The highest share of the slot's logged requests that failed, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failed_percent: Option<f64>,
    /// A query of the config's own, and the highest value its first number may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// The built-in query of the failed-request rate: requests and failures of every role, so one
/// answer holds the slot's.
pub const FAILED_REQUESTS_QUERY: &str =
    "AppRequests | summarize Requests = count(), Failed = countif(Success == false) by AppRoleName";

/// The role name Application Insights gives a slot's requests on App Service: the app's name for
/// production, `<app>-<slot>` for a slot (from the slot's host name).
pub fn role_name(app: &str, slot: &SlotName) -> String {
    if slot.is_production() {
        app.to_owned()
    } else {
        format!("{app}-{slot}")
    }
}

/// A query's answer: its first table's column names and rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogTable {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// Judges the built-in query's answer for `role`: too few logged requests fail it like too few
/// metrics do; a role with no row has logged none.
pub fn judge_failed_requests(
    table: &LogTable,
    role: &str,
    min_requests: u64,
    max_percent: f64,
) -> Finding {
    let column = |name: &str| table.columns.iter().position(|c| c == name);
    let row = match (column("AppRoleName"), column("Requests"), column("Failed")) {
        (Some(r), Some(n), Some(f)) => table
            .rows
            .iter()
            .find(|row| row.get(r).and_then(|v| v.as_str()) == Some(role))
            .map(|row| {
                let count = |i: usize| {
                    row.get(i)
                        .and_then(serde_json::Value::as_f64)
                        .unwrap_or(0.0)
                };
                (count(n) as u64, count(f) as u64)
            })
            .unwrap_or((0, 0)),
        _ => {
            return Finding {
                rule: "logs.failedRequestRate",
                passed: false,
                detail: "the answer lacks the AppRoleName, Requests and Failed columns".to_owned(),
            };
        }
    };
    let (requests, failed) = row;
    if requests < min_requests {
        return Finding {
            rule: "logs.failedRequestRate",
            passed: false,
            detail: format!(
                "{requests} request(s) of role {role} logged, fewer than the {min_requests} needed"
            ),
        };
    }
    let rate = failed as f64 * 100.0 / requests as f64;
    Finding {
        rule: "logs.failedRequestRate",
        passed: within(rate, max_percent),
        detail: format!(
            "{failed} of {requests} logged request(s) of role {role} failed = {rate:.2}% {} {max_percent:.2}%",
            if within(rate, max_percent) { "<=" } else { ">" }
        ),
    }
}

/// Judges a query of the config's own: its first row's first number against `max`; an answer
/// with no number is missing data, and fails.
pub fn judge_query(table: &LogTable, max: f64) -> Finding {
    let value = table
        .rows
        .first()
        .and_then(|row| row.iter().find_map(serde_json::Value::as_f64));
    match value {
        Some(v) => Finding {
            rule: "logs.query",
            passed: within(v, max),
            detail: format!(
                "the query returned {v} {} {max}",
                if within(v, max) { "<=" } else { ">" }
            ),
        },
        None => Finding {
            rule: "logs.query",
            passed: false,
            detail: format!(
                "the query returned no number ({} row(s)): nothing to compare with {max}",
                table.rows.len()
            ),
        },
    }
}

// The percentages are finite: the config refuses anything that is not a number with `%`.
impl Eq for Analysis {}

impl From<&slot_release_config::Analysis> for Analysis {
    fn from(a: &slot_release_config::Analysis) -> Self {
        Analysis {
            window: a.window.into(),
            min_requests: a.min_requests,
            max_http5xx_percent: a.max_http5xx_rate.map(|p| p.value()),
            max_average_response_ms: a
                .max_average_response_time
                .map(|d| u64::try_from(Duration::from(d).as_millis()).unwrap_or(u64::MAX)),
            baseline_margin_percent: a.baseline.as_ref().map(|b| b.margin.value()),
            logs: a.logs.as_ref().map(|l| LogsAnalysis {
                workspace: l.workspace.clone(),
                max_failed_percent: l.max_failed_request_rate.map(|p| p.value()),
                query: l.query.clone(),
                max: l.max,
            }),
        }
    }
}

/// What a slot served over a span, from its metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Traffic {
    /// `Requests`, totalled.
    pub requests: u64,
    /// `Http5xx`, totalled.
    pub http5xx: u64,
    /// `HttpResponseTime` totalled (seconds) and its sample count: their quotient is the average.
    pub response_time_total_s: f64,
    pub response_time_samples: u64,
}

impl Traffic {
    /// The 5xx share of requests in percent; `None` without requests.
    pub fn http5xx_percent(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.http5xx as f64 * 100.0 / self.requests as f64)
    }

    /// The average response time in milliseconds; `None` without a sample.
    pub fn average_response_ms(&self) -> Option<f64> {
        (self.response_time_samples > 0)
            .then(|| self.response_time_total_s * 1000.0 / self.response_time_samples as f64)
    }
}

/// One judged rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// `requests`, `http5xxRate`, `averageResponseTime`, `baseline`, `logs.failedRequestRate` or
    /// `logs.query`.
    pub rule: &'static str,
    pub passed: bool,
    /// The numbers it used, e.g. `5xx 21 of 100 requests = 21.00% > 1.00%`.
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed { "pass" } else { "FAIL" };
        write!(f, "{} {verdict}: {}", self.rule, self.detail)
    }
}

/// The analysis's decision with the numbers it used.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub passed: bool,
    /// The slot's traffic.
    pub slot: Traffic,
    /// Production's, when the analysis compares with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Traffic>,
    pub findings: Vec<Finding>,
}

impl Verdict {
    /// The failed findings, joined, for the error.
    pub fn failures(&self) -> String {
        let failed: Vec<String> = self
            .findings
            .iter()
            .filter(|f| !f.passed)
            .map(|f| format!("{}: {}", f.rule, f.detail))
            .collect();
        failed.join("; ")
    }
}

/// Judges `slot`'s traffic (and `baseline`, production's over the same span, when the analysis
/// compares) against `analysis`. Too few requests fails the whole analysis: the rates of an idle
/// slot say nothing, so it cannot pass by having served nothing.
pub fn evaluate(analysis: &Analysis, slot: &Traffic, baseline: Option<&Traffic>) -> Verdict {
    let mut findings = Vec::new();
    let enough = slot.requests >= analysis.min_requests;
    findings.push(Finding {
        rule: "requests",
        passed: enough,
        detail: format!(
            "{} request(s) {} the {} needed",
            slot.requests,
            if enough { "meet" } else { "are fewer than" },
            analysis.min_requests
        ),
    });
    let rate = slot.http5xx_percent();
    if let Some(max) = analysis.max_http5xx_percent {
        findings.push(match rate.filter(|_| enough) {
            Some(rate) => Finding {
                rule: "http5xxRate",
                passed: within(rate, max),
                detail: format!(
                    "{} of {} request(s) answered 5xx = {rate:.2}% {} {max:.2}%",
                    slot.http5xx,
                    slot.requests,
                    if within(rate, max) { "<=" } else { ">" }
                ),
            },
            None => not_judged("http5xxRate"),
        });
    }
    if let Some(max) = analysis.max_average_response_ms {
        let max = max as f64;
        findings.push(match slot.average_response_ms().filter(|_| enough) {
            Some(avg) => Finding {
                rule: "averageResponseTime",
                passed: within(avg, max),
                detail: format!(
                    "{avg:.0} ms average over {} request(s) {} {max:.0} ms",
                    slot.response_time_samples,
                    if within(avg, max) { "<=" } else { ">" }
                ),
            },
            None => not_judged("averageResponseTime"),
        });
    }
    if let Some(margin) = analysis.baseline_margin_percent {
        findings.push(match (rate.filter(|_| enough), baseline) {
            (Some(rate), Some(base)) => {
                // Production with too few requests has no rate worth comparing: it counts as 0 %,
                // so the slot must then stay within the margin on its own.
                let (base_rate, base_note) = match base.http5xx_percent() {
                    Some(r) if base.requests >= analysis.min_requests => (r, String::new()),
                    _ => (
                        0.0,
                        format!(
                            " (production served {} request(s), fewer than {}: counted as 0%)",
                            base.requests, analysis.min_requests
                        ),
                    ),
                };
                let limit = base_rate + margin;
                Finding {
                    rule: "baseline",
                    passed: within(rate, limit),
                    detail: format!(
                        "slot {rate:.2}% vs production {base_rate:.2}% ({} of {}){base_note}: {} production + {margin:.2}% = {limit:.2}%",
                        base.http5xx,
                        base.requests,
                        if within(rate, limit) { "within" } else { "above" }
                    ),
                }
            }
            (Some(_), None) => Finding {
                rule: "baseline",
                passed: false,
                detail: "production's metrics were not read, so there is nothing to compare with"
                    .to_owned(),
            },
            (None, _) => not_judged("baseline"),
        });
    }
    Verdict {
        passed: findings.iter().all(|f| f.passed),
        slot: *slot,
        baseline: baseline.copied(),
        findings,
    }
}

/// `value <= max`, forgiving the last bits of a float: an average computed from Azure's totals lands
/// a hair off the threshold it equals (800 ms as 0.8 s × 100 / 100 is 800.000…1).
fn within(value: f64, max: f64) -> bool {
    value <= max + 1e-9 * max.abs().max(1.0)
}

fn not_judged(rule: &'static str) -> Finding {
    Finding {
        rule,
        passed: false,
        detail: "not judged: too few requests in the window".to_owned(),
    }
}

/// The metrics the analysis reads, in one Metrics - List request per slot.
pub const METRICS: [&str; 3] = ["Requests", "Http5xx", "HttpResponseTime"];

/// Waits until `window` has passed since `started_unix` (the gate's start), reads `slot`'s traffic
/// since then (and production's, for a baseline), and judges it. Every finding is logged with its
/// numbers; a failed verdict is [`Error::AnalysisFailed`].
pub async fn run(
    port: &dyn Port,
    app: &str,
    slot: &SlotName,
    analysis: &Analysis,
    started_unix: i64,
    cancel: &CancellationToken,
    log: &Log,
) -> Result<Verdict, Error> {
    let window_secs = i64::try_from(analysis.window.as_secs().max(1)).unwrap_or(i64::MAX);
    let ends = started_unix.saturating_add(window_secs);
    let wait = ends.saturating_sub(port.now_unix());
    log.info(&format!(
        "Analysing {slot}'s traffic over {} from Azure Monitor (Requests, Http5xx, HttpResponseTime){}",
        humantime::format_duration(analysis.window),
        if wait > 0 {
            format!("; the window ends in {wait} s")
        } else {
            String::new()
        }
    ));
    if wait > 0 {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(wait.unsigned_abs())) => {}
            () = cancel.cancelled() => return Err(Error::Cancelled {
                step: None,
                during: Some(format!("the traffic analysis of {slot}")),
            }),
        }
    }
    let to = port.now_unix().max(ends);
    let traffic = port.slot_traffic(slot, started_unix, to, cancel).await?;
    let production = SlotName::production();
    let baseline = match analysis.baseline_margin_percent {
        Some(_) if *slot != production => Some(
            port.slot_traffic(&production, started_unix, to, cancel)
                .await?,
        ),
        _ => None,
    };
    let mut verdict = evaluate(analysis, &traffic, baseline.as_ref());
    if let Some(logs) = &analysis.logs {
        if let Some(max) = logs.max_failed_percent {
            let table = port
                .query_logs(
                    &logs.workspace,
                    FAILED_REQUESTS_QUERY,
                    started_unix,
                    to,
                    cancel,
                )
                .await?;
            let role = role_name(app, slot);
            verdict.findings.push(judge_failed_requests(
                &table,
                &role,
                analysis.min_requests,
                max,
            ));
        }
        if let (Some(query), Some(max)) = (&logs.query, logs.max) {
            let table = port
                .query_logs(&logs.workspace, query, started_unix, to, cancel)
                .await?;
            verdict.findings.push(judge_query(&table, max));
        }
        verdict.passed = verdict.findings.iter().all(|f| f.passed);
    }
    for finding in &verdict.findings {
        log.info(&format!("analysis of {slot}: {finding}"));
    }
    if verdict.passed {
        log.info(&format!("Traffic analysis of {slot} passed"));
        Ok(verdict)
    } else {
        Err(Error::AnalysisFailed {
            slot: slot.to_string(),
            verdict: Box::new(verdict),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis() -> Analysis {
        Analysis {
            window: Duration::from_secs(60),
            min_requests: 50,
            max_http5xx_percent: Some(2.0),
            max_average_response_ms: Some(800),
            baseline_margin_percent: Some(1.0),
            logs: None,
        }
    }

    fn traffic(requests: u64, http5xx: u64, avg_ms: f64) -> Traffic {
        Traffic {
            requests,
            http5xx,
            response_time_total_s: avg_ms / 1000.0 * requests as f64,
            response_time_samples: requests,
        }
    }

    fn rules(v: &Verdict) -> Vec<(&'static str, bool)> {
        v.findings.iter().map(|f| (f.rule, f.passed)).collect()
    }

    #[test]
    fn thresholds_hold_at_their_edge_and_fail_just_above() {
        let base = traffic(1000, 10, 100.0);
        let v = evaluate(&analysis(), &traffic(100, 2, 800.0), Some(&base));
        assert!(v.passed, "{v:#?}");
        let v = evaluate(&analysis(), &traffic(100, 3, 800.0), Some(&base));
        assert_eq!(
            rules(&v),
            [
                ("requests", true),
                ("http5xxRate", false),
                ("averageResponseTime", true),
                ("baseline", false)
            ]
        );
        assert!(
            v.failures()
                .contains("3 of 100 request(s) answered 5xx = 3.00% > 2.00%")
        );
        let v = evaluate(&analysis(), &traffic(100, 0, 801.0), Some(&base));
        assert_eq!(rules(&v)[2], ("averageResponseTime", false));
        assert!(!v.passed);
    }

    #[test]
    fn the_baseline_margin_is_added_to_production_s_rate() {
        let mut a = analysis();
        a.max_http5xx_percent = None;
        // Production at 5 %: the slot may reach 6 %, not more.
        let base = traffic(200, 10, 100.0);
        assert!(evaluate(&a, &traffic(100, 6, 100.0), Some(&base)).passed);
        let v = evaluate(&a, &traffic(100, 7, 100.0), Some(&base));
        assert!(!v.passed);
        assert!(
            v.failures()
                .contains("slot 7.00% vs production 5.00% (10 of 200)"),
            "{}",
            v.failures()
        );
        // An idle production counts as 0 %: the slot must stay within the margin by itself.
        let idle = traffic(3, 3, 100.0);
        let v = evaluate(&a, &traffic(100, 2, 100.0), Some(&idle));
        assert!(!v.passed);
        assert!(v.failures().contains("counted as 0%"), "{}", v.failures());
        assert!(evaluate(&a, &traffic(100, 1, 100.0), Some(&idle)).passed);
    }

    #[test]
    fn too_few_requests_fail_every_rule_instead_of_passing_them_vacuously() {
        let v = evaluate(
            &analysis(),
            &traffic(49, 0, 10.0),
            Some(&traffic(1000, 0, 1.0)),
        );
        assert!(!v.passed);
        assert_eq!(
            rules(&v),
            [
                ("requests", false),
                ("http5xxRate", false),
                ("averageResponseTime", false),
                ("baseline", false)
            ]
        );
        assert!(
            v.failures()
                .starts_with("requests: 49 request(s) are fewer than the 50 needed")
        );
        assert!(
            evaluate(
                &analysis(),
                &traffic(50, 0, 10.0),
                Some(&traffic(1000, 0, 1.0))
            )
            .passed
        );
    }

    #[test]
    fn missing_data_fails_the_rule_that_needs_it() {
        let mut a = analysis();
        a.min_requests = 1;
        // Requests counted but no response-time sample (Azure left the aggregation out).
        let mut t = traffic(10, 0, 0.0);
        t.response_time_samples = 0;
        let v = evaluate(&a, &t, Some(&traffic(10, 0, 1.0)));
        assert_eq!(rules(&v)[2], ("averageResponseTime", false));
        // A baseline asked for but not read.
        let v = evaluate(&a, &traffic(10, 0, 1.0), None);
        assert_eq!(rules(&v)[3], ("baseline", false));
        // Nothing at all.
        let v = evaluate(&a, &Traffic::default(), None);
        assert!(v.findings.iter().all(|f| !f.passed), "{v:#?}");
    }

    #[test]
    fn a_rule_not_configured_is_not_judged() {
        let a = Analysis {
            max_average_response_ms: None,
            baseline_margin_percent: None,
            ..analysis()
        };
        let v = evaluate(&a, &traffic(60, 1, 5000.0), None);
        assert_eq!(rules(&v), [("requests", true), ("http5xxRate", true)]);
        assert!(v.passed);
    }

    fn table(rows: &[(&str, u64, u64)]) -> LogTable {
        LogTable {
            columns: vec!["AppRoleName".into(), "Requests".into(), "Failed".into()],
            rows: rows
                .iter()
                .map(|(r, n, f)| vec![(*r).into(), (*n).into(), (*f).into()])
                .collect(),
        }
    }

    #[test]
    fn the_logged_failure_rate_is_the_slot_s_role_at_its_edge() {
        let t = table(&[("web", 1000, 500), ("web-staging", 100, 2)]);
        let f = judge_failed_requests(&t, "web-staging", 50, 2.0);
        assert!(f.passed, "{f}");
        assert_eq!(
            f.detail,
            "2 of 100 logged request(s) of role web-staging failed = 2.00% <= 2.00%"
        );
        let t = table(&[("web-staging", 100, 3)]);
        assert!(!judge_failed_requests(&t, "web-staging", 50, 2.0).passed);
        // Too few logged, or none (no row for the role), or an answer of another shape: fails.
        let t = table(&[("web-staging", 49, 0)]);
        assert!(!judge_failed_requests(&t, "web-staging", 50, 2.0).passed);
        assert!(!judge_failed_requests(&table(&[("web", 900, 0)]), "web-staging", 50, 2.0).passed);
        let odd = LogTable {
            columns: vec!["count_".into()],
            rows: vec![vec![5.into()]],
        };
        assert!(
            judge_failed_requests(&odd, "web-staging", 1, 2.0)
                .detail
                .contains("lacks")
        );
        assert_eq!(role_name("web", &SlotName::production()), "web");
        assert_eq!(
            role_name("web", &SlotName::new("staging").unwrap()),
            "web-staging"
        );
    }

    #[test]
    fn a_query_of_one_s_own_compares_its_first_number_and_fails_on_none() {
        let one = |v: serde_json::Value| LogTable {
            columns: vec!["Name".into(), "n".into()],
            rows: vec![vec!["x".into(), v]],
        };
        assert!(judge_query(&one(3.into()), 3.0).passed);
        assert!(!judge_query(&one(4.into()), 3.0).passed);
        assert!(!judge_query(&LogTable::default(), 3.0).passed);
        assert!(!judge_query(&one("many".into()), 3.0).passed);
    }
}
