//! The stages: each reads the live state, computes its plan, prints it, refuses on a failed preflight, then
//! executes the plan step by step through the port, writing the journal around every irreversible step.
//!
//! Execution is one loop over the plan's steps and one `match` on the action, so what `plan` shows is what
//! runs. On failure the plan's `on_failure` steps run, but only those that apply to what actually happened
//! (a swap back only after a swap, undo only of the hooks that completed).
//!
//! This module holds the entry point ([`run`]) and the executor's state (`Exec`); its submodules each
//! add one concern to the executor: `settle` (the live state before planning), `drive` (one stage from
//! plan to end), `execute` and `actions` (the steps), `recovery`, `journaling`, `locking`, `report`, and
//! `stopping` (how long a cancelled run's last writes may take). `app` runs the app commands (start, stop,
//! restart, slot delete) under the same lock and journal.

// A failure carries the whole error into the release record; failures are rare and short-lived, so the
// size of the `Err` variant costs nothing measurable and boxing would only add noise at every call site.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use slot_release_pipelines::{Log, VariableOptions};
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::health::{self, ProbeTarget};
use crate::hooks::{self, CommandKind, HookRunner, HookRunnerConfig};
use crate::journal::{DeploymentRecord, HookRecord, JournalTags, Phase};
use crate::machine;
use crate::package;
use crate::plan::{self, Action, BuildInfo, Plan, PlanInput, SettingChange, Shown, Stage, Step};
use crate::port::{ConnectionStringValue, Port, SettingValue, SiteChange, SlotCommand};
use crate::spec::{AppKind, HookSpec, ReleaseSpec};
use crate::state::{ConnectionStringState, LiveState, SlotName};

mod actions;
mod app;
mod canary;
mod drive;
mod execute;
mod journaling;
mod locking;
mod recovery;
mod report;
mod settle;
mod stopping;
mod substitution;

pub use app::{AppAction, AppCommandOptions, AppCommandRecord, run_app_command};
use locking::HeldLock;
pub use report::{
    HealthRecord, ReleaseRecord, StageRecord, StepRecord, SummaryContext, portal_url,
    render_summary, set_outputs, stage_summary,
};
pub use stopping::{EXIT_RESERVE, RUNTIME_SHUTDOWN, StopBudget, Stopping};

/// How long a swap waits for another operation on the app to finish.
const SWAP_CONFLICT_WAIT: Duration = Duration::from_secs(120);

/// The version of the release record's JSON form.
pub const RECORD_VERSION: u32 = 1;

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Command {
    /// Build the package (or resolve the image tag).
    Build,
    /// The staging stage.
    Staging,
    /// The production stage.
    Production,
    /// Restore the last known-good release.
    Rollback,
    /// Build, staging and production in one run.
    Release,
}

impl Command {
    /// The stages the command runs, in order.
    pub fn stages(self) -> &'static [Stage] {
        match self {
            Command::Build => &[Stage::Build],
            Command::Staging => &[Stage::Staging],
            Command::Production => &[Stage::Production],
            Command::Rollback => &[Stage::Rollback],
            Command::Release => &[Stage::Build, Stage::Staging, Stage::Production],
        }
    }
}

/// What to do when the journal shows a release that stopped half-way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Unfinished {
    /// Refuse and explain (the default: never start blind).
    #[default]
    Refuse,
    /// Continue the unfinished release from where the live state shows it got.
    Resume,
    /// Roll back to the last known-good release first.
    Rollback,
}

/// How a run is configured.
#[derive(Debug, Clone)]
pub struct StageOptions {
    /// What to run.
    pub command: Command,
    /// Overrides the stage's environment.
    pub environment: Option<String>,
    /// The release's identity (see [`crate::identity`]).
    pub release_id: String,
    /// The release's display name (the build number).
    pub release_name: String,
    /// A package built earlier (staging); when absent and needed, it is built into `work_dir`.
    pub package: Option<PathBuf>,
    /// The SHA-256 of `package`, as the caller verified it (`artifact::prepare`): shown in the plan.
    pub package_sha256: Option<String>,
    /// Where `package` can be downloaded again (from its build record), kept in the release history.
    pub artifact: Option<crate::history::ArtifactSource>,
    /// A rollback given a release's artifact: the config rendered with that release's variables (see
    /// [`crate::plan::PlanInput::target`]).
    pub target_spec: Option<ReleaseSpec>,
    /// The pipeline run, as the agent describes it (what a package built by a stage records).
    pub build_run: slot_release_pipelines::BuildRun,
    /// Where packages and summaries are written.
    pub work_dir: PathBuf,
    /// Folder agent hooks run in (usually the config's folder).
    pub hook_dir: PathBuf,
    /// What to do with an unfinished release.
    pub unfinished: Unfinished,
    /// The release lock.
    pub lock: LockOptions,
    /// The release `rollback` returns to (`--to`); by default the one before the current release.
    pub rollback_to: Option<String>,
}

/// How a run takes the release lock.
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// How long a claim lives without renewal (a killed run does not block the app forever); renewed every
    /// third of it while the stage runs.
    pub ttl: Duration,
    /// The token of a stale claim to take over (`--take-over-lock`).
    pub take_over: Option<String>,
    /// `System.JobAttempt`: a retry takes over the claim of an earlier attempt of the same release.
    pub attempt: Option<u32>,
    /// Who runs (pipeline, run, stage, job, agent), shown to a run the lock refuses.
    pub holder: BTreeMap<String, String>,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            ttl: Duration::from_secs(3 * 60),
            take_over: None,
            attempt: None,
            holder: BTreeMap::new(),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RunResult {
    /// Everything planned happened.
    Succeeded,
    /// A step failed; nothing needed rolling back, or it was cleaned up.
    Failed,
    /// Production turned unhealthy and the previous release was restored.
    RolledBack,
    /// Cancelled; the journal says where it stopped.
    Cancelled,
}

impl RunResult {
    /// The name used in the `Result` output variable.
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Succeeded => "Succeeded",
            RunResult::Failed => "Failed",
            RunResult::RolledBack => "RolledBack",
            RunResult::Cancelled => "Cancelled",
        }
    }
}

/// Everything a run talks to.
#[derive(Debug, Clone)]
pub struct Context {
    /// Azure, through the port.
    pub port: Arc<dyn Port>,
    /// The log.
    pub log: Log,
    /// Cancelled on SIGINT/SIGTERM: no further step starts, and the port call in flight stops.
    pub cancel: CancellationToken,
    /// When the writes a stop must still make end, once `cancel` is cancelled: production's own
    /// settings put back, the journal and the deployment records, the lock given back. The run's token
    /// does not cut them (a journal left stale or a lock left behind costs the next run far more), but
    /// they must end before the agent's next signal; whoever hears the signals tells it which came.
    pub stopping: Stopping,
}

/// Runs a command; never fails as a whole: the record says how it ended.
pub async fn run(ctx: &Context, spec: &ReleaseSpec, opts: &StageOptions) -> ReleaseRecord {
    let started = Instant::now();
    let mut record = ReleaseRecord {
        record_version: RECORD_VERSION,
        release_id: opts.release_id.clone(),
        release_name: opts.release_name.clone(),
        app: spec.app.name.clone(),
        command: opts.command,
        result: RunResult::Succeeded,
        error: Vec::new(),
        stages: Vec::new(),
        slots: BTreeMap::new(),
        last_known_good: None,
        previous_image: None,
        // Read from ARM once the stages ran (`slot_urls`): a slot the run creates has no host before.
        app_url: String::new(),
        urls: BTreeMap::new(),
        duration_ms: 0,
    };
    let mut package = opts.package.clone();
    let mut package_sha256 = opts.package_sha256.clone();
    let mut journal = JournalTags::default();
    let (settle, _settle_timer) = ctx.stopping.settle_token(&ctx.cancel);
    // Once per run and before any stage plans: the names `secrets.select` takes, listed read-only, so
    // every stage of the run delivers (and masks) the same set. A rollback's target release takes them
    // too: its redeploy re-applies the settings that release was released with, selected ones included.
    let selects = |s: &ReleaseSpec| s.environments.values().any(|e| e.select.is_some());
    let (selected, selected_opts);
    let (spec, opts) = if opts.command != Command::Build
        && (selects(spec) || opts.target_spec.as_ref().is_some_and(selects))
    {
        let specs: Vec<&ReleaseSpec> = std::iter::once(spec)
            .chain(opts.target_spec.as_ref())
            .collect();
        // One rendering comes back per rendering given, in order.
        let mut listed =
            crate::selection::select_secrets_in(ctx.port.as_ref(), &specs, &ctx.log, &ctx.cancel)
                .await
                .into_iter();
        selected = listed.next().unwrap_or_else(|| spec.clone());
        selected_opts = StageOptions {
            target_spec: listed.next(),
            ..opts.clone()
        };
        (&selected, &selected_opts)
    } else {
        (spec, opts)
    };
    // Once per run, before any stage prints: every secret the config references, for masking (hooks and
    // apps of any slot may print them; the rollback stage writes no secret but runs hooks).
    if opts.command != Command::Build {
        register_referenced_secrets(ctx.port.as_ref(), spec, &ctx.log, &ctx.cancel).await;
    }
    for &stage in opts.command.stages() {
        if stage == Stage::Staging && opts.command == Command::Release && is_direct(spec) {
            // No staging slot: production takes the image itself, gated by its watch.
            ctx.log.info(
                "No staging slot (stages.production has no sourceSlot): the image goes to production directly, so the staging stage is skipped",
            );
            continue;
        }
        let mut exec = Exec::new(ctx, spec, opts, stage, settle.clone());
        exec.package = package.clone();
        exec.package_sha256 = package_sha256.clone();
        exec.artifact = opts.artifact.clone();
        let outcome = exec.run_stage().await;
        package = exec.package.clone();
        package_sha256 = exec.package_sha256.clone();
        journal = exec.journal.clone();
        let mut stage_record = exec.stage;
        stage_record.slots_after = journal.slots.clone();
        match outcome {
            Ok(()) => record.stages.push(stage_record),
            Err(Failure { result, error: err }) => {
                stage_record.result = result;
                record.result = result;
                record.error = chain(&err);
                ctx.log
                    .error(&format!("{} stage: {}", stage, record.error.join(": ")));
                record.stages.push(stage_record);
                break;
            }
        }
    }
    record.slots = journal.slots.clone();
    record.last_known_good = journal.last_known_good.clone();
    record.previous_image = journal.previous_image.clone();
    record.urls = slot_urls(ctx, spec).await;
    record.app_url = record
        .urls
        .get(&SlotName::production())
        .cloned()
        .unwrap_or_default();
    record.duration_ms = started.elapsed().as_millis() as u64;
    record
}

/// Each slot's URL as ARM names its host (unique default host names cannot be built from the app's
/// name). A slot that cannot be read (it does not exist, no Azure for `build`) has none; a cancelled
/// run does not wait for them.
async fn slot_urls(ctx: &Context, spec: &ReleaseSpec) -> BTreeMap<SlotName, String> {
    let slots: BTreeSet<SlotName> = std::iter::once(SlotName::production())
        .chain(spec.slots())
        .collect();
    let mut urls = BTreeMap::new();
    for slot in slots {
        match ctx.port.slot_url(&slot, &ctx.cancel).await {
            Ok(url) => {
                urls.insert(slot, url.to_string());
            }
            Err(err) if err.is_cancelled() => break,
            Err(_) => {}
        }
    }
    urls
}

/// Whether production takes the release directly (a container app with no source slot) instead of a swap.
fn is_direct(spec: &ReleaseSpec) -> bool {
    spec.production
        .as_ref()
        .is_some_and(|p| p.source_slot.is_production())
}

/// Reads every secret the config references and registers each value with the log's masking, so nothing
/// the run prints afterwards (package preparation, plans, hooks, apps) can show one. Best effort: a vault
/// this connection cannot read is noted in the debug log; the stage that needs it fails on its own.
pub async fn register_referenced_secrets(
    port: &dyn Port,
    spec: &ReleaseSpec,
    log: &Log,
    cancel: &CancellationToken,
) {
    for env in spec.environments.values() {
        // A connection string written in release.yml usually holds a password: masked like a secret.
        for cs in env.connection_strings.values() {
            if let crate::spec::ConnectionValue::Text(value) = &cs.value {
                log.register_secret(value);
            }
        }
        let Some(vault) = env.vault.as_deref() else {
            continue;
        };
        let names = env.vault_secrets();
        if names.is_empty() {
            continue;
        }
        match port.get_secrets(vault, &names, cancel).await {
            Ok(values) => {
                for value in values.values() {
                    log.register_secret(value.expose());
                }
            }
            Err(err) => log.debug(&format!(
                "Could not read the secrets of vault {vault} to mask them: {}",
                chain(&err).join(": ")
            )),
        }
    }
}

pub use crate::error::chain;

/// How a stage that stopped on a step ends, and why.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) result: RunResult,
    pub(crate) error: Error,
}

impl Failure {
    fn new(result: RunResult, error: Error) -> Self {
        Failure { result, error }
    }

    fn failed(error: Error) -> Self {
        Failure::new(RunResult::Failed, error)
    }

    fn cancelled(error: Error) -> Self {
        Failure::new(RunResult::Cancelled, error)
    }
}

struct Exec<'a> {
    ctx: &'a Context,
    /// The token of the writes a stop must still make (see [`Context::stopping`]); every other call
    /// takes the run's token, `ctx.cancel`.
    settle: CancellationToken,
    spec: &'a ReleaseSpec,
    opts: &'a StageOptions,
    stage: StageRecord,
    journal: JournalTags,
    package: Option<PathBuf>,
    package_sha256: Option<String>,
    /// Where the package can be downloaded again: given (staging, rollback) or read from the staged slot.
    artifact: Option<crate::history::ArtifactSource>,
    secrets: BTreeMap<String, crate::port::SecretValue>,
    completed_hooks: Vec<HookSpec>,
    swapped: bool,
    applied_preview: bool,
    image_set: Option<String>,
    /// The image production ran when the stage started (containers), recorded at the swap.
    production_image: Option<String>,
    /// The release lock, while this run holds it.
    held: Option<HeldLock>,
    /// Production's settings when the stage read the live state.
    production_settings: BTreeMap<String, String>,
    /// Production's traffic-routing rules when the stage read the live state.
    production_routing: Vec<crate::state::RoutingRule>,
    /// What this run wrote over on production: each name's value before (`None`: it was not set).
    production_settings_before: BTreeMap<String, Option<String>>,
    /// Production's connection strings when the stage read the live state.
    production_connection_strings: BTreeMap<String, ConnectionStringState>,
    /// The connection strings this run wrote over on production, as they were (`None`: not set). Kept
    /// in memory only: their values are secrets, which the journal never holds.
    production_connection_strings_before: BTreeMap<String, Option<ConnectionStringState>>,
    /// A swap or image change of production was started: after a cancellation it may still complete.
    production_touched: bool,
    /// The release each slot holds, per its deployment records when the stage read the live state,
    /// kept up to date by this run's swaps.
    slot_releases: BTreeMap<SlotName, String>,
    /// The stage's progress when the current step began, and the share of it the step spans (percent).
    progress: (u8, u8),
    /// What the lock's claim names as the stage when the run is not a stage (`app stop`, `slot delete`).
    claim_stage: Option<String>,
}

impl<'a> Exec<'a> {
    /// A stage about to start: nothing read, nothing done, no lock held.
    fn new(
        ctx: &'a Context,
        spec: &'a ReleaseSpec,
        opts: &'a StageOptions,
        stage: Stage,
        settle: CancellationToken,
    ) -> Exec<'a> {
        Exec {
            ctx,
            settle,
            spec,
            opts,
            stage: StageRecord {
                stage,
                result: RunResult::Succeeded,
                plan: None,
                steps: Vec::new(),
                hooks: Vec::new(),
                health: Vec::new(),
                slots_before: BTreeMap::new(),
                slots_after: BTreeMap::new(),
            },
            journal: JournalTags::default(),
            package: None,
            package_sha256: None,
            artifact: None,
            secrets: BTreeMap::new(),
            completed_hooks: Vec::new(),
            swapped: false,
            applied_preview: false,
            image_set: None,
            production_image: None,
            held: None,
            production_settings: BTreeMap::new(),
            production_routing: Vec::new(),
            production_settings_before: BTreeMap::new(),
            production_connection_strings: BTreeMap::new(),
            production_connection_strings_before: BTreeMap::new(),
            production_touched: false,
            slot_releases: BTreeMap::new(),
            progress: (0, 0),
            claim_stage: None,
        }
    }
}

/// A port call's error as a step's failure; a cancelled call is a cancellation, not a failure.
fn port_err(step: &str) -> impl FnOnce(Error) -> Failure + '_ {
    move |source| {
        if source.is_cancelled() {
            return Failure::cancelled(source);
        }
        Failure::failed(Error::StepFailed {
            step: step.to_owned(),
            source: Box::new(source),
        })
    }
}

impl Exec<'_> {
    fn log(&self) -> &Log {
        &self.ctx.log
    }

    async fn read_state(&self) -> Result<LiveState, Failure> {
        self.ctx
            .port
            .read_state(&self.spec.slots(), &self.ctx.cancel)
            .await
            .map_err(port_err("read the live state"))
    }
}

pub(crate) fn format_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}
