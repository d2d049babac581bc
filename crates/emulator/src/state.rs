//! The emulated Azure state (apps, slots, vaults, operations) and its public snapshot types.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::hostnames::{HostNaming, SlotHosts};
use crate::platform::ConnectionString;
use crate::platform::Sku;
pub(crate) use crate::platform::{HostKeys, SiteContainer};
use crate::runtime::Instance;
use crate::seed::{AppKind, AppOs, SecretString, Seed, SlotConfigNames, Throttle};
use crate::{DOMAIN, EmulatorError, Shared, lock};

/// The production slot's name.
pub(crate) const PRODUCTION: &str = "production";

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) apps: BTreeMap<String, App>,
    pub(crate) vaults: BTreeMap<String, Vault>,
    pub(crate) operations: HashMap<String, Operation>,
}

#[derive(Debug)]
pub(crate) struct App {
    pub(crate) name: String,
    pub(crate) subscription_id: String,
    pub(crate) resource_group: String,
    pub(crate) location: String,
    pub(crate) kind: AppKind,
    pub(crate) basic_auth: bool,
    pub(crate) publishing_password: SecretString,
    pub(crate) slot_config_names: SlotConfigNames,
    pub(crate) slots: BTreeMap<String, Slot>,
    pub(crate) home_dir: PathBuf,
    pub(crate) root_dir: PathBuf,
    /// The long-running operation holding the app, if any (a second one gets 409).
    pub(crate) busy: Option<(String, String)>,
    /// Swap with preview in progress: source, target and the source's settings before phase 1.
    pub(crate) preview: Option<Preview>,
    /// How the site's default hosts are named (style, hash key, region).
    pub(crate) naming: HostNaming,
    /// Linux or Windows.
    pub(crate) os: AppOs,
    /// An Azure Functions app.
    pub(crate) function_app: bool,
    /// The plan's name and SKU.
    pub(crate) plan: (String, Sku),
    /// `properties.functionAppConfig` (Flex Consumption).
    pub(crate) function_app_config: Option<serde_json::Value>,
}

#[derive(Debug, Clone)]
pub(crate) struct Preview {
    pub(crate) source: String,
    pub(crate) target: String,
    pub(crate) original_settings: BTreeMap<String, String>,
    pub(crate) original_connection_strings: BTreeMap<String, ConnectionString>,
}

#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) name: String,
    pub(crate) stopped: bool,
    pub(crate) app_settings: BTreeMap<String, String>,
    /// `config/connectionstrings`: swapped like app settings unless named sticky.
    pub(crate) connection_strings: BTreeMap<String, ConnectionString>,
    pub(crate) site_config: serde_json::Map<String, serde_json::Value>,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) content_dir: PathBuf,
    pub(crate) deployments: Vec<DeploymentRecord>,
    pub(crate) deploying: bool,
    pub(crate) instance: Option<Arc<Instance>>,
    pub(crate) requests_served: u64,
    pub(crate) forced_unhealthy: bool,
    pub(crate) last_modified: String,
    /// `config/metadata` (e.g. `CURRENT_STACK`), stays with its slot on a swap.
    pub(crate) metadata: BTreeMap<String, String>,
    /// `sitecontainers`, by lowercase name; they move with the content on a swap.
    pub(crate) site_containers: BTreeMap<String, SiteContainer>,
    /// The Functions host keys of a function app's slot.
    pub(crate) host_keys: Option<HostKeys>,
    /// Run from package: the `SitePackages` zip `content_dir` was mounted from; a restart remounts
    /// when `packagename.txt` names another.
    pub(crate) mounted_package: Option<String>,
}

impl App {
    pub(crate) fn is_sticky(&self, setting: &str, settings: &BTreeMap<String, String>) -> bool {
        if self
            .slot_config_names
            .app_setting_names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(setting))
        {
            return true;
        }
        // `*_EXTENSION_VERSION` settings are sticky by default unless the slot opts out.
        setting.to_ascii_uppercase().ends_with("_EXTENSION_VERSION")
            && !crate::arm::overrides_default_sticky(settings)
    }

    /// Whether a connection string stays with its slot on a swap (`slotConfigNames`).
    pub(crate) fn is_sticky_connection_string(&self, name: &str) -> bool {
        self.slot_config_names
            .connection_string_names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
    }

    /// Resolves a slot name (case-insensitive; `production` is the site).
    pub(crate) fn slot(&self, name: &str) -> Option<&Slot> {
        self.slots.get(&name.to_ascii_lowercase())
    }
    pub(crate) fn slot_mut(&mut self, name: &str) -> Option<&mut Slot> {
        self.slots.get_mut(&name.to_ascii_lowercase())
    }
    /// The site config a new slot of this app starts with: Windows apps carry no `linuxFxVersion`.
    pub(crate) fn default_config(&self) -> serde_json::Map<String, serde_json::Value> {
        default_site_config_for(self.kind, self.os)
    }

    /// A new slot's host keys: function apps only.
    pub(crate) fn new_host_keys(&self) -> Option<HostKeys> {
        self.function_app.then(HostKeys::generate)
    }

    /// The default app and SCM hosts of a slot (without the port); they stay with the slot in a swap.
    pub(crate) fn hosts(&self, slot: &str) -> SlotHosts {
        crate::hostnames::slot_hosts(&self.naming, &self.name, slot)
    }
    pub(crate) fn publishing_user(&self, slot: &str) -> String {
        if slot.eq_ignore_ascii_case(PRODUCTION) {
            format!("${}", self.name)
        } else {
            format!("${}__{}", self.name, slot)
        }
    }
    pub(crate) fn image(&self, slot: &Slot) -> Option<String> {
        if self.kind != AppKind::Container {
            return None;
        }
        let fx = slot
            .site_config
            .get("linuxFxVersion")
            .and_then(|v| v.as_str());
        if fx.is_some_and(|v| v.trim().eq_ignore_ascii_case("SITECONTAINERS")) {
            return crate::platform::main_image(&slot.site_containers);
        }
        slot.site_config
            .get("linuxFxVersion")
            .and_then(|v| v.as_str())
            .and_then(|v| v.split_once('|'))
            .filter(|(k, _)| k.eq_ignore_ascii_case("DOCKER"))
            .map(|(_, img)| img.to_owned())
    }
}

#[derive(Debug)]
pub(crate) struct Vault {
    pub(crate) name: String,
    pub(crate) throttle: Option<Throttle>,
    pub(crate) window: Option<(std::time::Instant, u32)>,
    pub(crate) secrets: BTreeMap<String, Secret>,
}

#[derive(Debug)]
pub(crate) struct Secret {
    pub(crate) name: String,
    /// Versions, oldest first; the last is the current one.
    pub(crate) versions: Vec<SecretVersion>,
    pub(crate) enabled: bool,
    pub(crate) exp: Option<i64>,
    pub(crate) nbf: Option<i64>,
    pub(crate) content_type: Option<String>,
    pub(crate) tags: BTreeMap<String, String>,
}

#[derive(Debug)]
pub(crate) struct SecretVersion {
    pub(crate) id: String,
    pub(crate) value: SecretString,
    pub(crate) created: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub(crate) app: String,
    pub(crate) name: String,
    pub(crate) status: OpStatus,
    pub(crate) started: String,
}

#[derive(Debug, Clone)]
pub(crate) enum OpStatus {
    InProgress,
    Succeeded,
    Failed {
        status: u16,
        code: String,
        message: String,
    },
}

/// A Kudu deployment record, in Kudu's snake_case JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// Deployment ID.
    pub id: String,
    /// 0 pending, 1 building, 2 deploying, 3 failed, 4 success.
    pub status: i32,
    /// Status text.
    #[serde(default)]
    pub status_text: String,
    /// Author e-mail.
    #[serde(default)]
    pub author_email: Option<String>,
    /// Author.
    #[serde(default)]
    pub author: Option<String>,
    /// Deployer (`OneDeploy`, `ZipDeploy`, or a client's own).
    #[serde(default)]
    pub deployer: Option<String>,
    /// Message (ARR sends JSON here).
    #[serde(default)]
    pub message: Option<String>,
    /// Progress text.
    #[serde(default)]
    pub progress: String,
    /// When the request arrived (RFC 3339).
    #[serde(default)]
    pub received_time: Option<String>,
    /// Start (RFC 3339).
    #[serde(default)]
    pub start_time: Option<String>,
    /// End (RFC 3339).
    #[serde(default)]
    pub end_time: Option<String>,
    /// End of the last successful deployment.
    #[serde(default)]
    pub last_success_end_time: Option<String>,
    /// Finished (either way).
    #[serde(default)]
    pub complete: bool,
    /// The deployment now live in the slot.
    #[serde(default)]
    pub active: bool,
    /// Kudu's temporary flag.
    #[serde(default)]
    pub is_temp: bool,
    /// Kudu's read-only flag.
    #[serde(default)]
    pub is_readonly: bool,
    /// URL of this record.
    #[serde(default)]
    pub url: Option<String>,
    /// URL of its log.
    #[serde(default)]
    pub log_url: Option<String>,
    /// Site name.
    #[serde(default)]
    pub site_name: Option<String>,
    /// Free-form details (written with `PUT /api/deployments/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    /// Log lines.
    #[serde(skip)]
    pub log: Vec<String>,
    /// SHA-256 of the package this deployment received (push deployments only), for tests to check
    /// exactly which bytes were deployed; not part of Kudu's answer.
    #[serde(skip)]
    pub received_sha256: Option<String>,
}

/// Whether a slot's app process is up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum RunState {
    /// The slot is stopped.
    Stopped,
    /// No startup command: the slot serves the default page.
    DefaultPage,
    /// The process was started and does not listen yet.
    Starting,
    /// The process listens on its port.
    Running {
        /// The process's `PORT`.
        port: u16,
    },
    /// The process exited, never listened, or its image could not be mapped.
    Failed {
        /// Why.
        reason: String,
    },
}

/// Everything tests assert on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateSnapshot {
    /// Apps, by name.
    pub apps: Vec<AppSnapshot>,
    /// Vaults, by name.
    pub vaults: Vec<VaultSnapshot>,
}

impl StateSnapshot {
    /// The slot `slot` of app `app`.
    pub fn slot(&self, app: &str, slot: &str) -> Option<&SlotSnapshot> {
        self.apps
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(app))?
            .slots
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(slot))
    }
}

/// One app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSnapshot {
    /// Name.
    pub name: String,
    /// Subscription.
    pub subscription_id: String,
    /// Resource group.
    pub resource_group: String,
    /// Code or container.
    pub kind: AppKind,
    /// Sticky names.
    pub slot_config_names: SlotConfigNames,
    /// Whether SCM basic auth is allowed.
    pub basic_auth: bool,
    /// The long-running operation in progress, if any.
    pub busy: Option<String>,
    /// Slots, production first.
    pub slots: Vec<SlotSnapshot>,
}

/// One slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotSnapshot {
    /// Slot name.
    pub name: String,
    /// `Running` or `Stopped`.
    pub state: String,
    /// SHA-256 over the site folder's relative paths and contents (empty folder: digest of nothing).
    pub content_digest: String,
    /// App settings.
    pub app_settings: BTreeMap<String, String>,
    /// Which of this slot's settings are sticky.
    pub sticky_setting_names: Vec<String>,
    /// Connection strings.
    pub connection_strings: BTreeMap<String, ConnectionString>,
    /// Site config.
    pub site_config: serde_json::Map<String, serde_json::Value>,
    /// Container image, for container apps.
    pub image: Option<String>,
    /// The app process.
    pub running: RunState,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Deployment history, oldest first.
    pub deployments: Vec<DeploymentRecord>,
    /// The site folder.
    pub content_dir: PathBuf,
    /// The slot's default host as ARM names it, without the port.
    pub host_name: String,
    /// The slot's SCM (Kudu) host, without the port.
    pub scm_host_name: String,
    /// A sitecontainers app's containers: their ARM `properties`, by lowercase name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub site_containers: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

/// One vault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultSnapshot {
    /// Name.
    pub name: String,
    /// Secret names.
    pub secrets: Vec<String>,
}

/// One request the emulator received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// HTTP version as negotiated: `HTTP/1.1` or `HTTP/2.0`.
    #[serde(default)]
    pub version: String,
    /// HTTP method.
    pub method: String,
    /// Host without port.
    pub host: String,
    /// Path without query.
    pub path: String,
    /// The `api-version` query parameter.
    pub api_version: Option<String>,
    /// Response status; 0 when the connection was reset or the request hung.
    pub status: u16,
    /// When it arrived (RFC 3339).
    pub time: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub(crate) fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> EmulatorError + '_ {
    move |source| EmulatorError::WorkDir {
        path: path.to_owned(),
        source,
    }
}

/// Default site config, the fields of the official `GetSiteConfig` example, for a Linux app.
pub(crate) fn default_site_config(kind: AppKind) -> serde_json::Map<String, serde_json::Value> {
    let v = serde_json::json!({
        "numberOfWorkers": 1,
        "defaultDocuments": ["Default.htm", "Default.html", "index.htm", "index.html", "hostingstart.html"],
        "netFrameworkVersion": "v4.0",
        "phpVersion": "",
        "pythonVersion": "",
        "nodeVersion": "",
        "powerShellVersion": "",
        "linuxFxVersion": match kind { AppKind::Code => "PYTHON|3.12", AppKind::Container => "DOCKER|" },
        "requestTracingEnabled": false,
        "remoteDebuggingEnabled": false,
        "httpLoggingEnabled": false,
        "acrUseManagedIdentityCreds": false,
        "logsDirectorySizeLimit": 35,
        "detailedErrorLoggingEnabled": false,
        "use32BitWorkerProcess": false,
        "webSocketsEnabled": false,
        "alwaysOn": false,
        "appCommandLine": "",
        "managedPipelineMode": "Integrated",
        "virtualApplications": [{"virtualPath": "/", "physicalPath": "site\\wwwroot", "preloadEnabled": false}],
        "loadBalancing": "LeastRequests",
        "experiments": {"rampUpRules": []},
        "autoHealEnabled": false,
        "vnetName": "",
        "vnetRouteAllEnabled": false,
        "vnetPrivatePortsCount": 0,
        "http20Enabled": false,
        "windowsFxVersion": null,
        "javaVersion": null,
        "javaContainer": null,
        "javaContainerVersion": null,
        "acrUserManagedIdentityID": null,
        "minTlsVersion": "1.2",
        "scmMinTlsVersion": "1.2",
        "ftpsState": "AllAllowed",
        "healthCheckPath": null,
        "functionAppScaleLimit": 0,
        "functionsRuntimeScaleMonitoringEnabled": false,
        "minimumElasticInstanceCount": 0,
        "azureStorageAccounts": {}
    });
    match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// [`default_site_config`] for an app on `os`.
pub(crate) fn default_site_config_for(
    kind: AppKind,
    os: AppOs,
) -> serde_json::Map<String, serde_json::Value> {
    let mut config = default_site_config(kind);
    if os == AppOs::Windows {
        config.insert("linuxFxVersion".into(), "".into());
    }
    config
}

/// Builds the state from the seed, creating site folders and copying seeded content.
pub(crate) fn from_seed(seed: &Seed, work_dir: &Path) -> Result<State, EmulatorError> {
    let mut state = State::default();
    for sub in &seed.subscriptions {
        for rg in &sub.resource_groups {
            for app in &rg.apps {
                let root = work_dir.join("apps").join(app.name.to_ascii_lowercase());
                let home = root.join("home");
                std::fs::create_dir_all(&home).map_err(io_err(&home))?;
                let mut slots = BTreeMap::new();
                let mut seeded: Vec<_> = app.slots.clone();
                if !seeded
                    .iter()
                    .any(|s| s.name.eq_ignore_ascii_case(PRODUCTION))
                {
                    seeded.insert(0, crate::seed::SeedSlot::named(PRODUCTION));
                }
                for s in seeded {
                    let content = new_content_dir(&root)?;
                    if let Some(src) = &s.content_dir {
                        copy_dir(src, &content)?;
                    }
                    let mut config = default_site_config_for(app.kind, app.os);
                    for (k, v) in s.site_config {
                        config.insert(k, v);
                    }
                    slots.insert(
                        s.name.to_ascii_lowercase(),
                        Slot {
                            name: s.name.to_ascii_lowercase(),
                            stopped: s.stopped,
                            app_settings: s.app_settings,
                            connection_strings: s.connection_strings,
                            site_config: config,
                            tags: s.tags,
                            content_dir: content,
                            deployments: Vec::new(),
                            deploying: false,
                            instance: None,
                            requests_served: 0,
                            forced_unhealthy: false,
                            last_modified: now_rfc3339(),
                            metadata: s.metadata,
                            site_containers: s
                                .site_containers
                                .into_iter()
                                .map(|(name, properties)| {
                                    (
                                        name.to_ascii_lowercase(),
                                        SiteContainer { name, properties },
                                    )
                                })
                                .collect(),
                            host_keys: app.function_app.then(HostKeys::generate),
                            mounted_package: None,
                        },
                    );
                }
                state.apps.insert(
                    app.name.to_ascii_lowercase(),
                    App {
                        name: app.name.to_ascii_lowercase(),
                        subscription_id: sub.id.clone(),
                        resource_group: rg.name.clone(),
                        location: app.location.clone(),
                        kind: app.kind,
                        basic_auth: app.basic_auth,
                        publishing_password: SecretString::new(new_id()),
                        slot_config_names: app.slot_config_names.clone(),
                        slots,
                        home_dir: home,
                        root_dir: root,
                        busy: None,
                        preview: None,
                        naming: HostNaming {
                            style: seed.host_name_style,
                            key: new_id(),
                            region: crate::hostnames::region_label(&app.location),
                        },
                        os: app.os,
                        function_app: app.function_app,
                        // The seed was validated: its SKU parses.
                        plan: (
                            app.plan_name(),
                            Sku::parse(&app.plan.sku).unwrap_or_else(Sku::standard),
                        ),
                        function_app_config: app.function_app_config.clone().or_else(|| {
                            (app.plan.sku.eq_ignore_ascii_case("FC1"))
                                .then(|| crate::platform::default_function_app_config(&app.name))
                        }),
                    },
                );
            }
            for v in &rg.vaults {
                let now = now_unix();
                let secrets = v
                    .secrets
                    .iter()
                    .map(|s| {
                        let versions = s
                            .previous_values
                            .iter()
                            .chain(std::iter::once(&s.value))
                            .map(|value| SecretVersion {
                                id: new_id(),
                                value: value.clone(),
                                created: now,
                            })
                            .collect();
                        (
                            s.name.to_ascii_lowercase(),
                            Secret {
                                name: s.name.clone(),
                                versions,
                                enabled: s.enabled,
                                exp: s.exp,
                                nbf: s.nbf,
                                content_type: s.content_type.clone(),
                                tags: s.tags.clone(),
                            },
                        )
                    })
                    .collect();
                state.vaults.insert(
                    v.name.to_ascii_lowercase(),
                    Vault {
                        name: v.name.to_ascii_lowercase(),
                        throttle: v.throttle,
                        window: None,
                        secrets,
                    },
                );
            }
        }
    }
    Ok(state)
}

/// A fresh, empty site folder under the app's root.
pub(crate) fn new_content_dir(root: &Path) -> Result<PathBuf, EmulatorError> {
    let dir = root.join("content").join(new_id());
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    Ok(dir)
}

fn copy_dir(src: &Path, dst: &Path) -> Result<(), EmulatorError> {
    let entries = std::fs::read_dir(src).map_err(io_err(src))?;
    for entry in entries {
        let entry = entry.map_err(io_err(src))?;
        let path = entry.path();
        let target = dst.join(entry.file_name());
        let ft = entry.file_type().map_err(io_err(&path))?;
        if ft.is_dir() {
            std::fs::create_dir_all(&target).map_err(io_err(&target))?;
            copy_dir(&path, &target)?;
        } else if ft.is_file() {
            std::fs::copy(&path, &target).map_err(io_err(&target))?;
        }
    }
    Ok(())
}

/// SHA-256 over every file's relative path and content, in sorted order, hex-encoded.
pub(crate) fn content_digest(dir: &Path) -> String {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(ft) if ft.is_dir() => walk(base, &path, out),
                Ok(ft) if ft.is_file() => {
                    let rel = path
                        .strip_prefix(base)
                        .map(|p| p.to_string_lossy().replace('\\', "/"))
                        .unwrap_or_default();
                    out.push((rel, path));
                }
                _ => {}
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    files.sort();
    let mut hasher = Sha256::new();
    for (rel, path) in files {
        hasher.update(rel.as_bytes());
        hasher.update([0u8]);
        if let Ok(bytes) = std::fs::read(&path) {
            hasher.update(&bytes);
        }
        hasher.update([0u8]);
    }
    hex(&hasher.finalize()[..])
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn snapshot(shared: &Shared) -> StateSnapshot {
    let state = lock(&shared.state);
    let apps = state
        .apps
        .values()
        .map(|app| {
            let mut slots: Vec<&Slot> = app.slots.values().collect();
            slots.sort_by_key(|s| (s.name != PRODUCTION, s.name.clone()));
            AppSnapshot {
                name: app.name.clone(),
                subscription_id: app.subscription_id.clone(),
                resource_group: app.resource_group.clone(),
                kind: app.kind,
                slot_config_names: app.slot_config_names.clone(),
                basic_auth: app.basic_auth,
                busy: app.busy.as_ref().map(|(_, name)| name.clone()),
                slots: slots
                    .into_iter()
                    .map(|s| SlotSnapshot {
                        name: s.name.clone(),
                        state: if s.stopped { "Stopped" } else { "Running" }.to_owned(),
                        content_digest: content_digest(&s.content_dir),
                        app_settings: s.app_settings.clone(),
                        sticky_setting_names: s
                            .app_settings
                            .keys()
                            .filter(|k| app.is_sticky(k, &s.app_settings))
                            .cloned()
                            .collect(),
                        connection_strings: s.connection_strings.clone(),
                        site_config: s.site_config.clone(),
                        image: app.image(s),
                        running: crate::runtime::run_state(s),
                        tags: s.tags.clone(),
                        deployments: s.deployments.clone(),
                        content_dir: s.content_dir.clone(),
                        host_name: app.hosts(&s.name).app,
                        scm_host_name: app.hosts(&s.name).scm,
                        site_containers: s
                            .site_containers
                            .iter()
                            .map(|(k, c)| (k.clone(), c.properties.clone()))
                            .collect(),
                    })
                    .collect(),
            }
        })
        .collect();
    let vaults = state
        .vaults
        .values()
        .map(|v| VaultSnapshot {
            name: v.name.clone(),
            secrets: v.secrets.values().map(|s| s.name.clone()).collect(),
        })
        .collect();
    StateSnapshot { apps, vaults }
}

pub(crate) fn loopback_hosts(shared: &Shared) -> Vec<String> {
    let state = lock(&shared.state);
    let mut hosts: Vec<String> = [
        "login",
        "management",
        "pipelines",
        "identity",
        "admin",
        "api.loganalytics",
    ]
    .iter()
    .map(|h| format!("{h}.{DOMAIN}"))
    .collect();
    for v in state.vaults.keys() {
        hosts.push(format!("{v}.vault.{DOMAIN}"));
    }
    for app in state.apps.values() {
        for s in app.slots.keys() {
            let h = app.hosts(s);
            hosts.push(h.app);
            hosts.push(h.scm);
        }
    }
    hosts
}

/// Which side of a slot a host names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostKind {
    /// The app itself.
    App,
    /// Kudu (SCM).
    Scm,
}

/// Finds the app and slot whose default app or SCM host is `host` (lowercase, no port). Only the
/// hosts ARM names answer: a host built from another pattern is not found, as on Azure.
pub(crate) fn resolve_host(state: &State, host: &str) -> Option<(String, String, HostKind)> {
    for app in state.apps.values() {
        for slot in app.slots.keys() {
            let h = app.hosts(slot);
            if h.app == host {
                return Some((app.name.clone(), slot.clone(), HostKind::App));
            }
            if h.scm == host {
                return Some((app.name.clone(), slot.clone(), HostKind::Scm));
            }
        }
    }
    None
}
