//! The `release.yml` version 1 model: what a release config says, as typed data.
//!
//! Doc comments on fields are user documentation: they become the JSON Schema descriptions and
//! the generated `docs/config-reference.md`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::types::{
    ConnectionStringName, Duration, EnvironmentName, HookName, SecretName, SecretRef, SettingName,
    SlotName, VaultName,
};

/// A `release.yml` file: how one web app is released to Azure App Service through slots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseConfig {
    /// The format version of this file. Only `1` exists.
    pub version: ConfigVersion,
    /// The App Service app that is released.
    pub app: App,
    /// What is deployed for a `code` app: a folder packaged as a zip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<Package>,
    /// What is deployed for a `container` app: an image reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
    /// Named environments, each bound to one slot with its settings and secrets.
    pub environments: BTreeMap<EnvironmentName, Environment>,
    /// What the `staging`, `production` and `rollback` stages do.
    pub stages: Stages,
    /// Several apps released with this config, e.g. the same app in three regions or ten tenants'
    /// apps, each with its wave: wave 0 first, and a wave starts only once every target of the wave
    /// before it has been released and watched. When absent, `app` is the one target. `plan` sets the
    /// `Matrix` output (and `MatrixWave<n>` per wave) for a pipeline's `strategy.matrix`; `--targets`
    /// releases several from one job.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
    /// How a fan-out over `targets` runs inside one job (`--targets`): how many targets at once, and
    /// whether a failure also rolls back the waves already released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fan_out: Option<FanOut>,
}

/// One app a fanned-out release goes to. The rest of `app` (kind, stack, startup command) and the
/// environments are shared by every target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Target {
    /// The target's name: letters, digits and `_`, starting with a letter (Azure Pipelines names a
    /// matrix job after it), e.g. `westeurope` or `tenant_contoso`. Unique in the config.
    pub name: String,
    /// The App Service app's name. May use `$(...)` variables.
    pub app: String,
    /// The resource group that holds the app. May use `$(...)` variables.
    pub resource_group: String,
    /// The subscription ID; when absent, `app.subscription`, else the service connection's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    /// The Azure region the app runs in, e.g. `westeurope`: shown in the plan's matrix and summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The wave (ring) this target is released in; waves are numbered from 0 without gaps.
    #[serde(default)]
    pub wave: u32,
}

/// How `--targets` releases several targets from one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FanOut {
    /// How many targets of a wave are released at once (1 to 20). ARM limits writes per subscription
    /// and answers `429` beyond them; a small bound keeps a fan-out under the limit.
    #[serde(default = "default_max_parallel")]
    pub max_parallel: u32,
    /// When a target fails, also roll back the targets of the earlier waves, which were released and
    /// watched: for releases whose versions must not differ between rings.
    #[serde(default)]
    pub rollback_earlier_waves: bool,
}

impl Default for FanOut {
    fn default() -> Self {
        FanOut {
            max_parallel: default_max_parallel(),
            rollback_earlier_waves: false,
        }
    }
}

fn default_max_parallel() -> u32 {
    4
}

/// The config format version; only `1` is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct ConfigVersion;

impl JsonSchema for ConfigVersion {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("ConfigVersion")
    }

    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "integer",
            "const": 1,
            "description": "The format version of this file. Only `1` exists.",
        })
    }
}

impl TryFrom<u32> for ConfigVersion {
    type Error = String;
    fn try_from(value: u32) -> Result<Self, Self::Error> {
        if value == 1 {
            Ok(ConfigVersion)
        } else {
            Err(format!(
                "unsupported config version {value}; this Slot Release reads version 1"
            ))
        }
    }
}

impl From<ConfigVersion> for u32 {
    fn from(_: ConfigVersion) -> Self {
        1
    }
}

/// The App Service app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct App {
    /// The app's name (the `<name>` of `<name>.azurewebsites.net`). May use `$(...)` variables.
    pub name: String,
    /// The resource group that holds the app.
    pub resource_group: String,
    /// The subscription ID; when absent, the service connection's subscription is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    /// `code` (a zip package runs on a built-in stack) or `container` (an image runs).
    pub kind: AppKind,
    /// The built-in Linux stack as App Service writes it in `linuxFxVersion`, e.g. `PYTHON|3.12`,
    /// `NODE|20-lts`, `DOTNETCORE|8.0` or `JAVA|17-java17`. When absent, the app's live stack is kept
    /// and read for the startup-command rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// The startup command (App Service `appCommandLine`), e.g. `python -m gunicorn app:app`. A Python
    /// or Node app needs one unless its package has a layout the stack's default startup detects (a
    /// Django `wsgi.py`, a Flask `app.py`, a `package.json` start script, …); .NET, Java and PHP need
    /// none; a `container` app's command is passed to its image's entry point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_command: Option<String>,
}

/// What kind of app is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AppKind {
    /// A zip package deployed onto a built-in stack.
    Code,
    /// A container image.
    Container,
}

/// The folder that is packaged for a `code` app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Package {
    /// The folder to package, relative to the config file.
    pub root: String,
    /// Glob patterns (relative to `root`) of files to leave out, e.g. `tests/**`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Ignore files (gitignore syntax) honoured in every folder of `root`.
    #[serde(default = "default_ignore_files")]
    pub ignore_files: Vec<String>,
}

fn default_ignore_files() -> Vec<String> {
    vec![".gitignore".to_string(), ".deployignore".to_string()]
}

/// The image that is rolled out for a `container` app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Image {
    /// The image repository including its registry host, e.g. `contoso.azurecr.io/contoso/app`.
    pub repository: String,
    /// The tag to roll out. Usually a variable such as `$(Build.BuildId)`, or `$(timestamp)` for the
    /// current UTC time as `YYYYMMDDhhmmss`.
    pub tag: String,
}

impl Image {
    /// The registry host: the first path segment when it looks like a host name.
    pub fn registry(&self) -> Option<&str> {
        let (first, _) = self.repository.split_once('/')?;
        (first.contains('.') || first.contains(':') || first == "localhost").then_some(first)
    }
}

/// An environment: one slot with its settings and secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Environment {
    /// The slot this environment lives in; `production` means the production slot.
    pub slot: SlotName,
    /// Create the slot when it does not exist yet (never applies to `production`).
    #[serde(default)]
    pub create_slot: bool,
    /// Plain app settings. A name with the same value in production's environment travels with the swap
    /// (non-sticky); the others are written as slot (sticky) settings. Values may use `$(...)` variables;
    /// numbers and booleans are taken as written (`PORT: 8000` sets `8000`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "settings_schema")]
    pub settings: BTreeMap<SettingName, String>,
    /// Settings whose values come from Key Vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Secrets>,
    /// Connection strings by name, each `{value, type}` or `{secret, type}` (the secret from
    /// `secrets.vault`), e.g. `Db: {value: "Server=...", type: SQLAzure}`. The config manages them
    /// whole: one an earlier release declared and this config no longer does is removed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub connection_strings:
        BTreeMap<ConnectionStringName, crate::connection_strings::ConnectionString>,
    /// General settings of the slot (`siteConfig`): Always On, HTTP/2, TLS, FTP, health check path and
    /// warm-up. Each stays with the slot in a swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_config: Option<crate::site_config::SiteConfig>,
    /// Variable substitution in the package's JSON and XML configuration files when it is deployed to
    /// this environment's slot, e.g. `{json: ['**/appsettings.json'], xml: true}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substitute: Option<crate::substitute::Substitute>,
    /// The private registry this environment's slot pulls a `container` app's image from, with the
    /// app's managed identity (`{server, identity: system}`) or with credentials whose password is a
    /// secret of `secrets.vault` (`{server, credentials: {username, passwordSecret}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<crate::registry::Registry>,
}

/// App settings are strings to App Service; YAML numbers and booleans are read as their text, so
/// the schema accepts them too instead of underlining what the loader takes.
fn settings_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut properties = serde_json::Map::new();
    properties.insert(SettingName::PATTERN.to_string(), scalar_value_schema());
    schemars::json_schema!({
        "type": "object",
        "patternProperties": properties,
        "additionalProperties": false,
    })
}

fn env_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": scalar_value_schema(),
    })
}

fn scalar_value_schema() -> serde_json::Value {
    serde_json::json!({ "type": ["string", "number", "boolean"] })
}

/// Key Vault secrets for one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Secrets {
    /// The Key Vault name (the `<vault>` of `<vault>.vault.azure.net`).
    pub vault: VaultName,
    /// How secrets are delivered unless a secret says otherwise.
    #[serde(default)]
    pub delivery: Delivery,
    /// App setting name → secret. A secret is `secret-name`, `secret-name/version`, or
    /// `{secret: ..., delivery: ...}`. An entry here wins over `select` for the same setting, and a
    /// secret named here is not selected again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub map: BTreeMap<SettingName, SecretSpec>,
    /// Secrets taken in bulk, like AzureKeyVault@2's `SecretsFilter`: `'*'` for every secret of the
    /// vault, or `{prefix: app-}` for those whose name starts with the prefix. The names are listed
    /// when the stage plans, before it changes anything; disabled and expired secrets are skipped with
    /// a warning. Each is delivered as `delivery` says, under the setting name `names` makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<SecretSelect>,
    /// How a selected secret's name becomes a setting name: `upperSnake` (the default:
    /// `db-password` → `DB_PASSWORD`; many runtimes drop environment variables with `-`) or `keep`.
    /// Only with `select`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<NameRule>,
}

/// Which secrets `select` takes.
// Deserialize is written by hand, as for `SecretSpec`: an untagged enum would lose the inner error.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum SecretSelect {
    /// `'*'`: every secret of the vault.
    All(AllSecrets),
    /// Secrets whose name starts with a prefix.
    Prefix(SecretPrefix),
}

/// `'*'`: every secret of the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllSecrets;

impl Serialize for AllSecrets {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("*")
    }
}

impl JsonSchema for AllSecrets {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("AllSecrets")
    }

    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "const": "*",
            "description": "`'*'`: every secret of the vault.",
        })
    }
}

/// Secrets whose name starts with a prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretPrefix {
    /// The start of the secret names taken, e.g. `app-` (Key Vault compares names without case).
    pub prefix: SecretName,
    /// Whether the prefix is cut off before `names` applies: `app-db-password` becomes
    /// `DB_PASSWORD` instead of `APP_DB_PASSWORD`. Off by default, so a setting never gets a
    /// shorter name (like `USER` or `PATH`) than its secret.
    #[serde(default)]
    pub strip_prefix: bool,
}

impl<'de> Deserialize<'de> for SecretSelect {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SelectVisitor;

        impl<'de> serde::de::Visitor<'de> for SelectVisitor {
            type Value = SecretSelect;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`'*'` or `{prefix: ...}`")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SecretSelect, E> {
                if text == "*" {
                    Ok(SecretSelect::All(AllSecrets))
                } else {
                    Err(E::custom(format!(
                        "invalid secret selection `{text}`: write `'*'` for every secret, or \
                         `{{prefix: {}}}` for those starting with a prefix",
                        text.trim_end_matches('*')
                    )))
                }
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<SecretSelect, A::Error> {
                SecretPrefix::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(SecretSelect::Prefix)
            }
        }

        deserializer.deserialize_any(SelectVisitor)
    }
}

impl SecretSelect {
    /// The name prefix, or `None` for every secret.
    pub fn prefix(&self) -> Option<&SecretName> {
        match self {
            SecretSelect::All(_) => None,
            SecretSelect::Prefix(p) => Some(&p.prefix),
        }
    }

    /// Whether the prefix is cut off the setting name.
    pub fn strip_prefix(&self) -> bool {
        matches!(self, SecretSelect::Prefix(p) if p.strip_prefix)
    }
}

/// How a selected secret's name becomes an app setting name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum NameRule {
    /// Upper case, `-` becomes `_`: `db-password` → `DB_PASSWORD`.
    #[default]
    UpperSnake,
    /// The secret's name as it is: `db-password` → `db-password`.
    Keep,
}

impl NameRule {
    /// The setting name for a secret name (after any prefix was cut off).
    pub fn apply(self, secret: &str) -> String {
        match self {
            NameRule::UpperSnake => secret.to_ascii_uppercase().replace('-', "_"),
            NameRule::Keep => secret.to_owned(),
        }
    }
}

/// How a Key Vault secret reaches the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Delivery {
    /// As an App Service Key Vault reference (`@Microsoft.KeyVault(...)`); the app's identity reads it.
    #[default]
    KeyVaultReference,
    /// The value is read by the task and written as the setting's value.
    Value,
    /// The value is read by the task and exposed as a secret pipeline variable, not written to the app.
    PipelineVariable,
}

/// One secret in a `secrets.map`.
// Deserialize is written by hand: serde's untagged enums lose the inner error and its location.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum SecretSpec {
    /// `secret-name` or `secret-name/version`, delivered as `secrets.delivery` says.
    Short(SecretRef),
    /// A secret with its own delivery.
    Long(SecretSpecLong),
}

/// The long form of a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretSpecLong {
    /// `secret-name` or `secret-name/version`.
    pub secret: SecretRef,
    /// How this secret is delivered; defaults to `secrets.delivery`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
}

impl<'de> Deserialize<'de> for SecretSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpecVisitor;

        impl<'de> serde::de::Visitor<'de> for SpecVisitor {
            type Value = SecretSpec;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a secret name (`name` or `name/version`) or `{secret, delivery}`")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SecretSpec, E> {
                SecretRef::parse(text)
                    .map(SecretSpec::Short)
                    .map_err(E::custom)
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<SecretSpec, A::Error> {
                SecretSpecLong::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(SecretSpec::Long)
            }
        }

        deserializer.deserialize_any(SpecVisitor)
    }
}

impl SecretSpec {
    /// The secret reference.
    pub fn secret(&self) -> &SecretRef {
        match self {
            SecretSpec::Short(secret) => secret,
            SecretSpec::Long(long) => &long.secret,
        }
    }

    /// The delivery, falling back to the block's default.
    pub fn delivery(&self, default: Delivery) -> Delivery {
        match self {
            SecretSpec::Short(_) => default,
            SecretSpec::Long(long) => long.delivery.unwrap_or(default),
        }
    }
}

/// The stages a release runs through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Stages {
    /// Deploy to a non-production slot, configure it, run hooks and check its health.
    pub staging: StagingStage,
    /// Swap the staged slot into production and watch it.
    pub production: ProductionStage,
    /// Put the last known-good release back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackStage>,
}

/// The `staging` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StagingStage {
    /// The environment (and so the slot) to deploy to; it must not be the production slot.
    pub environment: EnvironmentName,
    /// Commands run after the deployment and before the health check, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Hook>,
    /// The health gate the slot must pass.
    pub health_check: HealthCheck,
}

/// The `production` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProductionStage {
    /// The environment whose slot is the swap target, normally one bound to `production`.
    pub environment: EnvironmentName,
    /// The slot swapped into the target, normally the staging environment's slot. Leave it out for
    /// a `container` app that has no staging slot: the new image is then set on production directly
    /// (watched, and rolled back to the previous tag). A `code` app always needs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_slot: Option<SlotName>,
    /// How the swap is done.
    #[serde(default)]
    pub strategy: SwapStrategy,
    /// The canary's steps, for `strategy: canary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    /// Commands run against the source slot before the swap, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Hook>,
    /// The window after the swap in which production is watched.
    pub watch: Watch,
    /// What happens when production turns unhealthy during the watch.
    #[serde(default)]
    pub rollback: RollbackMode,
    /// Whether a rollback runs the `undo` commands of hooks that already ran.
    #[serde(default)]
    pub undo_hooks: UndoHooks,
}

/// How a swap is performed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SwapStrategy {
    /// A plain swap.
    #[default]
    Swap,
    /// A swap with preview: the target's settings are applied to the source first, then it completes.
    SwapWithPreview,
    /// A canary: production's settings are applied to the source slot, then a growing share of
    /// production's traffic is routed to it (`canary.steps`, each gated), then the swap completes.
    Canary,
}

/// A canary release: shares of production traffic routed to the source slot before the swap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Canary {
    /// The steps, in order, with increasing percents; a last step of 100 (or none) completes the swap.
    pub steps: Vec<CanaryStep>,
}

/// One step of a canary: a share of production traffic, held for a pause or until a gate passes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanaryStep {
    /// The percent of production traffic routed to the source slot (1 to 99); 100 completes the swap.
    pub percent: u32,
    /// How long the share is held before the next step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<Duration>,
    /// The gate the source slot must pass while the share is routed to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
}

/// What happens when the watch finds production unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RollbackMode {
    /// Swap back at once.
    #[default]
    Automatic,
    /// Fail the stage and leave the rollback to the `rollback` stage.
    Manual,
}

/// Whether `undo` commands run on rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum UndoHooks {
    /// Run the `undo` command of every hook that ran, newest first.
    #[default]
    Run,
    /// Leave hook effects in place (e.g. a migration that is backwards compatible).
    Skip,
}

/// The post-swap watch window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Watch {
    /// How long production is watched after the swap, e.g. `5m`.
    pub duration: Duration,
    /// The probe used while watching (its `successes` and `timeout` do not apply here).
    pub health_check: HealthCheck,
    /// How many failed probes in the window make production unhealthy.
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
}

fn default_max_failures() -> u32 {
    3
}

/// The `rollback` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollbackStage {
    /// The environment to restore, normally the production one.
    pub environment: EnvironmentName,
    /// What is put back.
    #[serde(default)]
    pub restore: Restore,
    /// Whether the `undo` commands of hooks recorded in the journal run.
    #[serde(default)]
    pub undo_hooks: UndoHooks,
    /// The health gate the restored slot must pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
}

/// What a rollback restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Restore {
    /// Swap back: the previous release still sits in the source slot after a swap. The rollback
    /// refuses when the journal shows that slot holds something else.
    #[default]
    SwapBack,
    /// Redeploy the target release from the history even when a swap back were possible: its image
    /// (`container` apps) goes to the source slot, passes the staging health check there, and is
    /// swapped in. A `code` app's package is not kept in Azure: its rollback deploys the package
    /// given with `--package` (the artifact of the run that built it, verified by SHA-256) the same
    /// way, and refuses without one.
    LastKnownGood,
}

/// A command run as part of a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hook {
    /// A name unique within the stage.
    pub name: HookName,
    /// The command, run by a shell. May use `$(...)` variables; write `$$(` for a literal `$(`.
    pub run: String,
    /// Where the command runs.
    #[serde(default, rename = "where")]
    pub where_: HookLocation,
    /// How long the command may run.
    #[serde(default = "default_hook_timeout")]
    pub timeout: Duration,
    /// The command that reverses `run`. A hook without `undo` is a point of no return.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<String>,
    /// Extra environment variables for the command. Values may use `$(...)` variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "env_schema")]
    pub env: BTreeMap<String, String>,
}

fn default_hook_timeout() -> Duration {
    Duration::from_secs(600)
}

impl Hook {
    /// Whether the hook can be reversed.
    pub fn is_point_of_no_return(&self) -> bool {
        self.undo.is_none()
    }
}

/// Where a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum HookLocation {
    /// In the slot, through Kudu (only for `code` apps); it sees the slot's settings.
    #[default]
    Slot,
    /// On the pipeline agent.
    Agent,
}

/// An HTTP health gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    /// The path probed on the slot, e.g. `/health`.
    pub path: String,
    /// The HTTP statuses that count as healthy.
    #[serde(default = "default_statuses")]
    pub statuses: Vec<u16>,
    /// The pause between probes.
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// How many consecutive healthy probes pass the gate.
    #[serde(default = "default_successes")]
    pub successes: u32,
    /// The deadline for passing the gate; it must exceed `interval`.
    #[serde(default = "default_health_timeout")]
    pub timeout: Duration,
    /// Text the response body must contain to count as healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// The key a probe sends, for a function whose `authLevel` asks for one (`function`): `default`, the
    /// slot's default function key, read with the Functions host's `listkeys` when the probes start,
    /// masked at once and never printed or journaled. Without it no key is read or sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_key: Option<FunctionKey>,
    /// How many consecutive definite failures fail the gate before its timeout: answers that waiting
    /// will not change (500, 501, 505 and up, a 4xx other than 408 and 429, App Service's default
    /// page). A 502, 503 or 504, a connection error, a timeout or a body without the expected text is
    /// what a starting app gives, and never counts. Does not apply to the watch (see `maxFailures`).
    #[serde(default = "default_fail_after")]
    pub fail_after: u32,
    /// Judge the slot's real traffic too, from Azure Monitor's metrics over a window: its 5xx rate,
    /// its response time, its requests, and its 5xx rate against production's. Leave it out for a
    /// gate of probes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<crate::analysis::Analysis>,
}

/// Which key a health probe of an Azure Functions app sends (`x-functions-key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FunctionKey {
    /// The probed slot's default function key (`functionKeys.default` of `host/default/listkeys`).
    Default,
}

fn default_fail_after() -> u32 {
    5
}

fn default_statuses() -> Vec<u16> {
    vec![200]
}

fn default_interval() -> Duration {
    Duration::from_secs(5)
}

fn default_successes() -> u32 {
    3
}

fn default_health_timeout() -> Duration {
    Duration::from_secs(300)
}

/// A stage of a release, as the engine names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StageName {
    /// `stages.staging`.
    Staging,
    /// `stages.production`.
    Production,
    /// `stages.rollback`.
    Rollback,
}

impl ReleaseConfig {
    /// The environment with this name.
    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.get(name)
    }

    /// The environment with this name, or an error naming it.
    pub fn require_environment(&self, name: &str) -> Result<&Environment, crate::ConfigError> {
        self.environment(name)
            .ok_or_else(|| crate::ConfigError::UnknownEnvironment {
                name: name.to_string(),
            })
    }

    /// The staging stage.
    pub fn staging(&self) -> &StagingStage {
        &self.stages.staging
    }

    /// The production stage.
    pub fn production(&self) -> &ProductionStage {
        &self.stages.production
    }

    /// The rollback stage, if configured.
    pub fn rollback(&self) -> Option<&RollbackStage> {
        self.stages.rollback.as_ref()
    }

    /// The environment a stage works on (`None` for a rollback stage that is not configured).
    pub fn stage_environment(&self, stage: StageName) -> Option<&Environment> {
        let name = match stage {
            StageName::Staging => &self.stages.staging.environment,
            StageName::Production => &self.stages.production.environment,
            StageName::Rollback => &self.stages.rollback.as_ref()?.environment,
        };
        self.environment(name.as_str())
    }

    /// The hooks a stage runs, in order (the rollback stage runs none of its own).
    pub fn hooks(&self, stage: StageName) -> &[Hook] {
        match stage {
            StageName::Staging => &self.stages.staging.hooks,
            StageName::Production => &self.stages.production.hooks,
            StageName::Rollback => &[],
        }
    }

    /// The health gate of a stage: staging's gate, production's watch probe, rollback's gate.
    pub fn health_check(&self, stage: StageName) -> Option<&HealthCheck> {
        match stage {
            StageName::Staging => Some(&self.stages.staging.health_check),
            StageName::Production => Some(&self.stages.production.watch.health_check),
            StageName::Rollback => self.stages.rollback.as_ref()?.health_check.as_ref(),
        }
    }
}
