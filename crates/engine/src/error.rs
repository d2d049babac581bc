//! The engine's one error type: every way a plan, a stage, a health gate, a hook, the port to Azure, the
//! journal can fail, each variant with the context a person needs to act on it.
//!
//! Where one failure is the cause of another (a port call failing inside a stage step, a health gate failing
//! a stage), the cause is kept as the `source`, so the binary's report walks the whole chain.

use std::path::PathBuf;
use std::time::Duration;

use slot_release_azure as az;

use crate::health::{GateReport, WatchReport};
use crate::journal::{
    MAX_TAG_NAME_LEN, MAX_TAG_VALUE_LEN, Phase, abbreviate, too_many_tags_message,
    value_too_long_advice,
};
use crate::package::PackageError;
use crate::plan::Stage;

/// A result whose error is the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- Planning and the release spec.
    /// The stage name is not one of build, staging, production, rollback.
    #[error(
        "unknown stage `{name}`{} (expected build, staging, production or rollback)",
        crate::plan::Stage::closest(name).map_or(String::new(), |s| format!("; did you mean `{s}`?"))
    )]
    UnknownStage {
        /// The name given.
        name: String,
    },
    /// The config has no section for the stage.
    #[error("the config has no `stages.{stage}` section")]
    StageNotConfigured {
        /// The stage.
        stage: Stage,
    },
    /// An environment is referenced but not defined.
    #[error("environment `{name}` is not defined in the config")]
    UnknownEnvironment {
        /// The environment's name.
        name: String,
    },
    /// `--target` or `--targets` names a target the config does not have.
    #[error("no target `{name}` in the config (its targets: {known})")]
    UnknownTarget {
        /// The name given.
        name: String,
        /// The config's target names, quoted.
        known: String,
    },
    /// `plan --wave` names a wave no target is in.
    #[error("no target is in wave {wave}; the config's targets use waves 0 to {}", waves.saturating_sub(1))]
    EmptyWave {
        /// The wave asked for.
        wave: u32,
        /// How many waves the targets use.
        waves: u32,
    },
    /// A health timeout override of zero seconds.
    #[error("the health gate timeout must be at least 1 second")]
    HealthTimeoutZero,
    /// A health timeout override leaves no room for a second probe of a gate.
    #[error(
        "the health gate timeout of {timeout_secs}s does not exceed the {interval_secs}s probe interval of {gate}, so the gate could probe only once; give a longer timeout"
    )]
    HealthTimeoutTooShort {
        /// The config path of the gate, e.g. `stages.staging.healthCheck`.
        gate: &'static str,
        /// The timeout asked for.
        timeout_secs: u64,
        /// The gate's probe interval.
        interval_secs: u64,
    },
    /// A state file (`--state`) could not be read.
    #[error("cannot read the state file {}", path.display())]
    StateFileRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A state file is not a valid state document.
    #[error("the state file {} is not a valid state document", path.display())]
    StateFileInvalid {
        /// The file.
        path: PathBuf,
        /// The JSON error, with line and column.
        source: serde_json::Error,
    },

    // --- The port to Azure.
    /// Azure (or the emulator) refused or failed.
    #[error("{operation} failed")]
    Azure {
        /// What was being done.
        operation: String,
        /// The client's error (boxed: it is large and failures are rare).
        source: Box<az::AzureError>,
    },
    /// The service connection could not be read or used.
    #[error("cannot use service connection `{connection}`")]
    ServiceConnection {
        /// The connection id.
        connection: String,
        /// Why (boxed: it is large and failures are rare).
        source: Box<az::AzureError>,
    },
    /// Neither the config nor the service connection names a subscription.
    #[error(
        "no subscription: set app.subscription in release.yml or use a service connection scoped to one"
    )]
    NoSubscription,
    /// `SLOT_RELEASE_CLOUD` names no cloud this task knows.
    #[error(
        "SLOT_RELEASE_CLOUD is `{name}`, not a cloud: use AzureCloud, AzureChinaCloud, AzureUSGovernment or emulator:<port>"
    )]
    UnknownCloud {
        /// The name given.
        name: String,
    },
    /// The run has no Azure connection (the build stage).
    #[error("cannot {operation}: this run has no Azure connection")]
    Offline {
        /// What was asked for, e.g. `read the live state`.
        operation: String,
    },

    /// Run from package: none of the zips Kudu keeps in the slot's `/home/data/SitePackages` is the
    /// release's package.
    #[error(
        "slot {slot} keeps no package with sha256 {sha256} in /home/data/SitePackages ({kept} kept; Kudu keeps the newest SCM_MAX_ZIP_PACKAGE_COUNT, 5 by default): deploy the release's artifact with the staging and production stages"
    )]
    KeptPackageGone {
        /// The slot.
        slot: String,
        /// The release's package digest.
        sha256: String,
        /// How many zips the slot keeps.
        kept: usize,
    },

    // --- The journal.
    /// The journal would put more tags on the site than Azure allows on one resource.
    #[error("{}", too_many_tags_message(*.count, *.journal, *.foreign, .largest_journal_tag.as_ref()))]
    TooManyTags {
        /// Tags the site would carry.
        count: usize,
        /// How many of them the journal writes (continuation tags included).
        journal: usize,
        /// How many belong to others.
        foreign: usize,
        /// The journal tag taking the most tags with its continuations, and how many, when it takes more
        /// than one.
        largest_journal_tag: Option<(String, usize)>,
    },
    /// A tag on the site has a name longer than Azure allows.
    #[error(
        "the site's tag '{}' has a name of {len} characters, but Azure allows at most {MAX_TAG_NAME_LEN}: rename or remove that tag on the site",
        abbreviate(.name)
    )]
    TagNameTooLong {
        /// The tag's name.
        name: String,
        /// Its length (UTF-16 code units).
        len: usize,
    },
    /// A tag on the site has a value longer than Azure allows.
    #[error(
        "the value of the site's tag '{}' has {len} characters, but Azure allows at most {MAX_TAG_VALUE_LEN}: {}",
        abbreviate(.name),
        value_too_long_advice(.name)
    )]
    TagValueTooLong {
        /// The tag's name.
        name: String,
        /// The value's length (UTF-16 code units).
        len: usize,
    },
    /// The journal in the site's tags names a slot that cannot exist (the tags were edited by hand or by
    /// another tool): which release is in which slot is unknown, so nothing is decided from it.
    #[error(
        "the journal tag {tag} on the site names a slot that cannot exist; correct or remove that tag (it records which release is in which slot)"
    )]
    JournalSlotInvalid {
        /// The journal tag.
        tag: &'static str,
        /// What is wrong with the name.
        #[source]
        source: slot_release_config::ConfigError,
    },
    /// The canary's journal tag does not read, so the routing rules it recorded cannot be put back.
    #[error(
        "the journal tag {tag} on the site does not read ({reason}); it records production's traffic routing rules before a canary. Put the routing rules back by hand (Deployment slots > Traffic % in the portal, or `az webapp traffic-routing`), then remove the tag"
    )]
    JournalTagInvalid {
        /// The journal tag.
        tag: &'static str,
        /// Why it does not read.
        reason: String,
    },

    // --- Health gates and the production watch. All but `InvalidHealthCheck` carry the report so far.
    /// A health check that cannot be probed as given.
    #[error("invalid health check for {target}: {reason}")]
    InvalidHealthCheck {
        /// The slot's base URL.
        target: String,
        /// What is wrong.
        reason: String,
    },
    /// A slot did not pass its health gate in time.
    #[error(
        "{} did not pass the health gate: {} consecutive healthy probe(s) needed within {}, {} probe(s) made, last: {}",
        report.url,
        report.successes_required,
        humantime::format_duration(*timeout),
        report.probes_total,
        report.last_outcome()
    )]
    GateFailed {
        /// The probes made.
        report: Box<GateReport>,
        /// The gate's deadline.
        timeout: Duration,
    },
    /// A slot's app answered wrongly probe after probe, so the gate stopped before its deadline.
    #[error(
        "{} failed the health gate early: {consecutive} consecutive probe(s) answered in a way waiting will not change, last: {}; fix the app or the gate's path and statuses (raise failAfter if the app needs longer to stop answering so)",
        report.url,
        report.last_outcome()
    )]
    GateFailedEarly {
        /// The probes made.
        report: Box<GateReport>,
        /// The definite failures in a row that stopped it.
        consecutive: u32,
    },
    /// Production failed too many probes during the watch.
    #[error(
        "{} is unhealthy: {} failed probe(s) of {} during the watch (limit {}), last: {}",
        report.url,
        report.failures,
        report.probes_total,
        report.max_failures,
        report.last_outcome()
    )]
    Unhealthy {
        /// The probes made.
        report: Box<WatchReport>,
    },
    /// The app of the probed slot crashed (its process exited or never answered), so the gate
    /// stopped at once.
    #[error("{} did not pass the health gate: {}", report.url, failure.headline())]
    AppCrashed {
        /// The probes made.
        report: Box<GateReport>,
        /// What the platform's logs say.
        failure: Box<crate::health::AppFailure>,
    },
    /// The slot's traffic failed the gate's analysis (its probes passed).
    #[error("{slot} failed the traffic analysis: {}", verdict.failures())]
    AnalysisFailed {
        /// The slot judged.
        slot: String,
        /// The decision with the numbers it used.
        verdict: Box<crate::analysis::Verdict>,
    },
    /// A health gate was cancelled before it passed.
    #[error("health gate of {} cancelled after {} probe(s)", report.url, report.probes_total)]
    GateCancelled {
        /// The probes made.
        report: Box<GateReport>,
    },
    /// The production watch was cancelled before its window ended.
    #[error("watch of {} cancelled after {} probe(s)", report.url, report.probes_total)]
    WatchCancelled {
        /// The probes made.
        report: Box<WatchReport>,
    },

    // --- Hooks. A hook command that runs and fails is a `HookOutcome`, not one of these.
    /// An agent hook's process could not be started.
    #[error("hook {hook}: cannot start `{program}` in {}", dir.display())]
    HookSpawn {
        /// The hook.
        hook: String,
        /// The shell started.
        program: String,
        /// The folder it was to run in.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Waiting for an agent hook's process failed.
    #[error("hook {hook}: waiting for the process failed")]
    HookWait {
        /// The hook.
        hook: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A hook runs in the slot, but the runner has no way to run commands there.
    #[error("hook {hook} runs in the slot, but no remote command runner was given")]
    NoRemoteRunner {
        /// The hook.
        hook: String,
    },
    /// A command run in the slot did not finish in time.
    #[error("the remote command did not finish within {}", humantime::format_duration(*after))]
    RemoteCommandTimedOut {
        /// The timeout.
        after: Duration,
    },
    /// A command could not be run in the slot at all.
    #[error("the remote command could not run: {message}")]
    RemoteCommandFailed {
        /// What went wrong, for the hook's record.
        message: String,
        /// The cause, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    // --- Stages.
    /// Preflight checks failed; nothing was changed.
    #[error("preflight failed for the {stage} stage, nothing was changed: {}", problems.join("; "))]
    Preflight {
        /// The stage.
        stage: Stage,
        /// Each failed check.
        problems: Vec<String>,
    },
    /// The app's plan has no deployment slot besides production, so there is nowhere to stage a release
    /// and nothing to swap (Flex Consumption, Linux Consumption, Free, Shared, Basic).
    #[error(
        "{app} runs on a {plan}, which has no deployment slots: there is no slot to stage the release in and nothing to swap into production. Nothing was changed. Instead, {advice}"
    )]
    NoDeploymentSlots {
        /// The app.
        app: String,
        /// The plan, as a reader knows it (`Flex Consumption plan`).
        plan: String,
        /// What to do instead.
        advice: String,
    },
    /// Another run holds the release lock; nothing was written.
    #[error(
        "another run holds the release lock of {app}: {holder}, since {since}; its lock {expiry}. Nothing was changed. {advice}"
    )]
    Locked {
        /// The app.
        app: String,
        /// Who holds it (release, stage, pipeline, run, agent).
        holder: String,
        /// Since when, as a date.
        since: String,
        /// When it goes stale ("expires at …" or "went stale at …").
        expiry: String,
        /// What the user can do.
        advice: String,
    },
    /// A configuration file of the package that variable substitution cannot read.
    #[error("cannot substitute variables in {file} (line {line}): {reason}")]
    Substitution {
        /// The file, relative to the package root.
        file: String,
        /// The line the problem is on.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// An app command (`slot-release app`, `slot delete`) that would break a release or its rollback.
    #[error("{command} of slot {slot} of {app} refused: {reason}. Nothing was changed. {advice}")]
    AppCommandRefused {
        /// `start`, `stop`, `restart` or `delete`.
        command: String,
        /// The app.
        app: String,
        /// The slot named.
        slot: crate::state::SlotName,
        /// Why it is refused.
        reason: String,
        /// What the user can do instead.
        advice: String,
    },
    /// Another run was taking the lock at the same moment, every time this run tried.
    #[error(
        "another run ({other}) was taking the release lock of {app} at the same moment, {attempts} time(s); nothing was changed: run this stage again"
    )]
    LockContended {
        /// The app.
        app: String,
        /// The other claim.
        other: String,
        /// How often this run tried.
        attempts: u32,
    },
    /// The lock was lost while the run held it: it stopped before its next irreversible step.
    #[error(
        "the release lock of {app} is no longer this run's ({reason}); stopped before `{step}`"
    )]
    LockLost {
        /// The app.
        app: String,
        /// Why.
        reason: String,
        /// The step that did not start.
        step: String,
    },
    /// Right before the swap, the slot no longer holds the release that passed its gate there.
    #[error(
        "slot {slot} no longer holds release {release} (it holds {holds}), so it is not swapped into production; run the staging stage of {release} again"
    )]
    NotStaged {
        /// The slot production swaps from.
        slot: crate::state::SlotName,
        /// What it holds now.
        holds: String,
        /// This run's release.
        release: String,
    },
    /// A release identity that cannot be used.
    #[error("the release id `{id}` cannot be used: {reason}; pass another with --release-id")]
    InvalidReleaseId {
        /// The id (control characters removed, abbreviated).
        id: String,
        /// Why.
        reason: String,
    },
    /// An earlier release stopped half-way.
    #[error(
        "release {release} stopped at phase `{phase}`; re-run release {release}'s own stage to continue it, or run the task with `command: rollback` to close it (command line: --resume or --rollback-unfinished)"
    )]
    Unfinished {
        /// Its id.
        release: String,
        /// Where it stopped.
        phase: Phase,
    },
    /// The plan of a stage could not be computed.
    #[error("cannot plan the {stage} stage")]
    Plan {
        /// The stage.
        stage: Stage,
        /// Why (a planning error).
        source: Box<Error>,
    },
    /// The plan holds a step the run has nothing for (a hook not in the config, a deploy with no package):
    /// a contradiction between planner and executor, refused rather than skipped as if it had run.
    #[error(
        "the plan's step `{step}` has nothing to run ({why}); nothing was done for it. This is a bug in Slot Release: please report it with the plan"
    )]
    NothingToRun {
        /// The step.
        step: String,
        /// What was missing.
        why: String,
    },
    /// A step of a stage failed on an Azure call.
    #[error("step `{step}` failed")]
    StepFailed {
        /// The step.
        step: String,
        /// Why (a port error).
        source: Box<Error>,
    },
    /// A hook of a stage failed, or hooks could not be undone.
    #[error("hook {hook} {outcome}")]
    HookFailed {
        /// The hook (or hooks, comma-separated).
        hook: String,
        /// How it ended.
        outcome: String,
    },
    /// A health gate or the watch failed a stage.
    #[error("health check failed")]
    Health {
        /// Why (a health error, with its report).
        source: Box<Error>,
    },
    /// Building the package failed.
    #[error("building the package failed")]
    Package {
        /// Why.
        source: PackageError,
    },
    /// The package given, or its build record, cannot be used (or the package root fails its checks).
    #[error("the package cannot be used")]
    Artifact {
        /// Why.
        source: crate::artifact::ArtifactError,
    },
    /// A secret named in the config is missing from the vault's answer.
    #[error("secret {secret} was not returned by vault {vault}")]
    MissingSecret {
        /// The vault.
        vault: String,
        /// The secret.
        secret: String,
    },
    /// Writing a pipeline variable failed.
    #[error("cannot set pipeline variable")]
    PipelineVariable {
        /// Why.
        source: slot_release_pipelines::Error,
    },
    /// The run was cancelled (SIGINT/SIGTERM, or the agent cancelled the job): between two steps of a stage
    /// (`step`), or during a call to Azure (`during`; a write cancelled in flight may still have taken
    /// effect), or while a remote command ran.
    #[error(
        "cancelled{}{}",
        step.as_ref().map_or_else(String::new, |step| format!(" before step `{step}`; the journal records where the release stopped")),
        during.as_ref().map_or_else(String::new, |call| format!(" during `{call}`"))
    )]
    Cancelled {
        /// The step not started.
        step: Option<String>,
        /// The call to Azure that was in flight or waiting.
        during: Option<String>,
    },
}

/// Every message of an error and its causes, outermost first, walked by the azure crate's
/// [`az::causes`] (the one walker of a source chain).
pub fn chain(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    az::causes(err).map(ToString::to_string).collect()
}

impl Error {
    /// Whether Azure answered 409: another operation (a swap, a deployment) is still running on the app.
    pub fn is_conflict(&self) -> bool {
        // The azure crate's classification, not the status alone: Azure also reports a running operation
        // as a 400 "another operation is in progress".
        matches!(self, Error::Azure { source, .. } if source.kind() == az::ErrorKind::Conflict)
    }

    /// Whether retrying later may succeed (e.g. another operation in progress).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Azure { source, .. } => source.is_transient(),
            _ => false,
        }
    }

    /// Whether the run was cancelled, rather than something failing.
    pub fn is_cancelled(&self) -> bool {
        match self {
            Error::Cancelled { .. }
            | Error::GateCancelled { .. }
            | Error::WatchCancelled { .. } => true,
            Error::Health { source } | Error::StepFailed { source, .. } => source.is_cancelled(),
            _ => false,
        }
    }

    /// The report of a health gate that failed or was cancelled.
    pub fn gate_report(&self) -> Option<&GateReport> {
        match self {
            Error::GateFailed { report, .. }
            | Error::GateFailedEarly { report, .. }
            | Error::GateCancelled { report }
            | Error::AppCrashed { report, .. } => Some(report),
            Error::Health { source } => source.gate_report(),
            _ => None,
        }
    }

    /// The report of a production watch that found production unhealthy or was cancelled.
    pub fn watch_report(&self) -> Option<&WatchReport> {
        match self {
            Error::Unhealthy { report } | Error::WatchCancelled { report } => Some(report),
            Error::Health { source } => source.watch_report(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::chain;
    use super::*;

    fn gate_report() -> GateReport {
        GateReport {
            url: "https://shop-staging.azurewebsites.net/health".to_owned(),
            passed: false,
            successes_required: 3,
            probes_total: 4,
            successes: 1,
            failures: 3,
            transient_errors: 0,
            duration_ms: 20_000,
            probes: Vec::new(),
            last: None,
        }
    }

    #[test]
    fn the_error_can_cross_threads_and_into_anyhow() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Error>();
    }

    #[test]
    fn a_wrapped_error_keeps_its_cause_in_the_chain() {
        let err = Error::Plan {
            stage: Stage::Staging,
            source: Box::new(Error::UnknownEnvironment {
                name: "qa".to_owned(),
            }),
        };
        assert_eq!(
            chain(&err),
            [
                "cannot plan the staging stage",
                "environment `qa` is not defined in the config"
            ]
        );

        let err = Error::RemoteCommandFailed {
            message: "the slot's command API failed".to_owned(),
            source: Some(Box::new(Error::Offline {
                operation: "run a command in staging".to_owned(),
            })),
        };
        assert_eq!(
            chain(&err),
            [
                "the remote command could not run: the slot's command API failed",
                "cannot run a command in staging: this run has no Azure connection"
            ]
        );
    }

    #[test]
    fn a_cancellation_names_the_step_only_when_there_is_one() {
        let between_steps = Error::Cancelled {
            step: Some("swap staging into production".to_owned()),
            during: None,
        };
        assert_eq!(
            between_steps.to_string(),
            "cancelled before step `swap staging into production`; the journal records where the release stopped"
        );
        let in_flight = Error::Cancelled {
            step: None,
            during: Some("swap staging into production".to_owned()),
        };
        assert_eq!(
            in_flight.to_string(),
            "cancelled during `swap staging into production`"
        );
        assert_eq!(
            Error::Cancelled {
                step: None,
                during: None
            }
            .to_string(),
            "cancelled"
        );
        assert!(between_steps.is_cancelled() && in_flight.is_cancelled());
        let wrapped = Error::StepFailed {
            step: "swap".to_owned(),
            source: Box::new(in_flight),
        };
        assert!(wrapped.is_cancelled(), "seen through a failed step");
    }

    #[test]
    fn health_helpers_see_through_the_stage_wrapper() {
        let cancelled = Error::Health {
            source: Box::new(Error::GateCancelled {
                report: Box::new(gate_report()),
            }),
        };
        assert!(cancelled.is_cancelled());
        assert_eq!(cancelled.gate_report().map(|r| r.probes_total), Some(4));
        assert!(cancelled.watch_report().is_none());

        let failed = Error::Health {
            source: Box::new(Error::GateFailed {
                report: Box::new(gate_report()),
                timeout: Duration::from_secs(60),
            }),
        };
        assert!(!failed.is_cancelled());
        assert_eq!(
            chain(&failed)[1],
            "https://shop-staging.azurewebsites.net/health did not pass the health gate: 3 consecutive healthy probe(s) needed within 1m, 4 probe(s) made, last: no probe"
        );
        assert!(!failed.is_conflict() && !failed.is_transient());
    }
}
