//! Seed data: the tenant, clients, service connections, subscriptions, apps, slots and vaults the
//! emulator starts with. Loadable from YAML or JSON (camelCase keys).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::EmulatorError;

/// A secret string (client secret, Key Vault value, access token). It has no `Display`, and its
/// `Debug` is redacted so it never reaches a log by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret value; call only where the value is really needed.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// Everything the emulator knows at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seed {
    /// The Entra tenant every client, subscription and token belongs to.
    pub tenant_id: String,
    /// The Azure DevOps organization name, used in OIDC token subjects.
    #[serde(default = "default_organization")]
    pub organization: String,
    /// The Azure DevOps project name, used in OIDC token subjects.
    #[serde(default = "default_project")]
    pub project: String,
    /// The `System.AccessToken` the Pipelines OIDC endpoint accepts.
    #[serde(default = "default_system_access_token")]
    pub system_access_token: SecretString,
    /// App registrations (service principals).
    #[serde(default)]
    pub clients: Vec<SeedClient>,
    /// Azure Pipelines service connections.
    #[serde(default)]
    pub service_connections: Vec<SeedServiceConnection>,
    /// Managed identities the identity endpoint hands out tokens for.
    #[serde(default)]
    pub managed_identities: Vec<SeedManagedIdentity>,
    /// Subscriptions with their resource groups, apps and vaults.
    #[serde(default)]
    pub subscriptions: Vec<SeedSubscription>,
    /// How the apps' default host names look (`unique`, the default, or `classic`).
    #[serde(default)]
    pub host_name_style: HostNameStyle,
    /// Container images and the local commands that stand in for them (after
    /// `EmulatorOptions::images`, which win). In a seed file, a relative `dir` is relative to the
    /// file's folder, and no `dir` means that folder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<crate::ImageMapping>,
}

/// How App Service names an app's default hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum HostNameStyle {
    /// `<site>-<hash>.<region>.azurewebsites…` (SCM `<site>-<hash>.scm.<region>.…`), as apps created
    /// since 2024 may get: the host cannot be guessed from the site's name, only read from ARM.
    #[default]
    Unique,
    /// `<site>[-<slot>].azurewebsites…` (SCM `….scm.azurewebsites…`), as older apps have.
    Classic,
}

impl std::str::FromStr for HostNameStyle {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "unique" => Ok(Self::Unique),
            "classic" => Ok(Self::Classic),
            other => Err(format!(
                "unknown host name style '{other}' (expected unique or classic)"
            )),
        }
    }
}

fn default_organization() -> String {
    "contoso".to_owned()
}
fn default_project() -> String {
    "web".to_owned()
}
fn default_system_access_token() -> SecretString {
    SecretString::new("emulator-system-access-token")
}

/// An app registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedClient {
    /// The application (client) ID.
    pub client_id: String,
    /// The client secret; absent for clients that only use federated credentials.
    #[serde(default)]
    pub secret: Option<SecretString>,
    /// Public certificates (PEM, RSA X.509) the client signs assertions with, as Entra's
    /// "Certificates & secrets" holds them; never a private key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<String>,
}

/// How a service connection authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConnectionKind {
    /// Service principal with a client secret (`ServicePrincipal` scheme, `spnKey`).
    ServicePrincipal,
    /// Workload identity federation through the Pipelines OIDC endpoint.
    WorkloadIdentityFederation,
    /// Managed identity of the agent (`ManagedServiceIdentity` scheme).
    ManagedIdentity,
}

/// An Azure Resource Manager service connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedServiceConnection {
    /// The connection GUID (the `<id>` of `ENDPOINT_*` variables).
    pub id: String,
    /// The connection name, used in the OIDC subject `sc://org/project/name`.
    pub name: String,
    /// How it authenticates.
    pub kind: ConnectionKind,
    /// The client it authenticates as (for managed identity: the identity's client ID).
    pub client_id: String,
    /// The subscription it is scoped to.
    pub subscription_id: String,
}

/// A user-assigned or system-assigned managed identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedManagedIdentity {
    /// The identity's client ID.
    pub client_id: String,
}

/// A subscription.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedSubscription {
    /// The subscription GUID.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Resource groups.
    #[serde(default)]
    pub resource_groups: Vec<SeedResourceGroup>,
}

/// A resource group.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedResourceGroup {
    /// Resource group name.
    pub name: String,
    /// Web apps.
    #[serde(default)]
    pub apps: Vec<SeedApp>,
    /// Key vaults.
    #[serde(default)]
    pub vaults: Vec<SeedVault>,
}

/// Whether an app runs code deployed through Kudu or a container image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum AppKind {
    /// Code deployed with OneDeploy/ZipDeploy, started with `appCommandLine`.
    #[default]
    Code,
    /// A container image from `linuxFxVersion: DOCKER|image`, mapped to a local command.
    Container,
}

/// A web app.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedApp {
    /// Globally unique app name (its host name prefix).
    pub name: String,
    /// Code or container.
    #[serde(default)]
    pub kind: AppKind,
    /// Azure region.
    #[serde(default = "default_location")]
    pub location: String,
    /// Whether SCM basic authentication with publishing credentials is allowed.
    #[serde(default = "default_true")]
    pub basic_auth: bool,
    /// Sticky (slot-specific) setting names.
    #[serde(default)]
    pub slot_config_names: SlotConfigNames,
    /// Slots; `production` is created when absent.
    #[serde(default)]
    pub slots: Vec<SeedSlot>,
    /// The operating system: `linux` (the default; `reserved: true`) or `windows`.
    #[serde(default)]
    pub os: AppOs,
    /// An Azure Functions app (`kind: functionapp[,linux]`, with host keys) rather than a web app.
    #[serde(default)]
    pub function_app: bool,
    /// The App Service plan the app runs on (`properties.serverFarmId`); by default `<app>-plan`
    /// on `S1` (Standard, which has slots).
    #[serde(default)]
    pub plan: SeedPlan,
    /// `properties.functionAppConfig` of a Flex Consumption app, as ARM serves it; a default one
    /// when the plan is `FC1` and none is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_app_config: Option<serde_json::Value>,
}

impl Default for SeedApp {
    /// A Linux code web app named `app` with the seed defaults and no slots.
    fn default() -> Self {
        Self {
            name: "app".to_owned(),
            kind: AppKind::default(),
            location: default_location(),
            basic_auth: true,
            slot_config_names: SlotConfigNames::default(),
            slots: Vec::new(),
            os: AppOs::default(),
            function_app: false,
            plan: SeedPlan::default(),
            function_app_config: None,
        }
    }
}

/// The operating system an app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum AppOs {
    /// Linux (`reserved: true`, the stack in `linuxFxVersion`).
    #[default]
    Linux,
    /// Windows (`reserved: false`, the stack in `windowsFxVersion`, `netFrameworkVersion`, … and
    /// `metadata.CURRENT_STACK`).
    Windows,
}

/// An App Service plan (`Microsoft.Web/serverfarms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedPlan {
    /// The plan's name; `<app>-plan` when absent. Apps naming the same plan share it.
    #[serde(default)]
    pub name: Option<String>,
    /// The SKU: `F1`, `B1`, `S1`, `P1v3`, `EP1`, `Y1`, `FC1`, …
    #[serde(default = "default_sku")]
    pub sku: String,
}

fn default_sku() -> String {
    "S1".to_owned()
}

impl Default for SeedPlan {
    fn default() -> Self {
        Self {
            name: None,
            sku: default_sku(),
        }
    }
}

fn default_location() -> String {
    "East US".to_owned()
}
fn default_true() -> bool {
    true
}

/// The site-wide list of sticky setting names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotConfigNames {
    /// Sticky app setting names.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub app_setting_names: Vec<String>,
    /// Sticky connection string names.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub connection_string_names: Vec<String>,
    /// Sticky storage mount names.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub azure_storage_config_names: Vec<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// One slot of an app.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedSlot {
    /// Slot name; `production` is the site itself.
    pub name: String,
    /// App settings.
    #[serde(default)]
    pub app_settings: BTreeMap<String, String>,
    /// Site configuration (`linuxFxVersion`, `appCommandLine`, `healthCheckPath`, `alwaysOn`, ...),
    /// stored and served as given.
    #[serde(default)]
    pub site_config: serde_json::Map<String, serde_json::Value>,
    /// Whether the slot starts stopped.
    #[serde(default)]
    pub stopped: bool,
    /// Resource tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// A directory copied into the slot's site folder at start.
    #[serde(default)]
    pub content_dir: Option<PathBuf>,
    /// Connection strings by name (`{value, type}`), served by `config/connectionstrings` and given
    /// to the app process with their type's prefix (`SQLAZURECONNSTR_NAME`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub connection_strings: BTreeMap<String, crate::platform::ConnectionString>,
    /// `config/metadata` (e.g. `CURRENT_STACK: dotnet` on a Windows app).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// The `sitecontainers` of a sitecontainers app, by name: their ARM `properties` (`image`,
    /// `isMain`, `targetPort`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub site_containers: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

impl SeedSlot {
    /// An empty slot with every field at its seed default.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            app_settings: BTreeMap::new(),
            site_config: serde_json::Map::new(),
            stopped: false,
            tags: BTreeMap::new(),
            content_dir: None,
            connection_strings: BTreeMap::new(),
            metadata: BTreeMap::new(),
            site_containers: BTreeMap::new(),
        }
    }
}

impl Default for SeedSlot {
    /// The production slot, empty.
    fn default() -> Self {
        Self::named("production")
    }
}

impl SeedApp {
    /// The name of the app's plan.
    pub fn plan_name(&self) -> String {
        self.plan
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-plan", self.name))
    }
}

/// A key vault.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedVault {
    /// Vault name (its host name prefix).
    pub name: String,
    /// Throttling: more than `limit` requests per `window_seconds` get 429.
    #[serde(default)]
    pub throttle: Option<Throttle>,
    /// Secrets.
    #[serde(default)]
    pub secrets: Vec<SeedSecret>,
}

/// A request budget per time window.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Throttle {
    /// Requests allowed per window.
    pub limit: u32,
    /// Window length in seconds.
    pub window_seconds: u64,
}

/// A secret; `versions` lists older values, oldest first, and `value` is the latest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedSecret {
    /// Secret name (`^[0-9a-zA-Z-]+$`).
    pub name: String,
    /// Latest value.
    pub value: SecretString,
    /// Older values, oldest first.
    #[serde(default)]
    pub previous_values: Vec<SecretString>,
    /// Whether the secret is enabled.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Expiry, Unix seconds.
    #[serde(default)]
    pub exp: Option<i64>,
    /// Not-before, Unix seconds.
    #[serde(default)]
    pub nbf: Option<i64>,
    /// Content type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl Seed {
    /// Reads a seed from a YAML or JSON file (JSON is YAML, so one parser serves both).
    pub fn from_file(path: &Path) -> Result<Seed, EmulatorError> {
        let text = std::fs::read_to_string(path).map_err(|source| EmulatorError::SeedRead {
            path: path.to_owned(),
            source,
        })?;
        let mut seed = Self::from_yaml_str(&text).map_err(|message| EmulatorError::SeedParse {
            path: path.to_owned(),
            message,
        })?;
        // The command of a mapping runs where the seed says, read from where the seed file is.
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        for image in &mut seed.images {
            image.dir = base.join(&image.dir);
        }
        Ok(seed)
    }

    /// Parses a seed from YAML or JSON text.
    pub fn from_yaml_str(text: &str) -> Result<Seed, String> {
        let seed: Seed = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        seed.validate()?;
        Ok(seed)
    }

    /// Checks cross references and uniqueness.
    pub fn validate(&self) -> Result<(), String> {
        let mut apps = std::collections::BTreeSet::new();
        let mut plans = BTreeMap::new();
        let mut vaults = std::collections::BTreeSet::new();
        for sub in &self.subscriptions {
            for rg in &sub.resource_groups {
                for app in &rg.apps {
                    if !valid_host_label(&app.name) {
                        return Err(format!("app name '{}' is not a valid host label", app.name));
                    }
                    if !apps.insert(app.name.to_ascii_lowercase()) {
                        return Err(format!("app '{}' is defined twice", app.name));
                    }
                    let sku = crate::platform::Sku::parse(&app.plan.sku).ok_or_else(|| {
                        format!("app '{}': unknown plan SKU '{}'", app.name, app.plan.sku)
                    })?;
                    let plan = app.plan_name();
                    if let Some(other) = plans.insert(plan.to_ascii_lowercase(), sku.clone())
                        && other != sku
                    {
                        return Err(format!("plan '{plan}' is given two SKUs"));
                    }
                    let count = app.slots.len()
                        + usize::from(
                            !app.slots
                                .iter()
                                .any(|s| s.name.eq_ignore_ascii_case("production")),
                        );
                    if count > sku.slot_limit(app.os == AppOs::Linux) {
                        return Err(format!(
                            "app '{}' has {count} slots; its plan's SKU '{}' allows {}",
                            app.name,
                            sku.name,
                            sku.slot_limit(app.os == AppOs::Linux)
                        ));
                    }
                    let mut slots = std::collections::BTreeSet::new();
                    for slot in &app.slots {
                        if !valid_host_label(&slot.name) {
                            return Err(format!("slot name '{}' is not valid", slot.name));
                        }
                        if !slots.insert(slot.name.to_ascii_lowercase()) {
                            return Err(format!(
                                "slot '{}' of app '{}' is defined twice",
                                slot.name, app.name
                            ));
                        }
                    }
                }
                for vault in &rg.vaults {
                    if !valid_host_label(&vault.name) {
                        return Err(format!("vault name '{}' is not valid", vault.name));
                    }
                    if !vaults.insert(vault.name.to_ascii_lowercase()) {
                        return Err(format!("vault '{}' is defined twice", vault.name));
                    }
                }
            }
        }
        for sc in &self.service_connections {
            let known = match sc.kind {
                ConnectionKind::ManagedIdentity => self
                    .managed_identities
                    .iter()
                    .any(|m| m.client_id == sc.client_id),
                _ => self.clients.iter().any(|c| c.client_id == sc.client_id),
            };
            if !known {
                return Err(format!(
                    "service connection '{}' refers to unknown client '{}'",
                    sc.name, sc.client_id
                ));
            }
        }
        Ok(())
    }

    /// A small seed for tests and a first `slot-release emulator` run: one tenant, one client with
    /// a secret, three service connections (one per kind), one app `contoso-web` with `production`
    /// and `staging`, and one vault `contoso-kv`.
    pub fn sample() -> Seed {
        let sub = "00000000-0000-0000-0000-0000000000a1".to_owned();
        let client = "11111111-1111-1111-1111-111111111111".to_owned();
        let mi = "22222222-2222-2222-2222-222222222222".to_owned();
        let slot = SeedSlot::named;
        Seed {
            tenant_id: "72f988bf-0000-0000-0000-000000000001".to_owned(),
            organization: default_organization(),
            project: default_project(),
            system_access_token: default_system_access_token(),
            clients: vec![SeedClient {
                client_id: client.clone(),
                secret: Some(SecretString::new("emulator-client-secret")),
                certificates: Vec::new(),
            }],
            service_connections: vec![
                SeedServiceConnection {
                    id: "5a7c3f10-0000-0000-0000-000000000001".to_owned(),
                    name: "contoso-spn".to_owned(),
                    kind: ConnectionKind::ServicePrincipal,
                    client_id: client.clone(),
                    subscription_id: sub.clone(),
                },
                SeedServiceConnection {
                    id: "5a7c3f10-0000-0000-0000-000000000002".to_owned(),
                    name: "contoso-wif".to_owned(),
                    kind: ConnectionKind::WorkloadIdentityFederation,
                    client_id: client,
                    subscription_id: sub.clone(),
                },
                SeedServiceConnection {
                    id: "5a7c3f10-0000-0000-0000-000000000003".to_owned(),
                    name: "contoso-msi".to_owned(),
                    kind: ConnectionKind::ManagedIdentity,
                    client_id: mi.clone(),
                    subscription_id: sub.clone(),
                },
            ],
            managed_identities: vec![SeedManagedIdentity { client_id: mi }],
            subscriptions: vec![SeedSubscription {
                id: sub,
                name: "Contoso".to_owned(),
                resource_groups: vec![SeedResourceGroup {
                    name: "contoso-rg".to_owned(),
                    apps: vec![SeedApp {
                        name: "contoso-web".to_owned(),
                        slots: vec![slot("production"), slot("staging")],
                        ..SeedApp::default()
                    }],
                    vaults: vec![SeedVault {
                        name: "contoso-kv".to_owned(),
                        throttle: None,
                        secrets: vec![SeedSecret {
                            name: "db-password".to_owned(),
                            value: SecretString::new("s3cr3t-value"),
                            previous_values: Vec::new(),
                            enabled: true,
                            exp: None,
                            nbf: None,
                            content_type: None,
                            tags: BTreeMap::new(),
                        }],
                    }],
                }],
            }],
            host_name_style: HostNameStyle::default(),
            images: Vec::new(),
        }
    }
}

/// A DNS label: letters, digits and inner hyphens, 1–63 characters.
pub(crate) fn valid_host_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
tenantId: t-1
clients:
  - clientId: c-1
    secret: shh
serviceConnections:
  - { id: sc-1, name: conn, kind: workloadIdentityFederation, clientId: c-1, subscriptionId: s-1 }
subscriptions:
  - id: s-1
    resourceGroups:
      - name: rg
        apps:
          - name: web
            kind: container
            slotConfigNames: { appSettingNames: [A] }
            slots:
              - name: staging
                appSettings: { A: "1" }
                siteConfig: { linuxFxVersion: "DOCKER|contoso/app:1" }
        vaults:
          - name: kv
            throttle: { limit: 5, windowSeconds: 10 }
            secrets:
              - { name: s, value: v, exp: 1700000000 }
"#;

    #[test]
    fn yaml_and_json_seeds_parse_with_defaults() {
        let seed = Seed::from_yaml_str(YAML).expect("valid seed");
        assert_eq!(seed.organization, "contoso");
        let app = &seed.subscriptions[0].resource_groups[0].apps[0];
        assert_eq!(app.kind, AppKind::Container);
        assert!(app.basic_auth);
        assert_eq!(app.slot_config_names.app_setting_names, vec!["A"]);
        let secret = &seed.subscriptions[0].resource_groups[0].vaults[0].secrets[0];
        assert!(secret.enabled);
        assert_eq!(secret.value.expose(), "v");
        assert_eq!(format!("{:?}", secret.value), "SecretString(<redacted>)");
        let json = serde_json::to_string(&seed).expect("serialises");
        let again = Seed::from_yaml_str(&json).expect("JSON is accepted too");
        assert_eq!(
            again.subscriptions[0].resource_groups[0].apps[0].name,
            "web"
        );
    }

    #[test]
    fn image_mappings_run_relative_to_the_seed_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("seed.yml");
        let text = format!(
            "{YAML}images:\n  - {{ pattern: 'contoso/app:*', command: python3 app.py, dir: image }}\n  - {{ pattern: 'other:*', command: ./run }}\n"
        );
        std::fs::write(&path, text).expect("write seed");
        let seed = Seed::from_file(&path).expect("valid seed");
        assert_eq!(seed.images.len(), 2);
        assert_eq!(seed.images[0].pattern, "contoso/app:*");
        assert_eq!(seed.images[0].command, "python3 app.py");
        assert_eq!(seed.images[0].dir, dir.path().join("image"));
        assert_eq!(seed.images[1].dir, dir.path().join(""));
        assert_eq!(seed.host_name_style, HostNameStyle::Unique);
        let classic = format!("{YAML}hostNameStyle: classic\n");
        assert_eq!(
            Seed::from_yaml_str(&classic)
                .expect("valid")
                .host_name_style,
            HostNameStyle::Classic
        );
    }

    #[test]
    fn inconsistent_seeds_are_refused() {
        let dup = YAML.replace(
            "          - name: web\n",
            "          - name: web\n            location: x\n          - name: WEB\n",
        );
        assert!(
            Seed::from_yaml_str(&dup)
                .unwrap_err()
                .contains("defined twice")
        );
        let unknown = YAML.replace(
            "clientId: c-1, subscriptionId",
            "clientId: nobody, subscriptionId",
        );
        assert!(
            Seed::from_yaml_str(&unknown)
                .unwrap_err()
                .contains("unknown client")
        );
        let basic = YAML.replace(
            "            kind: container\n",
            "            kind: container\n            plan: { sku: B1 }\n",
        );
        assert!(
            Seed::from_yaml_str(&basic)
                .unwrap_err()
                .contains("allows 1")
        );
        let unknown_sku = YAML.replace(
            "            kind: container\n",
            "            kind: container\n            plan: { sku: Z9 }\n",
        );
        assert!(
            Seed::from_yaml_str(&unknown_sku)
                .unwrap_err()
                .contains("unknown plan SKU")
        );
        let typo = YAML.replace("tenantId: t-1", "tenantId: t-1\ntenant: oops");
        assert!(Seed::from_yaml_str(&typo).is_err());
        assert!(Seed::sample().validate().is_ok());
    }
}
