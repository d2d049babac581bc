//! Checks on a gate's `analysis:`: a window to judge, something to judge in it, shares that are
//! shares, and a baseline only where production is another slot.

use super::Checker;
use crate::analysis::{Analysis, LogsQuery, Percent};

/// Where a gate's analysis runs: a gate on a non-production slot may compare it with production;
/// the watch (and a rollback's gate) judge production itself, which cannot be its own baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Judged {
    /// A slot other than production (the staging gate).
    Slot,
    /// Production (the watch, the rollback's gate).
    Production,
}

/// Checks one gate's `analysis` at `base` (the path of the `analysis` key).
pub(crate) fn check_analysis(base: &str, analysis: &Analysis, judged: Judged, c: &mut Checker<'_>) {
    if analysis.window.is_zero() {
        c.error(
            &format!("{base}.window"),
            "duration-not-positive",
            "this duration is zero".into(),
            "give the window the traffic is judged over, e.g. `5m` (Azure Monitor counts whole \
             minutes)"
                .into(),
        );
    }
    if analysis.min_requests == 0 {
        c.error(
            &format!("{base}.minRequests"),
            "min-requests-zero",
            "`minRequests` is 0, so a slot that served nothing would pass the analysis".into(),
            "set the fewest requests the window must hold to judge the slot, e.g. 50, or leave \
             it out for the default of 20"
                .into(),
        );
    }
    if analysis.max_http5xx_rate.is_none()
        && analysis.max_average_response_time.is_none()
        && analysis.baseline.is_none()
        && analysis.logs.is_none()
    {
        c.error_key(
            base,
            "analysis-without-threshold",
            "the analysis has no threshold, so it would judge nothing but the request count".into(),
            "add `maxHttp5xxRate` (e.g. `1%`), `maxAverageResponseTime` (e.g. `800ms`), \
             `baseline: {margin: 1%}` or a `logs` query"
                .into(),
        );
    }
    if let Some(rate) = analysis.max_http5xx_rate {
        share(&format!("{base}.maxHttp5xxRate"), rate, c);
    }
    if analysis
        .max_average_response_time
        .is_some_and(|d| d.is_zero())
    {
        c.error(
            &format!("{base}.maxAverageResponseTime"),
            "duration-not-positive",
            "this duration is zero, so every request would be too slow".into(),
            "give the highest average response time, e.g. `800ms`".into(),
        );
    }
    if let Some(logs) = &analysis.logs {
        check_logs(&format!("{base}.logs"), logs, c);
    }
    if let Some(baseline) = &analysis.baseline {
        share(&format!("{base}.baseline.margin"), baseline.margin, c);
        if judged == Judged::Production {
            c.error_key(
                &format!("{base}.baseline"),
                "baseline-of-production",
                "this gate judges production, which cannot be compared with itself".into(),
                "remove `baseline` here and use `maxHttp5xxRate`; compare with production in the \
                 staging stage's `healthCheck.analysis`"
                    .into(),
            );
        }
    }
}

fn check_logs(base: &str, logs: &LogsQuery, c: &mut Checker<'_>) {
    if !logs.workspace_is_guid() {
        c.error(
            &format!("{base}.workspace"),
            "workspace-not-guid",
            format!("`{}` is not a Log Analytics workspace ID", logs.workspace),
            "write the workspace ID, a GUID such as `6f1c3f7e-2b1a-4c59-9a51-0d5b6c7e8f90` \
             (the workspace's Overview in the portal, or `az monitor log-analytics workspace show \
             --query customerId`), not its name or resource ID"
                .into(),
        );
    }
    if let Some(rate) = logs.max_failed_request_rate {
        share(&format!("{base}.maxFailedRequestRate"), rate, c);
    }
    match (&logs.query, logs.max) {
        (Some(_), None) => c.error_key(
            &format!("{base}.query"),
            "query-without-max",
            "the query has no `max` to compare its result with".into(),
            "add `max:` (the highest value the query's first number may have)".into(),
        ),
        (None, Some(_)) => c.error_key(
            &format!("{base}.max"),
            "max-without-query",
            "`max` is set but there is no `query` whose result it bounds".into(),
            "add `query:` (KQL returning a number), or remove `max`".into(),
        ),
        (None, None) if logs.max_failed_request_rate.is_none() => c.error_key(
            base,
            "logs-without-threshold",
            "the logs query judges nothing".into(),
            "add `maxFailedRequestRate` (e.g. `1%`), or `query` with `max`".into(),
        ),
        _ => {}
    }
}

fn share(path: &str, value: Percent, c: &mut Checker<'_>) {
    if value.value() > 100.0 {
        c.error(
            path,
            "percent-above-100",
            format!("{value} is more than every request"),
            "write a share between `0%` and `100%`, e.g. `1%`".into(),
        );
    }
}
