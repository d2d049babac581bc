//! The plan: the ordered steps a stage would take, computed from the release spec and the live state with no I/O.
//!
//! Every stage executes a plan and `plan` only prints it, so what a pull request shows is what a release does.
//! The JSON form is a versioned contract (`planVersion`) with a checked-in schema (`docs/plan.schema.json`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::journal::{JournalTags, Phase};
use crate::spec::{
    AppKind, EnvironmentSpec, HealthSpec, HookWhere, ProductionSpec, ReleaseSpec, Restore,
    RollbackMode, SecretDelivery, Strategy,
};
use crate::state::{LiveState, PRODUCTION};

/// The version of the plan's JSON form.
pub const PLAN_VERSION: u32 = 1;

/// A stage of a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Stage {
    /// Build the package or resolve the image tag.
    Build,
    /// Deploy to the staging slot, run hooks, health-gate it.
    Staging,
    /// Swap into production and watch it.
    Production,
    /// Restore the last known-good release.
    Rollback,
}

impl Stage {
    /// Every stage, in release order.
    pub const ALL: [Stage; 4] = [
        Stage::Build,
        Stage::Staging,
        Stage::Production,
        Stage::Rollback,
    ];

    /// The stage's name as users write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Build => "build",
            Stage::Staging => "staging",
            Stage::Production => "production",
            Stage::Rollback => "rollback",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Stage {
    /// The stage a mistyped name most likely meant: one it starts or ends with (`prod`), or one a
    /// letter or two away (`stagging`).
    pub fn closest(name: &str) -> Option<&'static str> {
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() {
            return None;
        }
        Stage::ALL
            .into_iter()
            .map(Stage::as_str)
            .find(|s| s.starts_with(&name) || name.starts_with(s))
            .or_else(|| {
                Stage::ALL
                    .into_iter()
                    .map(Stage::as_str)
                    .map(|s| (edit_distance(s, &name), s))
                    .filter(|(d, _)| *d <= 2)
                    .min()
                    .map(|(_, s)| s)
            })
    }
}

/// Levenshtein distance, for suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

impl std::str::FromStr for Stage {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.as_str() == s)
            .ok_or_else(|| Error::UnknownStage { name: s.to_owned() })
    }
}

/// What the build produced or will produce, known before the stages run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    /// The release's identity.
    pub release_id: String,
    /// The release's display name (the build number), when it differs from the identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_name: Option<String>,
    /// The package's SHA-256, when it is already built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_sha256: Option<String>,
    /// The release a rollback returns to (`rollback --to`), by identity or display name; without it a
    /// rollback returns to the release before the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<String>,
    /// The package is given to the run that executes this plan, not to this one (`plan --stage rollback`
    /// in a pipeline job that then downloads the artifact the plan names): a rollback that needs one is
    /// planned as if it were given.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub package_later: bool,
    /// Plan production as if the staging stage had staged this release (a pull-request plan: its release
    /// is never staged, and the reviewer wants to see the swap it would lead to).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub assume_staged: bool,
}

/// A plan for one stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Always [`PLAN_VERSION`].
    pub plan_version: u32,
    /// The stage.
    pub stage: Stage,
    /// The app's site name.
    pub app: String,
    /// The resource group.
    pub resource_group: String,
    /// The environment the stage applies, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The release being shipped (or, for rollback, restored): its identity.
    pub release_id: String,
    /// Its display name (the build number), when it differs from the identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_name: Option<String>,
    /// Preflight results; the stage refuses to start when any failed.
    pub preflight: Vec<Check>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// What happens if a step fails, in order.
    pub on_failure: Vec<Step>,
    /// A rollback that redeploys a code release: the pipeline artifact holding its package, for the job
    /// that downloads it (`DownloadPipelineArtifact@2` with `source: specific`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<crate::history::ArtifactSource>,
}

/// One preflight check against the config and the live state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// A short stable name, e.g. `startup-command`.
    pub name: String,
    /// Whether it held.
    pub ok: bool,
    /// What was found, and what to do when it failed.
    pub detail: String,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// What the step does.
    pub action: Action,
    /// Why it is needed.
    pub reason: String,
}

/// A setting's value as a plan may show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", tag = "kind", content = "value")]
pub enum Shown {
    /// A plain value.
    Plain(String),
    /// A secret: only its origin is shown, never its value.
    Secret(String),
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shown::Plain(value) => write!(f, "{value:?}"),
            Shown::Secret(origin) => write!(f, "<secret {origin}>"),
        }
    }
}

/// A setting change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingChange {
    /// Setting name.
    pub name: String,
    /// Value now, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Shown>,
    /// Value after the step.
    pub after: Shown,
    /// Whether the step also marks it sticky (it was not before).
    pub becomes_sticky: bool,
    /// Whether the step makes it travel with the content in swaps (it was sticky before).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub becomes_travelling: bool,
}

/// A secret pulled from Key Vault (names only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretPull {
    /// The setting it feeds.
    pub setting: String,
    /// The secret's name in the vault.
    pub secret: String,
    /// How it is delivered.
    pub delivery: SecretDelivery,
}

/// A health probe's parameters as planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    /// Path probed.
    pub path: String,
    /// Healthy statuses.
    pub statuses: Vec<u16>,
    /// Seconds between probes.
    pub interval_secs: u64,
    /// Consecutive successes needed (gate) or failures tolerated (watch).
    pub count: u32,
    /// Seconds allowed (gate) or watched (watch).
    pub window_secs: u64,
    /// Text the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
}

impl Probe {
    fn gate(spec: &HealthSpec) -> Self {
        Probe {
            path: spec.path.clone(),
            statuses: spec.statuses.clone(),
            interval_secs: spec.interval.as_secs(),
            count: spec.successes,
            window_secs: spec.timeout.as_secs(),
            body_contains: spec.body_contains.clone(),
        }
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Action {
    /// Take the release lock on the app.
    AcquireLock,
    /// Give the release lock back.
    ReleaseLock,
    /// Write the journal (site tags and a Kudu deployment record).
    WriteJournal {
        /// The phase recorded.
        phase: Phase,
    },
    /// Create a missing slot.
    CreateSlot {
        /// The slot.
        slot: String,
    },
    /// Read secrets from Key Vault and register their values for masking.
    PullSecrets {
        /// The vault.
        vault: String,
        /// The secrets, by name.
        secrets: Vec<SecretPull>,
    },
    /// Set app settings on a slot (only those that differ) and mark them sticky.
    SetSettings {
        /// The slot.
        slot: String,
        /// The changes.
        changes: Vec<SettingChange>,
    },
    /// Set the startup command.
    SetStartupCommand {
        /// The slot.
        slot: String,
        /// Now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<String>,
        /// After.
        after: String,
    },
    /// Set the built-in stack (`linuxFxVersion`) of a slot.
    SetStack {
        /// The slot.
        slot: String,
        /// Now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<String>,
        /// After.
        after: String,
    },
    /// Point a slot at a container image.
    SetImage {
        /// The slot.
        slot: String,
        /// Image now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<String>,
        /// Image after.
        after: String,
    },
    /// Build the zip package.
    BuildPackage {
        /// The package root.
        root: String,
    },
    /// Resolve and record the image tag.
    ResolveImage {
        /// `repository:tag`.
        image: String,
    },
    /// Deploy the zip package to a slot.
    DeployPackage {
        /// The slot.
        slot: String,
        /// SHA-256 of the package, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
    },
    /// Run a hook.
    RunHook {
        /// Hook name.
        name: String,
        /// Where it runs.
        run_where: HookWhere,
        /// The command.
        command: String,
        /// Its time limit in seconds.
        timeout_secs: u64,
        /// The undo command.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        undo: Option<String>,
        /// No undo: once it ran, the release cannot be fully taken back.
        point_of_no_return: bool,
    },
    /// Run a hook's undo command.
    UndoHook {
        /// Hook name.
        name: String,
        /// Where it runs.
        run_where: HookWhere,
        /// The undo command.
        command: String,
    },
    /// Probe a slot until it is healthy.
    HealthGate {
        /// The slot.
        slot: String,
        /// The probe.
        probe: Probe,
    },
    /// Swap two slots.
    Swap {
        /// The slot swapped in.
        source: String,
        /// The slot it replaces (production).
        target: String,
    },
    /// Swap with preview, phase one: apply the target's settings to the source.
    ApplySlotConfig {
        /// Source.
        source: String,
        /// Target.
        target: String,
    },
    /// Swap with preview, cancel: restore the source's own settings.
    ResetSlotConfig {
        /// Source.
        source: String,
    },
    /// Watch production through a window.
    Watch {
        /// The slot watched.
        slot: String,
        /// The probe.
        probe: Probe,
    },
    /// Nothing to do; the plan says why.
    Nothing,
}

impl Action {
    /// Whether the step changes the app in a way that the journal must record before and after.
    pub fn is_irreversible(&self) -> bool {
        matches!(
            self,
            Action::DeployPackage { .. }
                | Action::SetImage { .. }
                | Action::RunHook { .. }
                | Action::Swap { .. }
                | Action::ApplySlotConfig { .. }
        )
    }

    /// Whether the step changes the app in Azure (or runs a hook that may change its data): such a step
    /// runs only under the release lock, after the fencing check.
    pub fn changes_the_app(&self) -> bool {
        !matches!(
            self,
            Action::AcquireLock
                | Action::ReleaseLock
                | Action::PullSecrets { .. }
                | Action::BuildPackage { .. }
                | Action::ResolveImage { .. }
                | Action::HealthGate { .. }
                | Action::Watch { .. }
                | Action::Nothing
        )
    }

    /// A one-line human description.
    pub fn describe(&self) -> String {
        match self {
            Action::AcquireLock => "take the release lock".into(),
            Action::ReleaseLock => "release the lock".into(),
            Action::WriteJournal { phase } => format!("write journal: {phase}"),
            Action::CreateSlot { slot } => format!("create slot {slot}"),
            Action::PullSecrets { vault, secrets } => {
                let names: Vec<&str> = secrets.iter().map(|s| s.secret.as_str()).collect();
                format!(
                    "pull {} secret(s) from {vault}: {}",
                    names.len(),
                    names.join(", ")
                )
            }
            Action::SetSettings { slot, changes } => {
                format!("set {} setting(s) on {slot}", changes.len())
            }
            Action::SetStartupCommand {
                slot,
                before,
                after,
            } => format!(
                "set startup command on {slot}: {} -> {after:?}",
                before
                    .as_deref()
                    .map_or("(none)".into(), |b| format!("{b:?}"))
            ),
            Action::SetStack {
                slot,
                before,
                after,
            } => format!(
                "set stack on {slot}: {} -> {after}",
                before.as_deref().unwrap_or("(none)")
            ),
            Action::SetImage {
                slot,
                before,
                after,
            } => format!(
                "set image on {slot}: {} -> {after}",
                before.as_deref().unwrap_or("(none)")
            ),
            Action::BuildPackage { root } => format!("build package from {root}"),
            Action::ResolveImage { image } => format!("resolve image {image}"),
            Action::DeployPackage { slot, sha256 } => match sha256 {
                Some(sha) => format!("deploy package {} to {slot}", &sha[..sha.len().min(12)]),
                None => format!("deploy package to {slot}"),
            },
            Action::RunHook {
                name,
                run_where,
                point_of_no_return,
                ..
            } => format!(
                "run hook {name} ({}){}",
                match run_where {
                    HookWhere::Slot => "in the slot",
                    HookWhere::Agent => "on the agent",
                },
                if *point_of_no_return {
                    " [point of no return: no undo]"
                } else {
                    ""
                }
            ),
            Action::UndoHook { name, .. } => format!("undo hook {name}"),
            Action::HealthGate { slot, probe } => format!(
                "health gate {slot}{}: {} consecutive success(es) within {}s",
                probe.path, probe.count, probe.window_secs
            ),
            Action::Swap { source, target } => format!("swap {source} into {target}"),
            Action::ApplySlotConfig { source, target } => {
                format!("swap with preview: apply {target} settings to {source}")
            }
            Action::ResetSlotConfig { source } => format!("cancel swap preview on {source}"),
            Action::Watch { slot, probe } => format!(
                "watch {slot}{} for {}s (stop after {} failure(s))",
                probe.path, probe.window_secs, probe.count
            ),
            Action::Nothing => "nothing to do".into(),
        }
    }
}

impl Plan {
    /// Failed preflight checks.
    pub fn problems(&self) -> impl Iterator<Item = &Check> {
        self.preflight.iter().filter(|c| !c.ok)
    }

    /// The plan as pretty JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain owned data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The plan for people: concise, one line per step, details indented.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let env = self
            .environment
            .as_deref()
            .map(|e| format!(", environment {e}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "Plan for {} of {} (resource group {}{env}), release {}",
            self.stage,
            self.app,
            self.resource_group,
            crate::identity::label(
                self.release_name.as_deref().unwrap_or_default(),
                &self.release_id
            )
        );
        if !self.preflight.is_empty() {
            let _ = writeln!(out, "Preflight:");
            for check in &self.preflight {
                let mark = if check.ok { "ok  " } else { "FAIL" };
                let _ = writeln!(out, "  {mark} {}: {}", check.name, check.detail);
            }
        }
        let _ = writeln!(out, "Steps:");
        render_steps(&mut out, &self.steps);
        if !self.on_failure.is_empty() {
            let _ = writeln!(out, "On failure:");
            render_steps(&mut out, &self.on_failure);
        }
        out
    }
}

fn render_steps(out: &mut String, steps: &[Step]) {
    for (i, step) in steps.iter().enumerate() {
        let _ = writeln!(out, "  {:>2}. {}", i + 1, step.action.describe());
        let _ = writeln!(out, "      why: {}", step.reason);
        if let Action::SetSettings { changes, .. } = &step.action {
            for c in changes {
                let before = c
                    .before
                    .as_ref()
                    .map_or("(unset)".into(), |b| b.to_string());
                let sticky = if c.becomes_sticky {
                    " [sticky]"
                } else if c.becomes_travelling {
                    " [travels with the swap]"
                } else {
                    ""
                };
                let _ = writeln!(out, "      {}: {before} -> {}{sticky}", c.name, c.after);
            }
        }
        if let Action::RunHook { command, undo, .. } = &step.action {
            let _ = writeln!(out, "      command: {command}");
            if let Some(undo) = undo {
                let _ = writeln!(out, "      undo: {undo}");
            }
        }
    }
}

/// Everything a plan is computed from.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// The release.
    pub spec: &'a ReleaseSpec,
    /// The stage.
    pub stage: Stage,
    /// Overrides the stage's environment.
    pub environment: Option<&'a str>,
    /// The app as it is now.
    pub state: &'a LiveState,
    /// The build.
    pub build: &'a BuildInfo,
    /// A rollback that redeploys a release from its artifact: the config rendered with that release's
    /// variables (its build number, build id, commit), so the slot gets the settings it was released with.
    pub target: Option<&'a ReleaseSpec>,
}

/// Computes the plan for a stage. Pure: no I/O, same input gives the same plan.
pub fn compute(input: PlanInput<'_>) -> Result<Plan, Error> {
    let PlanInput {
        spec,
        stage,
        state,
        build,
        ..
    } = input;
    let journal = JournalTags::from_tags(&state.tags);
    let mut plan = Plan {
        plan_version: PLAN_VERSION,
        stage,
        app: spec.app.name.clone(),
        resource_group: spec.app.resource_group.clone(),
        environment: None,
        release_id: build.release_id.clone(),
        release_name: build
            .release_name
            .clone()
            .filter(|name| *name != build.release_id),
        preflight: Vec::new(),
        steps: Vec::new(),
        on_failure: Vec::new(),
        artifact: None,
    };
    match stage {
        Stage::Build => plan_build(spec, &mut plan),
        Stage::Staging => {
            let staging = spec
                .staging
                .as_ref()
                .ok_or(Error::StageNotConfigured { stage })?;
            let env_name = input.environment.unwrap_or(&staging.environment);
            let env = environment(spec, env_name)?;
            plan.environment = Some(env_name.to_owned());
            plan_staging(spec, env, staging, state, build, &journal, &mut plan);
        }
        Stage::Production => {
            let production = spec
                .production
                .as_ref()
                .ok_or(Error::StageNotConfigured { stage })?;
            let env_name = input.environment.unwrap_or(&production.environment);
            let env = environment(spec, env_name)?;
            plan.environment = Some(env_name.to_owned());
            plan_production(spec, env, production, state, build, &journal, &mut plan);
        }
        Stage::Rollback => plan_rollback(spec, input.target, state, &journal, build, &mut plan),
    }
    Ok(plan)
}

fn environment<'a>(spec: &'a ReleaseSpec, name: &str) -> Result<&'a EnvironmentSpec, Error> {
    spec.environments
        .get(name)
        .ok_or_else(|| Error::UnknownEnvironment {
            name: name.to_owned(),
        })
}

/// The post-swap watch of production with the production stage's health check, window and failure budget.
fn watch_step(production: &ProductionSpec, health: &HealthSpec, why: &str) -> Step {
    step(
        Action::Watch {
            slot: PRODUCTION.to_owned(),
            probe: Probe {
                path: health.path.clone(),
                statuses: health.statuses.clone(),
                interval_secs: health.interval.as_secs(),
                count: production.watch_max_failures,
                window_secs: production.watch_window.as_secs(),
                body_contains: health.body_contains.clone(),
            },
        },
        why,
    )
}

fn step(action: Action, reason: impl Into<String>) -> Step {
    Step {
        action,
        reason: reason.into(),
    }
}

fn check(name: &str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.to_owned(),
        ok,
        detail: detail.into(),
    }
}

fn plan_build(spec: &ReleaseSpec, plan: &mut Plan) {
    match &spec.app.kind {
        AppKind::Code { root, .. } => plan.steps.push(step(
            Action::BuildPackage {
                root: root.display().to_string(),
            },
            "a deterministic zip with a manifest is what staging deploys",
        )),
        AppKind::Container { repository, tag } => plan.steps.push(step(
            Action::ResolveImage {
                image: format!("{repository}:{tag}"),
            },
            "the image is built and pushed by your own step; its tag is recorded for staging",
        )),
    }
}

/// Preflight checks shared by every stage that changes the app.
fn common_preflight(state: &LiveState, journal: &JournalTags, plan: &mut Plan) {
    plan.preflight.push(check(
        "in-flight",
        state.in_flight.is_empty(),
        if state.in_flight.is_empty() {
            "no swap or deployment in flight".to_owned()
        } else {
            format!(
                "still running: {}; wait for it to finish and run again",
                state.in_flight.join(", ")
            )
        },
    ));
    let unfinished = journal.phase.filter(|p| !p.is_settled());
    plan.preflight.push(check(
        "journal",
        unfinished.is_none(),
        match (unfinished, journal.release.as_deref()) {
            (Some(phase), Some(release)) => format!(
                "release {release} stopped at phase `{phase}`; run `slot-release rollback` or the same stage again with --resume"
            ),
            (Some(phase), None) => format!("an unfinished release stopped at phase `{phase}`"),
            (None, _) => "no unfinished release".to_owned(),
        },
    ));
}

fn startup_preflight(spec: &ReleaseSpec, state: &LiveState, slot: &str, plan: &mut Plan) {
    let live = state.slot(slot);
    match &spec.app.kind {
        AppKind::Code { .. } => {
            let wanted = spec.app.startup_command.as_deref().map(str::trim);
            let has = wanted.filter(|c| !c.is_empty()).is_some()
                || live.and_then(|s| s.startup_command()).is_some();
            let ok = has || !spec.app.needs_startup_command;
            plan.preflight.push(check(
                "startup-command",
                ok,
                if ok {
                    "the stack's startup command rule holds".to_owned()
                } else {
                    format!(
                        "slot {slot} has no startup command and the config sets none; a blank one on this stack is an outage: set app.startupCommand"
                    )
                },
            ));
        }
        AppKind::Container { .. } => {
            let live_cmd = live.and_then(|s| s.startup_command());
            plan.preflight.push(check(
                "startup-command",
                spec.app.startup_command.is_none(),
                if spec.app.startup_command.is_none() {
                    match live_cmd {
                        Some(cmd) => format!(
                            "a container app carries no startup command; the slot's {cmd:?} will be cleared"
                        ),
                        None => "a container app carries no startup command".to_owned(),
                    }
                } else {
                    "a container app must not have a startup command: remove app.startupCommand"
                        .to_owned()
                },
            ));
        }
    }
}

/// Which of an environment's settings a step writes, and how each is marked.
#[derive(Debug, Clone, Copy)]
enum Written<'a> {
    /// Every setting: the names in the set travel with the swap, the others are sticky.
    All(&'a BTreeSet<String>),
    /// Only the sticky ones (production, released by a swap: the travelling ones arrive with it).
    StickyOnly(&'a BTreeSet<String>),
    /// Only the travelling plain ones that differ on the slot production swaps from (values of secrets
    /// were written there by the staging stage of this very release).
    TravellingOnly(&'a BTreeSet<String>),
}

impl Written<'_> {
    fn travelling(&self) -> &BTreeSet<String> {
        match self {
            Written::All(t) | Written::StickyOnly(t) | Written::TravellingOnly(t) => t,
        }
    }

    fn includes(&self, name: &str, secret_value: bool) -> bool {
        let travels = self.travelling().contains(name);
        match self {
            Written::All(_) => true,
            Written::StickyOnly(_) => !travels,
            Written::TravellingOnly(_) => travels && !secret_value,
        }
    }
}

fn settings_changes(
    env: &EnvironmentSpec,
    state: &LiveState,
    slot: &str,
    written: Written<'_>,
) -> (Option<Step>, Option<Step>) {
    let live = state.slot(slot);
    let mut changes = Vec::new();
    let mut secrets = Vec::new();
    let mut wanted: BTreeMap<&str, Shown> = env
        .settings
        .iter()
        .map(|(k, v)| (k.as_str(), Shown::Plain(v.clone())))
        .collect();
    for (setting, secret) in &env.secrets {
        secrets.push(SecretPull {
            setting: setting.clone(),
            secret: secret.secret.clone(),
            delivery: secret.delivery,
        });
        let vault = env.vault.as_deref().unwrap_or("vault");
        match secret.delivery {
            SecretDelivery::KeyVaultReference => {
                wanted.insert(
                    setting,
                    Shown::Plain(key_vault_reference(vault, &secret.secret)),
                );
            }
            SecretDelivery::Value => {
                wanted.insert(setting, Shown::Secret(format!("{vault}/{}", secret.secret)));
            }
            SecretDelivery::PipelineVariable => {}
        }
    }
    for (name, after) in wanted {
        let is_secret = matches!(after, Shown::Secret(_));
        if !written.includes(name, is_secret) {
            continue;
        }
        let before_raw = live.and_then(|s| s.settings.get(name));
        // A name the config delivers from Key Vault (by value or by reference) may hold a secret value
        // now: the plan never shows it.
        let secret_name = env.secrets.contains_key(name);
        let before = before_raw.map(|v| {
            if is_secret || secret_name {
                Shown::Secret("current value".into())
            } else {
                Shown::Plain(v.clone())
            }
        });
        // A secret delivered as a value cannot be compared without reading it, so it is always written.
        let same = match &after {
            Shown::Plain(v) => before_raw == Some(v),
            Shown::Secret(_) => false,
        };
        let sticky_now = state.sticky_settings.contains(name);
        let travels = written.travelling().contains(name);
        let becomes_sticky = !travels && !sticky_now;
        let becomes_travelling = travels && sticky_now;
        if same && !becomes_sticky && !becomes_travelling {
            continue;
        }
        changes.push(SettingChange {
            name: name.to_owned(),
            before,
            after,
            becomes_sticky,
            becomes_travelling,
        });
    }
    let pull = (!secrets.is_empty()).then(|| {
        step(
            Action::PullSecrets {
                vault: env.vault.clone().unwrap_or_default(),
                secrets,
            },
            "secrets come from Key Vault; each value is masked in the log the moment it is read",
        )
    });
    let set = (!changes.is_empty()).then(|| {
        step(
            Action::SetSettings {
                slot: slot.to_owned(),
                changes,
            },
            match written {
                Written::All(t) if !t.is_empty() => "only what differs; names with the same value in production travel with the swap, the others are sticky so a swap never carries one slot's value into another",
                Written::TravellingOnly(_) => "these names have the same value in production and reach it with the swap itself",
                _ if slot == PRODUCTION => "only what differs, written as sticky so a swap never carries them away; App Service restarts production when its settings change",
                _ => "settings written as sticky so a swap never carries one slot's values into another; only what differs",
            },
        )
    });
    (pull, set)
}

/// The App Service Key Vault reference syntax for a secret.
pub fn key_vault_reference(vault: &str, secret: &str) -> String {
    format!("@Microsoft.KeyVault(VaultName={vault};SecretName={secret})")
}

fn health_step(health: Option<&HealthSpec>, slot: &str, reason: &str) -> Option<Step> {
    health.map(|h| {
        step(
            Action::HealthGate {
                slot: slot.to_owned(),
                probe: Probe::gate(h),
            },
            reason,
        )
    })
}

fn plan_staging(
    spec: &ReleaseSpec,
    env: &EnvironmentSpec,
    staging: &crate::spec::StagingSpec,
    state: &LiveState,
    build: &BuildInfo,
    journal: &JournalTags,
    plan: &mut Plan,
) {
    let slot = env.slot.as_str();
    let exists = state.slot(slot).is_some();
    plan.preflight.push(check(
        "slot",
        exists || env.create_slot,
        if exists {
            format!("slot {slot} exists")
        } else if env.create_slot {
            format!("slot {slot} is missing and will be created")
        } else {
            format!(
                "slot {slot} does not exist; create it or set createSlot: true on the environment"
            )
        },
    ));
    plan.preflight.push(check(
        "target",
        slot != PRODUCTION,
        if slot == PRODUCTION {
            "the staging environment is bound to the production slot; staging must never touch production".to_owned()
        } else {
            format!("staging deploys to slot {slot}, not production")
        },
    ));
    startup_preflight(spec, state, slot, plan);
    let live = state.slot(slot);
    if let AppKind::Code { .. } = spec.app.kind {
        let run_from = live.and_then(|s| s.settings.get("WEBSITE_RUN_FROM_PACKAGE"));
        let url = run_from.is_some_and(|v| v.starts_with("http://") || v.starts_with("https://"));
        plan.preflight.push(check(
            "run-from-package",
            !url,
            if url {
                format!("WEBSITE_RUN_FROM_PACKAGE on {slot} points at a URL, which makes zip deploys fail with 409; remove the setting or set it to 1")
            } else {
                "WEBSITE_RUN_FROM_PACKAGE does not point at a URL".to_owned()
            },
        ));
        let scm_build = live
            .and_then(|s| s.settings.get("SCM_DO_BUILD_DURING_DEPLOYMENT"))
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        plan.preflight.push(check(
            "scm-build",
            !scm_build,
            if scm_build {
                format!("SCM_DO_BUILD_DURING_DEPLOYMENT is on for {slot}, but the package is already built; set it to false so the deployed bytes are the ones planned")
            } else {
                "the deployed package is used as built".to_owned()
            },
        ));
    }
    common_preflight(state, journal, plan);

    // Only the slot production swaps from has names that travel: they reach production with the swap.
    let travelling = if spec
        .production
        .as_ref()
        .is_some_and(|p| p.source_slot == slot)
    {
        spec.travelling_settings()
    } else {
        BTreeSet::new()
    };
    let (pull, set) = settings_changes(env, state, slot, Written::All(&travelling));
    // Secrets are read before the lock: reading changes nothing, and a missing or disabled secret then
    // fails the run before it has taken the lock or written anything.
    plan.steps.extend(pull);
    plan.steps.push(step(
        Action::AcquireLock,
        "two releases of the same app at once would interleave their changes",
    ));
    if !exists {
        plan.steps.push(step(
            Action::CreateSlot {
                slot: slot.to_owned(),
            },
            "the config asks for the slot to be created when missing",
        ));
    }
    plan.steps.push(step(
        Action::WriteJournal {
            phase: Phase::Staging,
        },
        "a later run must know a release was started here",
    ));
    plan.steps.extend(set);
    push_site_changes(spec, state, slot, plan, "the slot must run the new release");
    if let AppKind::Code { .. } = spec.app.kind {
        plan.steps.push(step(
            Action::DeployPackage {
                slot: slot.to_owned(),
                sha256: build.package_sha256.clone(),
            },
            "the release's package goes to the slot, never to production directly",
        ));
    }
    plan.steps.push(step(
        Action::WriteJournal {
            phase: Phase::Deployed,
        },
        "the slot now holds the release",
    ));
    push_hooks(&staging.hooks, &mut plan.steps);
    plan.steps.extend(health_step(
        staging.health.as_ref(),
        slot,
        "production is only touched once the slot is healthy",
    ));
    plan.steps.push(step(
        Action::WriteJournal {
            phase: Phase::Staged,
        },
        "production will verify the slot holds this release before swapping",
    ));
    plan.steps
        .push(step(Action::ReleaseLock, "the stage is done"));

    push_undos(
        &staging.hooks,
        &mut plan.on_failure,
        "hooks already run are undone in reverse order (only those that ran)",
    );
    plan.on_failure.push(step(
        Action::WriteJournal {
            phase: Phase::Failed,
        },
        "the slot is marked failed; production is not touched",
    ));
    plan.on_failure
        .push(step(Action::ReleaseLock, "the stage is over"));
}

fn push_hooks(hooks: &[crate::spec::HookSpec], steps: &mut Vec<Step>) {
    for hook in hooks {
        steps.push(step(
            Action::RunHook {
                name: hook.name.clone(),
                run_where: hook.run_where,
                command: hook.command.clone(),
                timeout_secs: hook.timeout.as_secs(),
                undo: hook.undo.clone(),
                point_of_no_return: hook.undo.is_none(),
            },
            if hook.undo.is_some() {
                "configured hook; its undo runs if a later step fails"
            } else {
                "configured hook with no undo: once it ran, failure cannot take its effect back"
            },
        ));
    }
}

fn push_undos(hooks: &[crate::spec::HookSpec], steps: &mut Vec<Step>, reason: &str) {
    for hook in hooks.iter().rev() {
        if let Some(undo) = &hook.undo {
            steps.push(step(
                Action::UndoHook {
                    name: hook.name.clone(),
                    run_where: hook.run_where,
                    command: undo.clone(),
                },
                reason,
            ));
        }
    }
}

/// Startup command and image changes for a slot, only where they differ.
fn push_site_changes(
    spec: &ReleaseSpec,
    state: &LiveState,
    slot: &str,
    plan: &mut Plan,
    why: &str,
) {
    let live = state.slot(slot);
    match &spec.app.kind {
        AppKind::Code { .. } => {
            if let Some(stack) = spec.app.stack.as_deref() {
                let before = live.and_then(|s| s.linux_fx_version.clone());
                if before.as_deref() != Some(stack) {
                    plan.steps.push(step(
                        Action::SetStack {
                            slot: slot.to_owned(),
                            before,
                            after: stack.to_owned(),
                        },
                        "the slot must run the configured stack",
                    ));
                }
            }
            if let Some(wanted) = spec.app.startup_command.as_deref() {
                let before = live.and_then(|s| s.startup_command()).map(str::to_owned);
                if before.as_deref() != Some(wanted) {
                    plan.steps.push(step(
                        Action::SetStartupCommand {
                            slot: slot.to_owned(),
                            before,
                            after: wanted.to_owned(),
                        },
                        "the stack needs the configured startup command",
                    ));
                }
            }
        }
        AppKind::Container { repository, tag } => {
            let after = format!("{repository}:{tag}");
            let before = live.and_then(|s| s.image()).map(str::to_owned);
            if before.as_deref() != Some(after.as_str()) {
                plan.steps.push(step(
                    Action::SetImage {
                        slot: slot.to_owned(),
                        before,
                        after,
                    },
                    why,
                ));
            }
        }
    }
}

fn plan_production(
    spec: &ReleaseSpec,
    env: &EnvironmentSpec,
    production: &crate::spec::ProductionSpec,
    state: &LiveState,
    build: &BuildInfo,
    journal: &JournalTags,
    plan: &mut Plan,
) {
    let source = production.source_slot.as_str();
    let direct = source == PRODUCTION;
    common_preflight(state, journal, plan);
    let serving = state.slot(PRODUCTION).and_then(|s| s.release.as_deref());
    if !direct && serving == Some(build.release_id.as_str()) {
        plan_production_resumed(production, build, plan);
        return;
    }
    if direct {
        plan.preflight.push(check(
            "source",
            matches!(spec.app.kind, AppKind::Container { .. }),
            if matches!(spec.app.kind, AppKind::Container { .. }) {
                "no staging slot: the image is set on production directly".to_owned()
            } else {
                "a code app is released through a slot; set stages.production.sourceSlot to the staged slot"
                    .to_owned()
            },
        ));
    } else {
        let held = state.slot(source).and_then(|s| s.release.as_deref());
        let expected = journal.slot_release(source);
        let ok = state.slot(source).is_some()
            && held == Some(build.release_id.as_str())
            && (expected.is_none() || expected == held)
            && journal.phase == Some(Phase::Staged);
        plan.preflight.push(check(
            "staged-release",
            ok || build.assume_staged,
            if !ok && build.assume_staged {
                format!(
                    "assumed for this plan: slot {source} holds release {} once the staging stage ran (it holds {} now)",
                    build.release_id,
                    held.unwrap_or("an unknown release")
                )
            } else if ok {
                format!("slot {source} holds release {} and passed its gate", build.release_id)
            } else {
                format!(
                    "slot {source} holds {} (journal phase {}), not a staged release {}; run the staging stage for this release first",
                    held.unwrap_or("an unknown release"),
                    journal.phase.map_or("none".to_owned(), |p| p.to_string()),
                    build.release_id
                )
            },
        ));
    }

    let travelling = spec.travelling_settings();
    let (pull, set) = settings_changes(env, state, PRODUCTION, Written::StickyOnly(&travelling));
    // Read before the lock: a missing secret fails the run before it takes the lock.
    plan.steps.extend(pull);
    plan.steps.push(step(
        Action::AcquireLock,
        "two releases of the same app at once would interleave their changes",
    ));
    plan.steps.extend(set);
    if !direct {
        let (_, travel) =
            settings_changes(env, state, source, Written::TravellingOnly(&travelling));
        plan.steps.extend(travel);
    }
    push_hooks(&production.hooks, &mut plan.steps);
    plan.steps.push(step(
        Action::WriteJournal {
            phase: Phase::Swapping,
        },
        "a run cut short during the swap must be recognised by the next one",
    ));
    if direct {
        push_site_changes(
            spec,
            state,
            PRODUCTION,
            plan,
            "there is no staging slot: production takes the new image, the previous tag is recorded for rollback",
        );
    } else {
        if production.strategy == Strategy::SwapWithPreview {
            plan.steps.push(step(
                Action::ApplySlotConfig {
                    source: source.to_owned(),
                    target: PRODUCTION.to_owned(),
                },
                "the release is first verified with production's settings before it serves traffic",
            ));
            plan.steps.extend(health_step(
                production.health.as_ref(),
                source,
                "the release must be healthy with production's settings",
            ));
        }
        plan.steps.push(step(
            Action::Swap {
                source: source.to_owned(),
                target: PRODUCTION.to_owned(),
            },
            "the warmed-up slot takes production traffic with no downtime",
        ));
    }
    plan.steps.push(step(
        Action::WriteJournal {
            phase: Phase::Swapped,
        },
        "production now serves the release; the previous one is kept for rollback",
    ));
    if let Some(health) = &production.health {
        plan.steps.push(watch_step(
            production,
            health,
            if direct {
                "production is watched so a bad release is caught while the previous tag is one image change away"
            } else {
                "production is watched so a bad release is caught while the previous one is one swap away"
            },
        ));
    }
    plan.steps.push(step(
        Action::WriteJournal {
            phase: Phase::Released,
        },
        "the release becomes the last known-good one",
    ));
    plan.steps
        .push(step(Action::ReleaseLock, "the stage is done"));

    match production.rollback {
        RollbackMode::Automatic => {
            if direct {
                if let Some(previous) = state.slot(PRODUCTION).and_then(|s| s.image()) {
                    let new_image = match &spec.app.kind {
                        AppKind::Container { repository, tag } => {
                            Some(format!("{repository}:{tag}"))
                        }
                        AppKind::Code { .. } => None,
                    };
                    plan.on_failure.push(step(
                        Action::SetImage {
                            slot: PRODUCTION.to_owned(),
                            before: new_image,
                            after: previous.to_owned(),
                        },
                        "automatic rollback: the previous tag goes back",
                    ));
                }
            } else {
                if production.strategy == Strategy::SwapWithPreview {
                    plan.on_failure.push(step(
                        Action::ResetSlotConfig {
                            source: source.to_owned(),
                        },
                        "a failed preview is cancelled before production is touched",
                    ));
                }
                plan.on_failure.push(step(
                    Action::Swap {
                        source: source.to_owned(),
                        target: PRODUCTION.to_owned(),
                    },
                    "automatic rollback, only if the swap happened: swapping back restores the previous release",
                ));
            }
            plan.on_failure.extend(health_step(
                production.health.as_ref(),
                PRODUCTION,
                "production must be healthy again after the rollback",
            ));
            if production.undo_hooks_on_rollback {
                let reason = "the config allows undoing hooks after a rollback";
                push_undos(&production.hooks, &mut plan.on_failure, reason);
                if let Some(staging) = &spec.staging {
                    push_undos(&staging.hooks, &mut plan.on_failure, reason);
                }
            }
            plan.on_failure.push(step(
                Action::WriteJournal {
                    phase: Phase::RolledBack,
                },
                "the previous release is the last known-good again",
            ));
        }
        RollbackMode::Manual => plan.on_failure.push(step(
            Action::WriteJournal {
                phase: Phase::Failed,
            },
            "rollback is manual: run `slot-release rollback`",
        )),
    }
    plan.on_failure
        .push(step(Action::ReleaseLock, "the stage is over"));
}

/// Production already serves the release (a run stopped after the swap): finish the watch and record it.
fn plan_production_resumed(
    production: &crate::spec::ProductionSpec,
    build: &BuildInfo,
    plan: &mut Plan,
) {
    plan.preflight.push(check(
        "staged-release",
        true,
        format!(
            "production already serves release {}: the swap happened, only the watch remains",
            build.release_id
        ),
    ));
    plan.steps.push(step(
        Action::AcquireLock,
        "two releases of the same app at once would interleave their changes",
    ));
    plan.steps.push(step(
        Action::WriteJournal {
            phase: Phase::Swapped,
        },
        "production serves the release; the previous one is kept for rollback",
    ));
    if let Some(health) = &production.health {
        plan.steps.push(watch_step(
            production,
            health,
            "the watch of the interrupted run did not finish",
        ));
    }
    plan.steps.push(step(
        Action::WriteJournal {
            phase: Phase::Released,
        },
        "the release becomes the last known-good one",
    ));
    plan.steps
        .push(step(Action::ReleaseLock, "the stage is done"));
    if production.rollback == RollbackMode::Automatic {
        plan.on_failure.push(step(
            Action::Swap {
                source: production.source_slot.clone(),
                target: PRODUCTION.to_owned(),
            },
            "automatic rollback: swapping back restores the previous release",
        ));
        plan.on_failure.push(step(
            Action::WriteJournal {
                phase: Phase::RolledBack,
            },
            "the previous release is the last known-good again",
        ));
    } else {
        plan.on_failure.push(step(
            Action::WriteJournal {
                phase: Phase::Failed,
            },
            "rollback is manual: run `slot-release rollback`",
        ));
    }
    plan.on_failure
        .push(step(Action::ReleaseLock, "the stage is over"));
}

/// The release a rollback restores: the one named (`--to`); else, when the journal's latest release is the
/// one production runs and it is in the history, the release before it (a release that passed its watch and
/// turned out bad later); else the last known-good release (closing a release that stopped or failed, which
/// is a no-op when production already runs it, so a second rollback changes nothing).
fn rollback_target<'a>(
    journal: &'a JournalTags,
    build: &BuildInfo,
) -> Result<(Option<String>, Option<&'a crate::history::Entry>), String> {
    let history = &journal.history;
    if let Some(wanted) = build.rollback_to.as_deref() {
        if let Ok(entry) = crate::history::find(history, wanted) {
            return Ok((Some(entry.id.clone()), Some(entry)));
        }
        if journal.last_known_good.as_deref() == Some(wanted) {
            return Ok((Some(wanted.to_owned()), None));
        }
        return crate::history::find(history, wanted).map(|_| (None, None));
    }
    let settled = journal.phase.is_none_or(|p| p.is_settled());
    let production = journal.slot_release(PRODUCTION);
    if settled
        && let Some(latest) = journal.release.as_deref()
        && production == Some(latest)
        && history.iter().any(|e| e.id == latest)
    {
        return match crate::history::before(history, latest) {
            Some(previous) => Ok((Some(previous.id.clone()), Some(previous))),
            None => Err(format!(
                "production runs {latest}, the oldest release in the app's history, so there is no earlier release to return to; name one with --to"
            )),
        };
    }
    let lkg = journal.last_known_good.clone();
    let entry = lkg
        .as_deref()
        .and_then(|id| history.iter().find(|e| e.id == id));
    Ok((lkg, entry))
}

fn plan_rollback(
    spec: &ReleaseSpec,
    target: Option<&ReleaseSpec>,
    state: &LiveState,
    journal: &JournalTags,
    build: &BuildInfo,
    plan: &mut Plan,
) {
    let (lkg, target_entry) = match rollback_target(journal, build) {
        Ok(target) => target,
        Err(why) => {
            plan.preflight.push(check("rollback-target", false, why));
            return;
        }
    };
    plan.release_id = lkg.clone().unwrap_or_default();
    plan.release_name = target_entry
        .map(|e| e.name.clone())
        .filter(|name| !name.is_empty() && Some(name) != lkg.as_ref());
    plan.preflight.push(check(
        "in-flight",
        state.in_flight.is_empty(),
        if state.in_flight.is_empty() {
            "no swap or deployment in flight".to_owned()
        } else {
            format!("still running: {}", state.in_flight.join(", "))
        },
    ));
    let production_release = journal.slot_release(PRODUCTION);
    let Some(lkg) = lkg else {
        plan.preflight.push(check(
            "last-known-good",
            false,
            "the journal records no last known-good release, so there is nothing to restore; redeploy a known release with the staging and production stages",
        ));
        return;
    };
    if production_release == Some(lkg.as_str()) {
        if journal.phase.is_none_or(|p| p.is_settled()) {
            plan.steps.push(step(
                Action::Nothing,
                format!("production already runs the last known-good release {lkg}"),
            ));
            if !journal.previous_settings.is_empty() {
                // A stopped production stage wrote its settings on production before a swap that never
                // happened: closing the journal puts production's own values back.
                plan.steps = vec![step(
                    Action::WriteJournal {
                        phase: Phase::RolledBack,
                    },
                    format!(
                        "production runs {lkg} but holds settings another release wrote; they are put back"
                    ),
                )];
            }
            if !journal.previous_settings.is_empty() {
                // Putting production's settings back is a change: it happens under the lock.
                plan.steps.insert(
                    0,
                    step(
                        Action::AcquireLock,
                        "a rollback must not race another release",
                    ),
                );
                plan.steps
                    .push(step(Action::ReleaseLock, "the stage is done"));
            }
        } else {
            // A release stopped before touching production: nothing to restore, only the journal to close.
            plan.steps = vec![
                step(
                    Action::AcquireLock,
                    "a rollback must not race another release",
                ),
                step(
                    Action::WriteJournal {
                        phase: Phase::RolledBack,
                    },
                    format!(
                        "production already runs the last known-good release {lkg}; the unfinished release is closed"
                    ),
                ),
                step(Action::ReleaseLock, "the stage is done"),
            ];
        }
        return;
    }
    let source_slot = spec
        .production
        .as_ref()
        .map(|p| p.source_slot.as_str())
        .filter(|s| *s != PRODUCTION);
    let lkg_slot = source_slot.filter(|slot| journal.slot_release(slot) == Some(lkg.as_str()));
    // The target's own image when the history records it; else the image production ran before the
    // current release (the journal's, for the last known-good release).
    let previous_image = match &spec.app.kind {
        AppKind::Container { .. } => target_entry
            .and_then(|e| e.image.as_deref())
            .or(journal.previous_image.as_deref()),
        AppKind::Code { .. } => None,
    };
    // How people and the history name the target: its build number and the run whose artifact holds it.
    let target_label = target_entry.map_or_else(|| lkg.clone(), crate::history::Entry::label);
    let artifact = target_entry.and_then(|e| e.artifact.as_ref());
    let redeploy = match (artifact, target_entry.and_then(|e| e.run.as_deref())) {
        (Some(source), _) => format!(
            "download {}{} and give its zip to the rollback (--package, task input package)",
            source.describe(),
            target_entry
                .and_then(|e| e.package_sha256.as_deref())
                .map_or(String::new(), |sha| format!(", package sha256 {sha},"))
        ),
        (None, Some(run)) => format!(
            "run the staging and production stages of {run} again (its artifact holds release {target_label}{})",
            target_entry
                .and_then(|e| e.package_sha256.as_deref())
                .map_or(String::new(), |sha| format!(", package sha256 {sha}"))
        ),
        (None, None) => format!("redeploy {target_label} with the staging and production stages"),
    };
    let restore = spec.rollback.as_ref().map(|r| r.restore);
    plan.preflight.push(check(
        "restore",
        true,
        match restore {
            Some(Restore::SwapBack) => {
                "stages.rollback.restore is swapBack: only a swap back restores production".to_owned()
            }
            Some(Restore::LastKnownGood) => {
                "stages.rollback.restore is lastKnownGood: the release is redeployed (through the staging slot when production swaps from one)".to_owned()
            }
            None => "no stages.rollback: swap back when possible, else put the previous image back".to_owned(),
        },
    ));
    // A code release in no slot comes back from its artifact: the package given to the run, checked
    // against the digest the history recorded, is deployed to the staging slot, gated, then swapped in.
    let recorded = target_entry.and_then(|e| e.package_sha256.as_deref());
    let in_no_slot = matches!(spec.app.kind, AppKind::Code { .. }) && lkg_slot.is_none();
    let given = build.package_sha256.as_deref();
    // A plan for a later job (`plan --stage rollback` before the artifact is downloaded) is made as if the
    // recorded package were given; the run itself checks the bytes it is given.
    let expected = given.or(recorded.filter(|_| build.package_later && artifact.is_some()));
    let redeployable = match (source_slot, in_no_slot) {
        (Some(slot), true) => expected.map(|sha| (slot, sha)),
        _ => None,
    };
    if in_no_slot && source_slot.is_some() {
        plan.artifact = artifact.cloned();
    }
    match (redeployable, given) {
        (Some((_, given)), Some(_)) => {
            let matches = recorded == Some(given);
            plan.preflight.push(check(
                "package",
                matches,
                match recorded {
                    Some(r) if r == given => format!(
                        "the package given is release {target_label}'s (sha256 {given})"
                    ),
                    Some(r) => format!(
                        "the package given (sha256 {given}) is not release {target_label}'s package (sha256 {r}); {redeploy}"
                    ),
                    None => format!(
                        "the history records no package digest for release {target_label}, so the package given (sha256 {given}) cannot be verified; redeploy it with the staging and production stages"
                    ),
                },
            ));
            if !matches {
                return;
            }
        }
        (Some((_, recorded)), None) => plan.preflight.push(check(
            "package",
            true,
            format!(
                "release {target_label} is in no slot: the rollback job needs its package (sha256 {recorded}): {redeploy}"
            ),
        )),
        (None, _) => {}
    }
    // What the rollback does: the configured restore, or (no rollback stage) whichever is possible.
    let method = match restore {
        _ if redeployable.is_some() => Ok(RestoreBy::Redeploy(
            redeployable.map(|(slot, _)| slot).unwrap_or_default(),
        )),
        Some(Restore::SwapBack) => lkg_slot
            .map(RestoreBy::Swap)
            .ok_or_else(|| {
                swap_back_refusal(
                    spec,
                    journal,
                    source_slot,
                    previous_image,
                    &target_label,
                    &redeploy,
                )
            }),
        Some(Restore::LastKnownGood) => match (&spec.app.kind, previous_image) {
            (AppKind::Container { .. }, Some(image)) => Ok(image_restore(source_slot, image)),
            (AppKind::Container { .. }, None) => Err(format!(
                "restore is lastKnownGood, but the journal records no previous image for release {lkg}, so there is no tag to put back; redeploy it with the staging and production stages"
            )),
            (AppKind::Code { .. }, _) => Err(format!(
                "restore is lastKnownGood, but a code app's package stays with the pipeline run that built it and the journal keeps no copy of release {lkg}'s package; run the staging and production stages for {lkg}, or set stages.rollback.restore to swapBack{}",
                lkg_slot.map_or(String::new(), |slot| format!(" (slot {slot} holds it)"))
            )),
        },
        None => lkg_slot
            .map(RestoreBy::Swap)
            .or(previous_image.map(|image| image_restore(source_slot, image)))
            .ok_or_else(|| {
                format!(
                    "release {target_label} is in no slot and no image of it is recorded, so it cannot be restored by a swap; {redeploy}"
                )
            }),
    };
    let mut steps = vec![step(
        Action::AcquireLock,
        "a rollback must not race another release",
    )];
    let redeploying = matches!(method, Ok(RestoreBy::Redeploy(_) | RestoreBy::ImageVia(..)));
    match method {
        Ok(RestoreBy::Swap(slot)) => {
            let held = state.slot(slot).and_then(|s| s.release.as_deref());
            let verified = held == Some(lkg.as_str());
            plan.preflight.push(check(
                "last-known-good",
                verified,
                if verified {
                    format!("slot {slot} holds the last known-good release {lkg}")
                } else {
                    format!(
                        "the journal says slot {slot} holds {lkg} but its deployment record says {}; refusing to swap an unverified release",
                        held.unwrap_or("nothing")
                    )
                },
            ));
            steps.push(step(
                Action::WriteJournal {
                    phase: Phase::RollingBack,
                },
                "a run cut short during the rollback must be recognised",
            ));
            steps.push(step(
                Action::Swap {
                    source: slot.to_owned(),
                    target: PRODUCTION.to_owned(),
                },
                format!("the last known-good release {lkg} is in slot {slot}: swap it back"),
            ));
        }
        Ok(RestoreBy::Image(previous)) => {
            plan.preflight.push(check(
                "last-known-good",
                true,
                format!("the journal records the previous image {previous}"),
            ));
            steps.push(step(
                Action::WriteJournal {
                    phase: Phase::RollingBack,
                },
                "a run cut short during the rollback must be recognised",
            ));
            steps.push(step(
                Action::SetImage {
                    slot: PRODUCTION.to_owned(),
                    before: state
                        .slot(PRODUCTION)
                        .and_then(|s| s.image())
                        .map(str::to_owned),
                    after: previous.to_owned(),
                },
                format!("the previous known-good image of release {lkg} is put back"),
            ));
        }
        Ok(RestoreBy::ImageVia(slot, image)) => {
            plan.preflight.push(check(
                "last-known-good",
                true,
                format!("release {target_label}'s image is recorded: {image}"),
            ));
            steps.push(step(
                Action::WriteJournal {
                    phase: Phase::RollingBack,
                },
                "a run cut short during the rollback must be recognised",
            ));
            steps.push(step(
                Action::SetImage {
                    slot: slot.to_owned(),
                    before: state.slot(slot).and_then(|s| s.image()).map(str::to_owned),
                    after: image.to_owned(),
                },
                format!(
                    "release {target_label} is in no slot: its image goes to slot {slot}, never to production directly"
                ),
            ));
            if let Some(staging) = &spec.staging {
                push_hooks(&staging.hooks, &mut steps);
            }
            let staging_health = spec.staging.as_ref().and_then(|s| s.health.as_ref());
            steps.extend(health_step(
                staging_health,
                slot,
                "production is only touched once the slot is healthy",
            ));
            steps.push(step(
                Action::Swap {
                    source: slot.to_owned(),
                    target: PRODUCTION.to_owned(),
                },
                format!("release {target_label} passed its gate in slot {slot}: swap it in"),
            ));
        }
        Ok(RestoreBy::Redeploy(slot)) => {
            steps.push(step(
                Action::WriteJournal {
                    phase: Phase::RollingBack,
                },
                "a run cut short during the rollback must be recognised",
            ));
            steps.push(step(
                Action::DeployPackage {
                    slot: slot.to_owned(),
                    sha256: redeployable.map(|(_, sha)| sha.to_owned()),
                },
                format!(
                    "release {target_label} is in no slot: its package goes to slot {slot}, never to production directly"
                ),
            ));
            // The settings that travel with the swap, as that release was released with them (a setting
            // from `$(Build.BuildNumber)` names it again); sticky ones stay with production's slot.
            let environment = spec
                .rollback
                .as_ref()
                .map(|r| r.environment.as_str())
                .or(spec.production.as_ref().map(|p| p.environment.as_str()));
            if let Some(env) = target
                .zip(environment)
                .and_then(|(t, name)| t.environments.get(name))
            {
                let travelling = spec.travelling_settings();
                let (pull, travel) =
                    settings_changes(env, state, slot, Written::TravellingOnly(&travelling));
                // Read before the lock, as every stage reads its secrets.
                for (at, p) in pull.into_iter().enumerate() {
                    steps.insert(at, p);
                }
                steps.extend(travel);
            }
            // The release's own staging hooks (its migrations) run as they did when it was staged.
            if let Some(staging) = &spec.staging {
                push_hooks(&staging.hooks, &mut steps);
            }
            let staging_health = spec.staging.as_ref().and_then(|s| s.health.as_ref());
            steps.extend(health_step(
                staging_health,
                slot,
                "production is only touched once the slot is healthy",
            ));
            steps.push(step(
                Action::Swap {
                    source: slot.to_owned(),
                    target: PRODUCTION.to_owned(),
                },
                format!("release {target_label} passed its gate in slot {slot}: swap it in"),
            ));
        }
        Err(why) => {
            plan.preflight.push(check("last-known-good", false, why));
            return;
        }
    }
    if let Some(health) = spec
        .rollback
        .as_ref()
        .and_then(|r| r.health.as_ref())
        .or(spec.production.as_ref().and_then(|p| p.health.as_ref()))
    {
        steps.push(step(
            Action::HealthGate {
                slot: PRODUCTION.to_owned(),
                probe: Probe::gate(health),
            },
            "production must be healthy after the rollback",
        ));
    }
    // A redeployed release ran its own hooks: nothing of the release taken out is undone after them.
    if spec.rollback.as_ref().is_some_and(|r| r.undo_hooks) && !redeploying {
        // The rolled-back release's hooks (e.g. its migration) are undone once production no longer runs it.
        let reason = "the config asks the rollback to undo the hooks of the release taken out";
        if let Some(production) = &spec.production {
            push_undos(&production.hooks, &mut steps, reason);
        }
        if let Some(staging) = &spec.staging {
            push_undos(&staging.hooks, &mut steps, reason);
        }
    }
    steps.push(step(
        Action::WriteJournal {
            phase: Phase::RolledBack,
        },
        "the restored release is recorded as serving production",
    ));
    steps.push(step(Action::ReleaseLock, "the stage is done"));
    plan.steps = steps;
}

/// Why `restore: swapBack` cannot restore `lkg`, and what would.
fn swap_back_refusal(
    spec: &ReleaseSpec,
    journal: &JournalTags,
    source_slot: Option<&str>,
    previous_image: Option<&str>,
    lkg: &str,
    redeploy: &str,
) -> String {
    let Some(slot) = source_slot else {
        return "restore is swapBack, but production has no source slot (its image was set directly), so there is nothing to swap back; set stages.rollback.restore to lastKnownGood to put the previous image back".to_owned();
    };
    let way_out = match (&spec.app.kind, previous_image) {
        (AppKind::Container { .. }, Some(_)) => {
            "set stages.rollback.restore to lastKnownGood to put its image back".to_owned()
        }
        _ => redeploy.to_owned(),
    };
    format!(
        "restore is swapBack, but slot {slot} holds {} per the journal, not release {lkg}, so swapping back would not restore it; {way_out}",
        journal.slot_release(slot).unwrap_or("no recorded release"),
    )
}

/// How a rollback puts the last known-good release back.
enum RestoreBy<'a> {
    /// Swap this slot, which holds it, into production.
    Swap(&'a str),
    /// Set this image (its recorded tag) on production.
    Image(&'a str),
    /// Deploy the given package (its artifact) to this slot, gate it, and swap it in.
    Redeploy(&'a str),
    /// Set this image on this slot, gate it, and swap it in.
    ImageVia(&'a str, &'a str),
}

/// How a container's recorded image comes back: through the slot production swaps from when there is one,
/// so production is only touched once the image answers its gate there; else on production, as its
/// releases are.
fn image_restore<'a>(source_slot: Option<&'a str>, image: &'a str) -> RestoreBy<'a> {
    match source_slot {
        Some(slot) => RestoreBy::ImageVia(slot, image),
        None => RestoreBy::Image(image),
    }
}

/// The JSON Schema of the plan document.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<Plan>();
    serde_json::to_value(schema).unwrap_or_default()
}

#[cfg(test)]
mod stage_names {
    use super::*;

    #[test]
    fn a_mistyped_stage_gets_a_suggestion() {
        assert_eq!(Stage::closest("prod"), Some("production"));
        assert_eq!(Stage::closest("Stagging"), Some("staging"));
        assert_eq!(Stage::closest("rollbak"), Some("rollback"));
        assert_eq!(Stage::closest("deploy"), None);
        let err = "prod".parse::<Stage>().unwrap_err().to_string();
        assert!(err.contains("did you mean `production`?"), "{err}");
    }
}
