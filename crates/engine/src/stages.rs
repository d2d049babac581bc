//! The stages: each reads the live state, computes its plan, prints it, refuses on a failed preflight, then
//! executes the plan step by step through the port, writing the journal around every irreversible step.
//!
//! Execution is one loop over the plan's steps and one `match` on the action, so what `plan` shows is what
//! runs. On failure the plan's `on_failure` steps run, but only those that apply to what actually happened
//! (a swap back only after a swap, undo only of the hooks that completed).

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
use crate::health::{self, HealthCheckSpec, ProbeTarget, WatchSpec};
use crate::hooks::{self, CommandKind, HookRunner, HookRunnerConfig, RemoteCommand};
use crate::journal::{DeploymentRecord, HookRecord, JournalTags, Phase};
use crate::machine;
use crate::package;
use crate::plan::{
    self, Action, BuildInfo, Plan, PlanInput, Probe, SettingChange, Shown, Stage, Step,
};
use crate::port::{Port, SettingValue, SiteChange};
use crate::spec::{AppKind, HookSpec, HookWhere, ReleaseSpec};
use crate::state::{LiveState, PRODUCTION};

mod locking;
mod report;

use locking::HeldLock;
pub use report::{
    HealthRecord, ReleaseRecord, StageRecord, StepRecord, SummaryContext, portal_url,
    render_summary, set_outputs, stage_summary,
};

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
    /// Cancelled on SIGINT/SIGTERM.
    pub cancel: CancellationToken,
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
    // Once per run, before any stage prints: every secret the config references, for masking (hooks and
    // apps of any slot may print them; the rollback stage writes no secret but runs hooks).
    if opts.command != Command::Build {
        register_referenced_secrets(ctx.port.as_ref(), spec, &ctx.log).await;
    }
    for &stage in opts.command.stages() {
        if stage == Stage::Staging && opts.command == Command::Release && is_direct(spec) {
            // No staging slot: production takes the image itself, gated by its watch.
            ctx.log.info(
                "No staging slot (stages.production has no sourceSlot): the image goes to production directly, so the staging stage is skipped",
            );
            continue;
        }
        let mut exec = Exec {
            ctx,
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
            package: package.clone(),
            package_sha256: package_sha256.clone(),
            artifact: opts.artifact.clone(),
            secrets: BTreeMap::new(),
            completed_hooks: Vec::new(),
            swapped: false,
            applied_preview: false,
            image_set: None,
            production_image: None,
            held: None,
            production_settings: BTreeMap::new(),
            production_settings_before: BTreeMap::new(),
            production_touched: false,
            slot_releases: BTreeMap::new(),
            progress: (0, 0),
        };
        let outcome = exec.run_stage().await;
        package = exec.package.clone();
        package_sha256 = exec.package_sha256.clone();
        journal = exec.journal.clone();
        let mut stage_record = exec.stage;
        stage_record.slots_after = journal.slots.clone();
        match outcome {
            Ok(()) => record.stages.push(stage_record),
            Err((result, err)) => {
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
    record.app_url = record.urls.get(PRODUCTION).cloned().unwrap_or_default();
    record.duration_ms = started.elapsed().as_millis() as u64;
    record
}

/// Each slot's URL as ARM names its host (unique default host names cannot be built from the app's
/// name). A slot that cannot be read (it does not exist, no Azure for `build`) has none; a cancelled
/// run does not wait for them.
async fn slot_urls(ctx: &Context, spec: &ReleaseSpec) -> BTreeMap<String, String> {
    let slots: BTreeSet<String> = std::iter::once(PRODUCTION.to_owned())
        .chain(slots_of(spec))
        .collect();
    let mut urls = BTreeMap::new();
    for slot in slots {
        let read = tokio::select! {
            r = ctx.port.slot_url(&slot) => r,
            () = ctx.cancel.cancelled() => break,
        };
        if let Ok(url) = read {
            urls.insert(slot, url.to_string());
        }
    }
    urls
}

/// Whether production takes the release directly (a container app with no source slot) instead of a swap.
fn is_direct(spec: &ReleaseSpec) -> bool {
    spec.production
        .as_ref()
        .is_some_and(|p| p.source_slot == PRODUCTION)
}

/// Reads every secret the config references and registers each value with the log's masking, so nothing
/// the run prints afterwards (package preparation, plans, hooks, apps) can show one. Best effort: a vault
/// this connection cannot read is noted in the debug log; the stage that needs it fails on its own.
pub async fn register_referenced_secrets(port: &dyn Port, spec: &ReleaseSpec, log: &Log) {
    for env in spec.environments.values() {
        let Some(vault) = env.vault.as_deref() else {
            continue;
        };
        let names: Vec<String> = env.secrets.values().map(|s| s.secret.clone()).collect();
        if names.is_empty() {
            continue;
        }
        match port.get_secrets(vault, &names).await {
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

type Failure = (RunResult, Error);

struct Exec<'a> {
    ctx: &'a Context,
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
    /// What this run wrote over on production: each name's value before (`None`: it was not set).
    production_settings_before: BTreeMap<String, Option<String>>,
    /// A swap or image change of production was started: after a cancellation it may still complete.
    production_touched: bool,
    /// The release each slot holds, per its deployment records when the stage read the live state,
    /// kept up to date by this run's swaps.
    slot_releases: BTreeMap<String, String>,
    /// The stage's progress when the current step began, and the share of it the step spans (percent).
    progress: (u8, u8),
}

fn port_err(step: &str) -> impl FnOnce(Error) -> Failure + '_ {
    move |source| {
        (
            RunResult::Failed,
            Error::StepFailed {
                step: step.to_owned(),
                source: Box::new(source),
            },
        )
    }
}

/// The slots a stage looks at.
fn slots_of(spec: &ReleaseSpec) -> Vec<String> {
    let mut slots: BTreeSet<String> = spec.environments.values().map(|e| e.slot.clone()).collect();
    if let Some(p) = &spec.production {
        slots.insert(p.source_slot.clone());
    }
    slots.into_iter().collect()
}

impl Exec<'_> {
    fn log(&self) -> &Log {
        &self.ctx.log
    }

    async fn read_state(&self) -> Result<LiveState, Failure> {
        self.ctx
            .port
            .read_state(&slots_of(self.spec))
            .await
            .map_err(port_err("read the live state"))
    }

    /// A run stopped during its upload leaves the deployment running in Kudu; it finishes on its own.
    /// The retry of that release waits for it (bounded, cancellable) rather than refuse at preflight.
    async fn wait_for_running_deployment(
        &self,
        mut state: LiveState,
    ) -> Result<LiveState, Failure> {
        let journal = JournalTags::from_tags(&state.tags);
        let stopped_here = journal.phase.is_some_and(|p| !p.is_settled())
            && journal.release.as_deref() == Some(self.opts.release_id.as_str());
        if !stopped_here || state.in_flight.is_empty() {
            return Ok(state);
        }
        self.log().info(&format!(
            "The interrupted run of this release left work running ({}); waiting for it to finish",
            state.in_flight.join(", ")
        ));
        let deadline = Instant::now() + SWAP_CONFLICT_WAIT;
        while !state.in_flight.is_empty() && Instant::now() < deadline {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
                () = self.ctx.cancel.cancelled() => break,
            }
            state = self.read_state().await?;
        }
        Ok(state)
    }

    /// A run stopped during a swap (or swap back) may have left that swap running in Azure: the live state
    /// means nothing until it ends. Resetting the source slot's config is refused (409) while an operation
    /// holds the app, and is a no-op otherwise (it also cancels a preview the stopped run left applied).
    /// Returns whether the state must be read again: whenever it checked, because the state read before
    /// the check is not a snapshot (the swap may have ended between reading production and the slot,
    /// which then both show the same release).
    async fn wait_for_running_swap(&self, state: &LiveState) -> bool {
        let phase = JournalTags::from_tags(&state.tags).phase;
        if !matches!(
            phase,
            Some(Phase::Swapping | Phase::Swapped | Phase::RollingBack)
        ) {
            return false;
        }
        let Some(source) = self
            .spec
            .production
            .as_ref()
            .map(|p| p.source_slot.clone())
            .filter(|s| s != PRODUCTION && state.slot(s).is_some())
        else {
            return false;
        };
        let deadline = Instant::now() + SWAP_CONFLICT_WAIT;
        let mut announced = false;
        loop {
            match self.ctx.port.reset_slot_config(&source).await {
                Ok(()) => return true,
                Err(err) if err.is_conflict() && Instant::now() < deadline => {
                    if !announced {
                        self.log().info(
                            "An operation of the interrupted run is still running on the app; waiting for it to finish",
                        );
                    }
                    announced = true;
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(2)) => {}
                        () = self.ctx.cancel.cancelled() => return true,
                    }
                }
                Err(err) => {
                    self.log().warning(&format!(
                        "Could not tell whether an operation is still running on the app: {}",
                        chain(&err).join(": ")
                    ));
                    return true;
                }
            }
        }
    }

    /// A run stopped during a swap leaves the journal's slots stale: corrected from the slots' deployment
    /// records ([`machine::reconcile`]), with a warning for each.
    fn reconcile(&self, state: &mut LiveState) {
        let journal = JournalTags::from_tags(&state.tags);
        let live: BTreeMap<String, Option<String>> = state
            .slots
            .iter()
            .map(|(name, s)| (name.clone(), s.release.clone()))
            .collect();
        let source = self
            .spec
            .production
            .as_ref()
            .map(|p| p.source_slot.as_str());
        let (fixed, corrections) = machine::reconcile(&journal, &live, source);
        for c in &corrections {
            self.log().warning(&format!(
                "The journal says slot {} holds {}, but its deployment records say {}: the run that wrote it stopped during a swap; going by the slot",
                c.slot,
                c.journal.as_deref().unwrap_or("nothing"),
                c.live
            ));
        }
        if !corrections.is_empty() {
            fixed.apply_to(&mut state.tags);
        }
    }

    /// Adjusts the journal of an unfinished release as [`machine::settle`] decides; returns whether a
    /// rollback must run first.
    fn settle(&mut self, state: &mut LiveState) -> Result<bool, Failure> {
        let journal = JournalTags::from_tags(&state.tags);
        match machine::settle(
            &journal,
            self.stage.stage,
            &self.opts.release_id,
            self.opts.unfinished,
        ) {
            machine::Settlement::Settled => Ok(false),
            machine::Settlement::RollBackFirst => Ok(true),
            machine::Settlement::Refuse { release, phase } => {
                Err((RunResult::Failed, Error::Unfinished { release, phase }))
            }
            machine::Settlement::Resume {
                journal,
                release,
                stopped_at,
                own,
            } => {
                if own {
                    self.log().info(&format!(
                        "Release {release} is this run's release and stopped at phase `{stopped_at}`: resuming it"
                    ));
                }
                let production_holds = state.slot(PRODUCTION).and_then(|s| s.release.as_deref())
                    == Some(release.as_str());
                self.log().info(&format!(
                    "Resuming release {release}, which stopped at phase `{stopped_at}`{}",
                    if production_holds {
                        "; production already serves it"
                    } else {
                        ""
                    }
                ));
                journal.apply_to(&mut state.tags);
                Ok(false)
            }
        }
    }

    async fn run_stage(&mut self) -> Result<(), Failure> {
        let stage = self.stage.stage;
        self.log().section(&format!("{stage} stage"));
        let mut state = if stage == Stage::Build {
            LiveState::default()
        } else {
            self.read_state().await?
        };
        if stage != Stage::Build {
            // Before anything else, and before any write: a release in flight in another run is that
            // run's, not an unfinished one to settle.
            if self.refuse_if_locked(&state.tags).await? {
                state = self.read_state().await?;
            }
        }
        if stage != Stage::Build && self.wait_for_running_swap(&state).await {
            state = self.read_state().await?;
        }
        if stage != Stage::Build {
            state = self.wait_for_running_deployment(state).await?;
        }
        if stage != Stage::Build {
            self.reconcile(&mut state);
        }
        if self.settle(&mut state)? {
            self.log()
                .warning("An unfinished release is rolled back first, as asked");
            let mut rollback = Exec {
                ctx: self.ctx,
                spec: self.spec,
                opts: self.opts,
                stage: StageRecord {
                    stage: Stage::Rollback,
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
                production_settings_before: BTreeMap::new(),
                production_touched: false,
                slot_releases: BTreeMap::new(),
                progress: (0, 0),
            };
            let result = rollback.run_stage_with(Stage::Rollback, state).await;
            if result.is_err() {
                rollback.give_back_lock().await;
            }
            self.stage.steps.extend(rollback.stage.steps);
            result?;
            state = self.read_state().await?;
        }
        let result = self.run_stage_with(stage, state).await;
        if result.is_err() {
            self.give_back_lock().await;
        }
        result
    }

    /// Every failed exit gives the lock back if the failure handling could not: a lock left behind blocks
    /// the next release for its whole time to live. Best effort, a few tries, logged when it still fails.
    async fn give_back_lock(&mut self) {
        if !self.lock_held() {
            return;
        }
        for attempt in 1..=3 {
            match self.release_lock().await {
                Ok(()) => return,
                Err(err) if attempt == 3 => {
                    self.log().warning(&format!(
                        "The release lock could not be given back ({}); a retry of this job takes it over, another release waits until it goes stale",
                        chain(&err).join(": ")
                    ));
                }
                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    }

    async fn run_stage_with(&mut self, stage: Stage, state: LiveState) -> Result<(), Failure> {
        self.journal = JournalTags::from_tags(&state.tags);
        if self.stage.slots_before.is_empty() {
            // What each slot held when the stage began (before an unfinished release was rolled back
            // first): the summary's "before".
            self.stage.slots_before = self.journal.slots.clone();
        }
        self.slot_releases = state
            .slots
            .iter()
            .filter_map(|(name, s)| Some((name.clone(), s.release.clone()?)))
            .collect();
        self.production_settings = state
            .slot(PRODUCTION)
            .map(|s| s.settings.clone())
            .unwrap_or_default();
        self.production_image = state
            .slot(PRODUCTION)
            .and_then(|s| s.image())
            .map(str::to_owned);
        if stage == Stage::Production
            && state.slot(PRODUCTION).and_then(|s| s.release.as_deref())
                == Some(self.opts.release_id.as_str())
        {
            // An earlier run swapped already: a failing watch must swap back.
            self.swapped = true;
        }
        if stage == Stage::Production || stage == Stage::Rollback {
            // Staging's hooks completed (the slot is staged); a rollback may have to undo them.
            self.completed_hooks = self
                .spec
                .staging
                .iter()
                .flat_map(|s| s.hooks.iter().cloned())
                .collect();
            if stage == Stage::Rollback {
                // The release taken out also ran its production hooks before its swap.
                let production = self
                    .spec
                    .production
                    .iter()
                    .flat_map(|p| p.hooks.iter().cloned());
                self.completed_hooks.extend(production);
            }
        }
        if self.package_sha256.is_none() && stage != Stage::Rollback {
            // A later stage of the release (production) knows its package, and where its artifact can be
            // fetched again, by the record staging wrote.
            let staged = state
                .slots
                .values()
                .find(|s| s.release.as_deref() == Some(self.opts.release_id.as_str()));
            self.package_sha256 = staged.and_then(|s| s.package_sha256.clone());
            if self.artifact.is_none() {
                self.artifact = staged.and_then(|s| s.artifact.clone());
            }
        }
        let build = BuildInfo {
            release_id: self.opts.release_id.clone(),
            release_name: Some(self.opts.release_name.clone()),
            package_sha256: self.package_sha256.clone(),
            rollback_to: self.opts.rollback_to.clone(),
            package_later: false,
            assume_staged: false,
        };
        let plan = plan::compute(PlanInput {
            target: self.opts.target_spec.as_ref(),
            spec: self.spec,
            stage,
            environment: self.opts.environment.as_deref(),
            state: &state,
            build: &build,
        })
        .map_err(|source| {
            (
                RunResult::Failed,
                Error::Plan {
                    stage,
                    source: Box::new(source),
                },
            )
        })?;
        // Every secret is read and registered before anything of the stage is printed (its plan, hook
        // output), in every stage, rollback and resume included: reading changes nothing.
        self.register_secrets_first(&plan).await?;
        {
            // Folded: the plan is long, and the steps' result lines are what a reader scans first.
            let _group = self.log().group(&format!("Plan: {stage} of {}", plan.app));
            self.log().info(plan.render().trim_end());
        }
        self.stage.plan = Some(plan.clone());
        let mut problems: Vec<String> = plan
            .problems()
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect();
        // The journal must fit next to the site's other tags and this run's claim on the lock.
        let mut with_claim = state.tags.clone();
        with_claim.extend(self.my_claim(0, true).to_tags());
        if problems.is_empty()
            && let Err(err) = self
                .projected_journal(&plan, &state)
                .check_fits(&with_claim)
        {
            problems.push(format!("journal-tags: {err}"));
        }
        if !problems.is_empty() {
            return Err((RunResult::Failed, Error::Preflight { stage, problems }));
        }
        let total = plan.steps.len().max(1);
        for (done, step) in plan.steps.iter().enumerate() {
            // The step shows where the stage is, step by step (gates and the watch report their own).
            self.progress = ((done * 100 / total) as u8, (100 / total) as u8);
            self.log().progress(
                self.progress.0,
                &format!("{stage}: {}", step.action.describe()),
            );
            if self.ctx.cancel.is_cancelled() {
                let description = step.action.describe();
                self.abandon().await;
                return Err((
                    RunResult::Cancelled,
                    Error::Cancelled {
                        step: Some(description),
                    },
                ));
            }
            if let Err(failure) = self.timed(step).await {
                if failure.0 == RunResult::Cancelled || self.ctx.cancel.is_cancelled() {
                    self.abandon().await;
                    return Err((RunResult::Cancelled, failure.1));
                }
                let result = self.recover(&plan).await;
                return Err((result, failure.1));
            }
        }
        if stage == Stage::Rollback && (self.swapped || self.image_set.is_some()) {
            // A success, and news: the pipeline shows the step as succeeded with issues.
            let target = crate::identity::label(
                plan.release_name.as_deref().unwrap_or_default(),
                &plan.release_id,
            );
            self.log()
                .warning(&format!("Production was rolled back to release {target}"));
        }
        Ok(())
    }

    /// Runs one step and logs one line with its duration.
    async fn timed(&mut self, step: &Step) -> Result<(), Failure> {
        let description = step.action.describe();
        let started = Instant::now();
        let result = {
            // One fold per step that has something to show (a hook's output, probes, waits), its result
            // line outside it: the log reads as one line per step. Book-keeping steps print only that line.
            let log = self.ctx.log.clone();
            let _group = folds(&step.action).then(|| log.group(&description));
            // A long step keeps the progress moving (through a gate's or watch's window, or its elapsed
            // time), so the step never sits on one number for minutes.
            let _ticker = long_step(&step.action).map(|window| {
                self.tick_progress(format!("{}: {description}", self.stage.stage), window)
            });
            self.execute(&step.action).await
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        let ok = result.is_ok();
        let note = result.as_ref().err().map(|(_, e)| chain(e).join(": "));
        let mark = if ok { "done" } else { "FAILED" };
        self.log().info(&format!(
            "[{mark}] {description} ({})",
            format_ms(duration_ms)
        ));
        self.stage.steps.push(StepRecord {
            description,
            ok,
            duration_ms,
            note,
        });
        result
    }

    /// Reports progress every second until the guard is dropped: through `window` when the step's length is
    /// known, else the elapsed time only.
    fn tick_progress(&self, what: String, window: Option<Duration>) -> tokio_util::sync::DropGuard {
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let log = self.ctx.log.clone();
        let (base, span) = self.progress;
        tokio::spawn(async move {
            let started = Instant::now();
            loop {
                tokio::select! {
                    () = stopped.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                let elapsed = started.elapsed();
                let share = window.map_or(0.0, |w| {
                    (elapsed.as_secs_f64() / w.as_secs_f64().max(1.0)).min(1.0)
                });
                log.progress(
                    base.saturating_add((f64::from(span) * share) as u8),
                    &format!("{what} ({}s)", elapsed.as_secs()),
                );
            }
        });
        stop.drop_guard()
    }

    /// After a failure: the plan's failure steps that apply to what happened. Returns the stage's result.
    async fn recover(&mut self, plan: &Plan) -> RunResult {
        let mut result = RunResult::Failed;
        if !self.lock_held() {
            // Refused by the lock, or failed before taking it: nothing was changed, and a run without the
            // lock must not change anything now, the journal included.
            return result;
        }
        let mut restore_failed = false;
        // The swap back was under way when the run was cancelled: Azure finishes a swap it accepted, so
        // which release production runs is not known here.
        let mut restore_unknown = false;
        let damage = machine::Damage {
            stage: self.stage.stage,
            swapped: self.swapped,
            applied_preview: self.applied_preview,
            image_set: self.image_set.is_some(),
            hooks_ran: !self.completed_hooks.is_empty(),
            lock_held: self.lock_held(),
        };
        let production_changed = damage.swapped || damage.image_set;
        let applies = machine::recovery(plan.on_failure.iter().map(|s| &s.action), &damage);
        for (step, applies) in plan.on_failure.iter().zip(applies) {
            // The lock can be lost while recovering (taken over once stale): then it is not ours to give.
            if !applies || (matches!(step.action, Action::ReleaseLock) && !self.lock_held()) {
                continue;
            }
            if restore_failed && !matches!(step.action, Action::ReleaseLock) {
                // Production still runs the release: its gate, the undo of its hooks and a `rolledBack`
                // journal would all describe a rollback that did not happen.
                continue;
            }
            let restoring = matches!(step.action, Action::Swap { .. } | Action::SetImage { .. });
            // A failure while recovering is logged and recovery goes on: every remaining step still helps.
            let outcome = self.timed(step).await;
            if restoring {
                match outcome {
                    Ok(()) => {
                        result = RunResult::RolledBack;
                        self.restore_production_settings().await;
                    }
                    Err((_, err)) if self.ctx.cancel.is_cancelled() || err.is_cancelled() => {
                        restore_failed = true;
                        restore_unknown = true;
                        self.log().warning(&format!(
                            "The run was cancelled while the automatic swap back was running; Azure finishes a swap it accepted, so production may already run the previous release again. The next run (the rollback stage) reads what each slot holds and finishes the rollback: {}",
                            chain(&err).join(": ")
                        ));
                    }
                    Err((_, err)) => {
                        restore_failed = true;
                        self.log().error(&format!(
                            "The automatic rollback failed, production still runs release {}: {}; run the rollback stage to retry it",
                            self.opts.release_name,
                            chain(&err).join(": ")
                        ));
                    }
                }
            }
        }
        if restore_unknown {
            // Unsettled on purpose: the next run reconciles the slots from their deployment records.
            let _ = self.write_journal(Phase::RollingBack).await;
        } else if restore_failed {
            // `failed` with the slots as they are keeps the rollback stage's way open: it sees production
            // holding this release and swaps the last known-good one back.
            let _ = self.write_journal(Phase::Failed).await;
        }
        if self.stage.stage == Stage::Production && !production_changed {
            // The swap did not happen: production's own settings go back with its own release.
            self.restore_production_settings().await;
            // Production was never touched: the slot is still staged and the production stage can be retried.
            let _ = self.write_journal(Phase::Staged).await;
        }
        result
    }

    /// Puts back the production settings this run wrote over (best effort, logged): production runs the
    /// previous release again and must run it with that release's settings.
    async fn restore_production_settings(&mut self) {
        // This run's own record (secret values included) first; the journal's covers an earlier run's.
        let mut before = std::mem::take(&mut self.production_settings_before);
        let recorded = std::mem::take(&mut self.journal.previous_settings);
        for (name, value) in recorded.clone() {
            before.entry(name).or_insert(value);
        }
        if before.is_empty() {
            return;
        }
        let set: BTreeMap<String, SettingValue> = before
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), SettingValue::Plain(v.clone()?))))
            .collect();
        let remove: BTreeSet<String> = before
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        let started = Instant::now();
        let mut outcome = Ok(());
        if !set.is_empty() {
            outcome = self.ctx.port.set_settings(PRODUCTION, &set).await;
        }
        if outcome.is_ok() && !remove.is_empty() {
            outcome = self.ctx.port.remove_settings(PRODUCTION, &remove).await;
        }
        let description = format!(
            "restore {} production setting(s) this release wrote",
            before.len()
        );
        let note = outcome.as_ref().err().map(|e| chain(e).join(": "));
        if note.is_some() {
            // Kept in the journal, so the rollback stage can try again.
            self.journal.previous_settings = recorded;
        }
        self.log().info(&format!(
            "[{}] {description} ({})",
            if note.is_none() { "done" } else { "FAILED" },
            format_ms(started.elapsed().as_millis() as u64)
        ));
        self.stage.steps.push(StepRecord {
            description,
            ok: note.is_none(),
            duration_ms: started.elapsed().as_millis() as u64,
            note,
        });
    }

    /// Cancellation: record where the release stopped and give the lock back, within the grace period.
    async fn abandon(&mut self) {
        self.log().warning(
            "Cancelled: no further steps start; the journal records where the release stopped",
        );
        if !self.lock_held() {
            // A run without the lock changed nothing, and must not start now.
            return;
        }
        if !self.production_touched {
            // Production still runs its own release: it gets its own settings back.
            self.restore_production_settings().await;
        }
        let _ = self.release_lock().await;
    }

    /// The largest journal this run can write, so Azure's tag limits are checked before the first change
    /// instead of failing a journal write halfway through a release.
    fn projected_journal(&self, plan: &Plan, state: &LiveState) -> JournalTags {
        let mut journal = JournalTags::from_tags(&state.tags);
        let release = self.opts.release_id.clone();
        journal.release = Some(release.clone());
        journal.phase = Some(Phase::RollingBack);
        journal.slots.insert(PRODUCTION.to_owned(), release.clone());
        journal.slots.insert(self.staging_slot(), release);
        let production = state.slot(PRODUCTION);
        if matches!(self.spec.app.kind, crate::spec::AppKind::Container { .. }) {
            journal.previous_image = production
                .and_then(|p| p.linux_fx_version.clone())
                .or(journal.previous_image);
        }
        for step in &plan.steps {
            if let Action::SetSettings { slot, changes } = &step.action
                && slot == PRODUCTION
            {
                for change in changes.iter().filter(|c| {
                    matches!(c.after, Shown::Plain(_))
                        && !matches!(c.before, Some(Shown::Secret(_)))
                }) {
                    journal.previous_settings.insert(
                        change.name.clone(),
                        production.and_then(|p| p.settings.get(&change.name).cloned()),
                    );
                }
            }
        }
        journal
    }

    /// Writes the journal with one `Merge` of its own tags (claims and foreign tags untouched), then
    /// deletes the tags it emptied.
    async fn write_tags(&self) -> Result<(), Error> {
        let live = self.ctx.port.tags().await?;
        let merge = self.journal.merge_from(&live);
        self.ctx.port.merge_tags(&merge).await?;
        let leftovers = JournalTags::leftovers(&merge);
        if !leftovers.is_empty() {
            // Only while still empty: a value is never lost to this clean-up.
            self.ctx.port.delete_tags(&leftovers).await?;
        }
        Ok(())
    }

    fn staging_slot(&self) -> String {
        self.spec.staging_slot().unwrap_or("staging").to_owned()
    }

    fn record(&self, phase: Phase) -> DeploymentRecord {
        DeploymentRecord {
            release: self.opts.release_id.clone(),
            release_name: self.opts.release_name.clone(),
            phase: phase.as_str().to_owned(),
            slots: self.journal.slots.clone(),
            previous_image: self.journal.previous_image.clone(),
            last_known_good: self.journal.last_known_good.clone(),
            hooks: self.stage.hooks.clone(),
            package_sha256: self.package_sha256.clone(),
            artifact: self.artifact.clone(),
        }
    }

    /// Records that the stage reached `phase`: the journal's new state and its effects come from
    /// [`machine::next`]; this only gathers the facts and interprets the effects.
    async fn write_journal(&mut self, phase: Phase) -> Result<(), Failure> {
        let staging_slot = self.staging_slot();
        let released = (phase == Phase::Released).then(|| self.history_entry());
        let rollback_target = self
            .stage
            .plan
            .as_ref()
            .filter(|_| self.stage.stage == Stage::Rollback)
            .map(|p| p.release_id.clone());
        let image_before = self
            .production_image
            .clone()
            .filter(|_| self.image_set.is_none());
        let event = machine::Event {
            stage: self.stage.stage,
            phase,
            release: &self.opts.release_id,
            staging_slot: &staging_slot,
            source_slot: self
                .spec
                .production
                .as_ref()
                .map(|p| p.source_slot.as_str()),
            swapped: self.swapped,
            image_before: image_before.as_deref(),
            released,
            rollback_target: rollback_target.as_deref(),
        };
        let (journal, effects) = machine::next(&self.journal, &event);
        self.journal = journal;
        for effect in effects {
            match effect {
                machine::Effect::RestoreProductionSettings => {
                    self.restore_production_settings().await;
                }
                machine::Effect::WriteTags => self
                    .write_tags()
                    .await
                    .map_err(port_err("write the journal"))?,
                machine::Effect::PutRecord { slot } => {
                    let record = self.record(phase);
                    self.ctx
                        .port
                        .put_record(&slot, &self.opts.release_id, &record)
                        .await
                        .map_err(port_err("write the deployment record"))?;
                }
            }
        }
        Ok(())
    }

    /// The history entry of this release, once it passed its watch: how to get it back (its image, or the
    /// artifact its package came from) and the run that released it.
    fn history_entry(&self) -> crate::history::Entry {
        let image = match &self.spec.app.kind {
            AppKind::Container { repository, tag } => Some(format!("{repository}:{tag}")),
            AppKind::Code { .. } => None,
        };
        let holder = &self.opts.lock.holder;
        let run = holder.get("runId").map(|id| {
            let pipeline = holder
                .get("pipeline")
                .map_or(String::new(), |p| format!("pipeline {p}, "));
            format!("{pipeline}run {id}")
        });
        crate::history::Entry {
            id: self.opts.release_id.clone(),
            name: self.opts.release_name.clone(),
            released_unix: self.ctx.port.now_unix(),
            image,
            run,
            package_sha256: self.package_sha256.clone(),
            artifact: self.artifact.clone(),
            outcome: crate::history::Outcome::Released,
        }
    }

    fn hook_runner(&self, slot: &str) -> HookRunner {
        let env = hooks::HookEnvironment {
            // Agent hooks see the settings of the environment this stage applies.
            vars: self
                .stage
                .plan
                .as_ref()
                .and_then(|p| p.environment.as_deref())
                .and_then(|name| self.spec.environments.get(name))
                .map(|e| e.settings.clone())
                .unwrap_or_default(),
            secrets: self
                .secrets
                .iter()
                .map(|(k, v)| (k.clone(), slot_release_pipelines::Secret::new(v.expose())))
                .collect(),
            remove: Vec::new(),
        };
        HookRunner::new(
            self.log().clone(),
            HookRunnerConfig::new(&self.opts.hook_dir),
            env,
        )
        .with_remote(Arc::new(SlotCommand {
            port: self.ctx.port.clone(),
            slot: slot.to_owned(),
        }))
    }

    fn hook_spec(hook: &HookSpec) -> hooks::HookSpec {
        hooks::HookSpec {
            name: hook.name.clone(),
            run: hook.command.clone(),
            undo: hook.undo.clone(),
            location: match hook.run_where {
                HookWhere::Slot => hooks::HookLocation::Slot,
                HookWhere::Agent => hooks::HookLocation::Agent,
            },
            timeout: hook.timeout,
            env: hook.env.clone(),
        }
    }

    fn find_hook(&self, name: &str) -> Option<HookSpec> {
        let staging = self.spec.staging.iter().flat_map(|s| s.hooks.iter());
        let production = self.spec.production.iter().flat_map(|p| p.hooks.iter());
        let mut all = staging.chain(production);
        all.find(|h| h.name == name).cloned()
    }

    fn hook_slot(&self) -> String {
        match self.stage.stage {
            Stage::Production => self
                .spec
                .production
                .as_ref()
                .map_or_else(|| self.staging_slot(), |p| p.source_slot.clone()),
            _ => self.staging_slot(),
        }
    }

    async fn target(&self, slot: &str) -> Result<ProbeTarget, Failure> {
        let base_url = self
            .ctx
            .port
            .slot_url(slot)
            .await
            .map_err(port_err("address the slot"))?;
        Ok(ProbeTarget {
            base_url,
            label: slot.to_owned(),
        })
    }

    fn check(probe: &Probe) -> HealthCheckSpec {
        HealthCheckSpec {
            path: probe.path.clone(),
            statuses: probe.statuses.clone(),
            body_contains: probe.body_contains.clone(),
            successes: probe.count.max(1),
            interval: Duration::from_secs(probe.interval_secs.max(1)),
            timeout: Duration::from_secs(probe.window_secs.max(1)),
            request_timeout: Duration::from_secs(10),
        }
    }

    async fn execute(&mut self, action: &Action) -> Result<(), Failure> {
        let port = self.ctx.port.clone();
        let cancel = self.ctx.cancel.clone();
        if action.changes_the_app() {
            // The fencing check: a run whose lock was taken over stops here, before the change.
            self.fence(&action.describe()).await?;
        }
        match action {
            Action::AcquireLock => self.acquire_lock().await?,
            Action::ReleaseLock => self
                .release_lock()
                .await
                .map_err(port_err("release the lock"))?,
            Action::WriteJournal { phase } => self.write_journal(*phase).await?,
            Action::CreateSlot { slot } => port
                .create_slot(slot, &cancel)
                .await
                .map_err(port_err("create the slot"))?,
            Action::PullSecrets { vault, secrets } => self.pull_secrets(vault, secrets).await?,
            Action::SetSettings { slot, changes } => {
                let mut values = BTreeMap::new();
                for change in changes {
                    let value = match &change.after {
                        Shown::Plain(v) => SettingValue::Plain(v.clone()),
                        Shown::Secret(_) => match self.secrets.get(&change.name) {
                            Some(secret) => SettingValue::Secret(secret.clone()),
                            None => {
                                return Err((
                                    RunResult::Failed,
                                    Error::MissingSecret {
                                        vault: String::new(),
                                        secret: change.name.clone(),
                                    },
                                ));
                            }
                        },
                    };
                    values.insert(change.name.clone(), value);
                    // Never a value that may be a secret: only plain values replaced by plain values.
                    if slot == PRODUCTION
                        && matches!(change.after, Shown::Plain(_))
                        && !matches!(change.before, Some(Shown::Secret(_)))
                    {
                        // The journal keeps the first value seen: a retry must not record its own.
                        self.journal
                            .previous_settings
                            .entry(change.name.clone())
                            .or_insert_with(|| self.production_settings.get(&change.name).cloned());
                    }
                    if slot == PRODUCTION {
                        // Kept before writing, so a swap that does not happen (or is undone) can put
                        // production's own values back: sticky settings stay with the slot.
                        self.production_settings_before
                            .entry(change.name.clone())
                            .or_insert_with(|| self.production_settings.get(&change.name).cloned());
                    }
                }
                let names = |pick: fn(&SettingChange) -> bool| -> BTreeSet<String> {
                    changes
                        .iter()
                        .filter(|c| pick(c))
                        .map(|c| c.name.clone())
                        .collect()
                };
                let stick = names(|c| c.becomes_sticky);
                let unstick = names(|c| c.becomes_travelling);
                if slot == PRODUCTION && !self.journal.previous_settings.is_empty() {
                    // Recorded before the write, so a run killed after it still lets a rollback undo it.
                    self.write_tags()
                        .await
                        .map_err(port_err("record production's settings"))?;
                }
                // Stickiness first, so no swap can ever carry a new value the wrong way; the lock keeps
                // other releases from swapping between the two writes.
                if !stick.is_empty() || !unstick.is_empty() {
                    port.set_sticky(&stick, &unstick)
                        .await
                        .map_err(port_err("change sticky setting names"))?;
                }
                port.set_settings(slot, &values)
                    .await
                    .map_err(port_err("set settings"))?;
            }
            Action::SetStack { slot, after, .. } => port
                .set_site(
                    slot,
                    &SiteChange {
                        startup_command: None,
                        linux_fx_version: Some(after.clone()),
                    },
                )
                .await
                .map_err(port_err("set the stack"))?,
            Action::SetStartupCommand { slot, after, .. } => port
                .set_site(
                    slot,
                    &SiteChange {
                        startup_command: Some(after.clone()),
                        linux_fx_version: None,
                    },
                )
                .await
                .map_err(port_err("set the startup command"))?,
            Action::SetImage {
                slot,
                before,
                after,
            } => {
                // A second image change in a stage (or any in a rollback) puts the last known-good tag back.
                let restoring = self.stage.stage == Stage::Rollback || self.image_set.is_some();
                self.production_touched |= slot == PRODUCTION;
                if slot == PRODUCTION && !restoring {
                    self.journal.previous_image = before.clone();
                }
                self.image_set = Some(after.clone());
                port.set_site(
                    slot,
                    &SiteChange {
                        startup_command: None,
                        linux_fx_version: Some(format!("DOCKER|{after}")),
                    },
                )
                .await
                .map_err(port_err("set the image"))?;
                // The slot's deployment record names the release it now runs, which is how the next
                // run reads what production holds.
                let mut record = self.record(Phase::Deployed);
                if self.stage.stage == Stage::Rollback
                    && let Some(plan) = self
                        .stage
                        .plan
                        .as_ref()
                        .filter(|p| !p.release_id.is_empty())
                {
                    // The rollback's target, which may be older than the last known-good release.
                    record.release = plan.release_id.clone();
                    record.release_name = plan
                        .release_name
                        .clone()
                        .unwrap_or_else(|| plan.release_id.clone());
                } else if restoring && let Some(lkg) = self.journal.last_known_good.clone() {
                    record.release = lkg;
                }
                port.put_record(slot, &record.release.clone(), &record)
                    .await
                    .map_err(port_err("write the deployment record"))?;
            }
            Action::BuildPackage { .. } => self.build_package()?,
            Action::ResolveImage { image } => {
                self.log().info(&format!("Image for this release: {image}"));
            }
            Action::DeployPackage { slot, .. } if self.stage.stage == Stage::Rollback => {
                // A rollback never builds: it deploys the artifact of the release it brings back.
                let (Some(package), Some(plan)) = (self.package.clone(), self.stage.plan.clone())
                else {
                    return Err((
                        RunResult::Failed,
                        Error::StepFailed {
                            step: action.describe(),
                            source: Box::new(Error::Offline {
                                operation: "deploy a rollback without the release's package".into(),
                            }),
                        },
                    ));
                };
                let name = plan.release_name.clone().unwrap_or(plan.release_id.clone());
                port.deploy_zip(
                    slot,
                    &package,
                    &format!("slot-release rollback to {name}"),
                    &cancel,
                )
                .await
                .map_err(port_err("deploy the package"))?;
                // The slot's record names the release it now holds, as staging's would.
                let record = DeploymentRecord {
                    release: plan.release_id.clone(),
                    release_name: name,
                    phase: Phase::Deployed.as_str().to_owned(),
                    package_sha256: self.package_sha256.clone(),
                    ..self.record(Phase::Deployed)
                };
                port.put_record(slot, &plan.release_id, &record)
                    .await
                    .map_err(port_err("write the deployment record"))?;
            }
            Action::DeployPackage { slot, .. } => {
                if self.package.is_none() {
                    if let AppKind::Code { root, .. } = &self.spec.app.kind {
                        self.log().info(&format!(
                            "No package given: building one from {}",
                            root.display()
                        ));
                    }
                    self.build_package()?;
                }
                let Some(package) = self.package.clone() else {
                    return Err((
                        RunResult::Failed,
                        Error::NothingToRun {
                            step: action.describe(),
                            why: "no package was built or given".into(),
                        },
                    ));
                };
                port.deploy_zip(
                    slot,
                    &package,
                    &format!("slot-release {}", self.opts.release_name),
                    &cancel,
                )
                .await
                .map_err(port_err("deploy the package"))?;
            }
            Action::RunHook { name, .. } => {
                let Some(hook) = self.find_hook(name) else {
                    return Err((
                        RunResult::Failed,
                        Error::NothingToRun {
                            step: action.describe(),
                            why: format!("the config has no hook {name}"),
                        },
                    ));
                };
                let runner = self.hook_runner(&self.hook_slot());
                let record = runner
                    .run_command(&Self::hook_spec(&hook), CommandKind::Run, &cancel)
                    .await;
                let ok = record.outcome.is_success();
                self.stage.hooks.push(HookRecord {
                    name: name.clone(),
                    ok,
                    exit_code: match &record.outcome {
                        hooks::HookOutcome::Succeeded => Some(0),
                        hooks::HookOutcome::Failed { exit_code } => *exit_code,
                        _ => None,
                    },
                    output: record.output.clone(),
                    undone: false,
                });
                if !ok {
                    let cancelled = matches!(record.outcome, hooks::HookOutcome::Cancelled);
                    return Err((
                        if cancelled {
                            RunResult::Cancelled
                        } else {
                            RunResult::Failed
                        },
                        Error::HookFailed {
                            hook: name.clone(),
                            outcome: record.outcome.to_string(),
                        },
                    ));
                }
                self.completed_hooks.push(hook);
            }
            Action::UndoHook { .. } => {
                let runner = self.hook_runner(&self.hook_slot());
                let specs: Vec<hooks::HookSpec> =
                    self.completed_hooks.iter().map(Self::hook_spec).collect();
                let refs: Vec<&hooks::HookSpec> = specs.iter().collect();
                // Undo must finish even when the run is being cancelled: a half-undone migration is worse.
                let report = runner.undo(&refs, &CancellationToken::new()).await;
                for undone in &report.undone {
                    if let Some(h) = self.stage.hooks.iter_mut().find(|h| h.name == undone.hook) {
                        h.undone = undone.outcome.is_success();
                    }
                }
                self.completed_hooks.clear();
                if !report.not_undone.is_empty() {
                    return Err((
                        RunResult::Failed,
                        Error::HookFailed {
                            hook: report.not_undone.join(", "),
                            outcome: "could not be undone".to_owned(),
                        },
                    ));
                }
            }
            Action::HealthGate { slot, probe } => {
                let target = self.target(slot).await?;
                let client = port.prober();
                // A crashed app fails the gate at once, quoting its log, instead of at the timeout.
                let crash = crate::port::SlotCrashCheck {
                    port: port.clone(),
                    slot: slot.clone(),
                };
                let outcome = health::gate_with(
                    client.as_ref(),
                    &target,
                    &Self::check(probe),
                    Some(&crash),
                    &cancel,
                    self.log(),
                )
                .await;
                match outcome {
                    Ok(report) => self.stage.health.push(HealthRecord {
                        kind: "gate".into(),
                        slot: slot.clone(),
                        url: report.url.clone(),
                        passed: report.passed,
                        probes: report.probes_total,
                        successes: report.successes,
                        failures: report.failures,
                    }),
                    Err(err) => {
                        if let Some(report) = err.gate_report() {
                            self.stage.health.push(HealthRecord {
                                kind: "gate".into(),
                                slot: slot.clone(),
                                url: report.url.clone(),
                                passed: false,
                                probes: report.probes_total,
                                successes: report.successes,
                                failures: report.failures,
                            });
                        }
                        let result = if err.is_cancelled() {
                            RunResult::Cancelled
                        } else {
                            RunResult::Failed
                        };
                        return Err((
                            result,
                            Error::Health {
                                source: Box::new(err),
                            },
                        ));
                    }
                }
            }
            Action::Swap { source, target } => {
                if self.stage.stage == Stage::Production && target == PRODUCTION && !self.swapped {
                    self.recheck_staged(source).await?;
                }
                self.production_touched |= target == PRODUCTION;
                self.swap(source, target).await?;
                let (a, b) = (
                    self.slot_releases.remove(source),
                    self.slot_releases.remove(target),
                );
                self.slot_releases.extend(
                    [(target.clone(), a), (source.clone(), b)]
                        .into_iter()
                        .filter_map(|(slot, r)| Some((slot, r?))),
                );
                if self.stage.stage == Stage::Rollback && target == PRODUCTION {
                    self.restore_production_settings().await;
                }
                self.swapped = !self.swapped;
            }
            Action::ApplySlotConfig { source, target } => {
                // Set before the call: Azure applies production's settings to the slot and then warms it
                // up, so a phase one that fails (a failed warm-up, a cancel) can leave them applied, and
                // only a reset takes them off again.
                self.applied_preview = true;
                port.apply_slot_config(source, target, &cancel)
                    .await
                    .map_err(port_err("apply production settings to the slot"))?;
            }
            Action::ResetSlotConfig { source } => port
                .reset_slot_config(source)
                .await
                .map_err(port_err("cancel the swap preview"))?,
            Action::Watch { slot, probe } => {
                let target = self.target(slot).await?;
                let client = port.prober();
                let check = Self::check(probe);
                let window = WatchSpec {
                    window: Duration::from_secs(probe.window_secs.max(1)),
                    max_failures: probe.count.max(1),
                };
                match health::watch(
                    client.as_ref(),
                    &target,
                    &check,
                    &window,
                    &cancel,
                    self.log(),
                )
                .await
                {
                    Ok(report) => self.stage.health.push(HealthRecord {
                        kind: "watch".into(),
                        slot: slot.clone(),
                        url: report.url.clone(),
                        passed: report.healthy,
                        probes: report.probes_total,
                        successes: report.successes,
                        failures: report.failures,
                    }),
                    Err(err) => {
                        if let Some(report) = err.watch_report() {
                            self.stage.health.push(HealthRecord {
                                kind: "watch".into(),
                                slot: slot.clone(),
                                url: report.url.clone(),
                                passed: false,
                                probes: report.probes_total,
                                successes: report.successes,
                                failures: report.failures,
                            });
                        }
                        let result = if err.is_cancelled() {
                            RunResult::Cancelled
                        } else {
                            RunResult::Failed
                        };
                        return Err((
                            result,
                            Error::Health {
                                source: Box::new(err),
                            },
                        ));
                    }
                }
            }
            Action::Nothing => {}
        }
        Ok(())
    }

    /// Reads a planned set of secrets (those not read yet), registers each value with the log's masking
    /// the moment it is read, and delivers the ones meant for pipeline variables.
    async fn pull_secrets(
        &mut self,
        vault: &str,
        secrets: &[plan::SecretPull],
    ) -> Result<(), Failure> {
        let missing: Vec<String> = secrets
            .iter()
            .filter(|p| !self.secrets.contains_key(&p.setting))
            .map(|p| p.secret.clone())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let values = self
            .ctx
            .port
            .get_secrets(vault, &missing)
            .await
            .map_err(port_err("pull secrets"))?;
        // Every value is masked before anything else can print it.
        for value in values.values() {
            self.log().register_secret(value.expose());
        }
        let wanted: Vec<&plan::SecretPull> = secrets
            .iter()
            .filter(|p| !self.secrets.contains_key(&p.setting))
            .collect();
        for pull in wanted {
            let value = values.get(&pull.secret).cloned().ok_or_else(|| {
                (
                    RunResult::Failed,
                    Error::MissingSecret {
                        vault: vault.to_owned(),
                        secret: pull.secret.clone(),
                    },
                )
            })?;
            if pull.delivery == crate::spec::SecretDelivery::PipelineVariable {
                self.log()
                    .set_variable(
                        &pull.setting,
                        value.expose(),
                        VariableOptions {
                            secret: true,
                            ..VariableOptions::default()
                        },
                    )
                    .map_err(|source| (RunResult::Failed, Error::PipelineVariable { source }))?;
            }
            self.secrets.insert(pull.setting.clone(), value);
        }
        Ok(())
    }

    /// Before the plan is printed: the stage's planned secrets (a missing one fails the run here). Every
    /// other secret the config references was registered once when the run started (see [`run`]).
    async fn register_secrets_first(&mut self, plan: &Plan) -> Result<(), Failure> {
        if self.stage.stage == Stage::Build {
            return Ok(());
        }
        for step in &plan.steps {
            if let Action::PullSecrets { vault, secrets } = &step.action {
                self.pull_secrets(vault, secrets).await?;
            }
        }
        Ok(())
    }

    /// Under the lock, immediately before the swap into production: the slot still holds this release
    /// (what the plan saw may have changed since: another run's staging, a manual deployment).
    async fn recheck_staged(&self, source: &str) -> Result<(), Failure> {
        let state = self.read_state().await?;
        let holds = state.slot(source).and_then(|s| s.release.clone());
        if holds.as_deref() == Some(self.opts.release_id.as_str()) {
            return Ok(());
        }
        if state.slot(PRODUCTION).and_then(|s| s.release.as_deref())
            == Some(self.opts.release_id.as_str())
        {
            // An earlier run of this release swapped already (the swap ended after it died).
            return Ok(());
        }
        Err((
            RunResult::Failed,
            Error::NotStaged {
                slot: source.to_owned(),
                holds: holds.unwrap_or_else(|| "no release of Slot Release".to_owned()),
                release: self.opts.release_name.clone(),
            },
        ))
    }

    /// Swaps, waiting out an operation still running on the app (e.g. the swap of an interrupted run).
    /// When that operation turns out to have been the same swap, the swap is done and not repeated.
    async fn swap(&self, source: &str, target: &str) -> Result<(), Failure> {
        let port = &self.ctx.port;
        let deadline = Instant::now() + SWAP_CONFLICT_WAIT;
        // What the target holds once this swap is done: if the running operation leaves it so (the
        // same swap, or the swap back of a run that died), swapping again would undo it.
        let expected = self.slot_releases.get(source).cloned();
        loop {
            let err = match port.swap(source, target, &self.ctx.cancel).await {
                Ok(()) => return Ok(()),
                Err(err) => err,
            };
            if !err.is_conflict() || Instant::now() >= deadline || self.ctx.cancel.is_cancelled() {
                return Err(port_err("swap")(err));
            }
            self.log()
                .info("Another operation is running on the app; waiting for it to finish");
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
                () = self.ctx.cancel.cancelled() => return Err(port_err("swap")(err)),
            }
            let state = self.read_state().await?;
            let serving = state.slot(target).and_then(|s| s.release.as_deref());
            if let Some(expected) = expected.as_deref()
                && serving == Some(expected)
            {
                self.log().info(&format!(
                    "The running operation was this swap: slot {target} already holds {expected}"
                ));
                return Ok(());
            }
            if target == PRODUCTION
                && serving == Some(self.opts.release_id.as_str())
                && !self.swapped
            {
                self.log().info(
                    "The running operation was this release's swap: production already serves it",
                );
                return Ok(());
            }
        }
    }

    fn build_package(&mut self) -> Result<(), Failure> {
        let AppKind::Code { root, exclude } = &self.spec.app.kind else {
            return Ok(());
        };
        if let Some(package) = &self.package {
            // Given, or built and verified before the stage started (`artifact::prepare`): built once.
            self.log().info(&format!(
                "Package {} prepared before the stage: not built again",
                package.display()
            ));
            return Ok(());
        }
        let mut spec = package::PackageSpec::new(root.clone());
        spec.exclude = exclude.clone();
        let run = &self.opts.build_run;
        let info = package::BuildInfo {
            version: self.opts.release_id.clone(),
            commit: run.source_version.clone(),
            build_id: run
                .build_id
                .clone()
                .unwrap_or_else(|| self.opts.release_id.clone()),
            created_from: run
                .repository_name
                .clone()
                .unwrap_or_else(|| "local build".to_owned()),
        };
        let options = package::BuildOptions {
            progress: Some(self.log().clone()),
            ..package::BuildOptions::default()
        };
        let built = package::build_package(&spec, &info, &self.opts.work_dir, &options)
            .map_err(|source| (RunResult::Failed, Error::Package { source }))?;
        self.log().info(&format!(
            "Package {} ({} bytes, sha256 {})",
            built.path.display(),
            built.size,
            built.sha256.as_str()
        ));
        self.package_sha256 = Some(built.sha256.as_str().to_owned());
        self.package = Some(built.path);
        Ok(())
    }
}

/// A step that can take long: `Some(window)` when its length is known (a gate's timeout, a watch's
/// window), `Some(None)` when only its elapsed time can be shown.
fn long_step(action: &Action) -> Option<Option<Duration>> {
    match action {
        Action::HealthGate { probe, .. } | Action::Watch { probe, .. } => {
            Some(Some(Duration::from_secs(probe.window_secs.max(1))))
        }
        Action::DeployPackage { .. }
        | Action::Swap { .. }
        | Action::ApplySlotConfig { .. }
        | Action::RunHook { .. }
        | Action::UndoHook { .. }
        | Action::CreateSlot { .. } => Some(None),
        _ => None,
    }
}

/// Whether a step's own output (a hook's, probes, waits for Azure) is folded under it in the log.
fn folds(action: &Action) -> bool {
    matches!(
        action,
        Action::BuildPackage { .. }
            | Action::DeployPackage { .. }
            | Action::RunHook { .. }
            | Action::UndoHook { .. }
            | Action::HealthGate { .. }
            | Action::Watch { .. }
            | Action::Swap { .. }
            | Action::ApplySlotConfig { .. }
            | Action::SetSettings { .. }
            | Action::SetImage { .. }
    )
}

pub(crate) fn format_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// Slot hooks run through Kudu's command API, via the port.
struct SlotCommand {
    port: Arc<dyn Port>,
    slot: String,
}

#[async_trait::async_trait]
impl RemoteCommand for SlotCommand {
    async fn run(
        &self,
        command: &str,
        _dir: &str,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<hooks::RemoteOutput, Error> {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled { step: None });
        }
        match self
            .port
            .run_command(&self.slot, command, timeout, cancel)
            .await
        {
            Ok(out) => Ok(hooks::RemoteOutput {
                exit_code: i32::try_from(out.exit_code).unwrap_or(-1),
                stdout: out.output,
                stderr: String::new(),
            }),
            // The port's error follows in the chain; repeating it here would print it twice.
            Err(err) => Err(Error::RemoteCommandFailed {
                message: "the slot's command API failed".to_owned(),
                source: Some(Box::new(err)),
            }),
        }
    }
}
