//! The engine's own view of a release config: what the planner needs, with variables already resolved.
//!
//! The YAML model belongs to `slot-release-config` and may grow; the planner depends only on this small,
//! stable shape, converted by hand in `spec::from_config` (the boundary rule from docs/architecture.md).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use slot_release_config as cfg;

use crate::error::Error;
use crate::state::SlotName;

/// A release as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseSpec {
    /// The app.
    pub app: AppSpec,
    /// Environments by name.
    pub environments: BTreeMap<String, EnvironmentSpec>,
    /// The staging stage, if configured.
    pub staging: Option<StagingSpec>,
    /// The production stage, if configured.
    pub production: Option<ProductionSpec>,
    /// The rollback stage, if configured.
    pub rollback: Option<RollbackSpec>,
}

/// The app being released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    /// Site name.
    pub name: String,
    /// Resource group.
    pub resource_group: String,
    /// Subscription, when the config names one.
    pub subscription: Option<String>,
    /// Code or container.
    pub kind: AppKind,
    /// The startup command the config asks for (code apps).
    pub startup_command: Option<String>,
    /// The built-in stack (`linuxFxVersion`), e.g. `PYTHON|3.12`.
    pub stack: Option<String>,
}

/// What is released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppKind {
    /// A zip package built from a folder.
    Code {
        /// The package root.
        root: PathBuf,
        /// Exclude globs.
        exclude: Vec<String>,
    },
    /// A container image built elsewhere.
    Container {
        /// Image repository, e.g. `contoso.azurecr.io/web`.
        repository: String,
        /// The resolved tag.
        tag: String,
    },
}

impl AppKind {
    /// `code` or `container`.
    pub fn name(&self) -> &'static str {
        match self {
            AppKind::Code { .. } => "code",
            AppKind::Container { .. } => "container",
        }
    }
}

impl ReleaseSpec {
    /// The slot the staging stage deploys to: the slot of `environment` when the run names one (the
    /// `environment` option), else of the staging stage's environment; none without either. The one place
    /// this is decided: the plan, the journal, the hooks, the rehearsal and the task's outputs all ask here.
    pub fn staging_slot(&self, environment: Option<&str>) -> Option<&SlotName> {
        let name = environment.or(self.staging.as_ref().map(|s| s.environment.as_str()))?;
        self.environments.get(name).map(|e| &e.slot)
    }

    /// Every slot the config names (its environments' and the one production swaps from), each once:
    /// the slots a stage reads.
    pub fn slots(&self) -> Vec<SlotName> {
        let mut slots: BTreeSet<SlotName> =
            self.environments.values().map(|e| e.slot.clone()).collect();
        if let Some(p) = &self.production {
            slots.insert(p.source_slot.clone());
        }
        slots.into_iter().collect()
    }

    /// The two environments of production's swap: the one bound to the slot production swaps from (the
    /// staging stage's when it is bound there), and production's own. `None` when production is not
    /// released by a swap.
    fn swap_environments(&self) -> Option<(&EnvironmentSpec, &EnvironmentSpec)> {
        let production = self.production.as_ref()?;
        if production.source_slot.is_production() {
            return None;
        }
        let target = self.environments.get(&production.environment)?;
        // The staging stage's environment when it is bound to that slot, else any bound to it.
        let staged = self
            .staging
            .as_ref()
            .and_then(|s| self.environments.get(&s.environment))
            .filter(|e| e.slot == production.source_slot);
        let source = staged.or_else(|| {
            self.environments
                .values()
                .find(|e| e.slot == production.source_slot)
        })?;
        Some((source, target))
    }

    /// Setting names that travel with the content in production's swap instead of staying with a slot.
    ///
    /// A name travels when the environment of the slot production swaps from and production's own
    /// environment give it the same value (the same text, or the same secret of the same vault delivered
    /// the same way). Written non-sticky to the staged slot, it reaches production by the swap itself, so
    /// production is never rewritten (App Service restarts an app whose settings change) and a swap back
    /// brings the previous release's value back with its content. Every other name is sticky: it differs
    /// between the environments, and a swap must never carry one slot's value into the other.
    /// Empty when production is not released by a swap.
    pub fn travelling_settings(&self) -> BTreeSet<String> {
        let Some((source, target)) = self.swap_environments() else {
            return BTreeSet::new();
        };
        let plain = source
            .settings
            .iter()
            .filter(|(name, value)| target.settings.get(*name) == Some(*value))
            // The warm-up settings are the slot's own by platform rule, even when both slots agree.
            .filter(|(name, _)| !is_warmup_setting(name))
            .map(|(name, _)| name.clone());
        let secrets = source
            .secrets
            .iter()
            .filter(|(name, secret)| same_secret(source, target, secret, target.secrets.get(*name)))
            .map(|(name, _)| name.clone());
        plain.chain(secrets).collect()
    }

    /// Connection string names that travel with the content in production's swap: the rule of
    /// [`ReleaseSpec::travelling_settings`], applied to the type and the value (or secret) together, so
    /// a name travels only when both environments declare it alike. `sticky: true` in either keeps it
    /// with its slot all the same. Empty when production is not released by a swap.
    pub fn travelling_connection_strings(&self) -> BTreeSet<String> {
        let Some((source, target)) = self.swap_environments() else {
            return BTreeSet::new();
        };
        source
            .connection_strings
            .iter()
            .filter(|(name, cs)| {
                let Some(other) = target.connection_strings.get(*name) else {
                    return false;
                };
                let alike = match (&cs.value, &other.value) {
                    (ConnectionValue::Text(a), ConnectionValue::Text(b)) => a == b,
                    (ConnectionValue::Secret(a), ConnectionValue::Secret(b)) => {
                        same_secret(source, target, a, Some(b))
                    }
                    _ => false,
                };
                alike
                    && cs.kind == other.kind
                    && cs.sticky != Some(true)
                    && other.sticky != Some(true)
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The connection strings of production's swap that say `sticky: false` although the rule keeps them
    /// with their slot (the two environments declare them differently, or only one does), each as a
    /// sentence: a swap would carry one slot's value into the other, so the plan refuses them.
    pub fn connection_string_sticky_conflicts(&self) -> Vec<String> {
        let Some((source, target)) = self.swap_environments() else {
            return Vec::new();
        };
        let travelling = self.travelling_connection_strings();
        let names: BTreeSet<&String> = source
            .connection_strings
            .iter()
            .chain(&target.connection_strings)
            .filter(|(_, cs)| cs.sticky == Some(false))
            .map(|(name, _)| name)
            .collect();
        names
            .into_iter()
            .filter(|name| !travelling.contains(*name))
            .map(|name| {
                let why = match (
                    source.connection_strings.get(name),
                    target.connection_strings.get(name),
                ) {
                    (Some(a), Some(b)) if a.sticky == Some(true) || b.sticky == Some(true) => {
                        "the other environment says `sticky: true`"
                    }
                    (Some(_), Some(_)) => {
                        "the two environments give it a different type or value"
                    }
                    _ => "only one of the two environments declares it",
                };
                format!(
                    "connection string {name} says `sticky: false`, but {why}: a swap would carry one slot's value into the other; give both environments the same declaration, or remove `sticky: false`"
                )
            })
            .collect()
    }
}

/// Whether a secret of `source` is declared alike in `target` (the same secret of the same vault,
/// delivered the same way, and to the app), so the value may travel with a swap.
fn same_secret(
    source: &EnvironmentSpec,
    target: &EnvironmentSpec,
    secret: &SecretSpec,
    other: Option<&SecretSpec>,
) -> bool {
    secret.delivery != SecretDelivery::PipelineVariable
        && source.vault.is_some()
        && source.vault == target.vault
        && other == Some(secret)
}

/// A named set of settings and secrets bound to one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentSpec {
    /// The slot (`production` means the production slot).
    pub slot: SlotName,
    /// Create the slot when it does not exist.
    pub create_slot: bool,
    /// Plain settings.
    pub settings: BTreeMap<String, String>,
    /// The Key Vault, when the environment has secrets.
    pub vault: Option<String>,
    /// Secrets: setting name to secret and delivery (after [`crate::selection`], the selected ones too).
    pub secrets: BTreeMap<String, SecretSpec>,
    /// Secrets taken in bulk from the vault, listed when the run starts.
    pub select: Option<crate::selection::SecretSelection>,
    /// What the selection took, once the vault was listed.
    pub selected: Option<crate::selection::Selected>,
    /// General settings of the slot (`siteConfig`); `None` fields are left as they are.
    pub site_config: crate::state::SiteSettings,
    /// Connection strings by name.
    pub connection_strings: BTreeMap<String, ConnectionStringSpec>,
    /// Which files of the package take the plain settings when it is deployed here.
    pub substitute: Option<cfg::Substitute>,
    /// The private registry's host when the environment names one (`registry.server`); what the pull
    /// needs is already in `settings`, `secrets` and `site_config`.
    pub registry: Option<String>,
}

impl EnvironmentSpec {
    /// Every secret of the vault the environment reads (settings' and connection strings'), each once.
    pub fn vault_secrets(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let connection = self
            .connection_strings
            .values()
            .filter_map(|cs| match &cs.value {
                ConnectionValue::Secret(secret) => Some(&secret.secret),
                ConnectionValue::Text(_) => None,
            });
        for name in self.secrets.values().map(|s| &s.secret).chain(connection) {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }
}

/// One connection string of an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionStringSpec {
    /// The type, as ARM spells it (`SQLAzure`).
    pub kind: String,
    /// Where the value comes from.
    pub value: ConnectionValue,
    /// `sticky:` as written; `None` lets [`ReleaseSpec::travelling_connection_strings`] decide.
    pub sticky: Option<bool>,
}

/// Where a connection string's value comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum ConnectionValue {
    /// Written in release.yml (variables expanded). A secret for printing purposes.
    Text(String),
    /// A secret of the environment's vault, delivered as a Key Vault reference or by value.
    Secret(SecretSpec),
}

impl std::fmt::Debug for ConnectionValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectionValue::Text(_) => f.write_str("Text(<redacted>)"),
            ConnectionValue::Secret(secret) => f.debug_tuple("Secret").field(secret).finish(),
        }
    }
}

/// One Key Vault secret bound to a setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    /// The secret's name in the vault.
    pub secret: String,
    /// How it reaches the app.
    pub delivery: SecretDelivery,
}

/// How a secret reaches the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SecretDelivery {
    /// An App Service Key Vault reference; the value never leaves the vault.
    KeyVaultReference,
    /// The value, written as a setting.
    Value,
    /// A secret pipeline variable only; the app does not get it.
    PipelineVariable,
}

pub use crate::health::{Gate, HealthCheck};
pub use crate::hooks::{HookSpec, HookWhere};

/// The staging stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagingSpec {
    /// Environment applied to the slot.
    pub environment: String,
    /// Hooks, in order.
    pub hooks: Vec<HookSpec>,
    /// The gate.
    pub health: Option<Gate>,
}

/// How production takes the release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Strategy {
    /// A plain swap.
    Swap,
    /// Apply production settings to the source, verify, complete.
    SwapWithPreview,
    /// Apply production settings to the source, verify, route growing shares of production's traffic to
    /// it (each step held or gated), complete the swap, clear the routing.
    Canary,
}

/// One step of a canary before its completion: a share of production traffic and what holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryStep {
    /// The percent of production traffic routed to the source slot, 1 to 99.
    pub percent: u8,
    /// What must pass before the next step.
    pub hold: CanaryHold,
}

/// What holds a canary step's share before the next step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CanaryHold {
    /// A fixed time.
    Pause(Duration),
    /// A gate on the source slot while it serves the share.
    Gate(Box<Gate>),
}

/// What happens when production turns unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RollbackMode {
    /// Swap back at once.
    Automatic,
    /// Stop and report; a person runs `rollback`.
    Manual,
}

/// The production stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductionSpec {
    /// Environment applied to production.
    pub environment: String,
    /// The slot swapped in; production itself when there is none and production takes the new image
    /// directly.
    pub source_slot: SlotName,
    /// Swap, swap with preview or canary.
    pub strategy: Strategy,
    /// The canary's steps below 100 %, in order (empty unless the strategy is a canary).
    pub canary: Vec<CanaryStep>,
    /// Hooks run against the source slot before the swap.
    pub hooks: Vec<HookSpec>,
    /// How long production is watched after the swap.
    pub watch_window: Duration,
    /// Failures that end the watch early.
    pub watch_max_failures: u32,
    /// The watch's probe.
    pub health: Option<Gate>,
    /// Automatic or manual rollback.
    pub rollback: RollbackMode,
    /// Run hook undo commands after a swap back.
    pub undo_hooks_on_rollback: bool,
}

/// What a rollback restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Restore {
    /// Swap back when the previous release still sits in the source slot.
    SwapBack,
    /// Redeploy the target release through the source slot (containers: its recorded image).
    LastKnownGood,
}

/// The rollback stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackSpec {
    /// The environment restored.
    pub environment: String,
    /// What is put back.
    pub restore: Restore,
    /// Run recorded hooks' undo commands.
    pub undo_hooks: bool,
    /// The gate the restored production must pass.
    pub health: Option<Gate>,
}

/// A health gate deadline given from outside the config (the task input `healthTimeoutSeconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthTimeout(Duration);

impl HealthTimeout {
    /// A deadline of `seconds`; zero is refused because no gate could ever pass.
    pub fn from_secs(seconds: u64) -> Result<Self, Error> {
        if seconds == 0 {
            return Err(Error::HealthTimeoutZero);
        }
        Ok(HealthTimeout(Duration::from_secs(seconds)))
    }

    /// The deadline.
    pub fn duration(self) -> Duration {
        self.0
    }
}

/// Where a health gate of the release sits; each has its own place in release.yml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateAt {
    /// The staging slot's gate before it is marked staged.
    Staging,
    /// The production stage's gate (swap preview) and the probes of its watch.
    Production,
    /// The gate after a rollback.
    Rollback,
    /// A canary step's gate on the source slot.
    Canary,
}

impl GateAt {
    /// The gate's path in release.yml, for errors that point at it.
    pub fn config_path(self) -> &'static str {
        match self {
            GateAt::Staging => "stages.staging.healthCheck",
            GateAt::Production => "stages.production.watch.healthCheck",
            GateAt::Rollback => "stages.rollback.healthCheck",
            GateAt::Canary => "stages.production.canary.steps[].healthCheck",
        }
    }
}

impl ReleaseSpec {
    /// Every health gate the release has, with where it sits, in the order a release meets them: the
    /// one place that knows which stages carry a gate, for everything that adjusts gates together.
    pub fn gates_mut(&mut self) -> impl Iterator<Item = (GateAt, &mut Gate)> {
        let (production, canary) = match self.production.as_mut() {
            Some(p) => (
                p.health.as_mut(),
                p.canary
                    .iter_mut()
                    .filter_map(|step| match &mut step.hold {
                        CanaryHold::Gate(gate) => Some((GateAt::Canary, Some(&mut **gate))),
                        CanaryHold::Pause(_) => None,
                    })
                    .collect(),
            ),
            None => (None, Vec::new()),
        };
        [
            (
                GateAt::Staging,
                self.staging.as_mut().and_then(|s| s.health.as_mut()),
            ),
            (GateAt::Production, production),
        ]
        .into_iter()
        .chain(canary)
        .chain([(
            GateAt::Rollback,
            self.rollback.as_mut().and_then(|r| r.health.as_mut()),
        )])
        .filter_map(|(at, gate)| gate.map(|gate| (at, gate)))
    }

    /// Replaces the deadline of every health gate (staging, swap preview, post-rollback) with `timeout`.
    /// The production watch is a window, not a gate, so its duration is left alone. Nothing changes
    /// when any gate refuses the deadline.
    pub fn override_health_timeout(&mut self, timeout: HealthTimeout) -> Result<(), Error> {
        let gates: Vec<(GateAt, &mut Gate)> = self.gates_mut().collect();
        for (at, gate) in &gates {
            // The config refuses the same mistake in release.yml (`timeout-not-above-interval`).
            if timeout.duration() <= gate.check.interval {
                return Err(Error::HealthTimeoutTooShort {
                    gate: at.config_path(),
                    timeout_secs: timeout.duration().as_secs(),
                    interval_secs: gate.check.interval.as_secs(),
                });
            }
        }
        for (_, gate) in gates {
            gate.timeout = timeout.duration();
        }
        Ok(())
    }
}

/// A slot of the config as the engine holds it: App Service reads `production` in any case as the
/// production slot, so every spelling of it becomes the one the plan, the state and the journal use.
fn slot(name: &SlotName) -> SlotName {
    if name.is_production() {
        SlotName::production()
    } else {
        name.clone()
    }
}

/// The canary's steps below 100 % (the 100 % step, written or not, is the swap). The config refused steps
/// out of range or held neither or both ways, so one that slips through is left out rather than guessed.
fn canary_steps(production: &cfg::ProductionStage) -> Vec<CanaryStep> {
    let Some(canary) = production
        .canary
        .as_ref()
        .filter(|_| production.strategy == cfg::SwapStrategy::Canary)
    else {
        return Vec::new();
    };
    canary
        .steps
        .iter()
        .filter_map(|step| {
            let percent = u8::try_from(step.percent)
                .ok()
                .filter(|p| (1..100).contains(p))?;
            let hold = match (&step.health_check, step.pause) {
                (Some(check), None) => CanaryHold::Gate(Box::new(health(check))),
                (None, Some(pause)) => CanaryHold::Pause(pause.into()),
                _ => return None,
            };
            Some(CanaryStep { percent, hold })
        })
        .collect()
}

fn health(check: &cfg::HealthCheck) -> Gate {
    Gate {
        check: HealthCheck {
            path: check.path.clone(),
            statuses: check.statuses.clone(),
            body_contains: check.body_contains.clone(),
            interval: check.interval.into(),
            probe_timeout: HealthCheck::new("/").probe_timeout,
            function_key: check.function_key,
            analysis: check.analysis.as_ref().map(Into::into),
        },
        successes_needed: check.successes,
        timeout: check.timeout.into(),
        fail_after: check.fail_after,
    }
}

fn hook(hook: &cfg::Hook) -> HookSpec {
    HookSpec {
        name: hook.name.as_str().to_owned(),
        command: hook.run.clone(),
        run_where: match hook.where_ {
            cfg::HookLocation::Slot => HookWhere::Slot,
            cfg::HookLocation::Agent => HookWhere::Agent,
        },
        timeout: hook.timeout.into(),
        undo: hook.undo.clone(),
        env: hook.env.clone(),
    }
}

fn delivery(delivery: cfg::Delivery) -> SecretDelivery {
    match delivery {
        cfg::Delivery::KeyVaultReference => SecretDelivery::KeyVaultReference,
        cfg::Delivery::Value => SecretDelivery::Value,
        cfg::Delivery::PipelineVariable => SecretDelivery::PipelineVariable,
    }
}

/// Converts a loaded config into the engine's view. `base` is the folder holding the config file,
/// against which the package root is resolved.
pub fn from_config(config: &cfg::ReleaseConfig, base: &Path) -> ReleaseSpec {
    let app = &config.app;
    let kind = match (app.kind, &config.package, &config.image) {
        (cfg::AppKind::Container, _, Some(image)) => AppKind::Container {
            repository: image.repository.clone(),
            tag: image.tag.clone(),
        },
        (_, package, _) => AppKind::Code {
            root: match package.as_ref().map_or(".", |p| p.root.as_str()) {
                "." | "" => base.to_path_buf(),
                root => base.join(root),
            },
            exclude: package
                .as_ref()
                .map(|p| p.exclude.clone())
                .unwrap_or_default(),
        },
    };
    let environments = config
        .environments
        .iter()
        .map(|(name, env)| {
            let secrets = env
                .secrets
                .as_ref()
                .map(|s| {
                    s.map
                        .iter()
                        .map(|(setting, spec)| {
                            let delivery = delivery(spec.delivery(s.delivery));
                            (
                                setting.as_str().to_owned(),
                                SecretSpec {
                                    secret: spec.secret().name().as_str().to_owned(),
                                    delivery,
                                },
                            )
                        })
                        .collect::<BTreeMap<_, _>>()
                })
                .unwrap_or_default();
            let mut secrets = secrets;
            secrets.extend(registry_secret(env));
            (
                name.as_str().to_owned(),
                EnvironmentSpec {
                    slot: slot(&env.slot),
                    create_slot: env.create_slot,
                    settings: env
                        .settings
                        .iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                        .chain(warmup_settings(env))
                        .chain(registry_settings(env))
                        .collect(),
                    vault: env.secrets.as_ref().map(|s| s.vault.as_str().to_owned()),
                    secrets,
                    select: env.secrets.as_ref().and_then(|s| {
                        let select = s.select.as_ref()?;
                        Some(crate::selection::SecretSelection {
                            prefix: select.prefix().map(|p| p.as_str().to_owned()),
                            strip_prefix: select.strip_prefix(),
                            upper_snake: s.names.unwrap_or_default() == cfg::NameRule::UpperSnake,
                            delivery: delivery(s.delivery),
                        })
                    }),
                    selected: None,
                    site_config: site_settings(env),
                    connection_strings: connection_strings(env),
                    substitute: env.substitute.clone(),
                    registry: env.registry.as_ref().map(|r| r.server.clone()),
                },
            )
        })
        .collect();
    let staging = &config.stages.staging;
    let production = &config.stages.production;
    ReleaseSpec {
        app: AppSpec {
            name: app.name.clone(),
            resource_group: app.resource_group.clone(),
            subscription: app.subscription.clone(),
            kind,
            startup_command: app.startup_command.clone(),
            stack: app.stack.clone(),
        },
        environments,
        staging: Some(StagingSpec {
            environment: staging.environment.as_str().to_owned(),
            hooks: staging.hooks.iter().map(hook).collect(),
            health: Some(health(&staging.health_check)),
        }),
        production: Some(ProductionSpec {
            environment: production.environment.as_str().to_owned(),
            // No source slot means a direct image update of production (config allows it for containers only).
            source_slot: production
                .source_slot
                .as_ref()
                .map_or_else(SlotName::production, slot),
            strategy: match production.strategy {
                cfg::SwapStrategy::Swap => Strategy::Swap,
                cfg::SwapStrategy::SwapWithPreview => Strategy::SwapWithPreview,
                cfg::SwapStrategy::Canary => Strategy::Canary,
            },
            canary: canary_steps(production),
            hooks: production.hooks.iter().map(hook).collect(),
            watch_window: production.watch.duration.into(),
            watch_max_failures: production.watch.max_failures,
            health: Some(health(&production.watch.health_check)),
            rollback: match production.rollback {
                cfg::RollbackMode::Automatic => RollbackMode::Automatic,
                cfg::RollbackMode::Manual => RollbackMode::Manual,
            },
            undo_hooks_on_rollback: production.undo_hooks == cfg::UndoHooks::Run,
        }),
        rollback: config.stages.rollback.as_ref().map(|r| RollbackSpec {
            environment: r.environment.as_str().to_owned(),
            restore: match r.restore {
                cfg::Restore::SwapBack => Restore::SwapBack,
                cfg::Restore::LastKnownGood => Restore::LastKnownGood,
            },
            undo_hooks: r.undo_hooks == cfg::UndoHooks::Run,
            health: r.health_check.as_ref().map(health),
        }),
    }
}

/// The app settings an environment's `siteConfig.warmup` is written as.
fn warmup_settings(env: &cfg::Environment) -> Vec<(String, String)> {
    env.site_config
        .as_ref()
        .and_then(|s| s.warmup.as_ref())
        .map(|w| {
            w.settings()
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect()
        })
        .unwrap_or_default()
}

/// The plain app settings an environment's `registry.credentials` is written as (the
/// `az webapp config container set` way); the password is [`registry_secret`].
fn registry_settings(env: &cfg::Environment) -> Vec<(String, String)> {
    let Some((registry, credentials)) = env
        .registry
        .as_ref()
        .and_then(|r| Some((r, r.credentials.as_ref()?)))
    else {
        return Vec::new();
    };
    vec![
        (cfg::REGISTRY_URL_SETTING.to_owned(), registry.url()),
        (
            cfg::REGISTRY_USERNAME_SETTING.to_owned(),
            credentials.username.clone(),
        ),
    ]
}

/// The registry password as a secret of the environment's vault. Always delivered by value: App Service
/// reads `DOCKER_REGISTRY_SERVER_PASSWORD` to pull the image before the app (and its Key Vault
/// references) exists, so the task reads the secret, masks it and writes its value.
fn registry_secret(env: &cfg::Environment) -> Option<(String, SecretSpec)> {
    let credentials = env.registry.as_ref()?.credentials.as_ref()?;
    Some((
        cfg::REGISTRY_PASSWORD_SETTING.to_owned(),
        SecretSpec {
            secret: credentials.password_secret.name().as_str().to_owned(),
            delivery: SecretDelivery::Value,
        },
    ))
}

/// Whether a setting is one of the warm-up settings, which stay with their slot in a swap.
pub fn is_warmup_setting(name: &str) -> bool {
    [
        cfg::SWAP_WARMUP_PATH,
        cfg::SWAP_WARMUP_STATUSES,
        cfg::RESTART_WARMUP_PATH,
    ]
    .contains(&name)
}

/// An environment's connection strings; a secret's delivery falls back to the environment's, as for
/// `secrets.map`.
fn connection_strings(env: &cfg::Environment) -> BTreeMap<String, ConnectionStringSpec> {
    let default = env.secrets.as_ref().map(|s| s.delivery).unwrap_or_default();
    env.connection_strings
        .iter()
        .map(|(name, cs)| {
            let value = match (&cs.secret, &cs.value) {
                (Some(secret), _) => ConnectionValue::Secret(SecretSpec {
                    secret: secret.name().as_str().to_owned(),
                    delivery: delivery(cs.delivery.unwrap_or(default)),
                }),
                (None, value) => ConnectionValue::Text(value.clone().unwrap_or_default()),
            };
            (
                name.as_str().to_owned(),
                ConnectionStringSpec {
                    kind: cs.kind.as_str().to_owned(),
                    value,
                    sticky: cs.sticky,
                },
            )
        })
        .collect()
}

/// An environment's `siteConfig` as the fields written to `config/web`.
fn site_settings(env: &cfg::Environment) -> crate::state::SiteSettings {
    let Some(site) = &env.site_config else {
        return registry_site_settings(env);
    };
    crate::state::SiteSettings {
        always_on: site.always_on,
        http20_enabled: site.http20_enabled,
        min_tls_version: site.min_tls_version.map(|v| v.as_str().to_owned()),
        ftps_state: site.ftps_state.map(|v| v.as_str().to_owned()),
        health_check_path: site.health_check_path.clone(),
        ..registry_site_settings(env)
    }
}

/// What an environment's `registry` writes to `config/web`: the managed-identity pull on (with the
/// user-assigned identity's client ID), or off for credentials, since App Service pulls with the
/// identity whenever `acrUseManagedIdentityCreds` is on and would ignore the credentials.
fn registry_site_settings(env: &cfg::Environment) -> crate::state::SiteSettings {
    let Some(registry) = &env.registry else {
        return crate::state::SiteSettings::default();
    };
    let (on, client_id) = match (&registry.identity, &registry.credentials) {
        (Some(cfg::RegistryIdentity::System), _) => (true, None),
        (Some(cfg::RegistryIdentity::UserAssigned(id)), _) => (true, Some(id.clone())),
        (None, _) => (false, None),
    };
    crate::state::SiteSettings {
        acr_use_managed_identity_creds: Some(on),
        acr_user_managed_identity_id: client_id,
        ..crate::state::SiteSettings::default()
    }
}
