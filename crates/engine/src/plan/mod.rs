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
    AppKind, EnvironmentSpec, Gate, HookWhere, ProductionSpec, ReleaseSpec, Restore, RollbackMode,
    SecretDelivery, Strategy,
};
use crate::state::{LiveState, SlotName};

mod canary;
mod connection_strings;
mod containers;
mod dependencies;
mod functions;
mod owned;
mod production;
mod render;
mod rollback;
mod site_config;
mod staging;
mod steps;

pub use connection_strings::{
    Concealed, ConnectionStringChange, connection_string_secret_key, is_connection_string_key,
};
use connection_strings::{connection_string_changes, connection_string_pulls, sticky_preflight};
pub use containers::COMPOSE_RETIREMENT;
use containers::{containers_preflight, sidecars_kept};
use dependencies::*;
use functions::*;
pub use functions::{HOST_JSON, WORKER_RUNTIME};
use owned::*;
pub use owned::{Ownership, SettingRemoval};
use production::*;
use rollback::*;
pub use site_config::SiteConfigChange;
use site_config::push_site_config;
pub(crate) use site_config::site_settings_of;
use staging::*;
pub use steps::key_vault_reference;
use steps::*;

/// The version of the plan's JSON form.
pub const PLAN_VERSION: u32 = 2;

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
    /// The package's layout (file names, `package.json`'s start script), when the package is at hand:
    /// the startup and dependency checks judge it against the stack.
    #[serde(skip)]
    pub layout: Option<crate::package::PackageFiles>,
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
    /// The setting names the stage records as owned on its slot, so a later release can remove those its
    /// config no longer declares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owns: Option<Ownership>,
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
    /// Taken by `secrets.select` (from the vault's listing) rather than named in `secrets.map`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub selected: bool,
    /// It feeds the connection string named `setting`, not an app setting.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub connection_string: bool,
}

impl SecretPull {
    /// The key its value is kept under once pulled: the setting's name, or the connection string's
    /// ([`connection_string_secret_key`]), which cannot clash with a setting's.
    pub fn key(&self) -> String {
        if self.connection_string {
            connection_string_secret_key(&self.setting)
        } else {
            self.setting.clone()
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
        #[schemars(with = "String")]
        slot: SlotName,
    },
    /// Read secrets from Key Vault and register their values for masking.
    PullSecrets {
        /// The vault.
        vault: String,
        /// The secrets, by name.
        secrets: Vec<SecretPull>,
        /// Secrets `secrets.select` matched but the vault's listing left out (disabled, expired).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skipped: Vec<crate::selection::SkippedSecret>,
    },
    /// Set app settings on a slot (only those that differ) and mark them sticky.
    SetSettings {
        /// The slot.
        #[schemars(with = "String")]
        slot: SlotName,
        /// The changes.
        changes: Vec<SettingChange>,
    },
    /// Remove app settings the config owned and no longer declares from a slot.
    RemoveSettings {
        /// The slot.
        #[schemars(with = "String")]
        slot: SlotName,
        /// The names, each with why.
        removals: Vec<SettingRemoval>,
    },
    /// Set connection strings on a slot (only those that differ) and mark them sticky or travelling.
    SetConnectionStrings {
        /// The slot.
        #[schemars(with = "String")]
        slot: SlotName,
        /// The changes: names, types and where each value comes from, never a value.
        changes: Vec<ConnectionStringChange>,
    },
    /// Remove connection strings the config owned and no longer declares from a slot.
    RemoveConnectionStrings {
        /// The slot.
        #[schemars(with = "String")]
        slot: SlotName,
        /// The names, each with why.
        removals: Vec<SettingRemoval>,
    },
    /// Set general settings of a slot (`config/web`), only those that differ, in one request.
    SetSiteConfig {
        /// The slot.
        #[schemars(with = "String")]
        slot: SlotName,
        /// The changes.
        changes: Vec<SiteConfigChange>,
    },
    /// Set the startup command.
    SetStartupCommand {
        /// The slot.
        #[schemars(with = "String")]
        slot: SlotName,
        /// Now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<String>,
        /// After.
        after: String,
    },
    /// Set the built-in stack (`linuxFxVersion`) of a slot.
    SetStack {
        /// The slot.
        #[schemars(with = "String")]
        slot: SlotName,
        /// Now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<String>,
        /// After.
        after: String,
    },
    /// Point a slot at a container image.
    SetImage {
        /// The slot.
        #[schemars(with = "String")]
        slot: SlotName,
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
        #[schemars(with = "String")]
        slot: SlotName,
        /// SHA-256 of the package, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
        /// The configuration files a copy of the package has substituted before it is deployed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        substitute: Option<crate::substitute::SubstitutionPlan>,
        /// OneDeploy's `type=` when the package is a single WAR or JAR (`war`, `jar`); absent for a zip.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        artifact_type: Option<String>,
    },
    /// Run from package: point the slot back at the package Kudu kept for the release
    /// (`/home/data/SitePackages`, the zip whose SHA-256 is `sha256`) and restart it; no rebuild and no
    /// artifact.
    UseKeptPackage {
        /// The slot.
        #[schemars(with = "String")]
        slot: SlotName,
        /// SHA-256 of the release's package, which the kept zip must match.
        sha256: String,
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
        #[schemars(with = "String")]
        slot: SlotName,
        /// What is probed and what passes.
        gate: Gate,
    },
    /// Swap two slots.
    Swap {
        /// The slot swapped in.
        #[schemars(with = "String")]
        source: SlotName,
        /// The slot it replaces (production).
        #[schemars(with = "String")]
        target: SlotName,
    },
    /// Swap with preview, phase one: apply the target's settings to the source.
    ApplySlotConfig {
        /// Source.
        #[schemars(with = "String")]
        source: SlotName,
        /// Target.
        #[schemars(with = "String")]
        target: SlotName,
    },
    /// Swap with preview, cancel: restore the source's own settings.
    ResetSlotConfig {
        /// Source.
        #[schemars(with = "String")]
        source: SlotName,
    },
    /// Canary: route `percent` of production's traffic to `source` (at `host`, as ARM names it), on top of
    /// the rules recorded before the canary.
    Route {
        /// The slot the share goes to.
        #[schemars(with = "String")]
        source: SlotName,
        /// Its host, as ARM gave it.
        host: String,
        /// The share, 1 to 99.
        percent: u8,
    },
    /// Canary: put production's routing rules back as the journal recorded them before the canary
    /// (nothing when it recorded none).
    RestoreRouting,
    /// Canary: hold the routed share for a while.
    Pause {
        /// How long, in seconds.
        seconds: u64,
    },
    /// Watch production through a window.
    Watch {
        /// The slot watched.
        #[schemars(with = "String")]
        slot: SlotName,
        /// What is probed, for how long, and how many failures make production unhealthy.
        watch: crate::health::Watch,
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
                | Action::UseKeptPackage { .. }
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
                | Action::Pause { .. }
                | Action::Nothing
        )
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
    let journal = JournalTags::from_tags(&state.tags)?;
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
        owns: None,
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
            plan_staging(
                spec, env_name, env, staging, state, build, &journal, &mut plan,
            );
            canary::put_routing_back(spec, &journal, &mut plan);
            selection_preflight(env, &mut plan);
        }
        Stage::Production => {
            let production = spec
                .production
                .as_ref()
                .ok_or(Error::StageNotConfigured { stage })?;
            let env_name = input.environment.unwrap_or(&production.environment);
            let env = environment(spec, env_name)?;
            plan.environment = Some(env_name.to_owned());
            plan_production(
                spec, env_name, env, production, state, build, &journal, &mut plan,
            );
            selection_preflight(env, &mut plan);
        }
        Stage::Rollback => {
            plan_rollback(spec, input.target, state, &journal, build, &mut plan);
            canary::put_routing_back(spec, &journal, &mut plan);
        }
    }
    Ok(plan)
}

/// An environment that takes secrets in bulk: its selection must have been listed and be free of clashes.
fn selection_preflight(env: &EnvironmentSpec, plan: &mut Plan) {
    if env.select.is_none() {
        return;
    }
    let detail = match &env.selected {
        None => "secrets.select was not listed from the vault (an offline plan without Azure); the selected secrets are unknown".to_owned(),
        Some(selected) if !selected.problems.is_empty() => selected.problems.join("; "),
        Some(selected) => format!(
            "secrets.select took {} secret(s), skipped {}",
            selected.secrets.len(),
            selected.skipped.len()
        ),
    };
    let ok = env.selected.as_ref().is_some_and(|s| s.problems.is_empty());
    plan.preflight.push(check("secret-selection", ok, detail));
}

fn environment<'a>(spec: &'a ReleaseSpec, name: &str) -> Result<&'a EnvironmentSpec, Error> {
    spec.environments
        .get(name)
        .ok_or_else(|| Error::UnknownEnvironment {
            name: name.to_owned(),
        })
}

/// The post-swap watch of production with the production stage's health check, window and failure budget.
fn watch_step(production: &ProductionSpec, health: &Gate, why: &str) -> Step {
    step(
        Action::Watch {
            slot: SlotName::production(),
            watch: crate::health::Watch {
                check: health.check.clone(),
                window: production.watch_window,
                unhealthy_after: production.watch_max_failures,
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

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("staging", "staging"), 0);
        assert_eq!(edit_distance("prod", "production"), 6);
    }

    /// Which steps the journal brackets and which run only under the lock: the executor's fencing and
    /// journaling follow these two answers, so each action's is stated here.
    #[test]
    fn each_action_says_whether_it_is_irreversible_and_whether_it_changes_the_app() {
        let slot = || SlotName::new("staging").unwrap();
        let cases = [
            (Action::AcquireLock, false, false),
            (Action::ReleaseLock, false, false),
            (Action::CreateSlot { slot: slot() }, false, true),
            (
                Action::DeployPackage {
                    slot: slot(),
                    sha256: None,
                    substitute: None,
                    artifact_type: None,
                },
                true,
                true,
            ),
            (
                Action::Swap {
                    source: slot(),
                    target: SlotName::production(),
                },
                true,
                true,
            ),
            (
                Action::ApplySlotConfig {
                    source: slot(),
                    target: SlotName::production(),
                },
                true,
                true,
            ),
            (Action::ResetSlotConfig { source: slot() }, false, true),
            (
                Action::HealthGate {
                    slot: slot(),
                    gate: crate::health::Gate::new("/health"),
                },
                false,
                false,
            ),
            (
                Action::WriteJournal {
                    phase: crate::journal::Phase::Staged,
                },
                false,
                true,
            ),
            (
                Action::Route {
                    source: slot(),
                    host: "h".into(),
                    percent: 10,
                },
                false,
                true,
            ),
            (Action::RestoreRouting, false, true),
            (Action::Pause { seconds: 1 }, false, false),
            (Action::Nothing, false, false),
        ];
        for (action, irreversible, changes) in cases {
            assert_eq!(action.is_irreversible(), irreversible, "{action:?}");
            assert_eq!(action.changes_the_app(), changes, "{action:?}");
        }
    }
}
