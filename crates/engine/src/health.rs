//! Health gates: HTTP(S) probes of a slot until N consecutive successes (the gate), and the post-swap watch
//! of production that fails fast after a number of failures.
//!
//! Both honour a deadline and a cancellation token, log one concise line per probe, tolerate transient
//! connection errors (they count as failed probes, never as a fatal error), and return a structured report
//! for the release record, also when they fail.

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use slot_release_pipelines::Log;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::Error;

/// How many probes a report keeps one by one; counters cover the rest.
const REPORT_PROBES_KEPT: usize = 200;

/// What is probed: a slot's base URL (scheme, host, optional port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    /// E.g. `https://shop-staging.azurewebsites.net/`.
    pub base_url: url::Url,
    /// How the log names it, e.g. `staging`.
    pub label: String,
}

impl ProbeTarget {
    /// The URL probed for `path` (always relative to the base, so a path cannot point at another host).
    pub fn url_for(&self, path: &str) -> Result<url::Url, Error> {
        let invalid = |reason: String| Error::InvalidHealthCheck {
            target: self.base_url.to_string(),
            reason,
        };
        if !path.starts_with('/') || path.starts_with("//") {
            return Err(invalid(format!(
                "path {path:?} must start with a single '/'"
            )));
        }
        if !matches!(self.base_url.scheme(), "http" | "https") || self.base_url.host_str().is_none()
        {
            return Err(invalid("base URL must be http(s) with a host".to_owned()));
        }
        let mut url = self.base_url.clone();
        let (p, q) = path
            .split_once('?')
            .map_or((path, None), |(p, q)| (p, Some(q)));
        url.set_path(p);
        url.set_query(q);
        Ok(url)
    }
}

/// What is probed and which answer is healthy: one type from the config through the plan to the probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// The path probed, e.g. `/health`.
    pub path: String,
    /// Statuses that count as healthy.
    pub statuses: Vec<u16>,
    /// Text the body must contain to count as healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// Pause between the starts of two probes (milliseconds in the plan: a sub-second interval is
    /// shown and run as it is).
    #[serde(rename = "intervalMs", with = "millis_serde")]
    #[schemars(with = "u64")]
    pub interval: Duration,
    /// Deadline for one probe (connect, headers and body).
    #[serde(rename = "probeTimeoutMs", with = "millis_serde")]
    #[schemars(with = "u64")]
    pub probe_timeout: Duration,
    /// The function key the probes send (a function app's function with `authLevel: function`): which
    /// one, never its value, which is read when the probes start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub function_key: Option<slot_release_config::FunctionKey>,
    /// The traffic analysis run after the probes pass (the config's `analysis`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<crate::analysis::Analysis>,
}

impl HealthCheck {
    /// A check of `path` with the product defaults: status 200, every 5 s, 10 s per probe.
    pub fn new(path: impl Into<String>) -> Self {
        HealthCheck {
            path: path.into(),
            statuses: vec![200],
            body_contains: None,
            interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(10),
            function_key: None,
            analysis: None,
        }
    }
}

/// A health gate: probe a slot until `successes_needed` consecutive healthy answers, within `timeout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    /// What is probed.
    #[serde(flatten)]
    pub check: HealthCheck,
    /// Consecutive healthy probes that pass the gate.
    pub successes_needed: u32,
    /// Deadline for passing the gate.
    #[serde(rename = "timeoutMs", with = "millis_serde")]
    #[schemars(with = "u64")]
    pub timeout: Duration,
    /// Consecutive definite failures (see [`ProbeOutcome::is_definite_failure`]) that fail the gate
    /// before its deadline.
    #[serde(default = "default_fail_after")]
    pub fail_after: u32,
}

/// The product default of [`Gate::fail_after`], also for a plan written before the field existed.
pub const DEFAULT_FAIL_AFTER: u32 = 5;

fn default_fail_after() -> u32 {
    DEFAULT_FAIL_AFTER
}

impl Gate {
    /// A gate on `path` with the product defaults: 3 successes within 5 min (see [`HealthCheck::new`]).
    pub fn new(path: impl Into<String>) -> Self {
        Gate {
            check: HealthCheck::new(path),
            successes_needed: 3,
            timeout: Duration::from_secs(300),
            fail_after: DEFAULT_FAIL_AFTER,
        }
    }
}

/// The watch of production after a swap: probe for the whole `window`; production is unhealthy at the
/// `unhealthy_after`-th failed probe (not necessarily consecutive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Watch {
    /// What is probed.
    #[serde(flatten)]
    pub check: HealthCheck,
    /// How long production is watched.
    #[serde(rename = "windowMs", with = "millis_serde")]
    #[schemars(with = "u64")]
    pub window: Duration,
    /// Failed probes in the window that make production unhealthy (the config's `maxFailures`).
    #[serde(rename = "unhealthyAfterFailures")]
    pub unhealthy_after: u32,
}

/// Durations as whole milliseconds in the plan's JSON.
pub(crate) mod millis_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(super::millis(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// The outcome of one probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ProbeOutcome {
    /// Expected status and body.
    Healthy { status: u16 },
    /// A status not in the expected list.
    UnexpectedStatus { status: u16 },
    /// Expected status, but the body lacks the expected text.
    BodyMismatch { status: u16 },
    /// Expected status, but the body is App Service's default page: no app is running.
    DefaultPage { status: u16 },
    /// Connection refused or reset, DNS, TLS, or the body broke off: tolerated and retried.
    ConnectionError { message: String },
    /// No complete answer within the probe's deadline.
    TimedOut,
}

impl ProbeOutcome {
    /// Whether the probe counts as healthy.
    pub fn is_healthy(&self) -> bool {
        matches!(self, Self::Healthy { .. })
    }

    /// Whether the answer is one that waiting will not change: the app (or the platform, with its
    /// default page) answered, and not with what a starting app gives. 502, 503 and 504 are App
    /// Service's front end while the app starts (and an app's own "not ready"), 408 and 429 ask to come
    /// back, a body without the expected text is a readiness page saying "starting", and a connection
    /// error or a timeout is an app still binding its port: none of those count.
    pub fn is_definite_failure(&self) -> bool {
        match self {
            Self::UnexpectedStatus { status } => {
                !matches!(status, 408 | 429 | 502..=504) && *status >= 400
            }
            Self::DefaultPage { .. } => true,
            Self::Healthy { .. }
            | Self::BodyMismatch { .. }
            | Self::ConnectionError { .. }
            | Self::TimedOut => false,
        }
    }
}

impl fmt::Display for ProbeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Healthy { status } => write!(f, "{status} healthy"),
            Self::UnexpectedStatus { status } => write!(f, "{status} unexpected status"),
            Self::BodyMismatch { status } => write!(f, "{status} body lacks the expected text"),
            Self::DefaultPage { status } => write!(
                f,
                "{status} App Service's default page answered: the app did not start; check the startup command"
            ),
            Self::ConnectionError { message } => write!(f, "connection error: {message}"),
            Self::TimedOut => f.write_str("timed out"),
        }
    }
}

/// One probe, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeRecord {
    /// 1-based sequence number.
    pub number: u32,
    /// When it started, from the start of the gate or watch, in milliseconds.
    pub started_ms: u64,
    /// How long it took, in milliseconds.
    pub latency_ms: u64,
    pub outcome: ProbeOutcome,
}

/// The report of a health gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GateReport {
    pub url: String,
    pub passed: bool,
    pub successes_required: u32,
    pub probes_total: u32,
    /// Healthy probes (in any position).
    pub successes: u32,
    /// Unhealthy probes, connection errors included.
    pub failures: u32,
    /// Connection errors and timeouts among the failures.
    pub transient_errors: u32,
    pub duration_ms: u64,
    /// The first probes (up to 200) one by one.
    pub probes: Vec<ProbeRecord>,
    /// The last probe, also when it is beyond the kept list.
    pub last: Option<ProbeRecord>,
}

impl GateReport {
    pub(crate) fn last_outcome(&self) -> String {
        self.last
            .as_ref()
            .map_or_else(|| "no probe".to_owned(), |p| p.outcome.to_string())
    }
}

/// The report of a production watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchReport {
    pub url: String,
    pub healthy: bool,
    pub window_ms: u64,
    pub max_failures: u32,
    pub probes_total: u32,
    pub successes: u32,
    pub failures: u32,
    pub transient_errors: u32,
    pub duration_ms: u64,
    pub probes: Vec<ProbeRecord>,
    pub last: Option<ProbeRecord>,
}

impl WatchReport {
    pub(crate) fn last_outcome(&self) -> String {
        self.last
            .as_ref()
            .map_or_else(|| "no probe".to_owned(), |p| p.outcome.to_string())
    }
}

/// Counters shared by the gate and the watch.
#[derive(Default)]
struct Tally {
    probes_total: u32,
    successes: u32,
    failures: u32,
    transient_errors: u32,
    probes: Vec<ProbeRecord>,
    last: Option<ProbeRecord>,
}

impl Tally {
    fn add(&mut self, record: ProbeRecord) {
        self.probes_total += 1;
        if record.outcome.is_healthy() {
            self.successes += 1;
        } else {
            self.failures += 1;
        }
        if matches!(
            record.outcome,
            ProbeOutcome::ConnectionError { .. } | ProbeOutcome::TimedOut
        ) {
            self.transient_errors += 1;
        }
        if self.probes.len() < REPORT_PROBES_KEPT {
            self.probes.push(record.clone());
        }
        self.last = Some(record);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn validate(target: &ProbeTarget, check: &HealthCheck) -> Result<url::Url, Error> {
    let invalid = |reason: &str| Error::InvalidHealthCheck {
        target: target.base_url.to_string(),
        reason: reason.to_owned(),
    };
    if check.statuses.is_empty() {
        return Err(invalid("no expected status"));
    }
    if check.interval.is_zero() || check.probe_timeout.is_zero() {
        return Err(invalid("interval and request timeout must be positive"));
    }
    target.url_for(&check.path)
}

/// Why a slot's app is down, as the platform's logs say: what happened to its process and the last
/// lines it printed (untrusted text: it is logged through the neutraliser and masked like all output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppFailure {
    /// E.g. `the startup command exited with status 1 after 0.4 s`.
    pub summary: String,
    /// The app's last lines, oldest first.
    pub log_tail: Vec<String>,
}

impl AppFailure {
    /// The summary with the app's last line, e.g. `the startup command exited with status 1 after
    /// 0.4 s: ModuleNotFoundError: No module named 'gunicorn'`.
    pub fn headline(&self) -> String {
        match self.log_tail.last() {
            Some(line) => format!("{}: {}", self.summary, line.trim()),
            None => self.summary.clone(),
        }
    }
}

impl fmt::Display for AppFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline())
    }
}

/// Asks whether the probed app has crashed (its process exited, or never answered), so a gate stops
/// at once instead of probing an app that cannot answer until the timeout.
#[async_trait::async_trait]
pub trait CrashCheck: Send + Sync {
    /// `Some` when the app's latest start failed; `None` when it runs, starts, or nobody knows.
    async fn crashed(&self) -> Option<AppFailure>;
}

/// Probes `target` until `gate.successes_needed` consecutive healthy answers, or fails at `gate.timeout`.
///
/// It also gives up early when the remaining time cannot fit the probes still needed, so a hopeless gate
/// does not wait out its whole timeout.
pub async fn gate(
    client: &dyn Prober,
    target: &ProbeTarget,
    gate: &Gate,
    cancel: &CancellationToken,
    log: &Log,
) -> Result<GateReport, Error> {
    gate_with(client, target, gate, None, cancel, log).await
}

/// Whether a probe's outcome may mean the app is down (App Service answers 502/503 for an app whose
/// process is gone, and a connection can fail too), so its logs are worth a look.
///
/// This is wider than [`ProbeOutcome::is_definite_failure`] on purpose, and the two must move together:
/// a 502/503, a refused connection or a timeout is no failure by itself (an app still starting answers
/// so), but it is the moment to ask whether the process exited. An exited process turns those same
/// outcomes into a definite failure through [`Error::AppCrashed`]; a live one leaves them to the gate's
/// deadline. An outcome that is a definite failure but not "may be down" (a 4xx) never needs the logs.
fn may_be_down(outcome: &ProbeOutcome) -> bool {
    match outcome {
        ProbeOutcome::UnexpectedStatus { status } => *status >= 500,
        ProbeOutcome::ConnectionError { .. }
        | ProbeOutcome::TimedOut
        | ProbeOutcome::DefaultPage { .. } => true,
        ProbeOutcome::Healthy { .. } | ProbeOutcome::BodyMismatch { .. } => false,
    }
}

/// [`gate`], and after each probe that may mean the app is down, asks `crash` whether it crashed: a
/// crashed app fails the gate at once, with what happened and the app's last lines.
pub async fn gate_with(
    client: &dyn Prober,
    target: &ProbeTarget,
    gate: &Gate,
    crash: Option<&dyn CrashCheck>,
    cancel: &CancellationToken,
    log: &Log,
) -> Result<GateReport, Error> {
    let check = &gate.check;
    let url = validate(target, check)?;
    let required = gate.successes_needed.max(1);
    let started = Instant::now();
    let deadline = started + gate.timeout;
    let mut tally = Tally::default();
    let mut streak = 0u32;
    let mut definite = 0u32;
    let fail_after = gate.fail_after.max(1);
    log.info(&format!(
        "Health gate for {}: {url}, {required} consecutive healthy probe(s) within {}; fails after {fail_after} consecutive definite failure(s)",
        target.label,
        humantime::format_duration(gate.timeout)
    ));
    let report = |tally: Tally, passed: bool| GateReport {
        url: url.to_string(),
        passed,
        successes_required: required,
        probes_total: tally.probes_total,
        successes: tally.successes,
        failures: tally.failures,
        transient_errors: tally.transient_errors,
        duration_ms: millis(started.elapsed()),
        probes: tally.probes,
        last: tally.last,
    };
    loop {
        let probe_start = Instant::now();
        let remaining = deadline.saturating_duration_since(probe_start);
        let per_probe = check
            .probe_timeout
            .min(remaining.max(Duration::from_millis(1)));
        let record = tokio::select! {
            r = probe(client, &url, check, per_probe, tally.probes_total + 1, started) => r,
            () = cancel.cancelled() => {
                log.info(&format!("Health gate for {} cancelled", target.label));
                return Err(Error::GateCancelled { report: Box::new(report(tally, false)) });
            }
        };
        streak = if record.outcome.is_healthy() {
            streak + 1
        } else {
            0
        };
        definite = if record.outcome.is_definite_failure() {
            definite + 1
        } else {
            0
        };
        log_probe(log, &target.label, &record, Some((streak, required)));
        let down = may_be_down(&record.outcome);
        tally.add(record);
        if down && let Some(crash) = crash {
            let crashed = tokio::select! {
                c = crash.crashed() => c,
                () = cancel.cancelled() => {
                    log.info(&format!("Health gate for {} cancelled", target.label));
                    return Err(Error::GateCancelled { report: Box::new(report(tally, false)) });
                }
            };
            if let Some(failure) = crashed {
                log_failure(log, &target.label, &failure);
                return Err(Error::AppCrashed {
                    report: Box::new(report(tally, false)),
                    failure: Box::new(failure),
                });
            }
        }
        if streak >= required {
            log.info(&format!(
                "Health gate for {} passed after {} probe(s) in {}",
                target.label,
                tally.probes_total,
                humantime::format_duration(round_ms(started.elapsed()))
            ));
            return Ok(report(tally, true));
        }
        if definite >= fail_after {
            log.info(&format!(
                "Health gate for {} failed early: {definite} consecutive definite failure(s)",
                target.label
            ));
            return Err(Error::GateFailedEarly {
                report: Box::new(report(tally, false)),
                consecutive: definite,
            });
        }
        let next = probe_start + check.interval;
        // The probes still needed start at least one interval apart; if the last would start after the
        // deadline, waiting on is pointless.
        let needed_after_next = u32::saturating_sub(required - streak, 1);
        if next + check.interval * needed_after_next > deadline {
            return Err(Error::GateFailed {
                report: Box::new(report(tally, false)),
                timeout: gate.timeout,
            });
        }
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = cancel.cancelled() => {
                log.info(&format!("Health gate for {} cancelled", target.label));
                return Err(Error::GateCancelled { report: Box::new(report(tally, false)) });
            }
        }
    }
}

/// Watches `target` for the whole `watch.window`, probing every `watch.check.interval`; fails as soon as
/// `watch.unhealthy_after` probes have failed.
pub async fn watch(
    client: &dyn Prober,
    target: &ProbeTarget,
    watch: &Watch,
    cancel: &CancellationToken,
    log: &Log,
) -> Result<WatchReport, Error> {
    let check = &watch.check;
    let url = validate(target, check)?;
    if watch.unhealthy_after == 0 {
        return Err(Error::InvalidHealthCheck {
            target: target.base_url.to_string(),
            reason: "max failures must be at least 1".to_owned(),
        });
    }
    let started = Instant::now();
    let end = started + watch.window;
    let mut tally = Tally::default();
    log.info(&format!(
        "Watching {} for {}: {url}, unhealthy after {} failed probe(s)",
        target.label,
        humantime::format_duration(watch.window),
        watch.unhealthy_after
    ));
    let report = |tally: Tally, healthy: bool| WatchReport {
        url: url.to_string(),
        healthy,
        window_ms: millis(watch.window),
        max_failures: watch.unhealthy_after,
        probes_total: tally.probes_total,
        successes: tally.successes,
        failures: tally.failures,
        transient_errors: tally.transient_errors,
        duration_ms: millis(started.elapsed()),
        probes: tally.probes,
        last: tally.last,
    };
    loop {
        let probe_start = Instant::now();
        // A probe may not run past the window by more than its own deadline.
        let record = tokio::select! {
            r = probe(client, &url, check, check.probe_timeout, tally.probes_total + 1, started) => r,
            () = cancel.cancelled() => {
                log.info(&format!("Watch of {} cancelled", target.label));
                return Err(Error::WatchCancelled { report: Box::new(report(tally, false)) });
            }
        };
        log_probe(log, &target.label, &record, None);
        tally.add(record);
        if tally.failures >= watch.unhealthy_after {
            log.info(&format!(
                "{} unhealthy: {} failed probe(s) of {}",
                target.label, tally.failures, tally.probes_total
            ));
            return Err(Error::Unhealthy {
                report: Box::new(report(tally, false)),
            });
        }
        // The window's end is probed too, so its last interval is watched like the others, and a window
        // shorter than the interval is probed at its start and its end.
        if probe_start >= end {
            log.info(&format!(
                "{} stayed healthy for {}: {} probe(s), {} failed",
                target.label,
                humantime::format_duration(watch.window),
                tally.probes_total,
                tally.failures
            ));
            return Ok(report(tally, true));
        }
        let next = (probe_start + check.interval).min(end);
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = cancel.cancelled() => {
                log.info(&format!("Watch of {} cancelled", target.label));
                return Err(Error::WatchCancelled { report: Box::new(report(tally, false)) });
            }
        }
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(millis(d))
}

/// The app's failure and its last lines, each through the neutraliser (the lines are the app's own
/// text; masking hides any secret in them like everywhere else).
fn log_failure(log: &Log, label: &str, failure: &AppFailure) {
    log.external(
        "health",
        &format!("the app of {label} is down: {}", failure.summary),
    );
    if !failure.log_tail.is_empty() {
        log.external("health", &format!("last lines of the app's log ({label}):"));
        for line in &failure.log_tail {
            log.external("app", &format!("  {line}"));
        }
    }
}

fn log_probe(log: &Log, label: &str, record: &ProbeRecord, streak: Option<(u32, u32)>) {
    let progress = streak.map_or_else(String::new, |(s, r)| format!(" ({s}/{r})"));
    let line = format!(
        "probe {} {label}: {} in {} ms{progress}",
        record.number, record.outcome, record.latency_ms
    );
    // The outcome may carry text from the network (error messages), so it goes through the neutraliser.
    log.external("health", &line);
}

/// One probe through `client`, bounded by `limit`.
async fn probe(
    client: &dyn Prober,
    url: &url::Url,
    check: &HealthCheck,
    limit: Duration,
    number: u32,
    origin: Instant,
) -> ProbeRecord {
    let started = Instant::now();
    let outcome = match tokio::time::timeout(limit, client.probe(url, check)).await {
        Ok(outcome) => outcome,
        Err(_) => ProbeOutcome::TimedOut,
    };
    ProbeRecord {
        number,
        started_ms: millis(started.duration_since(origin)),
        latency_ms: millis(started.elapsed()),
        outcome,
    }
}

/// What a health probe goes through: an HTTP GET in a release, an in-memory app in model tests.
#[async_trait::async_trait]
pub trait Prober: Send + Sync {
    /// One probe of `url`, judged against `check` (status, and body text when asked).
    async fn probe(&self, url: &url::Url, check: &HealthCheck) -> ProbeOutcome;
}

/// Probes go through the azure crate, which alone speaks HTTP; the engine judges the answer.
#[async_trait::async_trait]
impl Prober for slot_release_azure::PageClient {
    async fn probe(&self, url: &url::Url, check: &HealthCheck) -> ProbeOutcome {
        use slot_release_azure::PageAnswer;
        let text = check.body_contains.as_deref();
        match slot_release_azure::PageClient::probe(self, url, &check.statuses, text).await {
            PageAnswer::Refused { status } => ProbeOutcome::UnexpectedStatus { status },
            PageAnswer::Accepted {
                status,
                text_found: true,
            } => ProbeOutcome::Healthy { status },
            PageAnswer::Accepted {
                status,
                text_found: false,
            } => ProbeOutcome::BodyMismatch { status },
            PageAnswer::DefaultPage { status } => ProbeOutcome::DefaultPage { status },
            PageAnswer::TimedOut => ProbeOutcome::TimedOut,
            PageAnswer::Unreachable { message } => ProbeOutcome::ConnectionError { message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_url_stays_on_the_base_host() {
        let target = ProbeTarget {
            base_url: url::Url::parse("https://app-staging.example.test:8443/ignored").unwrap(),
            label: "staging".to_owned(),
        };
        assert_eq!(
            target.url_for("/health?deep=1").unwrap().as_str(),
            "https://app-staging.example.test:8443/health?deep=1"
        );
        assert!(target.url_for("//evil.test/x").is_err());
        assert!(target.url_for("health").is_err());
    }
}
