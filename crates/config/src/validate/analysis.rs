//! Checks on a gate's `analysis:`: a window to judge, something to judge in it, shares that are
//! shares, and a baseline only where production is another slot.

use super::Checker;
use crate::analysis::{Analysis, Percent};

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
    {
        c.error_key(
            base,
            "analysis-without-threshold",
            "the analysis has no threshold, so it would judge nothing but the request count".into(),
            "add `maxHttp5xxRate` (e.g. `1%`), `maxAverageResponseTime` (e.g. `800ms`) or \
             `baseline: {margin: 1%}`"
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
